"""Where picky-mock's push path spends its time (not part of ``bash bench/run``; run it by hand).

    python bench/profile_push.py            # cProfile: backend.push and the ASGI app, 1 and 10k recipients
    python bench/profile_push.py --top 40   # more rows

Three views, each printed as the functions with the most own time (tottime) and, for picky_mock's
own functions, their cumulative time per call:

1. ``Backend.push`` alone, single-recipient push, many times (per-request cost of the backend);
2. the whole ASGI app (Starlette routing, app.py, backend) driven in-process with a fake ASGI
   receive/send, single-recipient push (per-request cost above uvicorn);
3. ``Backend.push`` on one 10,000-recipient push, several times (per-recipient cost).

Plus a wall-clock split without the profiler's overhead: ``Backend.push`` per call against
``orjson.loads`` + ``orjson.dumps`` of the same body (the floor of any JSON mock), in us.

For the whole server under load, py-spy gives the same split with uvicorn included:
``py-spy record -o bench/results/picky.svg --pid <picky-mock pid> --duration 10`` while wrk runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time

SINGLE = b'{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'


def big_body(n: int) -> bytes:
    data = ",".join(f'{{"number":"55119{i:08d}"}}' for i in range(n))
    return ('{"token":"t","application":"1","globalmessage":"hello","data":[' + data + "]}").encode()


def production_logging() -> None:
    """The log setup of ``picky-mock serve`` (INFO, one line per push), writing to /dev/null."""
    from picky_mock.server import configure_logging

    configure_logging("info", open("/dev/null", "w"))


def incoming(body: bytes):  # type: ignore[no-untyped-def]
    from picky_mock.backend import Incoming

    return Incoming("POST", "/api/v2/push", (("host", "127.0.0.1"), ("content-type", "application/json")), body, body)


def show(title: str, prof: cProfile.Profile, calls: int, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt
    print(f"\n== {title}: {calls} call(s), {total / calls * 1e6:.1f} us per call under the profiler")
    rows = []
    for (path, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{path.split('/site-packages/')[-1].split('/work/main/')[-1]}:{line}({func})"))
    rows.sort(reverse=True)
    print(f"   {'own us/call':>11} {'own %':>6} {'cum us/call':>11} {'ncalls/call':>11}  function")
    for tt, ct, nc, name in rows[:top]:
        print(f"   {tt / calls * 1e6:>11.2f} {tt / total * 100:>5.1f}% {ct / calls * 1e6:>11.2f} "
              f"{nc / calls:>11.1f}  {name}")
    mine = [r for r in rows if "picky_mock/" in r[3]]
    mine.sort(key=lambda r: -r[1])
    print("   picky_mock functions by cumulative time:")
    for _, ct, nc, name in mine[:top]:
        print(f"   {'':>11} {ct / total * 100:>5.1f}% {ct / calls * 1e6:>11.2f} {nc / calls:>11.1f}  {name}")


def profile_backend(n_calls: int, body: bytes, title: str, top: int) -> None:
    from picky_mock.backend import Backend

    backend = Backend()
    inc = incoming(body)
    for _ in range(min(n_calls, 200)):
        backend.push(inc)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n_calls):
        outcome = backend.push(inc)
    prof.disable()
    assert outcome.status == 100, outcome.error
    show(title, prof, n_calls, top)


def profile_asgi(n_calls: int, top: int) -> None:
    from picky_mock.app import create_app
    from picky_mock.backend import Backend

    app = create_app(Backend())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v2/push", "raw_path": b"/api/v2/push", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(SINGLE)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
    }
    sent: list[dict] = []

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": SINGLE, "more_body": False}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    async def run(n: int) -> None:
        for _ in range(n):
            await app(dict(scope), receive, send)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(200))
    sent.clear()
    prof = cProfile.Profile()
    prof.enable()
    loop.run_until_complete(run(n_calls))
    prof.disable()
    loop.close()
    assert sent[-1]["body"].startswith(b'{"status":100'), sent[-1]
    show("ASGI app (Starlette + app.py + backend), single-recipient push", prof, n_calls, top)


def wall(n_calls: int, body: bytes) -> tuple[float, float]:
    """Median us per Backend.push and per orjson loads+dumps of the same body, no profiler."""
    import orjson

    from picky_mock.backend import Backend

    backend = Backend()
    inc = incoming(body)
    push_us, floor_us = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n_calls):
            backend.push(inc)
        push_us.append((time.perf_counter() - t0) / n_calls * 1e6)
        t0 = time.perf_counter()
        for _ in range(n_calls):
            orjson.dumps(orjson.loads(body))
        floor_us.append((time.perf_counter() - t0) / n_calls * 1e6)
    return statistics.median(push_us), statistics.median(floor_us)


def asgi_wall(n_calls: int) -> list[tuple[str, float]]:
    """Median us per single-recipient request through the ASGI app in-process (no uvicorn, no
    socket): the bare app, picky-mock at warning, at info to /dev/null, at info to a file."""
    import os

    from picky_mock.app import create_app
    from picky_mock.backend import Backend
    from picky_mock.server import configure_logging

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bare_app

    answer = Backend().push(incoming(SINGLE)).body
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v2/push", "raw_path": b"/api/v2/push", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(SINGLE)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
    }

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": SINGLE, "more_body": False}

    async def send(message):  # type: ignore[no-untyped-def]
        pass

    def drive(app) -> float:  # type: ignore[no-untyped-def]
        async def run(n: int) -> None:
            for _ in range(n):
                await app(dict(scope), receive, send)

        loop = asyncio.new_event_loop()
        loop.run_until_complete(run(n_calls // 5))
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            loop.run_until_complete(run(n_calls))
            runs.append((time.perf_counter() - t0) / n_calls * 1e6)
        loop.close()
        return statistics.median(runs)

    out = [("bare app (bench/bare_app.py)", drive(bare_app.make_app(answer)))]
    configure_logging("warning")
    out.append(("picky-mock, log level warning", drive(create_app(Backend()))))
    production_logging()
    out.append(("picky-mock, info -> /dev/null", drive(create_app(Backend()))))
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(results, exist_ok=True)
    configure_logging("info", open(os.path.join(results, "profile-info.log"), "w"))
    out.append(("picky-mock, info -> file", drive(create_app(Backend()))))
    production_logging()
    return out


def gc_pauses() -> list[tuple[str, float]]:
    """A full collection (gc.collect()) as the journal fills: what a generation-2 pause costs."""
    from picky_mock.backend import Backend

    backend = Backend()
    out = []

    def full(label: str) -> None:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            runs.append((time.perf_counter() - t0) * 1e3)
        out.append((f"{label}: {len(gc.get_objects())} tracked objects", statistics.median(runs)))

    full("fresh backend")
    single = incoming(SINGLE)
    for _ in range(backend.journal.retention):
        backend.push(single)
    full(f"journal full ({len(backend.journal)} single-recipient entries)")
    big = incoming(big_body(100_000))
    for _ in range(3):
        backend.push(big)
    full("+ 3 pushes of 100,000 recipients in the journal")
    backend.reset()
    full("after Backend.reset()")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    production_logging()
    gc.collect()
    print("A. wall clock per single-recipient request through the ASGI app, in-process (median of 5 batches):")
    split = asgi_wall(10_000)
    for label, us in split:
        print(f"   {label:<32} {us:7.1f} us   ({us / split[0][1]:.2f}x bare)")
    p1, f1 = wall(5_000, SINGLE)
    big = big_body(10_000)
    p10k, f10k = wall(5, big)
    print("B. Backend.push alone, log level info -> /dev/null, fresh journal (median of 5 batches):")
    print(f"   1 recipient:       {p1:8.1f} us   orjson loads+dumps {f1:6.1f} us   ({p1 / f1:.0f}x)")
    print(f"   10,000 recipients: {p10k / 1e3:8.2f} ms   orjson loads+dumps {f10k / 1e3:6.2f} ms   "
          f"({p10k / f10k:.0f}x); {p10k / 10_000:.2f} us per recipient")
    print("C. full garbage collection (gc.collect()) as the journal fills:")
    for label, ms in gc_pauses():
        print(f"   {label:<78} {ms:7.1f} ms")
    gc.collect()
    profile_backend(args.calls, SINGLE, "Backend.push, single-recipient push", args.top)
    profile_asgi(args.calls, args.top)
    profile_backend(5, big, "Backend.push, 10,000-recipient push", args.top)


if __name__ == "__main__":
    sys.exit(main())
