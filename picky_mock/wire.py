"""An API answer written to the socket in one piece, when uvicorn's httptools protocol serves it.

Through ASGI, an answer is two messages, ``http.response.start`` and ``http.response.body``, and
uvicorn writes each to the socket as it comes: two ``send()`` system calls and, with TCP_NODELAY,
two TCP segments per answer. Measured over loopback at 64 connections (``bash bench/run``), the
second write costs the server about 4 us of kernel time per request, as much as judging the push.
:func:`write_answer` writes the status line, the headers and the body at once, and then leaves
uvicorn's request cycle exactly as its own ``send`` of those two messages would: response started
and complete, the cycle's event set, the connection closed when it is not kept alive, and
uvicorn's ``on_response`` called (keep-alive timer, the next pipelined request).

It reaches into uvicorn's private ``RequestResponseCycle``, so it checks what it relies on once,
at import (:data:`AVAILABLE`), and answers False, to let the caller send the two ASGI messages,
whenever the cycle is not one it knows: another server, uvicorn's h11 protocol, an in-process
transport, the access log on (uvicorn writes that line in ``send``), or a client that is not
reading (flow control). ``tests/test_wire.py`` checks the answers byte for byte against uvicorn's
own path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["AVAILABLE", "client_gone", "write_answer"]

_NEEDED = (
    "response_started",
    "response_complete",
    "waiting_for_100_continue",
    "disconnected",
    "keep_alive",
    "access_log",
    "flow",
    "transport",
    "default_headers",
    "message_event",
    "on_response",
)

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE as _STATUS_LINE
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _Cycle
except ImportError:  # no httptools: uvicorn serves with h11, and every answer goes through ASGI
    _Cycle = None  # type: ignore[assignment,misc]
    _STATUS_LINE = {}


def _knows_cycle() -> bool:
    """Whether this uvicorn's request cycle has every attribute :func:`write_answer` uses (its
    instances set them in ``__init__``: read the names there rather than make a cycle)."""
    if _Cycle is None:
        return False
    init = getattr(_Cycle, "__init__", None)
    names = getattr(getattr(init, "__code__", None), "co_names", ())
    return all(name in names for name in _NEEDED) and hasattr(_Cycle, "send")


AVAILABLE: bool = _knows_cycle()
"""Whether answers can be written in one piece with the installed uvicorn."""

_CRLF = b"\r\n"
_SEP = b": "


def write_answer(send: Callable[..., Any], status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bool:
    """Write a whole answer through the uvicorn cycle behind ``send``; False when that cannot be
    done (then nothing was written). ``headers`` must hold content-length (except for 204 and 304,
    which have no body) and valid header bytes."""
    cycle: Any = getattr(send, "__self__", None)
    if (
        not AVAILABLE
        or type(cycle) is not _Cycle
        or cycle.response_started
        or cycle.disconnected
        or cycle.access_log
        or cycle.flow.write_paused
    ):
        return False
    status_line = _STATUS_LINE.get(status)
    if status_line is None:
        return False
    content = [status_line]
    for name, value in cycle.default_headers:
        content += (name, _SEP, value, _CRLF)
    for name, value in headers:
        content += (name, _SEP, value, _CRLF)
    keep_alive = cycle.keep_alive
    if not keep_alive:
        content.append(b"connection: close\r\n")
    content += (_CRLF, body)
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.transport.write(b"".join(content))
    cycle.response_complete = True
    cycle.message_event.set()
    if not keep_alive:
        cycle.transport.close()
    cycle.on_response()
    return True


def client_gone(send: Callable[..., Any]) -> None:
    """Mark the uvicorn cycle behind ``send`` as disconnected, when its client left but uvicorn
    told only a newer cycle of the same connection (a pipelined request): otherwise uvicorn, seeing
    the app end without an answer, would write a 500 to the closed connection and log the error
    that raises. Nothing to do for any other cycle: it learns a departure by itself."""
    cycle: Any = getattr(send, "__self__", None)
    if AVAILABLE and type(cycle) is _Cycle:
        cycle.disconnected = True
