"""The journal under load: paged queries at 300,000 entries while pushes go on, and memory under
oversize bodies. Prints one JSON object on stdout.

    python bench/journal.py [entries]        # 300,000 by default; about a minute

1. Fills a server's journal with ``entries`` requests (nine accepted single-recipient pushes to
   1,000 numbers, then one rejected), in process, then starts the server on that backend.
2. Times ``Journal.page`` in process (the work a query does) for the common queries.
3. Over HTTP, while one client pushes without pause on its own connection, reads each kind of page
   of ``GET /_picky/journal`` and ``GET /_picky/messages`` several times; reports each query's
   latency and the push latencies during the queries against those before (the worst stall).
4. Sends 10 bodies of 100 MB (answered 413) and reports how much the process's resident memory
   grew, and what the journal keeps of them.
"""

from __future__ import annotations

import gc
import json
import logging
import statistics
import sys
import threading
import time

import httpx
import orjson

from picky_mock.backend import Backend, Incoming
from picky_mock.config import Settings
from picky_mock.journal import Query
from picky_mock.server import ServerThread

HEADERS = (("host", "127.0.0.1"), ("content-type", "application/json"))


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fill(backend: Backend, entries: int) -> None:
    for i in range(entries):
        if i % 10 == 9:
            body = {"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "+1"}]}
        else:
            body = {
                "token": "t",
                "application": 1,
                "globalmessage": f"your code is {i % 10_000:04d}",
                "data": [{"number": f"5511987{i % 1000:06d}"}],
            }
        raw = bytes(memoryview(orjson.dumps(body)))  # bytes of their own size, as read from a socket
        backend.push(Incoming("POST", "/api/v2/push", HEADERS, raw, raw))


def in_process(backend: Backend) -> dict[str, dict[str, float]]:
    journal = backend.journal
    middle = journal.snapshot()[len(journal) // 2].seq
    cases = {
        "first page": (Query(), None),
        "page after the middle": (Query(), middle),
        "number (index)": (Query.of(number="5511987000500"), None),
        "push_id (index)": (Query.of(push_id=journal.snapshot()[-2].push_id or "0"), None),
        "status=406 (walk)": (Query.of(status=406), None),
        "text (walk)": (Query.of(text="code is 9999"), None),
        "accepted=false after the middle (walk)": (Query.of(accepted=False), middle),
    }
    out = {}
    for name, (query, after) in cases.items():
        samples, longest = [], 0.0
        for _ in range(3):
            started = time.perf_counter()
            steps = journal.page_steps(query, after=after, limit=100)
            while True:
                step_started = time.thread_time()  # CPU time: what the event loop would be held for
                try:
                    next(steps)
                except StopIteration:
                    break
                finally:
                    longest = max(longest, time.thread_time() - step_started)
            samples.append(time.perf_counter() - started)
        out[name] = {"total_ms": round(min(samples) * 1e3, 2), "longest_step_cpu_ms": round(longest * 1e3, 2)}
    return out


def over_http(server: ServerThread, backend: Backend) -> dict[str, object]:
    push_body = orjson.dumps(
        {"token": "t", "application": 1, "globalmessage": "live", "data": [{"number": "5511999999999"}]}
    )
    latencies: list[tuple[float, float]] = []  # (start, seconds)
    stop = threading.Event()

    def pusher() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.post("/api/v2/push", content=push_body, headers={"content-type": "application/json"})
                latencies.append((started, time.perf_counter() - started))

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    time.sleep(2.0)  # pushes alone
    alone_until = time.perf_counter()
    middle = backend.journal.snapshot()[len(backend.journal) // 2].seq
    queries = {
        "journal first page": {"limit": "100"},
        "journal after the middle": {"limit": "100", "after": str(middle)},
        "journal number": {"number": "5511987000500", "limit": "100"},
        "journal status=406": {"status": "406", "limit": "100"},
        "journal text": {"text": "code is 9999", "limit": "100"},
        "journal limit=1000": {"limit": "1000"},
    }
    timings: dict[str, float] = {}
    windows: list[tuple[float, float]] = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for name, params in queries.items():
            samples = []
            for _ in range(3):
                started = time.perf_counter()
                answer = client.get("/_picky/journal", params=params)
                ended = time.perf_counter()
                assert answer.status_code == 200, answer.text
                samples.append(ended - started)
                windows.append((started, ended))
            timings[name] = round(statistics.median(samples) * 1e3, 1)
        message_queries = {"messages first page": {"limit": "100"}, "messages number": {"number": "5511987000500"}}
        for name, params in message_queries.items():
            samples = []
            for _ in range(3):
                started = time.perf_counter()
                answer = client.get("/_picky/messages", params=params)
                ended = time.perf_counter()
                assert answer.status_code == 200, answer.text
                samples.append(ended - started)
                windows.append((started, ended))
            timings[name] = round(statistics.median(samples) * 1e3, 1)
    stop.set()
    thread.join(timeout=30)
    alone = [s for t, s in latencies if t < alone_until]
    during = [s for t, s in latencies if any(a <= t <= b or a <= t + s <= b for a, b in windows)]
    return {
        "query_ms_median": timings,
        "push_ms_alone": {
            "median": round(statistics.median(alone) * 1e3, 2),
            "p99": round(sorted(alone)[int(len(alone) * 0.99)] * 1e3, 2),
            "max": round(max(alone) * 1e3, 2),
            "n": len(alone),
        },
        "push_ms_during_queries": {
            "median": round(statistics.median(during) * 1e3, 2),
            "p99": round(sorted(during)[int(len(during) * 0.99)] * 1e3, 2),
            "max": round(max(during) * 1e3, 2),
            "n": len(during),
        },
    }


def oversize(server: ServerThread) -> dict[str, object]:
    chunk = b" " * (1 << 20)

    def body():  # 100 MB, streamed: the client holds 1 MiB at a time
        yield b"{"
        for _ in range(100):
            yield chunk

    backend = server.backend
    backend.journal.clear()
    gc.collect()
    before = rss_mib()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for _ in range(10):
            answer = client.post("/api/v2/push", content=body(), headers={"content-type": "application/json"})
            assert answer.status_code == 413, answer.status_code
    gc.collect()
    entries = backend.journal.snapshot()
    return {
        "rss_growth_mib": round(rss_mib() - before, 1),
        "entries": len(entries),
        "kept_bytes_each": sorted({len(e.raw_body) for e in entries}),
        "body_size_each": sorted({e.body_size for e in entries}),
    }


def main() -> None:
    logging.getLogger("picky_mock").setLevel(logging.ERROR)  # the rejected pushes of the fill
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    settings = Settings(retention=entries, journal_bytes=4 << 30, log_level="warning")
    backend = Backend(settings)
    base_rss = rss_mib()
    started = time.perf_counter()
    fill(backend, entries)
    result: dict[str, object] = {
        "entries": len(backend.journal),
        "fill_s": round(time.perf_counter() - started, 1),
        "journal_rss_mib": round(rss_mib() - base_rss, 1),
        "journal_estimated_mib": round(backend.journal.bytes / (1 << 20), 1),
    }
    started = time.perf_counter()
    gc.collect()
    result["full_gc_ms"] = round((time.perf_counter() - started) * 1e3, 1)  # what a full collection costs now
    result["page_ms_in_process"] = in_process(backend)
    collections: list[tuple[float, int]] = []
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            collections.append((time.perf_counter() - began[0], info["generation"]))

    gc.callbacks.append(timed)
    with ServerThread(settings, backend=backend) as server:
        result["http"] = over_http(server, backend)
        longest = max(collections, default=(0.0, 0))
        result["http"]["longest_gc_ms_and_generation"] = [round(longest[0] * 1e3, 1), longest[1]]  # type: ignore[index]
        result["oversize_10x100MB"] = oversize(server)
    gc.callbacks.remove(timed)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
