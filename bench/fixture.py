"""In-process timings of the pytest fixture: session start (``ServerThread(...).start()`` until it
accepts connections), session stop, and the per-test reset. Prints one JSON object on stdout.

Modes (``bench/bench.py`` runs each in a fresh interpreter):

* ``cold-picky`` / ``cold-bare``: one session start in this fresh process, imports included (what a
  pytest session pays the first time the fixture is used). Run several times by the caller.
* ``warm``: repeated starts/stops of picky-mock's ServerThread and of a bare uvicorn thread started
  the same way, then the reset timings. Needs nothing but the installed package.

The baseline for start is a bare Starlette app on uvicorn (uvloop, httptools) in a thread, bound and
polled exactly as ``ServerThread.start()`` does. The baseline for reset is freeing the same 100
journal entries with ``deque.clear()`` (what any reset must at least do).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINGLE = b'{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'
ANSWER = (
    b'{"status":100,"push_id":"7478630","message":"Success",'
    b'"data":[{"msg_id":"9844217","number":"5511987654321","credit":"0.005"}]}'
)


class BareThread:
    """A bare uvicorn server in a thread, started the way ServerThread starts picky-mock."""

    def __init__(self) -> None:
        sys.path.insert(0, HERE)
        import bare_app
        import uvicorn

        self._uvicorn, self._bare = uvicorn, bare_app
        self._server = None
        self._thread: threading.Thread | None = None
        self._sock = None

    def start(self) -> BareThread:
        self._sock = self._bare.bind()
        self._server = self._uvicorn.Server(self._bare.config(self._bare.make_app(ANSWER)))
        self._server.install_signal_handlers = lambda: None
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("bare server failed to start")
            time.sleep(0.001)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _picky_start():  # type: ignore[no-untyped-def]
    from picky_mock.config import Settings
    from picky_mock.server import ServerThread

    # what the picky_settings / picky_server_session fixtures do
    return ServerThread(Settings(host="127.0.0.1", port=0, log_level="warning")).start()


def _check_serves(url: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", "/api/v2/push", body=SINGLE, headers={"content-type": "application/json"})
    body = conn.getresponse().read()
    conn.close()
    if not body.startswith(b'{"status":100'):
        raise RuntimeError(f"unexpected answer from {url}: {body[:200]!r}")


def cold(kind: str) -> dict[str, float]:
    t0 = time.perf_counter()
    server = _picky_start() if kind == "picky" else BareThread().start()
    t1 = time.perf_counter()
    url = server.url if kind == "picky" else "http://{}:{}".format(*server._sock.getsockname()[:2])
    _check_serves(url)
    t2 = time.perf_counter()
    server.stop()
    t3 = time.perf_counter()
    return {"start_ms": (t1 - t0) * 1e3, "first_request_ms": (t2 - t1) * 1e3, "stop_ms": (t3 - t2) * 1e3}


def _median_us(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1e3


def warm(starts: int, resets: int, entries: int) -> dict[str, object]:
    from picky_mock.backend import Backend, Incoming
    from picky_mock.testing import PickyServer

    # warm imports of both stacks, and one start of each, before timing
    for make in (_picky_start, lambda: BareThread().start()):
        make().stop()

    out: dict[str, object] = {}
    for name, make in (("picky", _picky_start), ("bare", lambda: BareThread().start())):
        start_ns, stop_ns = [], []
        for _ in range(starts):
            t0 = time.perf_counter_ns()
            server = make()
            t1 = time.perf_counter_ns()
            server.stop()
            t2 = time.perf_counter_ns()
            start_ns.append(t1 - t0)
            stop_ns.append(t2 - t1)
        out[f"{name}_start_ms"] = [x / 1e6 for x in start_ns]
        out[f"{name}_stop_ms"] = [x / 1e6 for x in stop_ns]

    incoming = Incoming("POST", "/api/v2/push", (("content-type", "application/json"),), SINGLE, SINGLE)

    def fill(backend: Backend) -> None:
        for _ in range(entries):
            outcome = backend.push(incoming)
            assert outcome.status == 100, outcome.answer
        assert len(backend.journal) == entries

    # Backend.reset() on a journal of `entries` single-recipient pushes
    backend = Backend()
    samples = []
    for _ in range(resets):
        fill(backend)
        t0 = time.perf_counter_ns()
        backend.reset()
        samples.append(time.perf_counter_ns() - t0)
    out["backend_reset_us"] = [x / 1e3 for x in samples]

    # reset of an empty journal: the fixed part
    samples = []
    for _ in range(resets):
        t0 = time.perf_counter_ns()
        backend.reset()
        samples.append(time.perf_counter_ns() - t0)
    out["backend_reset_empty_us"] = [x / 1e3 for x in samples]

    # baseline: free the same entries with deque.clear()
    from collections import deque

    samples = []
    for _ in range(resets):
        fill(backend)
        held = deque(backend.journal.snapshot())
        backend.reset()  # the entries now live only in `held`
        t0 = time.perf_counter_ns()
        held.clear()
        samples.append(time.perf_counter_ns() - t0)
    out["baseline_deque_clear_us"] = [x / 1e3 for x in samples]

    # PickyServer.reset() and the whole per-test fixture body, on a running ServerThread
    thread = _picky_start()
    try:
        reset_ns, fixture_ns = [], []
        for _ in range(resets):
            fill(thread.backend)
            t0 = time.perf_counter_ns()
            PickyServer(thread).reset()
            reset_ns.append(time.perf_counter_ns() - t0)
            fill(thread.backend)
            t0 = time.perf_counter_ns()
            picky = PickyServer(thread)  # what the picky_server fixture does around each test
            picky.reset()
            picky.check()
            fixture_ns.append(time.perf_counter_ns() - t0)
        out["pickyserver_reset_us"] = [x / 1e3 for x in reset_ns]
        out["fixture_per_test_us"] = [x / 1e3 for x in fixture_ns]
    finally:
        thread.stop()
    out["entries"] = entries
    return out


def main() -> None:
    mode = sys.argv[1]
    if mode == "cold-picky":
        result: object = cold("picky")
    elif mode == "cold-bare":
        result = cold("bare")
    elif mode == "warm":
        starts = int(sys.argv[2]) if len(sys.argv) > 2 else 10
        resets = int(sys.argv[3]) if len(sys.argv) > 3 else 200
        result = warm(starts, resets, entries=100)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
