"""The admin API's protection, as an ASGI middleware around the whole app (:class:`AdminGuard`).

Safe by default, as WireMock's admin authentication and Mailpit's UI/API authentication are:

* **Host allow-list, on every path** (DNS rebinding): a request's ``Host`` must name a loopback
  address (``localhost``, ``*.localhost``, ``127.x.x.x``, ``::1``), the bound address, the address
  the connection actually reached (``scope["server"]``: so a wildcard bind answers to its own IP
  addresses), or a name in ``allowed_hosts`` (``"*"``: any). Else 403. A request without ``Host``
  (HTTP/1.0) cannot come from a browser and passes.
* **Admin token** (``/_picky/*`` but ``/_picky/health``, ``/_picky/connection`` and
  ``/_picky/openapi.json``): required whenever one is configured (``--admin-token``,
  ``PICKY_MOCK_ADMIN_TOKEN``, ``[server] admin_token``), as
  ``Authorization: Bearer <token>`` or ``X-Picky-Admin-Token: <token>``, compared in constant time
  (else 401). Bound beyond loopback without a token, the admin API is locked (403) unless
  ``--admin-open`` says otherwise; the server warns at start-up either way.
* **No cross-site change**: an admin request with an ``Origin`` that is not the server's own, or
  that a browser marks ``Sec-Fetch-Site: cross-site``, is refused (403). An admin ``POST`` (the
  only state-changing method a page can send without a CORS preflight) needs a JSON content type,
  an ``X-Picky-Admin`` header or the token header: none of these is a "simple" request, so a page
  on another origin cannot send it. No CORS header is ever sent, so no preflight succeeds.
* **Bounded admin input**: bodies of at most :data:`ADMIN_BODY_LIMIT` bytes (else 413), paths of
  at most :data:`MAX_ADMIN_PATH` characters (else 414).

The emulated API (push, check-balance) stays as open as the real one: only the Host check applies.
In-process ASGI transports (httpx's ``ASGITransport``) pass the Host check: their ``server`` is
the URL's host, which their ``Host`` header names.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings

__all__ = [
    "ADMIN_BODY_LIMIT",
    "ADMIN_CSRF_HEADER",
    "ADMIN_TOKEN_HEADER",
    "AdminGuard",
    "GuardPolicy",
    "admin_headers",
    "is_loopback",
]

log = logging.getLogger("picky_mock")

ADMIN_PREFIX = "/_picky"
HEALTH_PATH = "/_picky/health"
CONNECTION_PATH = "/_picky/connection"
OPENAPI_PATH = "/_picky/openapi.json"
#: Admin paths that need no token: they tell whether the server is up and can break connections,
#: and describe the API (the same document for every server: tools fetch it without credentials).
OPEN_PATHS = frozenset({HEALTH_PATH, CONNECTION_PATH, OPENAPI_PATH})
ADMIN_BODY_LIMIT = 8 * 1024 * 1024
"""Bytes of an admin request's body (a list of 10,000 fault rules is about 1 MiB)."""
MAX_ADMIN_PATH = 2048
"""Characters of an admin path (an account token is at most 1,024; a rule id, a few digits)."""
ADMIN_TOKEN_HEADER = "x-picky-admin-token"
ADMIN_CSRF_HEADER = "x-picky-admin"
_HOST_CACHE = 256
"""``Host`` values remembered as allowed (a set look-up per request instead of a parse)."""
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON_TYPES = (b"application/json", b"text/json")
_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def admin_headers(token: str | None) -> dict[str, str]:
    """The headers an admin call sends: the cross-site marker, and the token when there is one."""
    headers = {"X-Picky-Admin": "1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name in a ``Host`` header value: no port, no brackets, lower case, no final dot."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


class GuardPolicy:
    """What :class:`AdminGuard` enforces, read from :class:`~picky_mock.config.Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.token = settings.admin_token.encode() if settings.admin_token else None
        self.loopback = is_loopback(settings.host)
        self.open = settings.admin_open
        self.locked = self.token is None and not self.loopback and not self.open
        """Bound beyond loopback with no token and no opt-out: every admin call but health is refused."""
        names = {_host_name(h) for h in settings.allowed_hosts}
        self.any_host = "*" in names
        bound = _host_name(settings.host)
        if bound not in ("0.0.0.0", "::", ""):
            names.add(bound)
        else:
            names.add(socket.gethostname().lower())  # the machine's own name, on a wildcard bind
        self.hosts = frozenset(names)

    def warnings(self) -> list[str]:
        """What ``picky-mock serve`` says at start-up about the admin API's exposure."""
        if self.loopback:
            return []
        if self.token is not None:
            return []
        if self.open:
            return [
                "the admin API is OPEN to anyone who can reach this address (--admin-open): they can read "
                "the journal and change faults, accounts and state"
            ]
        return [
            "bound beyond loopback without --admin-token: the admin API (/_picky/*) is locked; set a token "
            "(--admin-token, PICKY_MOCK_ADMIN_TOKEN) or opt out with --admin-open"
        ]

    def host_allowed(self, host: str, server: Any) -> bool:
        if self.any_host:
            return True
        name = _host_name(host)
        if name in self.hosts or is_loopback(name):
            return True
        if server and isinstance(server, (tuple, list)) and server[0] is not None:
            return name == _host_name(str(server[0]))
        return False


def _error(status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> _Answer:
    body = orjson.dumps({"error": message})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    return status, raw, body


class AdminGuard:
    """ASGI middleware: the Host allow-list on every request, and the admin API's token,
    cross-site and body-size rules (see the module's doc). Attributes it does not have are the
    wrapped app's (``backend``, ``state``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.policy = GuardPolicy(settings)
        self._allowed: set[bytes] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = b""
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
                break
        if host and host not in self._allowed:
            refusal = self._check_host(host, scope)
            if refusal is not None:
                await _send(send, refusal)
                return
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX) and (len(path) == len(ADMIN_PREFIX) or path[len(ADMIN_PREFIX)] == "/"):
            await self._admin(scope, receive, send, host)
            return
        await self.app(scope, receive, send)

    def _check_host(self, host: bytes, scope: Scope) -> _Answer | None:
        text = host.decode("latin-1")
        if self.policy.host_allowed(text, scope.get("server")):
            if len(self._allowed) < _HOST_CACHE:
                self._allowed.add(host)
            return None
        name = _host_name(text)
        return _error(
            403,
            f"Host {text!r} is not allowed (DNS rebinding protection): use localhost or the bound address, "
            f"or start picky-mock with --allowed-host {name} (PICKY_MOCK_ALLOWED_HOSTS, [server] allowed_hosts)",
        )

    async def _admin(self, scope: Scope, receive: Receive, send: Send, host: bytes) -> None:
        if len(scope["path"]) > MAX_ADMIN_PATH:
            await _send(send, _error(414, f"an admin path is at most {MAX_ADMIN_PATH} characters"))
            return
        refusal = self._admin_refusal(scope, host)
        if refusal is not None:
            await _send(send, refusal)
            return
        if scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body, over = await _read_body(receive, ADMIN_BODY_LIMIT, scope)
        if body is None:  # the client left
            return
        if over:
            await _send(
                send,
                _error(413, f"an admin request body is at most {ADMIN_BODY_LIMIT} bytes: send fewer rules per call"),
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _admin_refusal(self, scope: Scope, host: bytes) -> _Answer | None:
        policy = self.policy
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            headers.setdefault(key, value)
        method = scope["method"]
        origin = headers.get(b"origin")
        if origin is not None:
            own = {f"{scheme}://{host.decode('latin-1')}".lower() for scheme in ("http", "https")}
            if origin.decode("latin-1").lower() not in own:
                return _error(
                    403,
                    f"cross-origin admin request refused (Origin {origin.decode('latin-1')!r}): the admin API "
                    "answers only its own origin and non-browser clients",
                )
        if headers.get(b"sec-fetch-site") == b"cross-site":
            return _error(403, "cross-site admin request refused (Sec-Fetch-Site: cross-site)")
        if scope["path"] in OPEN_PATHS:
            return None
        if policy.token is not None:
            given = _token_of(headers)
            if given is None or not hmac.compare_digest(given, policy.token):
                what = "a wrong admin token" if given is not None else "no admin token"
                return _error(
                    401,
                    f"{what}: send 'Authorization: Bearer <token>' or 'X-Picky-Admin-Token: <token>' with the token "
                    "picky-mock was started with (--admin-token, PICKY_MOCK_ADMIN_TOKEN)",
                    [(b"www-authenticate", b'Bearer realm="picky-mock admin"')],
                )
        elif policy.locked:
            return _error(
                403,
                "the admin API is locked: picky-mock is bound beyond loopback without an admin token; restart it "
                "with --admin-token TOKEN (then send 'Authorization: Bearer TOKEN') or --admin-open",
            )
        if method == "POST" and not _not_simple(headers):
            return _error(
                400,
                "an admin POST needs 'Content-Type: application/json' or an 'X-Picky-Admin: 1' header "
                "(a cross-site page cannot send either)",
            )
        return None


def _token_of(headers: dict[bytes, bytes]) -> bytes | None:
    value = headers.get(ADMIN_TOKEN_HEADER.encode())
    if value is not None:
        return value.strip()
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer":
            return token.strip()
        return b""
    return None


def _not_simple(headers: dict[bytes, bytes]) -> bool:
    """Whether a browser would have needed a CORS preflight to send these headers (which we never
    grant): a JSON content type, the ``X-Picky-Admin`` marker, or a token header."""
    if ADMIN_CSRF_HEADER.encode() in headers or ADMIN_TOKEN_HEADER.encode() in headers:
        return True
    if b"authorization" in headers:
        return True
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return content_type in _JSON_TYPES or content_type.endswith(b"+json")


async def _read_body(receive: Receive, limit: int, scope: Scope) -> tuple[bytes | None, bool]:
    """The whole body, or ``(b"", True)`` once it passes ``limit`` (a ``Content-Length`` over it is
    refused before anything is read), or ``(None, False)`` when the client left."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            if value.isdigit() and len(value) < 20 and int(value) > limit:
                return b"", True
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


async def _send(send: Send, answer: _Answer) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
