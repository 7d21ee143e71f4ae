"""How one webhook POST is made: over a socket (aiohttp), or straight into an ASGI or WSGI app.

A :class:`Sender` runs on the dispatcher's event loop and answers ``(status, body)`` or raises. The
answer is read up to :data:`READ_LIMIT` bytes (an instant reply is small; a huge answer is cut here).
aiohttp because it is the client made for many concurrent requests from one loop: in
``bench/lifecycle.py`` it sends about ten times as many webhooks per CPU second as httpx.
"""

from __future__ import annotations

import asyncio
import io
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["READ_LIMIT", "AsgiSender", "HttpSender", "Sender", "WsgiSender"]

#: How much of a receiver's answer is read.
READ_LIMIT = 65536

_HEADERS = (("Content-Type", "application/json"), ("User-Agent", "picky-mock webhooks"))


class Sender(Protocol):
    """How one POST is made: ``(status, body)`` or an exception. Runs on the dispatcher's loop."""

    async def send(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class HttpSender:
    """Real HTTP over sockets, with aiohttp: one session and connection pool, ``per_host`` connections
    at most to each destination (keep-alive), the answer read up to :data:`READ_LIMIT` bytes."""

    def __init__(self, *, per_host: int = 8) -> None:
        self.per_host = per_host
        self._session: Any = None
        self._timeouts: dict[float, Any] = {}

    def _open(self) -> Any:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.per_host, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(connector=connector, headers=dict(_HEADERS))
        return self._session

    async def send(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        from yarl import URL

        session = self._open()
        async with session.post(
            # The user's query string arrives as written: no re-quoting.
            URL(url, encoded=True),
            data=body,
            timeout=self._timeout(timeout),
            allow_redirects=False,
        ) as response:
            answer = await response.content.read(READ_LIMIT)
            return response.status, answer

    def _timeout(self, seconds: float) -> Any:
        import aiohttp

        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class AsgiSender:
    """Calls an ASGI app in this process (no socket), as an HTTP/1.1 POST to the URL's path and query."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def send(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        parts = urllib.parse.urlsplit(url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": parts.scheme,
            "path": urllib.parse.unquote(parts.path or "/"),
            "raw_path": (parts.path or "/").encode("latin-1"),
            "query_string": parts.query.encode("latin-1"),
            "root_path": "",
            "headers": [
                (b"host", (parts.netloc or "testserver").encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in _HEADERS),
            ],
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "testserver", parts.port or (443 if parts.scheme == "https" else 80)),
        }
        sent = False
        status: list[int] = []
        chunks: list[bytes] = []
        size = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the request is over: wait until cancelled
            return {"type": "http.disconnect"}  # pragma: no cover

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            elif message["type"] == "http.response.body" and size < READ_LIMIT:
                chunk = bytes(message.get("body", b""))[: READ_LIMIT - size]
                size += len(chunk)
                chunks.append(chunk)

        await asyncio.wait_for(self.app(scope, receive, send), timeout)
        if not status:
            raise ConnectionError("the ASGI app sent no response")
        return status[0], b"".join(chunks)

    async def close(self) -> None:
        return None


class WsgiSender:
    """Calls a WSGI app in this process, in a worker thread (a WSGI app blocks). On a timeout the
    attempt fails but the thread runs on until the app returns: WSGI cannot be interrupted."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def _call(self, url: str, body: bytes) -> tuple[int, bytes]:
        parts = urllib.parse.urlsplit(url)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(parts.path or "/", encoding="latin-1"),
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": parts.hostname or "testserver",
            "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": parts.netloc or "testserver",
            "HTTP_USER_AGENT": dict(_HEADERS)["User-Agent"],
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        status: list[int] = []

        def start_response(line: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
            status[:] = [int(line.split(" ", 1)[0])]
            return lambda _data: None

        result = self.app(environ, start_response)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in result:
                if size < READ_LIMIT:
                    chunks.append(bytes(chunk)[: READ_LIMIT - size])
                    size += len(chunks[-1])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not status:
            raise ConnectionError("the WSGI app never called start_response")
        return status[0], b"".join(chunks)

    async def send(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(None, self._call, url, body), timeout)

    async def close(self) -> None:
        return None
