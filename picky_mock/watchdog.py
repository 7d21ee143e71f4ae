"""Connection hygiene uvicorn leaves out: a deadline for request headers, a bound on their size,
and a cap on open connections that makes room for real clients.

uvicorn (0.30 to 0.55) arms its keep-alive timeout only once an answer is complete: a connection
that never sends a byte, or sends its headers a byte at a time (each byte cancels the timer), is
never closed, and each holds a file descriptor. Its ``limit_concurrency`` answers 503 only once a
request arrives, so idle connections still take every descriptor; ``h11_max_incomplete_event_size``
bounds headers with h11 only.

:func:`watched` wraps uvicorn's HTTP protocol class (passed as uvicorn's documented ``http``
option, which takes a protocol class) in a plain :class:`asyncio.Protocol` that forwards every
call, sees the bytes that arrive and the writes that leave, and:

* closes a connection whose request headers are not complete ``header_timeout`` seconds after it
  opened, or after the first byte of a later request on it, whatever trickles in meanwhile (idle
  time between requests stays uvicorn's ``timeout_keep_alive``);
* answers ``431`` and closes when headers pass ``max_header_bytes`` before their end;
* at ``max_connections`` open connections, closes the oldest one that is not in the middle of a
  request (still waiting for its headers, or idle between requests) to admit the new one; when
  every connection is busy, the new one is refused (closed at once);
* given an ``upgrade_class``, chooses the protocol of each connection on its first header block:
  ``upgrade_class`` (uvicorn's h11 protocol) when that block carries an ``Upgrade`` header, else
  ``inner_class`` (uvicorn's httptools protocol). The JDK's ``HttpClient`` (and ``curl --http2``)
  asks every cleartext request to upgrade to h2c; uvicorn declines, rightly, but httptools, seeing
  ``Connection: Upgrade``, skips the body and uvicorn drops its bytes: the app gets an empty body
  (httptools issue #124, uvicorn issue #2722, open in httptools 0.9 and uvicorn 0.55), where h11
  reads it as any other. The choice is made here, where the header block is already scanned, so
  that a connection has one wrapper, not two. A client that sends ``Upgrade`` only on a later
  request of a keep-alive connection still meets httptools; every client known to send it (the
  JDK's, curl) sends it on the first request of each connection.

What remains: a request body sent slowly once its headers are complete is not timed out (a fault
may hold a request for up to 300 s by design, and the body's end is uvicorn's to find); the cap
bounds how many such connections there can be.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

__all__ = ["ConnectionLimits", "watched"]

_HEADERS_END = b"\r\n\r\n"
_UPGRADE_HEADER = re.compile(rb"\r\nupgrade[ \t]*:", re.IGNORECASE)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 32\r\n\r\nrequest headers are too large.\r\n"
)


class ConnectionLimits:
    """The limits, and the open connections of one server (oldest first)."""

    def __init__(self, header_timeout: float, max_connections: int, max_header_bytes: int) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.max_header_bytes = max_header_bytes
        self.open: dict[_Watched, None] = {}
        self.closed_idle = 0
        """Connections closed because their headers did not arrive in time (for tests and figures)."""
        self.evicted = 0
        """Connections closed at the cap to admit a new one."""
        self.refused = 0
        """New connections refused at the cap, every open one being busy."""

    def admit(self, newcomer: _Watched) -> bool:
        if len(self.open) >= self.max_connections:
            for candidate in self.open:
                if candidate.phase != "busy":
                    candidate.close()
                    self.evicted += 1
                    break
            else:
                self.refused += 1
                return False
        self.open[newcomer] = None
        return True


class _Transport:
    """The connection's transport as the wrapped protocol sees it: itself, but a write tells the
    watchdog that an answer is leaving (the request's headers were read).

    The methods uvicorn calls on every request are the transport's own, bound once per connection,
    so that only ``write`` passes through Python code of ours."""

    def __init__(self, transport: Any, owner: _Watched) -> None:
        self._transport = transport
        self._owner = owner
        self.close = transport.close
        self.abort = transport.abort
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading

    def write(self, data: bytes | bytearray | memoryview) -> None:
        owner = self._owner
        if owner.phase != "idle" and not _interim(data):
            owner.answered()
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self._owner.answered()
        self._transport.writelines(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _interim(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is an interim ``100 Continue`` (the client's body still to come), not an answer."""
    return bytes(data[:12]) in (b"HTTP/1.1 100", b"HTTP/1.0 100")


class _Watched(asyncio.Protocol):
    limits: ConnectionLimits
    inner_class: Any
    upgrade_class: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._arguments = (args, kwargs)  # uvicorn's, passed on as they came
        self.inner: Any = None if self.upgrade_class is not None else self.inner_class(*args, **kwargs)
        """The protocol serving the connection (None until it is chosen, on the first header block)."""
        self.transport: Any = None
        self._seen_by_inner: _Transport | None = None
        self.phase = "fresh"
        """``fresh`` (nothing received yet), ``first``/``headers`` (the first or a later request's
        headers arriving), ``busy``
        (headers read, answer not started: not evicted at the cap), ``idle`` (answered)."""
        self.admitted = False
        self._seen = 0
        self._tail = b""
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        if not self.limits.admit(self):
            self.transport.abort()
            return
        self.admitted = True
        self._arm()
        self._seen_by_inner = _Transport(transport, self)
        if self.inner is not None:
            self.inner.connection_made(self._seen_by_inner)

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        if self.phase != "busy":
            self._scan(data)
            if self.transport is None or self.transport.is_closing():
                return
        inner = self.inner
        if inner is None:  # the first header block, until it is whole: then the protocol is chosen
            data = self._head + data
            if self.phase != "busy":
                self._head = data
                return
            self._head = b""
            inner = self._choose(data)
        inner.data_received(data)

    def _choose(self, head: bytes) -> Any:
        """The protocol for a connection whose first header block (and maybe more) is ``head``."""
        upgrade = _UPGRADE_HEADER.search(head, 0, head.find(_HEADERS_END)) is not None
        args, kwargs = self._arguments
        self.inner = (self.upgrade_class if upgrade else self.inner_class)(*args, **kwargs)
        self.inner.connection_made(self._seen_by_inner)
        return self.inner

    def eof_received(self) -> bool | None:
        if not self.admitted or self.inner is None:
            return None  # closed before its first request was whole: close the transport
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.limits.open.pop(self, None)
        if self.admitted and self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted and self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted and self.inner is not None:
            self.inner.resume_writing()

    # -- the watch ---------------------------------------------------------------------------

    def _scan(self, data: bytes) -> None:
        """Headers of a request arriving: done when their blank line comes, too large past the bound.
        A later request's deadline is armed only when its headers do not come whole in one read
        (the usual case needs no timer, and a timer costs more than the rest of the watch)."""
        window = self._tail + data if self._tail else data
        if window.find(_HEADERS_END) >= 0:
            self.phase = "busy"
            self._seen = 0
            self._tail = b""
            self._disarm()
            return
        if self.phase == "idle":  # a later request: its headers have header_timeout from now
            self.phase = "headers"
            self._arm()
        elif self.phase == "fresh":
            self.phase = "first"
        self._seen += len(data)
        self._tail = window[-3:]
        if self._seen > self.limits.max_header_bytes and self.transport is not None:
            if self.phase == "first":  # a later request may be the rest of a body answered early: no 431
                self.transport.write(_TOO_LARGE)
            self.close()

    def answered(self) -> None:
        """An answer is being written: idle time is now uvicorn's keep-alive timeout, and a dribbled
        answer is not cut short."""
        if self.phase != "idle":
            self.phase = "idle"
            self._seen = 0
            self._tail = b""
            self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(self.limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.phase in ("fresh", "first", "headers"):
            self.limits.closed_idle += 1
            self.close()

    def close(self) -> None:
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def watched(inner_class: Any, upgrade_class: Any = None, *, limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's ``http`` option: ``inner_class`` (uvicorn's own) under
    ``limits``, or ``upgrade_class`` for a connection whose first request asks to upgrade (see the
    module's doc). One class per server: ``limits`` holds that server's connections."""
    attributes = {"limits": limits, "inner_class": inner_class, "upgrade_class": upgrade_class}
    return type("WatchedHTTPProtocol", (_Watched,), attributes)
