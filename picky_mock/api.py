"""The emulated API's routes: read a request, hand it to the backend, render what it decided.

Served paths:

* ``POST /api/v2/push`` (V4), ``/app/api/v2/push`` (V3), ``/beta/api/v2/push`` (legacy), each with
  or without a trailing slash: never a redirect, some clients fail on one (docs/contract.md §1).
* ``POST /api/v2/check-balance`` and ``/app/api/v2/check-balance``: the account's balance.
* ``POST /api/v2/delivery-report`` (and the ``/app/`` and ``/beta/`` spellings): the state of each
  message of a push (docs/contract.md §5.2).
* any other method on those paths: 405; any path neither they nor the admin API serve: 404 with a
  JSON body that names the served paths. Both are journaled.

The backend returns an :class:`~picky_mock.backend.Outcome` in the API's terms; this module alone
turns it into an HTTP answer: the ``X-Picky-*`` headers, the content type, the nginx error pages of
injected HTTP errors, and the bytes. Transport faults are carried out by :mod:`picky_mock.transport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .backend import Backend, Incoming, Outcome
from .faults import AFTER_JUDGING, BODILESS_STATUSES, FaultRule
from .journal import BODY_PREFIX_BYTES, header_pairs
from .transport import InProcessFault, carry_out, client_left, close_connection, until_disconnect

__all__ = [
    "ADMIN_PREFIX",
    "BALANCE_PATHS",
    "PUSH_PATHS",
    "REPORT_PATHS",
    "THREADPOOL_BYTES",
    "ApiRoutes",
    "header_safe",
    "proxy_html",
    "render",
    "unknown_path",
]

log = logging.getLogger("picky_mock")

PUSH_PATHS = ("/api/v2/push", "/app/api/v2/push", "/beta/api/v2/push")
BALANCE_PATHS = ("/api/v2/check-balance", "/app/api/v2/check-balance")
REPORT_PATHS = ("/api/v2/delivery-report", "/app/api/v2/delivery-report", "/beta/api/v2/delivery-report")
ADMIN_PREFIX = "/_picky"
#: Bodies larger than this are judged in a worker thread, so that a push of 100,000 recipients
#: does not stall the requests of other clients.
THREADPOOL_BYTES = 256 * 1024

Headers = list[tuple[bytes, bytes]]

_HEADER_LIMIT = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JSON = b"application/json"
_HTML_LABEL = b"text/html; charset=UTF-8"
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def header_safe(text: str) -> str:
    """``text`` made fit for an HTTP header: one line, ASCII, at most 1,000 characters."""
    flat = " ".join(text.split())
    flat = flat.encode("ascii", "backslashreplace").decode("ascii")
    flat = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", flat)
    return flat if len(flat) <= _HEADER_LIMIT else flat[: _HEADER_LIMIT - 1] + "~"


def proxy_html(status: int) -> str:
    """The kind of page an nginx proxy in front of the real API sends with a 5xx or 429."""
    reason = _REASONS.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


def _header(name: bytes, text: str) -> tuple[bytes, bytes]:
    return name, header_safe(text).encode("ascii")


def render(outcome: Outcome) -> tuple[int, Headers, bytes]:
    """The HTTP answer to ``outcome``: status, headers (content type and length first) and body.

    A fault that breaks the connection is carried out by :mod:`picky_mock.transport`; what is
    rendered for it is what a fault after judging (truncate, dribble) sends, or would have."""
    rule = outcome.fault
    if rule is not None and rule.action.kind not in AFTER_JUDGING:
        return _render_fault(outcome, rule)
    headers: Headers = [(b"x-picky-request-id", str(outcome.request_id).encode("ascii"))]
    if outcome.error is not None:
        headers.append(_header(b"x-picky-error", outcome.error))
    if outcome.deviations:
        headers.append(_header(b"x-picky-deviation", "; ".join(outcome.deviations)))
    if outcome.retry_after is not None:
        headers.append((b"retry-after", str(outcome.retry_after).encode("ascii")))
    content_type = _HTML_LABEL if rule is not None and rule.action.kind == "html_label" else _JSON
    return _finish(outcome.http_status or 200, content_type, _json_bytes(outcome.answer), headers)


def _render_fault(outcome: Outcome, rule: FaultRule) -> tuple[int, Headers, bytes]:
    """A fault that answers in place of the API: an API error, or an HTTP error (the rule's body,
    or the nginx page a proxy sends with a 429 or 5xx)."""
    action = rule.action
    headers: Headers = [
        _header(b"x-picky-fault", rule.describe()),
        (b"x-picky-request-id", str(outcome.request_id).encode("ascii")),
    ]
    if action.kind != "http_error":
        return _finish(outcome.http_status or 200, _JSON, _json_bytes(outcome.answer), headers)
    status = outcome.http_status
    content_type = b"text/plain; charset=utf-8"
    text = action.body
    if text is None:
        text = proxy_html(status) if status == 429 or status >= 500 else ""
        content_type = b"text/html"
    given = set()
    for name, value in action.headers.items():  # the rule's headers replace ours, never doubled
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value.encode("latin-1")
        elif lowered != "content-length":  # the length is the body's
            given.add(lowered)
            headers = [h for h in headers if h[0] != lowered.encode("latin-1")]
            headers.append((lowered.encode("latin-1"), value.encode("latin-1")))
    if (status == 429 or action.retry_after is not None) and "retry-after" not in given:
        headers.append((b"retry-after", str(action.retry_after if action.retry_after is not None else 60).encode()))
    return _finish(status, content_type, text.encode("utf-8"), headers)


def _json_bytes(answer: Any) -> bytes:
    return b"" if answer is None else orjson.dumps(answer)


def _finish(status: int, content_type: bytes, body: bytes, headers: Headers) -> tuple[int, Headers, bytes]:
    if status in BODILESS_STATUSES:  # 204 and 304 have no body, and say nothing of one
        return status, headers, b""
    return status, [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *headers], body


async def _until_closed(receive: Receive) -> None:
    """Wait (a second at most) for the server to see the connection closed, so that it logs no
    "returned without starting response", once the stopping server's cancellation is handled.

    That cancellation is marked handled (``Task.uncancel``, Python 3.11+). A second one, from the
    event loop closing behind the stopped server (it cancels every task still running), ends the
    wait quietly: re-raised, it would reach the server as an "Exception in ASGI application"."""
    if sys.version_info >= (3, 11):
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    with contextlib.suppress(asyncio.CancelledError):
        await until_disconnect(receive, 1.0)


async def _send_answer(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiRoutes:
    """The ASGI app of the emulated API's paths over one backend.

    A ``POST`` to an API path is the hot path: the body is read from ASGI messages, judged by the
    backend and answered with two ASGI messages, with no routing table, ``Request`` object or
    middleware in between."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._limit = backend.settings.max_body_bytes
        # method names, looked up per request: a test may replace a backend method on the fly
        self.judges: dict[str, str] = {}
        for paths, judge in ((PUSH_PATHS, "push"), (BALANCE_PATHS, "check_balance"), (REPORT_PATHS, "delivery_report")):
            for path in paths:
                self.judges[path] = self.judges[path + "/"] = judge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        judge = self.judges[scope["path"]]
        if scope["method"] == "POST":
            await self._api(getattr(self.backend, judge), scope, receive, send)
        else:
            await self._wrong_method(scope, send)

    async def _wrong_method(self, scope: Scope, send: Send) -> None:
        """Any method but POST on an API path, even one HTTP does not know: 405, JSON, journaled."""
        method, path = scope["method"], scope["path"]
        incoming = Incoming(method, path, header_pairs(scope["headers"]), b"", None)
        outcome = self.backend.transport_error(incoming, 405, 410, f"method {method} not allowed on {path}: use POST")
        status, headers, body = render(outcome)
        await _send_answer(send, status, [*headers, (b"allow", b"POST")], body)

    async def _api(self, judge: Callable[[Incoming], Outcome], scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.backend
        path: str = scope["path"]
        started = False

        try:
            outcome = await self._judged(judge, scope, receive)
            if outcome is None:
                return  # the client left before its body was complete
            if outcome.delay > 0:
                left = await client_left(receive, send, outcome.delay)
                if left is not None:
                    # The client gave up (its own timeout) while a latency held the answer: stop
                    # holding it; the journal has the request.
                    log.info(
                        "POST %s: client left during a %.3g s latency, request %s unanswered",
                        path,
                        outcome.delay,
                        outcome.request_id,
                    )
                    if left == "closed":  # the server was not told: answer into the closed connection
                        with contextlib.suppress(Exception):
                            await _send_answer(send, *render(outcome))
                    return
            status, headers, body = render(outcome)
            fault = outcome.fault
            if fault is not None and fault.action.kind not in ("api_error", "http_error", "html_label"):
                started = fault.action.kind in ("dribble", "truncate", "malformed")  # these start an answer
                await carry_out(fault.action, status, headers, body, scope, receive, send)
                return
            started = True
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except InProcessFault:
            raise  # the fault itself, for the in-process client
        except asyncio.CancelledError:
            # The server is stopping while a fault holds this request (a hang, a latency, a dribble)
            # past uvicorn's grace period. A client of a server that goes away sees its connection
            # closed, not an HTTP 500, and the log gets one line, not a traceback.
            if not close_connection(send):
                raise
            how = "before its answer was complete" if started else "unanswered"
            log.info("POST %s: connection closed %s, the server is stopping", path, how)
            await _until_closed(receive)
        except Exception as exc:  # a bug of picky-mock: answer, log, and tell the test
            backend.record_server_error(exc)
            log.error("internal error on POST %s:\n%s", path, traceback.format_exc())
            if not started:
                body = orjson.dumps({"error": "picky-mock internal error", "detail": repr(exc)})
                await _send_answer(
                    send, 500, [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())], body
                )

    async def _judged(self, judge: Callable[[Incoming], Outcome], scope: Scope, receive: Receive) -> Outcome | None:
        """Read the request and have it judged (or refused when too large); None if the client left."""
        limit = self._limit
        body, size, gone = await _receive_body(receive, limit)
        if gone:
            return None
        too_large = size > limit
        path: str = scope["path"]
        headers = header_pairs(scope["headers"])
        what = "request body" if too_large else ""
        if not too_large:
            document, source = await _document(scope, body)
            if source == "query" and document is not None and len(document) > limit:
                what = "data query parameter"  # the same limit, wherever the document travels
        if what:
            incoming = Incoming("POST", path, headers, body, None, body_size=size)
            detail = f"{what} larger than the limit of {limit} bytes (max_body_bytes)"
            return self.backend.transport_error(incoming, 413, 410, detail)
        incoming = Incoming("POST", path, headers, body, document, source)
        if document is not None and len(document) > THREADPOOL_BYTES:
            return await run_in_threadpool(judge, incoming)
        return judge(incoming)


async def unknown_path(request: Request) -> Response:
    """A path nothing serves: 404, with the served paths, journaled (Starlette endpoint)."""
    backend: Backend = request.app.state.backend
    path = request.url.path
    incoming = Incoming(request.method, path, header_pairs(request.scope["headers"]), b"", None)
    body = {
        "error": "not found",
        "path": path,
        "served": [f"POST {p}" for p in PUSH_PATHS + BALANCE_PATHS + REPORT_PATHS] + [f"{ADMIN_PREFIX}/..."],
    }
    status, headers, content = render(backend.transport_error(incoming, 404, 410, f"no such path {path}", body=body))
    response = Response(content, status)
    response.raw_headers = headers
    return response


async def _receive_body(receive: Receive, limit: int) -> tuple[bytes, int, bool]:
    """``(body, size, disconnected)``. A body over ``limit`` bytes is read to its end and dropped
    (only its first bytes are kept, for the journal: see :data:`~picky_mock.journal.BODY_PREFIX_BYTES`), so
    that the client gets an answer, not a reset."""
    keep = min(limit, BODY_PREFIX_BYTES)
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the common case: one chunk
        if message["type"] == "http.disconnect":
            return b"", 0, True
        return (body if len(body) <= limit else body[:keep]), len(body), False
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", 0, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif len(chunks) > 1 or len(chunks[0]) > keep:
            chunks = [b"".join(chunks)[:keep]]  # too large: the journal keeps a prefix
    data = b"".join(chunks)
    return (data if size <= limit else data[:keep]), size, False


async def _document(scope: Scope, body: bytes) -> tuple[bytes | None, str]:
    """Where the JSON document is: the body, a ``data`` form field, or a ``data`` query parameter
    (the documented fallback for tools that cannot send JSON)."""
    content_type = b""
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value.lower()
            break
    looks_like_json = body.lstrip()[:1] in (b"{", b"[")  # curl -d labels JSON as a form by default
    if content_type.startswith(b"application/x-www-form-urlencoded") and not looks_like_json:
        field = _urlencoded_field(body, "data")
        if field is not None:
            return field, "form"
    elif content_type.startswith(b"multipart/form-data"):

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, replay).form()
        except Exception:  # malformed multipart: judged as a body that is not JSON
            return body, "body"
        value = form.get("data")
        if isinstance(value, str):
            return value.encode("utf-8"), "form"
    query = scope.get("query_string", b"")
    if query and not body.strip():
        field = _urlencoded_field(query, "data")
        if field is not None:
            return field, "query"
    return body, "body"


def _urlencoded_field(raw: bytes, name: str) -> bytes | None:
    """The bytes of the first field ``name`` in an ``application/x-www-form-urlencoded`` body or a
    query string (``+`` and ``%XX`` undone); ``None`` when it is absent.

    Worked on bytes, not text: ``curl -d 'data={"globalmessage": "Olá"}'`` sends the UTF-8 bytes of
    ``á`` unescaped, and they come out as sent (text that is not UTF-8, escaped or not, is then
    refused as a body that is not UTF-8 would be)."""
    wanted = name.encode("ascii")
    for part in raw.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == wanted:
            return unquote_to_bytes(value.replace(b"+", b" "))
    return None
