"""Every sample body of the documentation meets the contract: the sample request of the bulk-push
page (its placeholder numbers replaced, see below), its sample response, and the response of
docs/contract.md §3; the mock accepts the request and answers it in the sample's shape.

The samples are embedded here as printed, so that the test runs on any checkout; when the contract
the JSON documents of docs/contract.md, and of the original seed pages when they sit beside the
checkout (``../shared/seeds``), are also extracted and checked, and must match an embedded copy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pushing import (
    CONTRACT_RESPONSE,
    REAL_NUMBERS,
    ROOT,
    SEED_REQUEST,
    SEED_RESPONSE,
    SHARED,
    check_answer,
    expect_success,
    with_real_numbers,
)

from picky_mock.contract import validate_request, validate_response


def _documents(path: Path) -> list[dict[str, object]]:
    """Every top-level JSON object in a doc page: those starting a line (code blocks and the plain
    text copy alike), nested ones and template tags (``{% hint %}``) skipped."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    found, end = [], 0
    for match in re.finditer(r"(?m)^[ \t]*\{", text):
        if match.start() < end:
            continue
        try:
            value, end = decoder.raw_decode(text, match.end() - 1)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _doc_files() -> list[Path]:
    files = sorted((SHARED / "seeds").glob("*.txt")) if (SHARED / "seeds").is_dir() else []
    files.append(ROOT / "docs" / "contract.md")
    return files


DOC_FILES = _doc_files()
needs_docs = pytest.mark.skipif(not DOC_FILES, reason=f"the doc pages are not beside the checkout ({SHARED})")


def test_the_sample_response_validates():
    assert validate_response(SEED_RESPONSE) == []
    assert validate_response(CONTRACT_RESPONSE) == []


def test_the_sample_request_validates_once_its_placeholders_are_real_numbers():
    as_printed = validate_request(SEED_REQUEST)
    assert {(v.path, v.status) for v in as_printed} == {(f"$.data[{i}].number", 406) for i in range(5)}
    assert validate_request(with_real_numbers(SEED_REQUEST)) == []


@needs_docs
@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_every_json_sample_in_the_docs_validates(path):
    documents = _documents(path)
    assert documents, f"no JSON sample found in {path.name}"
    for document in documents:
        if "token" in document:
            assert document == SEED_REQUEST, "the embedded copy is the page's sample"
            assert validate_request(with_real_numbers(document)) == []
        else:
            assert document in (SEED_RESPONSE, CONTRACT_RESPONSE), "the embedded copy is the page's sample"
            assert validate_response(document) == []


@needs_docs
def test_the_seed_pages_hold_both_samples():
    seeds = [p for p in DOC_FILES if p.suffix == ".txt"]
    for path in seeds:
        documents = _documents(path)
        assert SEED_REQUEST in documents and SEED_RESPONSE in documents, path.name


def test_the_mock_accepts_the_sample_request(client, picky_server):
    body = with_real_numbers(SEED_REQUEST)
    reply = expect_success(client.post("/app/api/v2/push", json=body), recipients=5)
    assert [d["number"] for d in reply["data"]] == REAL_NUMBERS
    assert set(reply) == set(SEED_RESPONSE) and set(reply["data"][0]) == set(SEED_RESPONSE["data"][0])
    for i, message in enumerate(picky_server.messages()):
        assert message.text == f"MESSAGE FOR NUMBER {i + 1}"
        assert message.media == "MEDIA FILE UNIQUE URL"
    (entry,) = picky_server.pushes()
    assert entry.push is not None and entry.push.priority == 0 and entry.push.application == 1


def test_the_mock_reproduces_the_sample_response(client):
    """Start ids and the default price are the docs' sample values: the same push gets the docs'
    sample answer, byte for byte in value."""
    body = {"token": "PICKY_API_TOKEN", "application": 1, "globalmessage": "promotion",
            "data": [{"number": "934343442290"}, {"number": "35435304220"}]}
    answer = client.post("/api/v2/push", json=body)
    assert check_answer(answer) == SEED_RESPONSE


def test_contract_sample_bodies_over_every_path(client):
    body = with_real_numbers(SEED_REQUEST)
    for path in ("/api/v2/push", "/app/api/v2/push/", "/beta/api/v2/push"):
        expect_success(client.post(path, json=body), recipients=5)
