"""A webhook receiver for tests: a real HTTP endpoint on a free loopback port, in its own thread.

The ``picky_webhook_receiver`` fixture gives one per test. It collects every request that arrives
(:class:`Received`: method, path, query, headers, body, JSON) and answers what the test says: a
status and a body, after a delay, or nothing at all (the connection closed unanswered, as a handler
that is down). A test points the server's webhooks at :attr:`WebhookReceiver.url` and waits with
:meth:`WebhookReceiver.wait_for`; it never sleeps a guessed time.

It is also a command, for a developer's terminal or a test that wants the receiver in another
process: ``python -m picky_mock.receiver [--port N] [--status 200] [--down-first N]`` prints
``listening http://127.0.0.1:PORT/`` and then one JSON line per request received.

Bounds, because what arrives is not trusted: a request body over ``body_limit`` bytes is answered
413 and recorded without its body; at most ``keep`` requests are kept (older ones are forgotten and
counted in :attr:`WebhookReceiver.forgotten`); a delay is cut short when the receiver closes.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "Received", "WebhookReceiver", "main"]

DOWN = "down"


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    """The path without the query string."""
    query: dict[str, list[str]]
    """The query string, parsed (``?a=1&a=2`` -> ``{"a": ["1", "2"]}``)."""
    headers: dict[str, str]
    """Header names in lower case; a repeated header's values joined with ``, ``."""
    body: bytes
    at: float
    """``time.monotonic()`` when the request was read."""
    answered: int | None
    """The status answered, ``None`` when the connection was closed unanswered."""

    @property
    def json(self) -> Any:
        """The body parsed as JSON; ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "json": self.json,
            "answered": self.answered,
        }


@dataclass(frozen=True)
class Answer:
    """What the receiver answers: ``status`` and ``body`` after ``delay`` seconds, or, when ``down``,
    nothing (the connection is closed without an answer)."""

    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    down: bool = False
    headers: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"status: expected an HTTP status 100..599, got {self.status!r}")
        if isinstance(self.delay, bool) or not isinstance(self.delay, (int, float)) or not 0 <= self.delay <= 3600:
            raise ValueError(f"delay: expected 0..3600 seconds, got {self.delay!r}")


def _body(body: bytes | str | None, json_body: Any) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    if json_body is not None:
        if body is not None:
            raise TypeError("give body or json, not both")
        return json.dumps(json_body).encode(), (("Content-Type", "application/json"),)
    if body is None:
        return b"ok", (("Content-Type", "text/plain"),)
    return (body.encode() if isinstance(body, str) else bytes(body)), (("Content-Type", "text/plain"),)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as a real handler behind a proxy would offer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what arrived is in ``received``."""

    def _any(self) -> None:
        self.server.receiver._handle(self)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any


class WebhookReceiver:
    """A local HTTP endpoint that records requests and answers as told; see the module's docstring.

    Use it as a context manager, or :meth:`start` and :meth:`close`. ``answer`` is the default answer
    (200 ``ok``); :meth:`respond` changes it or queues one-off answers.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep: int = 10_000,
        body_limit: int = 1024 * 1024,
        on_request: Callable[[Received], None] | None = None,
    ) -> None:
        if keep < 1 or body_limit < 0:
            raise ValueError("keep must be positive and body_limit not negative")
        self.host, self.port = host, port
        self.keep, self.body_limit = keep, body_limit
        self.on_request = on_request
        self.forgotten = 0
        """Requests forgotten because more than ``keep`` arrived."""
        self._received: deque[Received] = deque()
        self._count = 0
        self._answer = Answer()
        self._queued: deque[Answer] = deque()
        self._condition = threading.Condition()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.receiver = self
        self._server = server
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}/"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"webhook receiver {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening; a request held by a delay is let go at once, unanswered."""
        self._closing.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def url_for(self, path: str) -> str:
        """The URL of ``path`` on this receiver (``url_for("/events?project=1")``)."""
        return self.url.rstrip("/") + "/" + path.lstrip("/")

    # -- what to answer ---------------------------------------------------------------------------
    def respond(
        self,
        status: int = 200,
        body: bytes | str | None = None,
        *,
        json: Any = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer ``status`` with ``body`` (or ``json``) after ``delay`` seconds: the next ``times``
        requests, then the default again; with ``times=None``, every request from now on::

            receiver.respond(503, times=2)                              # two failures, then 200
            receiver.respond(json={"message-out": "Hi!", "delay": 0})   # an instant reply
        """
        content, headers = _body(body, json)
        self._set(Answer(status, content, float(delay), headers=headers), times)

    def down(self, *, times: int | None = None) -> None:
        """Close the next ``times`` connections without an answer (every one with ``times=None``),
        as a handler that is down; :meth:`up` answers 200 again."""
        self._set(Answer(down=True), times)

    def hang(self, seconds: float = 3600.0, *, times: int | None = None) -> None:
        """Hold the next ``times`` requests ``seconds`` (cut short by :meth:`close`), then answer 200."""
        self._set(Answer(delay=float(seconds)), times)

    def up(self) -> None:
        """Answer 200 ``ok`` at once again, queued one-off answers dropped."""
        with self._condition:
            self._queued.clear()
            self._answer = Answer()

    def _set(self, answer: Answer, times: int | None) -> None:
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times: expected a positive integer or None, got {times!r}")
        with self._condition:
            if times is None:
                self._queued.clear()
                self._answer = answer
            else:
                self._queued.extend([answer] * times)

    def _next_answer(self) -> Answer:
        with self._condition:
            return self._queued.popleft() if self._queued else self._answer

    # -- what arrived -----------------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        """The requests kept, oldest first."""
        with self._condition:
            return list(self._received)

    @property
    def count(self) -> int:
        """How many requests arrived in all (forgotten ones included)."""
        return self._count

    def json(self) -> list[Any]:
        """The JSON bodies of the requests kept, oldest first."""
        return [r.json for r in self.received]

    def clear(self) -> None:
        """Forget what arrived (the answers set stay)."""
        with self._condition:
            self._received.clear()
            self._count = 0
            self.forgotten = 0

    def wait_for(self, n: int = 1, timeout: float = 5.0, *, path: str | None = None) -> list[Received]:
        """Wait until ``n`` requests (to ``path``, when given) have arrived and return them, oldest
        first; raise :class:`AssertionError` saying what did arrive after ``timeout`` seconds."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = [r for r in self._received if path is None or r.path == path]
                if len(found) >= n:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
        where = f" to {path}" if path else ""
        seen = "\n".join(f"  {r.method} {r.path} -> {r.answered}: {r.body[:120]!r}" for r in found[-5:])
        raise AssertionError(
            f"expected {n} request(s){where} at {self.url} within {timeout:g} s, got {len(found)}"
            + (f":\n{seen}" if seen else "")
        )

    def __iter__(self) -> Iterator[Received]:
        return iter(self.received)

    def __len__(self) -> int:
        return len(self.received)

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.url or '(not started)'} received={self._count}>"

    # -- serving (on the server's threads) ---------------------------------------------------------
    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        answer = self._next_answer()
        body, too_large = self._read_body(handler, headers)
        if too_large:
            answer = Answer(413, b"request body too large")
        record = Received(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
            at=time.monotonic(),
            answered=None if answer.down else answer.status,
        )
        self._record(record)
        if answer.delay and self._closing.wait(answer.delay):
            handler.close_connection = True
            return  # closing: let the request go unanswered
        if answer.down:
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        handler.send_response(answer.status)
        for name, value in answer.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        if too_large:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.body)

    def _read_body(self, handler: _Handler, headers: Mapping[str, str]) -> tuple[bytes, bool]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(handler)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > self.body_limit:
            return b"", True
        return handler.rfile.read(length), False

    def _read_chunked(self, handler: _Handler) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = handler.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return b"", True
            if size == 0:
                handler.rfile.readline(1024)
                return b"".join(chunks), False
            total += size
            if total > self.body_limit:
                return b"", True
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(1024)

    def _record(self, record: Received) -> None:
        with self._condition:
            self._count += 1
            self._received.append(record)
            if len(self._received) > self.keep:
                self._received.popleft()
                self.forgotten += 1
            self._condition.notify_all()
        if self.on_request is not None:
            self.on_request(record)


def main(argv: list[str] | None = None) -> int:
    """``python -m picky_mock.receiver``: a receiver in the foreground, one JSON line per request."""
    parser = argparse.ArgumentParser(
        prog="python -m picky_mock.receiver", description="A webhook receiver that prints what it gets."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): a free port")
    parser.add_argument("--status", type=int, default=200, help="the status answered (default 200)")
    parser.add_argument("--body", default="ok", help="the body answered (default 'ok')")
    parser.add_argument(
        "--down-first", type=int, default=0, metavar="N", help="close the first N connections unanswered"
    )
    args = parser.parse_args(argv)

    def show(record: Received) -> None:
        sys.stdout.write(json.dumps(record.to_json()) + "\n")
        sys.stdout.flush()

    try:
        receiver = WebhookReceiver(host=args.host, port=args.port, keep=1, on_request=show)
        receiver.respond(args.status, args.body)
    except ValueError as exc:
        parser.error(str(exc))
    if args.down_first > 0:
        receiver.down(times=args.down_first)
    try:
        receiver.start()
    except OSError as exc:
        parser.exit(2, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    print(f"listening {receiver.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
