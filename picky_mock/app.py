"""The HTTP layer: Starlette routes that parse a request, hand it to the backend, and answer.

Nothing here decides anything about the API; see :mod:`picky_mock.backend`. Served paths:

* ``POST /api/v2/push`` (V4), ``/app/api/v2/push`` (V3), ``/beta/api/v2/push`` (legacy), each with
  or without a trailing slash: never a redirect, some clients fail on one (CONTRACT.md 1).
* ``/_picky/...``: the admin API (health, journal, messages, reset, mode), never journaled.
* anything else: 404 with a JSON body that names the served paths.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .backend import Backend, Incoming, Outcome

__all__ = ["ADMIN_PREFIX", "PUSH_PATHS", "create_app"]

log = logging.getLogger("picky_mock")

PUSH_PATHS = ("/api/v2/push", "/app/api/v2/push", "/beta/api/v2/push")
ADMIN_PREFIX = "/_picky"
#: Bodies larger than this are judged in a worker thread, so that a push of 100,000 recipients
#: does not stall the requests of other clients.
THREADPOOL_BYTES = 256 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value, default=str), status, headers, media_type="application/json")


def _answer(outcome: Outcome) -> Response:
    return Response(outcome.body, outcome.http_status, outcome.headers, media_type="application/json")


def _headers(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"])


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or ``(first limit bytes, True)`` when it is larger: the rest is read and dropped
    so that the client gets an answer rather than a reset connection."""
    chunks: list[bytes] = []
    size = 0
    too_large = False
    async for chunk in request.stream():
        size += len(chunk)
        if too_large:
            continue
        if size > limit:
            too_large = True
            continue
        chunks.append(chunk)
    return b"".join(chunks), too_large


async def _document(request: Request, body: bytes) -> tuple[bytes | None, str]:
    """Where the JSON document is: the body, a ``data`` form field, or a ``data`` query parameter
    (the documented fallback for tools that cannot send JSON)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
        if "data" in fields:
            return fields["data"][0].encode("utf-8"), "form"
    elif content_type.startswith("multipart/form-data"):

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form()
        except Exception:  # malformed multipart: judged as a body that is not JSON
            return body, "body"
        value = form.get("data")
        if isinstance(value, str):
            return value.encode("utf-8"), "form"
    if not body.strip() and "data" in request.query_params:
        return request.query_params["data"].encode("utf-8"), "query"
    return body, "body"


def create_app(backend: Backend | None = None) -> Starlette:
    """The ASGI app over ``backend`` (a fresh one with default settings when not given)."""
    backend = backend or Backend()
    limit = backend.settings.max_body_bytes

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Exception as exc:  # a bug of picky-mock: answer, log, and tell the test
                backend.record_server_error(exc)
                log.error("internal error on %s %s:\n%s", request.method, request.url.path, traceback.format_exc())
                return _json({"error": "picky-mock internal error", "detail": repr(exc)}, 500)

        return run

    async def push(request: Request) -> Response:
        path = request.url.path
        if request.method != "POST":
            incoming = Incoming(request.method, path, _headers(request), b"", None)
            outcome = backend.transport_error(
                incoming, 405, 410, f"method {request.method} not allowed on {path}: use POST"
            )
            outcome.headers["allow"] = "POST"
            return _answer(outcome)
        body, too_large = await _read_body(request, limit)
        if too_large:
            incoming = Incoming("POST", path, _headers(request), body, None)
            return _answer(
                backend.transport_error(
                    incoming, 413, 410, f"request body larger than the limit of {limit} bytes (max_body_bytes)"
                )
            )
        document, source = await _document(request, body)
        incoming = Incoming("POST", path, _headers(request), body, document, source)
        if document is not None and len(document) > THREADPOOL_BYTES:
            return _answer(await run_in_threadpool(backend.push, incoming))
        return _answer(backend.push(incoming))

    async def not_found(request: Request) -> Response:
        path = request.url.path
        incoming = Incoming(request.method, path, _headers(request), b"", None)
        outcome = backend.transport_error(incoming, 404, 410, f"no such path {path}")
        return _json(
            {
                "error": "not found",
                "path": path,
                "served": [f"POST {p}" for p in PUSH_PATHS] + [f"{ADMIN_PREFIX}/..."],
            },
            404,
            outcome.headers,
        )

    async def health(request: Request) -> Response:
        return _json({"status": "ok", "mode": backend.mode})

    async def journal(request: Request) -> Response:
        if request.method == "DELETE":
            backend.journal.clear()
            return _json({"cleared": True})
        query = request.query_params
        status = query.get("status")
        accepted = query.get("accepted")
        entries = backend.journal.entries(
            path=query.get("path"),
            status=int(status) if status and status.isdigit() else None,
            push_id=query.get("push_id"),
            number=query.get("number"),
            text=query.get("text"),
            accepted=None if accepted is None else accepted.lower() in ("1", "true", "yes"),
        )
        return _json({"entries": [e.to_json() for e in entries], "dropped": backend.journal.dropped})

    async def messages(request: Request) -> Response:
        query = request.query_params
        channel = query.get("channel")
        found = backend.journal.messages(
            number=query.get("number"),
            push_id=query.get("push_id"),
            text=query.get("text"),
            channel=int(channel) if channel and channel.isdigit() else None,
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
                return _json({"error": "send a JSON object such as {\"mode\": \"lenient\"}"}, 400)
            mode = change.get("mode") if isinstance(change, dict) else None
            if mode not in ("strict", "lenient"):
                return _json({"error": "mode must be \"strict\" or \"lenient\""}, 400)
            backend.mode = mode
        return _json(backend.describe())

    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [Route(p + slash, guarded(push), methods=every) for p in PUSH_PATHS for slash in ("", "/")]
    routes += [
        Route(f"{ADMIN_PREFIX}/health", guarded(health), methods=["GET", "HEAD"]),
        Route(f"{ADMIN_PREFIX}/journal", guarded(journal), methods=["GET", "DELETE"]),
        Route(f"{ADMIN_PREFIX}/messages", guarded(messages), methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/reset", guarded(reset), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/state", guarded(state), methods=["GET", "PUT", "POST", "PATCH"]),
        Route("/{rest:path}", guarded(not_found), methods=every),
    ]
    app = Starlette(routes=routes)
    app.router.redirect_slashes = False
    app.state.backend = backend
    return app
