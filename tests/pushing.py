"""Shared test helpers: push bodies, the three HTTP clients (httpx, requests, curl), and
``check_answer``, which every end-to-end test runs on every answer (no redirect, no 5xx, JSON that
meets the response contract, an error body of exactly ``status`` and ``message``).

Imported as ``from pushing import ...``; the fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import requests

from picky_mock.contract import validate_response
from picky_mock.errors import STATUS_MESSAGES

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (never a hard-coded path)."""
SHARED = ROOT.parent / "shared"
"""The contract and the seed pages, when they sit beside the checkout (they are not part of it)."""

TOKEN = "picky-test-token"
CLIENTS = ("httpx", "requests", "curl")
TIMEOUT = 30.0
CURL = shutil.which("curl") or "/usr/bin/curl"


def number(i: int = 0) -> str:
    """A valid recipient number (Brazil, 13 digits), distinct for each ``i``."""
    return str(5511987000000 + i)


def push_body(*numbers: str | int, text: str = "hello", application: int | str = 1, **extra: Any) -> dict[str, Any]:
    """A valid push body: ``text`` as globalmessage for ``numbers`` (one default number)."""
    recipients = numbers or (number(),)
    body: dict[str, Any] = {"token": TOKEN, "application": application, "globalmessage": text}
    body["data"] = [{"number": n} for n in recipients]
    body.update(extra)
    return body


def channel_push(
    *numbers: str, text: str = "hello", channel: int | str = 1, token: str = "tok", **extra: Any
) -> dict[str, Any]:
    """A valid push for the fault and account tests: ``text`` to ``numbers`` (default one number)
    on ``channel`` with ``token``."""
    body: dict[str, Any] = {
        "token": token,
        "application": channel,
        "globalmessage": text,
        "data": [{"number": n} for n in (numbers or ("5511987654321",))],
    }
    body.update(extra)
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


# -- the documentation's samples (test_samples.py checks them against the pages) ---------------

#: help.pickyassist.com, "Sending Bulk Messages - Push", Sample Request Body JSON, as printed.
SEED_REQUEST = {
    "token": "PICKY_API_TOKEN",
    "priority ": "0",
    "application": "1",
    "globalmessage": "",
    "globalmedia": "MEDIA FILE UNIQUE URL",
    "data": [{"number": f"NUMBER {i}", "message": f"MESSAGE FOR NUMBER {i}"} for i in range(1, 6)],
}

#: The same page's sample response (also shown in its "200" tab), and docs/contract.md §3's.
SEED_RESPONSE = {
    "status": 100,
    "push_id": "7478630",
    "message": "Success",
    "data": [
        {"msg_id": "9844217", "number": "934343442290", "credit": "0.005"},
        {"msg_id": "9844218", "number": "35435304220", "credit": "0.005"},
    ],
}
CONTRACT_RESPONSE = {
    "status": 100,
    "push_id": "7478630",
    "message": "Success",
    "data": [{"msg_id": "9844217", "number": "934343442290", "credit": "0.005"}],
}

#: The sample request's numbers are placeholders ("NUMBER 1" ... "NUMBER 5"), which no API accepts
#: (406). They are replaced with real numbers, the first two those of the sample response.
REAL_NUMBERS = ["934343442290", "35435304220", "5511987654321", "919737001155", "556140404433"]


def with_real_numbers(sample: dict[str, Any]) -> dict[str, Any]:
    """``sample`` with each ``"NUMBER n"`` placeholder replaced by a real number."""
    body = copy.deepcopy(sample)
    for item in body["data"]:
        found = re.fullmatch(r"NUMBER (\d+)", str(item.get("number", "")))
        if found:
            item["number"] = REAL_NUMBERS[int(found.group(1)) - 1]
    return body


# -- answers -------------------------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP answer, whichever client received it."""

    status_code: int
    headers: dict[str, str]
    """Header names lower-cased (the last value wins)."""
    content: bytes
    client: str = ""

    def json(self) -> Any:
        return json.loads(self.content)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _from_httpx(response: httpx.Response) -> Answer:
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content, "httpx")


def _from_requests(response: requests.Response) -> Answer:
    return Answer(
        response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content, "requests"
    )


def _parse_curl(raw: bytes) -> Answer:
    """``curl -i`` output: skip interim ``100 Continue`` heads, then one head and the body."""
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if status == 100 and rest:
            raw = rest
            continue
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Answer(status, headers, rest, "curl")


def curl(argv: Sequence[str], stdin: bytes | None = None) -> Answer:
    """Run curl (never following redirects) and parse its ``-i`` output."""
    command = [CURL, "-sS", "-i", "--max-time", str(int(TIMEOUT)), "--max-redirs", "0", *argv]
    done = subprocess.run(command, input=stdin, capture_output=True, timeout=TIMEOUT + 10)
    assert done.returncode == 0, f"curl failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
    return _parse_curl(done.stdout)


def send(
    client: str,
    url: str,
    *,
    method: str = "POST",
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    multipart: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> Answer:
    """Send one request with ``client`` (httpx, requests or curl), never following a redirect.

    ``content``: the raw body, with exactly the ``headers`` given (no content type unless one is
    given); ``form``: a urlencoded form; ``multipart``: multipart form fields (not files);
    ``params``: query parameters.
    """
    headers = dict(headers or {})
    if client == "httpx":
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as session:
            files = {k: (None, v) for k, v in multipart.items()} if multipart else None
            if content is not None:
                response = session.request(method, url, content=content, headers=headers, params=params)
            else:
                response = session.request(method, url, data=form, files=files, headers=headers, params=params)
        return _from_httpx(response)
    if client == "requests":
        files = {k: (None, v) for k, v in multipart.items()} if multipart else None
        data: Any = content if content is not None else form
        answer = requests.request(
            method, url, data=data, files=files, headers=headers, params=params, allow_redirects=False, timeout=TIMEOUT
        )
        return _from_requests(answer)
    assert client == "curl", client
    if params:
        url = f"{url}?{urlencode(params)}"
    argv = ["-X", method, "-H", "Expect:"]
    stdin = None
    if content is not None:
        argv += ["--data-binary", "@-"]
        stdin = content
        headers.setdefault("Content-Type", "")  # curl adds a urlencoded type unless told not to
    elif form:
        for name, value in form.items():
            argv += ["--data-urlencode", f"{name}={value}"]
    elif multipart:
        for name, value in multipart.items():
            argv += ["--form-string", f"{name}={value}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}:{' ' + value if value else ''}"]
    return curl([*argv, url], stdin)


def send_json(client: str, url: str, body: Any, content_type: str | None = "application/json") -> Answer:
    headers = {"Content-Type": content_type} if content_type else {}
    return send(client, url, content=encode(body), headers=headers)


# -- the contract of every answer ----------------------------------------------------------


AnyAnswer = Answer | httpx.Response | requests.Response


def as_answer(answer: AnyAnswer) -> Answer:
    if isinstance(answer, httpx.Response):
        return _from_httpx(answer)
    if isinstance(answer, requests.Response):
        return _from_requests(answer)
    return answer


def check_answer(answer: AnyAnswer) -> dict[str, Any]:
    """Assert that an answer from a push path is one the real API could give; return its body.

    Never a redirect, never a 5xx, always a JSON object that meets the response schemas. An error
    answer is exactly ``{"status", "message"}``, with what was wrong in ``X-Picky-Error``.
    """
    __tracebackhide__ = True
    answer = as_answer(answer)
    assert not 300 <= answer.status_code < 400, f"redirect {answer.status_code} to {answer.header('location')}"
    assert answer.status_code < 500, f"HTTP {answer.status_code}: {answer.content[:500]!r}"
    content_type = answer.header("content-type") or ""
    assert content_type.startswith("application/json"), f"content type {content_type!r}"
    body = answer.json()
    assert isinstance(body, dict), body
    violations = validate_response(body)
    assert violations == [], "\n".join(str(v) for v in violations)
    if body["status"] == 100:
        assert type(body["status"]) is int
        assert isinstance(body["push_id"], str) and body["push_id"].isdigit()
        for item in body["data"]:
            assert isinstance(item["msg_id"], str) and isinstance(item["number"], str)
            assert isinstance(item["credit"], str)
    else:
        assert set(body) == {"status", "message"}, body
        assert type(body["status"]) is int
        assert answer.header("x-picky-error"), "an error answer says what was wrong in X-Picky-Error"
    return body


def expect_success(answer: AnyAnswer, recipients: int | None = None) -> dict[str, Any]:
    """Assert an HTTP 200 success answer (with ``recipients`` entries, if given); return its body."""
    __tracebackhide__ = True
    body = check_answer(answer)
    status = answer.status_code
    assert status == 200 and body["status"] == 100, f"HTTP {status} {body}"
    if recipients is not None:
        assert len(body["data"]) == recipients
    ids = [int(item["msg_id"]) for item in body["data"]]
    if ids:
        assert ids == list(range(ids[0], ids[0] + len(ids))), "a push's msg_ids are contiguous"
    return body


def expect_error(answer: AnyAnswer, code: int, http_status: int = 200) -> str:
    """Assert the API error ``code`` (HTTP ``http_status``, 200 by default); return X-Picky-Error."""
    __tracebackhide__ = True
    answer = as_answer(answer)
    body = check_answer(answer)
    assert answer.status_code == http_status, f"HTTP {answer.status_code}, expected {http_status}: {body}"
    assert body == {"status": code, "message": STATUS_MESSAGES[code]}
    error = answer.header("x-picky-error")
    assert error
    return error


def status_of(client: httpx.Client, url: str, body: Any) -> int:
    """The API status of ``body`` pushed to ``url`` (asserting the HTTP 200 every API answer has)."""
    __tracebackhide__ = True
    answer = client.post(url, json=body)
    assert answer.status_code == 200, (answer.status_code, answer.text)
    status: int = answer.json()["status"]
    return status


def connect(url: str, timeout: float = 10) -> socket.socket:
    """A raw TCP connection to the server at ``url`` (``http://host:port``), for bytes no client sends."""
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends on ``sock`` until it closes the connection (or resets it)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError:
        pass
    return received


def expect_still_serving(client: httpx.Client) -> None:
    """Assert that a valid push is answered as usual (after hostile or huge input)."""
    __tracebackhide__ = True
    expect_success(client.post("/api/v2/push", json=push_body(text="still serving")), recipients=1)


# -- fixtures ------------------------------------------------------------------------------


def console_script() -> list[str]:
    """The ``picky-mock`` console script of this interpreter (``python -m picky_mock`` if absent)."""
    here = Path(sys.executable).parent
    for candidate in (here / "picky-mock", here / "picky-mock.exe"):
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which("picky-mock")
    return [found] if found else [sys.executable, "-m", "picky_mock"]


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment without any ``PICKY_MOCK_*`` variable, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKY_MOCK_")}
    env.update(overrides)
    return env
