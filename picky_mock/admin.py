"""The admin API under ``/_picky``: health, journal, messages, reset, state, faults, accounts,
sessions, seed, rate limit and coverage, as Starlette routes; never journaled.

Each endpoint is a plain function that reads the backend from the app's state
(``request.app.state.backend``), so that a test can call one with any backend. A request the
endpoint cannot read is a 400 with a JSON error; a bug of picky-mock is a 500 that is also recorded
on the backend, for the test to see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import ADMIN_PREFIX, ApiRoutes
from .backend import Backend
from .errors import ConfigError
from .journal import DEFAULT_PAGE, MAX_PAGE, Entry, Query
from .openapi import OPENAPI_PATH, document_bytes

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
        changed = sorted(str(key) for key, value in given.items() if key != "mode" and current.get(key) != value)
        if not isinstance(change, dict) or "mode" not in change or changed:
            detail = f" ({', '.join(changed)}: only the mode changes while serving)" if changed else ""
            return _json({"error": 'send {"mode": "strict"} or {"mode": "lenient"}' + detail}, 400)
        try:
            backend.set_mode(change["mode"])
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)
    return _json(backend.describe())


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
    if isinstance(value, bool) or not isinstance(value, int):
        return _json({"error": 'send {"seed": 42}'}, 400)
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
