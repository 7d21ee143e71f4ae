"""The Delivery Report API over real sockets: the three path spellings with and without a trailing
slash, the transport quirks of the push (form field, query parameter), 401/410 as the push, unknown
and foreign pushes, and an answer that meets schemas/delivery-report-response.schema.json and agrees
with the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from picky_mock.config import Settings
from picky_mock.contract import default_contract
from picky_mock.server import ServerThread

NUMBERS = ["5511987654321", "5511987654322"]
PATHS = ["/api/v2/delivery-report", "/app/api/v2/delivery-report", "/beta/api/v2/delivery-report"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    accounts = {"tok": {"balance": "10"}, "other": {}}
    with ServerThread(Settings(clock="virtual", extra={"accounts": accounts, "sessions": NUMBERS})) as running:
        yield running


def push(server: ServerThread, token: str = "tok", application: int = 8, **item: Any) -> Any:
    data = [{"number": n, "message": "hi", **item} for n in NUMBERS]
    answer = httpx.post(server.push_url, json={"token": token, "application": application, "data": data}).json()
    assert answer["status"] == 100, answer
    return answer


def valid_report(answer: Any) -> None:
    contract = default_contract()
    assert contract.is_valid("report_response", answer), contract.violations("report_response", answer)
    assert contract.is_valid_reference("report_response", answer)


@pytest.mark.parametrize("path", PATHS + [p + "/" for p in PATHS])
def test_every_spelling_answers_the_report(server: ServerThread, path: str) -> None:
    pushed = push(server)
    answer = httpx.post(server.url + path, json={"token": "tok", "push_id": pushed["push_id"]}).json()
    valid_report(answer)
    assert answer["push_id"] == int(pushed["push_id"])
    assert [item["msg_id"] for item in answer["data"]] == [item["msg_id"] for item in pushed["data"]]
    assert {item["status"] for item in answer["data"]} == {"4"}
    assert answer["application"] == "8" and answer["message_type"] == "3"


def test_the_report_agrees_with_the_ledger(server: ServerThread) -> None:
    pushed = push(server, reference_number="ref-1")
    first, second = (item["msg_id"] for item in pushed["data"])
    backend = server.backend
    backend.deliver("delivered", msg_id=first)
    backend.deliver("read", msg_id=first)
    backend.deliver("failed", msg_id=second, error_message="number not on WhatsApp")
    answer = httpx.post(server.url + PATHS[0], json={"token": "tok", "push_id": int(pushed["push_id"])}).json()
    valid_report(answer)
    by_id = {item["msg_id"]: item for item in answer["data"]}
    for msg_id, item in by_id.items():
        assert item["status"] == str(int(backend.ledger.state(msg_id)))
    assert by_id[first]["status"] == "3"
    assert by_id[second] == {
        "number": NUMBERS[1],
        "msg_id": second,
        "status": "2",
        "error_code": "",
        "error_message": "number not on WhatsApp",
        "reference_number": "ref-1",
    }


def test_error_message_empty_off_the_official_channels(server: ServerThread) -> None:
    pushed = push(server, application=1)
    server.backend.deliver("failed", push_id=pushed["push_id"], error_message="no phone")
    answer = httpx.post(server.url + PATHS[0], json={"token": "tok", "push_id": pushed["push_id"]}).json()
    valid_report(answer)
    assert [item["error_message"] for item in answer["data"]] == ["", ""]


def test_form_field_and_query_parameter(server: ServerThread) -> None:
    pushed = push(server)
    document = f'{{"token": "tok", "push_id": "{pushed["push_id"]}"}}'
    by_form = httpx.post(server.url + PATHS[0], data={"data": document}).json()
    by_query = httpx.post(server.url + PATHS[1], params={"data": document}).json()
    as_text = httpx.post(
        server.url + PATHS[0], content=document.encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    ).json()
    for answer in (by_form, by_query, as_text):
        valid_report(answer)
        assert answer["push_id"] == int(pushed["push_id"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"push_id": "7478630"}, 401),
        ({"token": " ", "push_id": "7478630"}, 401),
        ({"token": "nobody", "push_id": "7478630"}, 401),
        ({"token": "tok"}, 410),
        ({"token": "tok", "push_id": "07478630"}, 410),
        ({"token": "tok", "push_id": -3}, 410),
        ({"token": "tok", "push_id": [1]}, 410),
        ({"token": "tok", "push_id": "999999999"}, 410),
        ([], 410),
    ],
)
def test_errors_as_the_push(server: ServerThread, body: Any, status: int) -> None:
    response = httpx.post(server.url + PATHS[0], json=body)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"status", "message"} and answer["status"] == status
    assert default_contract().is_valid("error", answer)
    assert response.headers["x-picky-error"]


def test_not_json_is_410(server: ServerThread) -> None:
    answer = httpx.post(server.url + PATHS[0], content=b"{nope").json()
    assert answer["status"] == 410


def test_another_tokens_push_is_not_shown(server: ServerThread) -> None:
    pushed = push(server, token="other")
    answer = httpx.post(server.url + PATHS[0], json={"token": "tok", "push_id": pushed["push_id"]}).json()
    assert answer == {"status": 410, "message": "Invalid Request"}
    own = httpx.post(server.url + PATHS[0], json={"token": "other", "push_id": pushed["push_id"]}).json()
    valid_report(own)


def test_wrong_method_is_405(server: ServerThread) -> None:
    response = httpx.get(server.url + PATHS[0])
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_reports_are_journaled_but_are_not_pushes(server: ServerThread) -> None:
    pushed = push(server)
    before = len(server.backend.journal.pushes())
    httpx.post(server.url + PATHS[0], json={"token": "tok", "push_id": pushed["push_id"]})
    assert len(server.backend.journal.pushes()) == before
    last = server.backend.journal.snapshot()[-1]
    assert last.path == PATHS[0] and last.status == 100
