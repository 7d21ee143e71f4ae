"""Transport faults: answers that go wrong on the wire (reset, close, garbage, truncate, hang,
dribble, malformed, the answer-lost reset), and the one place that touches a connection.

ASGI has no way to break a connection, so :func:`connection_of` reaches uvicorn's transport behind
the ``send`` callable; nothing else in picky-mock does. Whether that reach works with the installed
uvicorn is checked once when a server starts (:func:`check_connection`, over the admin path
:data:`CONNECTION_PATH`): a uvicorn release that changes it stops the server with a
:class:`~picky_mock.errors.ConfigError` rather than letting transport faults degrade silently.
Without a connection (an in-process ASGI client) a fault that needs one is raised in the client as
:class:`InProcessFault`, the nearest equivalent of a broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from starlette.types import Receive, Scope, Send

from .errors import ConfigError
from .faults import HANG_CAP_SECONDS, Action

__all__ = [
    "CONNECTION_PATH",
    "Connection",
    "InProcessFault",
    "answer_connection_check",
    "carry_out",
    "check_connection",
    "client_left",
    "close_connection",
    "connection_of",
    "until_disconnect",
]

CONNECTION_PATH = "/_picky/connection"
"""The admin path that says whether transport faults can reach the connection (GET)."""

Headers = Sequence[tuple[bytes, bytes]]
_GARBAGE = b"\x00\xff\xfeNOT HTTP\x1b[0m garbage \xde\xad\xbe\xef\r\n\r\n"


class Connection(Protocol):
    """What a transport fault needs of a connection: the asyncio transport interface."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class InProcessFault(ConnectionResetError):
    """A transport fault where there is no connection to break (an in-process ASGI transport):
    raised to the client, as the nearest equivalent of the broken connection."""


def connection_of(send: Send) -> Connection | None:
    """The asyncio transport of the uvicorn connection behind ``send``, or None when there is none
    (an in-process ASGI client, another server).

    The only reach into a dependency in picky-mock: uvicorn passes a bound method of its request
    cycle as ``send``, and the cycle holds the connection's transport as ``transport``. ASGI cannot
    express breaking a connection, which is what a transport fault is. :func:`check_connection`
    verifies this reach when a server starts."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    needed = ("write", "close", "abort", "is_closing", "get_extra_info")
    if transport is None or not all(callable(getattr(transport, name, None)) for name in needed):
        return None
    return transport  # type: ignore[no-any-return]


async def answer_connection_check(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /_picky/connection``: 200 when this request's connection can be reached (transport
    faults work), 500 saying why not."""
    connection = connection_of(send)
    body: dict[str, object]
    if connection is not None:
        status, body = 200, {"connection": True}
    else:
        status, body = 500, {"connection": False, "error": "the server's send callable exposes no transport"}
    payload = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def check_connection(url: str, timeout: float = 5.0) -> None:
    """Ask the server at ``url`` whether transport faults can reach its connections; raise
    :class:`ConfigError` when they cannot (a uvicorn release changed what :func:`connection_of`
    relies on), so that no fault degrades silently."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    authority = f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"
    request = f"GET {CONNECTION_PATH} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode()
    answer = b""
    try:
        with socket.create_connection((host, parts.port or 80), timeout=timeout) as sock:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError as exc:
        raise ConfigError(f"picky-mock could not check its own connection handling at {url}: {exc}") from None
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        import uvicorn

        raise ConfigError(
            f"uvicorn {uvicorn.__version__} does not expose the connection picky-mock needs for transport "
            f"faults (reset, close, garbage, truncate, hang): {body[:300].decode('utf-8', 'replace')}; "
            "install a uvicorn version that picky-mock supports"
        )


async def until_disconnect(receive: Receive, seconds: float) -> bool:
    """Wait ``seconds``, or less if the client goes away first; True when it went away."""

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(wait(), timeout=seconds)  # seconds 0: at once
    except asyncio.TimeoutError:
        return False
    return True


async def client_left(receive: Receive, send: Send, seconds: float) -> str | None:
    """Hold a request ``seconds``; None when its client is still there, else how it was learnt:
    ``"told"`` (the server said so) or ``"closed"`` (the connection is closing).

    ``receive`` reports the departure of a client whose request is the connection's newest. When
    it had pipelined a second request behind the held one, the server tells only that second one,
    and the held request learns it from the connection, closing, once the wait is over."""
    if await until_disconnect(receive, seconds):
        return "told"
    connection = connection_of(send)
    return "closed" if connection is not None and connection.is_closing() else None


def close_connection(send: Send) -> bool:
    """Close the connection behind ``send`` (the server is stopping while a fault holds a request);
    False when there is none."""
    connection = connection_of(send)
    if connection is None:
        return False
    connection.close()
    return True


async def carry_out(
    fault: Action, status: int, headers: Headers, body: bytes, scope: Scope, receive: Receive, send: Send
) -> None:
    """Send the answer ``status``/``headers``/``body`` as ``fault`` says it goes wrong.

    ``headers`` hold the content type and length; a fault that sends nothing ignores them."""
    kind = fault.kind
    if kind == "dribble":
        await _dribble(fault, status, headers, body, send)
        return
    if kind == "malformed":  # a body shorter than its content-length says, on a connection kept open
        cut = body[: max(1, len(body) // 2)]
        fixed = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", str(len(cut)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": fixed})
        await send({"type": "http.response.body", "body": cut})
        return
    connection = connection_of(send)
    if connection is None:
        raise InProcessFault(f"picky-mock fault: {kind} (in-process: no connection to break)")
    if kind == "hang":
        seconds = fault.seconds
        await until_disconnect(receive, HANG_CAP_SECONDS if seconds is None else seconds)
        connection.close()
    elif kind == "truncate":
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        await asyncio.sleep(0.01)
        connection.close()
    elif kind == "garbage":
        connection.write(_GARBAGE)
        connection.close()
    elif kind == "close":
        connection.close()
    else:  # reset, answer_lost: an RST, the client sees ECONNRESET
        sock = connection.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.abort()
    await until_disconnect(receive, 2.0)


async def _dribble(fault: Action, status: int, headers: Headers, body: bytes, send: Send) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    step = max(1, fault.chunk)
    pause = fault.seconds if fault.seconds is not None else 0.05
    for start in range(0, len(body), step):
        await send({"type": "http.response.body", "body": body[start : start + step], "more_body": True})
        await asyncio.sleep(pause)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
