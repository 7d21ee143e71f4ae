"""The HTTP layer: Starlette routes that parse a request, hand it to the backend, and answer.

Nothing here decides anything about the API; see :mod:`picky_mock.backend`. Served paths:

* ``POST /api/v2/push`` (V4), ``/app/api/v2/push`` (V3), ``/beta/api/v2/push`` (legacy), each with
  or without a trailing slash: never a redirect, some clients fail on one (docs/contract.md §1).
* ``POST /api/v2/check-balance`` and ``/app/api/v2/check-balance``: the account's balance.
* ``/_picky/...``: the admin API (health, journal, messages, reset, state, faults, accounts,
  sessions, seed, rate-limit, coverage), never journaled.
* anything else: 404 with a JSON body that names the served paths.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .backend import Backend, Incoming, Outcome
from .errors import ConfigError
from .faults import BODILESS_STATUSES, HANG_CAP_SECONDS, Action, FaultRule
from .journal import pack_headers
from .wire import client_gone, write_answer

__all__ = ["ADMIN_PREFIX", "BALANCE_PATHS", "PUSH_PATHS", "FaultyAnswer", "InProcessFault", "PickyApp", "create_app"]

log = logging.getLogger("picky_mock")

PUSH_PATHS = ("/api/v2/push", "/app/api/v2/push", "/beta/api/v2/push")
BALANCE_PATHS = ("/api/v2/check-balance", "/app/api/v2/check-balance")
_TRANSPORT_KEY = "picky_mock.transport"
ADMIN_PREFIX = "/_picky"
#: Bodies larger than this are judged in a worker thread, so that a push of 100,000 recipients
#: does not stall the requests of other clients.
THREADPOOL_BYTES = 256 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value, default=str), status, headers, media_type="application/json")


class InProcessFault(ConnectionResetError):
    """A transport fault where there is no connection to break (an in-process ASGI transport):
    raised to the client, as the nearest equivalent of the broken connection."""


class FaultyAnswer(Response):
    """An answer that goes wrong on the wire, as a fault rule says: the connection is reset, closed
    with no answer or after garbage, the body is cut short or dribbled, or nothing comes at all.

    Carrying these out needs the connection itself, which ASGI does not expose: :class:`PickyApp`
    puts uvicorn's transport in the scope. Without it (in-process ASGI transports), the fault is
    raised as a :class:`ConnectionResetError` in the client, the nearest equivalent.
    """

    def __init__(self, outcome: Outcome, action: Action) -> None:
        super().__init__(outcome.body, outcome.http_status or 200, outcome.headers, media_type=None)
        self.outcome = outcome
        self.action = action
        self.raw_headers.append((b"content-type", outcome.content_type.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.action.kind
        if kind == "dribble":
            await self._dribble(send)
            return
        if kind == "malformed":
            self.body = self.body[: max(1, len(self.body) // 2)]
            self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
            self.raw_headers.append((b"content-length", str(len(self.body)).encode()))
            await super().__call__(scope, receive, send)
            return
        transport = scope.get(_TRANSPORT_KEY)
        if transport is None:
            raise InProcessFault(f"picky-mock fault: {kind} (in-process: no connection to break)")
        if kind == "hang":
            seconds = self.action.seconds
            await self._until_disconnect(receive, HANG_CAP_SECONDS if seconds is None else seconds)
            transport.close()
        elif kind == "truncate":
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
            await asyncio.sleep(0.01)
            transport.close()
        elif kind == "garbage":
            transport.write(b"\x00\xff\xfeNOT HTTP\x1b[0m garbage \xde\xad\xbe\xef\r\n\r\n")
            transport.close()
        elif kind == "close":
            transport.close()
        else:  # reset, answer_lost: an RST, the client sees ECONNRESET
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()
        await self._until_disconnect(receive, 2.0)

    async def _dribble(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        step = max(1, self.action.chunk)
        pause = self.action.seconds if self.action.seconds is not None else 0.05
        for start in range(0, len(self.body), step):
            await send({"type": "http.response.body", "body": self.body[start : start + step], "more_body": True})
            await asyncio.sleep(pause)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _until_disconnect(receive: Receive, seconds: float) -> bool:
        """Wait ``seconds``, or less if the client goes away first; True when it went away."""

        async def wait() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(wait(), timeout=seconds)  # seconds 0: close at once
        except asyncio.TimeoutError:
            return False
        return True


def _transport_of(send: Send) -> Any:
    """The asyncio transport of the uvicorn connection behind ``send`` (None in-process)."""
    return getattr(getattr(send, "__self__", None), "transport", None)


async def _client_left(receive: Receive, send: Send, seconds: float) -> bool:
    """Hold a request ``seconds``; True when its client left meanwhile.

    ``receive`` reports the departure of a client whose request is the connection's newest. When
    it had pipelined a second request behind the held one, uvicorn tells only that second one,
    and the held request learns it from the transport, closed, once the wait is over."""
    if await FaultyAnswer._until_disconnect(receive, seconds):
        return True
    transport = _transport_of(send)
    return transport is not None and bool(transport.is_closing())


def _answer(outcome: Outcome) -> Response:
    return Response(outcome.body, outcome.http_status, outcome.headers, media_type=outcome.content_type)


async def _receive_body(receive: Receive, limit: int) -> tuple[bytes, bool, bool]:
    """``(body, too_large, disconnected)``. A body over ``limit`` is read to its end and dropped
    (only its first ``limit`` bytes are kept), so that the client gets an answer, not a reset."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the common case: one chunk
        if message["type"] == "http.disconnect":
            return b"", False, True
        return (body, False, False) if len(body) <= limit else (body[:limit], True, False)
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", False, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    data = b"".join(chunks)
    return (data, False, False) if size <= limit else (data[:limit], True, False)


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
    refused as a body that is not UTF-8 would be). C-speed splits: a form is read on the event loop."""
    wanted = name.encode("ascii")
    for part in raw.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == wanted:
            return unquote_to_bytes(value.replace(b"+", b" "))
    return None


async def _admin_json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _AdminError("the body is not JSON") from None


class _AdminError(Exception):
    pass


def _yes_no(query: Mapping[str, str], name: str) -> bool | None:
    """A yes/no query parameter (``true``/``false``, ``1``/``0``, ``yes``/``no``), None when absent;
    anything else is a 400, as for numbers."""
    value = query.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise _AdminError(f"query parameter {name}={value!r}: expected true or false")


def _whole_number(query: Mapping[str, str], name: str) -> int | None:
    """A whole-number query parameter, or None when absent; anything else is a 400 (a filter that
    silently matched everything would hide the typo)."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise _AdminError(f"query parameter {name}={value!r}: expected a whole number")
    return int(value)


class PickyApp:
    """The ASGI app of one backend.

    A ``POST`` to an API path (push, check-balance) is the hot path: it goes straight to the
    backend, with no routing table, ``Request`` object or middleware in between, and its answer is
    sent as pre-encoded headers. Everything else (the admin API, a wrong method, an unknown path)
    is served by the Starlette app in :attr:`starlette`.
    """

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend = backend or Backend()
        self.starlette = _starlette_app(backend)
        self.state = self.starlette.state
        self._limit = backend.settings.max_body_bytes
        # method names, looked up per request: a test may replace a backend method on the fly
        self._judges: dict[str, str] = {}
        for paths, judge in ((PUSH_PATHS, "push"), (BALANCE_PATHS, "check_balance")):
            for path in paths:
                self._judges[path] = self._judges[path + "/"] = judge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            judge = self._judges.get(scope["path"])
            if judge is not None:
                if scope["method"] == "POST":
                    await self._api(getattr(self.backend, judge), scope, receive, send)
                else:
                    await self._wrong_method(scope, receive, send)
                return
        await self.starlette(scope, receive, send)

    async def _wrong_method(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any method but POST on an API path, even one HTTP does not know: 405, JSON, journaled."""
        method, path = scope["method"], scope["path"]
        incoming = Incoming(method, path, pack_headers(scope["headers"]), b"", None)
        outcome = self.backend.transport_error(incoming, 405, 410, f"method {method} not allowed on {path}: use POST")
        outcome.headers["allow"] = "POST"
        await _answer(outcome)(scope, receive, send)

    async def _api(self, judge: Callable[[Incoming], Outcome], scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.backend
        path: str = scope["path"]
        started = False

        async def start(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            body, too_large, gone = await _receive_body(receive, self._limit)
            if gone:
                return
            headers = pack_headers(scope["headers"])
            what = "request body" if too_large else ""
            if not too_large:
                document, source = await _document(scope, body)
                if source == "query" and document is not None and len(document) > self._limit:
                    what = "data query parameter"  # the same limit, wherever the document travels
            if what:
                incoming = Incoming("POST", path, headers, body, None)
                detail = f"{what} larger than the limit of {self._limit} bytes (max_body_bytes)"
                outcome = backend.transport_error(incoming, 413, 410, detail)
            else:
                incoming = Incoming("POST", path, headers, body, document, source)
                if document is not None and len(document) > THREADPOOL_BYTES:
                    outcome = await run_in_threadpool(judge, incoming)
                else:
                    outcome = judge(incoming)
            if outcome.delay > 0 and await _client_left(receive, send, outcome.delay):
                # The client gave up (its own timeout) while a latency held the answer: stop
                # holding it, as a real server's write would fail; the journal has the request.
                log.info(
                    "POST %s: client left during a %.3g s latency, request %s unanswered",
                    path,
                    outcome.delay,
                    outcome.headers.get("x-picky-request-id", "?"),
                )
                client_gone(send)
                return
            if outcome.effect is not None and outcome.effect.kind != "html_label":
                transport = _transport_of(send)
                if transport is not None:
                    scope[_TRANSPORT_KEY] = transport
                await FaultyAnswer(outcome, outcome.effect)(scope, receive, start)
                return
            raw = (
                [
                    (b"content-type", outcome.content_type.encode("latin-1")),
                    (b"content-length", str(len(outcome.body)).encode("latin-1")),
                ]
                if outcome.http_status not in BODILESS_STATUSES
                else []  # 204 and 304 have no body, and say nothing of one
            )
            raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
            if write_answer(send, outcome.http_status, raw, outcome.body):
                return  # one write to the socket instead of two (picky_mock/wire.py)
            await start({"type": "http.response.start", "status": outcome.http_status, "headers": raw})
            await send({"type": "http.response.body", "body": outcome.body})
        except InProcessFault:
            raise  # the fault itself, for the in-process client
        except asyncio.CancelledError:
            # The server is stopping while a fault holds this request (a hang, a latency, a dribble)
            # past uvicorn's grace period. A client of a server that goes away sees its connection
            # closed, not an HTTP 500, and the log gets one line, not a traceback.
            transport = _transport_of(send)
            if transport is None:
                raise
            transport.close()
            how = "before its answer was complete" if started else "unanswered"
            log.info("POST %s: connection closed %s, the server is stopping", path, how)
            await FaultyAnswer._until_disconnect(receive, 1.0)  # uvicorn then sees it disconnected
        except Exception as exc:  # a bug of picky-mock: answer, log, and tell the test
            backend.record_server_error(exc)
            log.error("internal error on POST %s:\n%s", path, traceback.format_exc())
            if not started:
                await JSONResponse({"error": "picky-mock internal error", "detail": repr(exc)}, 500)(
                    scope, receive, send
                )


def create_app(backend: Backend | None = None) -> PickyApp:
    """The ASGI app over ``backend`` (a fresh one with default settings when not given)."""
    return PickyApp(backend)


def _starlette_app(backend: Backend) -> Starlette:

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except _AdminError as exc:
                return _json({"error": str(exc)}, 400)
            except Exception as exc:  # a bug of picky-mock: answer, log, and tell the test
                backend.record_server_error(exc)
                log.error("internal error on %s %s:\n%s", request.method, request.url.path, traceback.format_exc())
                return _json({"error": "picky-mock internal error", "detail": repr(exc)}, 500)

        return run

    async def not_found(request: Request) -> Response:
        path = request.url.path
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):  # the admin API is not journaled
            methods = admin_methods.get(path)
            if methods:
                error = {"error": f"method {request.method} not allowed on {path}", "allowed": methods}
                return _json(error, 405, {"allow": ", ".join(methods)})
            return _json({"error": "no such admin endpoint", "path": path, "admin": sorted(admin_methods)}, 404)
        incoming = Incoming(request.method, path, pack_headers(request.scope["headers"]), b"", None)
        body = {
            "error": "not found",
            "path": path,
            "served": [f"POST {p}" for p in PUSH_PATHS + BALANCE_PATHS] + [f"{ADMIN_PREFIX}/..."],
        }
        outcome = backend.transport_error(incoming, 404, 410, f"no such path {path}", body=body)
        return _answer(outcome)

    async def health(request: Request) -> Response:
        return _json({"status": "ok", "mode": backend.mode})

    async def journal(request: Request) -> Response:
        if request.method == "DELETE":
            backend.journal.clear()
            return _json({"cleared": True})
        query = request.query_params
        entries = backend.journal.entries(
            path=query.get("path"),
            status=_whole_number(query, "status"),
            push_id=query.get("push_id"),
            number=query.get("number"),
            text=query.get("text"),
            accepted=_yes_no(query, "accepted"),
        )
        return _json({"entries": [e.to_json() for e in entries], "dropped": backend.journal.dropped})

    async def messages(request: Request) -> Response:
        query = request.query_params
        found = backend.journal.messages(
            number=query.get("number"),
            push_id=query.get("push_id"),
            text=query.get("text"),
            channel=_whole_number(query, "channel"),
        )
        return _json({"messages": [m.to_json() for m in found]})

    async def reset(request: Request) -> Response:
        backend.reset()
        return _json({"reset": True})

    async def state(request: Request) -> Response:
        if request.method in ("PUT", "POST", "PATCH"):
            try:
                change = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return _json({"error": 'send a JSON object such as {"mode": "lenient"}'}, 400)
            # Only the mode changes while serving; the rest of the state may come back as it was
            # read (GET, change the mode, PUT), but not changed.
            current = backend.describe()
            given = change if isinstance(change, dict) else {}
            changed = sorted(str(key) for key, value in given.items() if key != "mode" and current.get(key) != value)
            if not isinstance(change, dict) or "mode" not in change or changed:
                detail = f" ({', '.join(changed)}: only the mode changes while serving)" if changed else ""
                return _json({"error": 'send {"mode": "strict"} or {"mode": "lenient"}' + detail}, 400)
            try:
                backend.set_mode(change["mode"])
            except ConfigError as exc:
                return _json({"error": str(exc)}, 400)
        return _json(backend.describe())

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            rule_id = request.path_params.get("rule_id")
            if rule_id is None:
                backend.faults.clear()
                return _json({"cleared": True})
            if not backend.faults.remove(int(rule_id)):
                return _json({"error": f"no fault rule {rule_id}"}, 404)
            return _json({"removed": int(rule_id)})
        if request.method == "POST":
            spec = await _admin_json(request)
            specs = spec if isinstance(spec, list) else [spec]
            try:
                rules = [FaultRule.from_dict(item) for item in specs]
            except ConfigError as exc:
                return _json({"error": str(exc)}, 400)
            added = backend.faults.extend(rules)
            return _json({"added": [rule.to_json() for rule in added]}, 201)
        return _json({"seed": backend.faults.seed, "rules": [rule.to_json() for rule in backend.faults.rules]})

    async def accounts(request: Request) -> Response:
        token = request.path_params.get("token")
        if request.method == "DELETE":
            backend.accounts.remove_all()
            return _json({"open": True})
        if request.method in ("PUT", "POST", "PATCH") and token is not None:
            spec = await _admin_json(request)
            if not isinstance(spec, dict):
                return _json({"error": 'send a JSON object such as {"balance": "1.5"}'}, 400)
            try:
                account = backend.accounts.set(token, **spec)
            except (ConfigError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json(account.to_json())
        return _json(backend.accounts.describe())

    async def sessions(request: Request) -> Response:
        number = request.path_params.get("number")
        if request.method == "DELETE" and number is not None:
            backend.accounts.close_session(number)
            return _json({"closed": number})
        if request.method == "POST":
            spec = await _admin_json(request)
            number = spec.get("number") if isinstance(spec, dict) else None
            if not isinstance(number, (str, int)):
                return _json({"error": 'send {"number": "5511987654321", "hours": 24}'}, 400)
            hours = spec.get("hours", 24)
            try:
                backend.accounts.open_session(str(number), hours=hours)
            except ConfigError as exc:
                return _json({"error": str(exc)}, 400)
            return _json({"opened": str(number), "hours": hours}, 201)
        return _json({"sessions": backend.accounts.sessions()})

    async def seed(request: Request) -> Response:
        spec = await _admin_json(request)
        value = spec.get("seed") if isinstance(spec, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            return _json({"error": 'send {"seed": 42}'}, 400)
        backend.faults.reseed(value)
        return _json({"seed": value})

    async def coverage(request: Request) -> Response:
        return _json(backend.coverage.to_json())

    async def rate_limit(request: Request) -> Response:
        spec = await _admin_json(request)
        try:
            backend.accounts.set_rate_limit(None if spec is None or spec == {} else spec)
        except (ConfigError, TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(
            {"rate_limit": None if backend.accounts.rate_limit is None else backend.accounts.rate_limit.__dict__}
        )

    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route(f"{ADMIN_PREFIX}/health", guarded(health), methods=["GET", "HEAD"]),
        Route(f"{ADMIN_PREFIX}/journal", guarded(journal), methods=["GET", "DELETE"]),
        Route(f"{ADMIN_PREFIX}/messages", guarded(messages), methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/reset", guarded(reset), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/state", guarded(state), methods=["GET", "PUT", "POST", "PATCH"]),
        Route(f"{ADMIN_PREFIX}/faults", guarded(faults), methods=["GET", "POST", "DELETE"]),
        Route(f"{ADMIN_PREFIX}/faults/{{rule_id:int}}", guarded(faults), methods=["DELETE"]),
        Route(f"{ADMIN_PREFIX}/accounts", guarded(accounts), methods=["GET", "DELETE"]),
        Route(f"{ADMIN_PREFIX}/accounts/{{token}}", guarded(accounts), methods=["PUT", "POST", "PATCH"]),
        Route(f"{ADMIN_PREFIX}/sessions", guarded(sessions), methods=["GET", "POST"]),
        Route(f"{ADMIN_PREFIX}/sessions/{{number}}", guarded(sessions), methods=["DELETE"]),
        Route(f"{ADMIN_PREFIX}/seed", guarded(seed), methods=["PUT", "POST"]),
        Route(f"{ADMIN_PREFIX}/rate-limit", guarded(rate_limit), methods=["PUT", "POST"]),
        Route(f"{ADMIN_PREFIX}/coverage", guarded(coverage), methods=["GET"]),
        Route("/{rest:path}", guarded(not_found), methods=every),
    ]
    admin_methods = {
        route.path: sorted(route.methods or ())
        for route in routes
        if route.path.startswith(ADMIN_PREFIX) and "{" not in route.path
    }
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    app.state.backend = backend
    return app
