"""The admin API under ``/_picky``: health, journal, messages, reset, state, faults, accounts,
sessions, seed, rate limit and coverage, and the message lifecycle (deliver, deliveries, clock,
webhooks, inbound, lifecycle, thread), as Starlette routes; never journaled.

Each endpoint is a plain function that reads the backend from the app's state
(``request.app.state.backend``), so that a test can call one with any backend. A request the
endpoint cannot read is a 400 with a JSON error; a bug of picky-mock is a 500 that is also recorded
on the backend, for the test to see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import ADMIN_PREFIX, ApiRoutes
from .backend import Backend
from .errors import ConfigError
from .journal import DEFAULT_PAGE, MAX_PAGE, Entry, Query
from .lifecycle import IllegalTransition, LifecycleError, UnknownMessage, parse_duration
from .openapi import OPENAPI_PATH, document_bytes
from .webhook_payloads import WebhookUrlError

__all__ = ["ADMIN_METHODS", "ROUTES", "AdminRequestError", "not_found"]

log = logging.getLogger("picky_mock")
T = TypeVar("T")

Endpoint = Callable[[Request], Awaitable[Response]]


class AdminRequestError(Exception):
    """An admin request that cannot be read (a body that is not JSON, a malformed query): a 400."""


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value, default=str), status, headers, media_type="application/json")


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def _guarded(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` answering 400 for an :class:`AdminRequestError` and 500 for a bug (recorded)."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AdminRequestError as exc:
            return _json({"error": str(exc)}, 400)
        except Exception as exc:  # a bug of picky-mock: answer, log, and tell the test
            _backend(request).record_server_error(exc)
            log.error("internal error on %s %s:\n%s", request.method, request.url.path, traceback.format_exc())
            return _json({"error": "picky-mock internal error", "detail": repr(exc)}, 500)

    return run


async def _body_json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AdminRequestError("the body is not JSON") from None


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
    raise AdminRequestError(f"query parameter {name}={value!r}: expected true or false")


def _whole_number(query: Mapping[str, str], name: str) -> int | None:
    """A whole-number query parameter, or None when absent; anything else is a 400 (a filter that
    silently matched everything would hide the typo)."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise AdminRequestError(f"query parameter {name}={value[:40]!r}: expected a whole number of at most 18 digits")
    return int(value)


def _limit(query: Mapping[str, str]) -> int:
    """The ``limit`` of a paged admin query: :data:`~picky_mock.journal.DEFAULT_PAGE` when absent."""
    limit = _whole_number(query, "limit")
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise AdminRequestError(f"query parameter limit={limit}: expected a whole number from 1 to {MAX_PAGE}")
    return limit


async def _stepped(steps: Generator[None, None, T]) -> T:
    """Run a stepped journal query on the event loop, letting other requests run between its
    steps, so that a query of a full journal does not hold a push for more than a step."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await asyncio.sleep(0)


async def _json_array(entries: Sequence[Entry]) -> bytes:
    """A page's entries as a JSON array, encoded a few at a time between other requests."""
    parts = []
    for start in range(0, len(entries), 50):
        parts.append(orjson.dumps([entry.to_json() for entry in entries[start : start + 50]], default=str)[1:-1])
        await asyncio.sleep(0)
    return b"[" + b",".join(parts) + b"]"


@_guarded
async def health(request: Request) -> Response:
    return _json({"status": "ok", "mode": _backend(request).mode})


@_guarded
async def journal(request: Request) -> Response:
    backend = _backend(request)
    if request.method == "DELETE":
        backend.journal.clear()
        return _json({"cleared": True})
    query = request.query_params
    criteria = Query.of(
        path=query.get("path"),
        status=_whole_number(query, "status"),
        push_id=query.get("push_id"),
        number=query.get("number"),
        text=query.get("text"),
        accepted=_yes_no(query, "accepted"),
    )
    limit, after = _limit(query), _whole_number(query, "after")
    journal = backend.journal
    page = await _stepped(journal.page_steps(criteria, after=after, limit=limit))
    document = {"total": page.total, "next": page.next, "more": page.more, "dropped": journal.dropped}
    entries = await _json_array(page.entries)
    return Response(orjson.dumps(document)[:-1] + b',"entries":' + entries + b"}", media_type="application/json")


@_guarded
async def messages(request: Request) -> Response:
    query = request.query_params
    limit, offset = _limit(query), _whole_number(query, "offset") or 0
    journal = _backend(request).journal
    steps = journal.message_page_steps(
        number=query.get("number"),
        push_id=query.get("push_id"),
        text=query.get("text"),
        channel=_whole_number(query, "channel"),
        offset=offset,
        limit=limit,
    )
    page = await _stepped(steps)
    document = {"total": page.total, "next": page.next, "dropped": journal.dropped}
    return _json({"messages": [message.to_json() for message in page.messages], **document})


@_guarded
async def reset(request: Request) -> Response:
    _backend(request).reset()
    return _json({"reset": True})


@_guarded
async def state(request: Request) -> Response:
    backend = _backend(request)
    if request.method in ("PUT", "POST", "PATCH"):
        try:
            change = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"error": 'send a JSON object such as {"mode": "lenient"}'}, 400)
        # Only the mode changes while serving; the rest of the state may come back as it was
        # read (GET, change the mode, PUT), but not changed.
        current = backend.describe()
        given = change if isinstance(change, dict) else {}
        changed = sorted(
            str(key)
            for key, value in given.items()
            if key != "mode" and key not in _COUNTERS and current.get(key) != value
        )
        if not isinstance(change, dict) or "mode" not in change or changed:
            detail = f" ({', '.join(changed)}: only the mode changes while serving)" if changed else ""
            return _json({"error": 'send {"mode": "strict"} or {"mode": "lenient"}' + detail}, 400)
        try:
            backend.set_mode(change["mode"])
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
    return _json(backend.describe())


#: Keys of the state that count what happens while serving: a state read, then PUT back with
#: another mode, may show them moved on.
_COUNTERS = frozenset(
    {
        "journal_entries",
        "journal_dropped",
        "delivery_messages",
        "webhooks_pending",
        "events_queued",
        "events_in_flight",
        "webhooks_dropped",
    }
)


@_guarded
async def faults(request: Request) -> Response:
    book = _backend(request).faults
    if request.method == "DELETE":
        rule_id = request.path_params.get("rule_id")
        if rule_id is None:
            book.clear()
            return _json({"cleared": True})
        if not book.remove(int(rule_id)):
            return _json({"error": f"no fault rule {rule_id}"}, 404)
        return _json({"removed": int(rule_id)})
    if request.method == "POST":
        spec = await _body_json(request)
        specs = spec if isinstance(spec, list) else [spec]
        try:
            added = book.extend(specs)
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"added": [rule.to_json() for rule in added]}, 201)
    return _json({"seed": book.seed, "rules": [rule.to_json() for rule in book.rules]})


@_guarded
async def accounts(request: Request) -> Response:
    book = _backend(request).accounts
    token = request.path_params.get("token")
    if request.method == "DELETE":
        book.remove_all()
        return _json({"open": True})
    if request.method in ("PUT", "POST", "PATCH") and token is not None:
        spec = await _body_json(request)
        if not isinstance(spec, dict):
            return _json({"error": 'send a JSON object such as {"balance": "1.5"}'}, 400)
        try:
            account = book.set(token, **spec)
        except (ConfigError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(account.to_json())
    return _json(book.describe())


@_guarded
async def sessions(request: Request) -> Response:
    book = _backend(request).accounts
    number = request.path_params.get("number")
    if request.method == "DELETE" and number is not None:
        book.close_session(number)
        return _json({"closed": number})
    if request.method == "POST":
        spec = await _body_json(request)
        number = spec.get("number") if isinstance(spec, dict) else None
        if not isinstance(number, (str, int)):
            return _json({"error": 'send {"number": "5511987654321", "hours": 24}'}, 400)
        hours = spec.get("hours", 24)
        try:
            book.open_session(str(number), hours=hours)
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"opened": str(number), "hours": hours}, 201)
    return _json({"sessions": book.sessions()})


@_guarded
async def seed(request: Request) -> Response:
    spec = await _body_json(request)
    value = spec.get("seed") if isinstance(spec, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        return _json({"error": 'send {"seed": 42}: a whole number from 0 to 2^64-1', "field": "seed"}, 400)
    _backend(request).faults.reseed(value)
    return _json({"seed": value})


@_guarded
async def coverage(request: Request) -> Response:
    return _json(_backend(request).coverage.to_json())


@_guarded
async def rate_limit(request: Request) -> Response:
    book = _backend(request).accounts
    spec = await _body_json(request)
    try:
        book.set_rate_limit(None if spec is None or spec == {} else spec)
    except (ConfigError, TypeError, ValueError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"rate_limit": None if book.rate_limit is None else book.rate_limit.__dict__})


@_guarded
async def openapi_document(request: Request) -> Response:
    """The OpenAPI document of what this app serves (:mod:`picky_mock.openapi`), made once per app."""
    state = request.app.state
    document: bytes | None = getattr(state, "openapi_document", None)
    if document is None:
        document = document_bytes(ApiRoutes(_backend(request)).judges, request.app.routes)
        state.openapi_document = document
    return Response(document, media_type="application/json")
# -- the message lifecycle --------------------------------------------------------------------


def _field_error(exc: Exception, status: int = 400) -> Response:
    """A lifecycle, URL or config error as a JSON error that names the field."""
    body: dict[str, Any] = {"error": str(exc)}
    field = getattr(exc, "field", None)
    if isinstance(field, str):
        body["field"] = field
    if isinstance(exc, IllegalTransition):
        body.update(
            msg_id=exc.msg_id,
            **{"from": int(exc.from_state), "to": int(exc.to_state)},
            reason=exc.reason,
        )
    return _json(body, status)


def _object(spec: Any, example: str, allowed: Sequence[str]) -> dict[str, Any]:
    """``spec`` as a JSON object of only ``allowed`` keys, or an :class:`AdminRequestError`."""
    if not isinstance(spec, dict):
        raise AdminRequestError(f"send a JSON object such as {example}")
    unknown = sorted(str(key) for key in spec if key not in allowed)
    if unknown:
        raise AdminRequestError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(allowed)})")
    return spec


_DELIVER_KEYS = ("status", "msg_id", "push_id", "number", "error_message")


@_guarded
async def deliver(request: Request) -> Response:
    """Move messages now: ``{"status": "delivered", "msg_id": "9844217"}`` (or ``push_id``, ``number``)."""
    spec = _object(await _body_json(request), '{"status": "delivered", "msg_id": "9844217"}', _DELIVER_KEYS)
    if "status" not in spec:
        return _json(
            {
                "error": "status: missing (0-5 or unknown, delivered, failed, read, submitted, refunded)",
                "field": "status",
            },
            400,
        )
    for key in ("msg_id", "push_id", "number"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            return _json({"error": f"{key}: expected a string, got {value!r}", "field": key}, 400)
    error_message = spec.get("error_message")
    if error_message is not None and not isinstance(error_message, str):
        return _json({"error": "error_message: expected a string", "field": "error_message"}, 400)
    try:
        moved = _backend(request).deliver(
            spec["status"],
            msg_id=spec.get("msg_id"),
            push_id=spec.get("push_id"),
            number=spec.get("number"),
            error_message=error_message,
        )
    except UnknownMessage as exc:
        return _field_error(exc, 404)
    except (LifecycleError, ConfigError) as exc:
        return _field_error(exc)
    return _json({"moved": [transition.to_json() for transition in moved]})


@_guarded
async def deliveries(request: Request) -> Response:
    """Messages with their state and timeline: all, one (``msg_id``), a push's or a number's."""
    query = request.query_params
    limit, offset = _limit(query), _whole_number(query, "offset") or 0
    ledger = _backend(request).ledger
    msg_id = query.get("msg_id")
    if msg_id:
        try:
            found = [ledger.get(msg_id)]
        except UnknownMessage as exc:
            return _field_error(exc, 404)
    else:
        found = ledger.messages(push_id=query.get("push_id") or None, number=query.get("number") or None)
    page = found[offset : offset + limit]
    following = offset + limit if offset + limit < len(found) else None
    return _json(
        {"messages": [m.to_json() for m in page], "total": len(found), "next": following, "forgotten": ledger.evicted}
    )


@_guarded
async def clock(request: Request) -> Response:
    """The clock: ``GET`` reads it, ``POST {"advance": 900}`` (or ``"15m"``) moves it."""
    backend = _backend(request)
    if request.method == "POST":
        spec = _object(await _body_json(request), '{"advance": "15m"}', ("advance",))
        if "advance" not in spec:
            return _json({"error": 'advance: missing (seconds, or a duration such as "15m")', "field": "advance"}, 400)
        try:
            step = parse_duration("advance", spec["advance"])
        except ConfigError as exc:
            return _json({"error": str(exc), "field": "advance"}, 400)
        # In a worker thread: the timers that fall due may wait for webhook POSTs (which may
        # come back to this very server).
        try:
            await run_in_threadpool(backend.advance, step)
        except asyncio.CancelledError:
            # The server is stopping while the advance waits for webhook POSTs (a receiver that
            # hangs) past uvicorn's grace period: an answer and one log line, not a traceback.
            task = asyncio.current_task()
            if task is not None and sys.version_info >= (3, 11):
                task.uncancel()  # handled: the answer below is sent
            log.info("POST %s: the server is stopping; the clock's advance was not waited for", request.url.path)
            return _json({"error": "picky-mock is stopping: the clock's advance was not waited for"}, 503)
    state = backend.lifecycle_state()
    return _json({key: state[key] for key in ("clock", "now", "timers")})


_WEBHOOK_KEYS = ("event_url", "incoming_url")


@_guarded
async def webhooks(request: Request) -> Response:
    """The webhook URLs (``PUT {"event_url": ..., "incoming_url": ...}``, ``null``: none; a key
    left out stays as it is) and the dispatcher's counters (the drops of a full queue among them)."""
    backend = _backend(request)
    if request.method in ("PUT", "POST", "PATCH"):
        spec = _object(await _body_json(request), '{"event_url": "http://127.0.0.1:9000/events"}', _WEBHOOK_KEYS)
        try:
            backend.set_webhooks(**{key: spec[key] for key in _WEBHOOK_KEYS if key in spec})
        except WebhookUrlError as exc:
            return _field_error(exc)
    return _json(
        {
            "event_url": backend.event_webhook_url,
            "incoming_url": backend.incoming_webhook_url,
            "project_id": backend.project_id,
            "timeout": backend.webhooks.timeout,
            "retry_schedule": list(backend.webhooks.retry_schedule),
            "queue_limit": backend.webhooks.queue_limit,
            "max_pending": backend.webhooks.max_pending,
            **backend.webhooks.stats(),
            "events": backend.lifecycle_state()["events"],
        }
    )


@_guarded
async def webhook_attempts(request: Request) -> Response:
    """Every recorded POST, oldest first: ``kind``, ``url`` (a trailing ``*``: a prefix), ``key``;
    ``after`` skips that many of the matching attempts (paging), ``limit`` bounds the page."""
    query = request.query_params
    kind = query.get("kind") or None
    if kind is not None and kind not in ("event", "incoming"):
        return _json({"error": f"kind: {kind[:40]!r} is not event or incoming", "field": "kind"}, 400)
    limit, after = _limit(query), _whole_number(query, "after") or 0
    dispatcher = _backend(request).webhooks
    found = dispatcher.attempts(kind=kind, url=query.get("url") or None, key=query.get("key") or None)
    page = found[after : after + limit]
    following = after + limit if after + limit < len(found) else None
    return _json(
        {
            "attempts": [a.to_json() for a in page],
            "total": len(found),
            "next": following,
            "forgotten": dispatcher.forgotten,
        }
    )


_INBOUND_KEYS = ("number", "text", "type", "media", "name", "application", "payload", "messenger_id", "context_msg_id")


@_guarded
async def inbound(request: Request) -> Response:
    """A customer writes in (``POST {"number": ..., "text": ...}``); ``GET``: the messages received."""
    backend = _backend(request)
    if request.method == "POST":
        spec = _object(await _body_json(request), '{"number": "5511987654321", "text": "hello"}', _INBOUND_KEYS)
        if "number" not in spec:
            return _json({"error": "number: missing (the customer's number)", "field": "number"}, 400)
        try:
            record = backend.receive(**spec)
        except LifecycleError as exc:
            return _field_error(exc)
        return _json(record.to_json(), 201)
    number = request.query_params.get("number") or None
    return _json(
        {"inbound": [i.to_json() for i in backend.inbound.all(number)], "forgotten": backend.inbound.forgotten}
    )


@_guarded
async def lifecycle(request: Request) -> Response:
    """The lifecycle: ``GET`` its policy, clock and counters; ``PUT`` a policy table (``null``: off)."""
    backend = _backend(request)
    if request.method in ("PUT", "POST", "PATCH"):
        body = await request.body()
        if not body.strip():
            return _json({"error": 'send a policy table such as {"deliver_after": "5s"}, or null for off'}, 400)
        spec = await _body_json(request)
        if spec is not None and not isinstance(spec, dict):
            return _json({"error": 'send a policy table such as {"deliver_after": "5s"}, or null for off'}, 400)
        try:
            backend.set_lifecycle(spec)
        except ConfigError as exc:
            field = str(exc).split(":", 1)[0]
            return _json({"error": str(exc), "field": field}, 400)
    return _json(backend.lifecycle_state())


@_guarded
async def thread(request: Request) -> Response:
    """The conversation with ``number``: both directions, in clock order."""
    number = request.query_params.get("number")
    if not number:
        return _json({"error": "number: missing (GET /_picky/thread?number=5511987654321)", "field": "number"}, 400)
    items = _backend(request).thread(number)
    return _json({"number": number, "messages": [item.to_json() for item in items]})


ROUTES = [
    Route(f"{ADMIN_PREFIX}/health", health, methods=["GET", "HEAD"]),
    Route(f"{ADMIN_PREFIX}/journal", journal, methods=["GET", "DELETE"]),
    Route(f"{ADMIN_PREFIX}/messages", messages, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/state", state, methods=["GET", "PUT", "POST", "PATCH"]),
    Route(f"{ADMIN_PREFIX}/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route(f"{ADMIN_PREFIX}/faults/{{rule_id:int}}", faults, methods=["DELETE"]),
    Route(f"{ADMIN_PREFIX}/accounts", accounts, methods=["GET", "DELETE"]),
    Route(f"{ADMIN_PREFIX}/accounts/{{token}}", accounts, methods=["PUT", "POST", "PATCH"]),
    Route(f"{ADMIN_PREFIX}/sessions", sessions, methods=["GET", "POST"]),
    Route(f"{ADMIN_PREFIX}/sessions/{{number}}", sessions, methods=["DELETE"]),
    Route(f"{ADMIN_PREFIX}/seed", seed, methods=["PUT", "POST"]),
    Route(f"{ADMIN_PREFIX}/rate-limit", rate_limit, methods=["PUT", "POST"]),
    Route(f"{ADMIN_PREFIX}/coverage", coverage, methods=["GET"]),
    Route(OPENAPI_PATH, openapi_document, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/deliver", deliver, methods=["POST"]),
    Route(f"{ADMIN_PREFIX}/deliveries", deliveries, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/clock", clock, methods=["GET", "POST"]),
    Route(f"{ADMIN_PREFIX}/webhooks", webhooks, methods=["GET", "PUT", "POST", "PATCH"]),
    Route(f"{ADMIN_PREFIX}/webhooks/attempts", webhook_attempts, methods=["GET"]),
    Route(f"{ADMIN_PREFIX}/inbound", inbound, methods=["GET", "POST"]),
    Route(f"{ADMIN_PREFIX}/lifecycle", lifecycle, methods=["GET", "PUT", "POST", "PATCH"]),
    Route(f"{ADMIN_PREFIX}/thread", thread, methods=["GET"]),
]
"""The admin API's routes (without the catch-all :func:`not_found`)."""

ADMIN_METHODS: dict[str, list[str]] = {
    route.path: sorted(route.methods or ()) for route in ROUTES if "{" not in route.path
}
"""Each fixed admin path and the methods it serves, for the 404 and 405 answers."""


@_guarded
async def not_found(request: Request) -> Response:
    """An admin path nothing serves, or a method a served one does not take: 404 or 405, not journaled."""
    path = request.url.path
    methods = ADMIN_METHODS.get(path)
    if methods:
        error = {"error": f"method {request.method} not allowed on {path}", "allowed": methods}
        return _json(error, 405, {"allow": ", ".join(methods)})
    return _json({"error": "no such admin endpoint", "path": path, "admin": sorted(ADMIN_METHODS)}, 404)
