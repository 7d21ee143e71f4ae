"""A real webhook receiver for the server tests: a threaded HTTP server on a loopback socket that
records each POST and answers what the test says (status and body, settable per test).

Imported as ``from receiving import Receiver``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records ``(path, body, headers)`` of every POST; answers ``status`` with ``answer``."""

    def __init__(self, *, status: int = 200, answer: bytes = b"ok") -> None:
        self.status = status
        self.answer = answer
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self.arrived = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, answer = owner.status, owner.answer
                with owner.arrived:
                    owner.received.append((self.path, body, dict(self.headers.items())))
                    owner.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def bodies(self, path: str | None = None) -> list[Any]:
        with self.arrived:
            received = list(self.received)
        return [json.loads(body) for where, body, _ in received if path is None or where == path]

    def items(self, path: str | None = None) -> list[Any]:
        """Every ``data[]`` item of the event webhooks received, in order (a POST may carry several)."""
        return [item for body in self.bodies(path) for item in body["data"]]

    def wait_for_items(self, count: int, timeout: float = 5.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.items_unlocked()) >= count, timeout)

    def items_unlocked(self) -> list[Any]:
        return [item for _, body, _ in self.received for item in json.loads(body).get("data", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
