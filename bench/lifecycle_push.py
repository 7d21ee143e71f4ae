"""Lifecycle benchmark of the whole server: what the message lifecycle and its webhooks cost the push.

One command, four figures, ratios measured in the same run with the variants interleaved:

1. Push throughput (wrk, 16 connections, single-recipient push on channel 8) of ``picky-mock serve``
   with an at-once lifecycle policy (every message delivered and read as it is accepted: two event
   webhooks per push) POSTing to a local receiver that answers 200, against the same server with the
   lifecycle off. Target: >= 0.85x. Also the at-once policy without a webhook, and the push path's
   own CPU per push (``Backend.push`` in this process), to tell the policy's cost from the dispatch's.
2. Webhook dispatch in that server: the reports the receiver got (one a POST, or batched), a second,
   from the start of the run until the last one arrived (the backlog drained), and the same rate of
   the dispatcher alone to a local receiver (bench/lifecycle.py's figure). Target: >= 2,000 deliveries a second.
3. Push throughput with the event webhook pointing at a receiver that accepts connections and never
   answers, against the 200 receiver. Target: the hung receiver costs <= 5%.
4. Advancing the virtual clock over 10,000 pending timers: trivial timers, and the lifecycle's own
   (10,000 messages accepted under a policy whose deliveries fall due within the advance). Target: < 50 ms.

Each round starts fresh server processes (a process's speed depends on the luck of its start) and
runs the four servers back to back, the first one rotating from round to round; medians of the
per-round ratios are printed. The load average is printed with the figures.

Run: ``python bench/lifecycle_push.py [--rounds 5] [--duration 3] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench import Proc  # noqa: E402 (the same server process as bench.py's)

BODY = '{"token":"t","application":"8","globalmessage":"hello","data":[{"number":"5511987654321"}]}'
LUA = HERE / "push.lua"
PICKY = [sys.executable, "-m", "picky_mock"]

COUNTING_RECEIVER = r"""
import sys, uvicorn
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        count += body.count(b'"msg_id"')  # reports, whether one a POST or a batch
        body = b"ok"
    else:
        body = str(count).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="uvloop",
            http="httptools", access_log=False, lifespan="off", server_header=False, date_header=False)
"""


def core_bench() -> Any:
    """bench/lifecycle.py, for the dispatcher's and the timers' own figures."""
    spec = importlib.util.spec_from_file_location("bench_lifecycle", HERE / "lifecycle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on port {port}")


def serve_with(name: str, config: str, workdir: Path) -> Proc:
    """``picky-mock serve`` with a config file, on a free port (bench.py's :class:`Proc`)."""
    path = workdir / f"{name.replace(' ', '-')}.toml"
    path.write_text(config, encoding="utf-8")
    argv = [*PICKY, "serve", "--config", str(path), "--port", "0", "--log-level", "warning"]
    return Proc(name, argv, str(workdir / f"{path.stem}.log"), "/api/v2/push")


def wrk(url: str, duration: float, connections: int = 16) -> dict[str, Any]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s", "-s", str(LUA)]
    done = subprocess.run(
        [*argv, url + "/api/v2/push"],
        capture_output=True,
        text=True,
        env=dict(os.environ, BENCH_BODY=BODY),
        timeout=duration + 60,
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result: dict[str, Any] = json.loads(line[len("WRK_RESULT ") :])
            if any(result["errors"].values()):
                print(f"  warning: wrk errors against {url}: {result['errors']}", flush=True)
            return result
    raise SystemExit(f"bench: wrk gave no result:\n{done.stdout}\n{done.stderr}")


def received(receiver: str) -> int:
    with urllib.request.urlopen(receiver + "count", timeout=5) as answer:
        return int(answer.read())


def check_push(url: str) -> None:
    request = urllib.request.Request(
        url + "/api/v2/push", data=BODY.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        body = json.loads(answer.read())
    if body.get("status") != 100:
        raise SystemExit(f"bench: the push is not accepted: {body}")


def config(event_url: str | None) -> str:
    if event_url is None:
        return ""  # the lifecycle off, no webhook: picky-mock as before
    policy = "[lifecycle]\ndeliver_after = 0\nread_after = 0\n"
    if event_url == "":
        return policy  # the policy's moves, no webhook
    return f'{policy}\n[webhooks]\nevent_url = "{event_url}"\n'


def push_rounds(rounds: int, duration: float) -> dict[str, list[float]]:
    receiver_port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", COUNTING_RECEIVER, str(receiver_port)])
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(4096)  # accepted by the kernel, never answered
    receiver_url = f"http://127.0.0.1:{receiver_port}/"
    variants = {
        "lifecycle off": None,
        "at once, no webhook": "",
        "at once, 200 receiver": receiver_url + "events",
        "at once, hung receiver": f"http://127.0.0.1:{hung.getsockname()[1]}/events",
    }
    names = list(variants)
    figures: dict[str, list[float]] = {name: [] for name in names}
    figures["dispatch in the server"] = []
    try:
        wait_port(receiver_port)
        with tempfile.TemporaryDirectory(prefix="picky-bench-") as workdir:
            for round_ in range(rounds):
                first = round_ % len(names)
                order = names[first:] + names[:first]
                servers = {name: serve_with(name, config(variants[name]), Path(workdir)) for name in order}
                try:
                    for name in order:  # warm up, and check that the push is accepted
                        check_push(servers[name].url)
                        wrk(servers[name].url, 1)
                    time.sleep(1.0)  # the warm-up's webhooks delivered
                    for name in order:
                        before = received(receiver_url)
                        started = time.perf_counter()
                        result = wrk(servers[name].url, duration)
                        figures[name].append(float(result["rps"]))
                        if variants[name] == receiver_url + "events":
                            expected = 2 * int(result["requests"])  # delivered + read
                            deadline = time.monotonic() + 60
                            while received(receiver_url) - before < expected and time.monotonic() < deadline:
                                time.sleep(0.005)
                            got = received(receiver_url) - before
                            figures["dispatch in the server"].append(got / (time.perf_counter() - started))
                            if got < expected:
                                print(f"  warning: {got} of {expected} events arrived within 60 s", flush=True)
                    line = ", ".join(f"{n} {figures[n][-1]:.0f}/s" for n in names)
                    print(f"  round {round_ + 1}: {line}; dispatch {figures['dispatch in the server'][-1]:.0f}/s")
                finally:
                    for server in servers.values():
                        server.stop()
    finally:
        receiver.terminate()
        receiver.wait(5)
        hung.close()
    return figures


def lifecycle_timers(rounds: int) -> list[float]:
    """Milliseconds to advance over 10,000 messages' pending deliveries (the ledger's moves included)."""
    from picky_mock.clock import VirtualClock
    from picky_mock.lifecycle import Ledger, Lifecycle, LifecyclePolicy

    times = []
    for _ in range(rounds):
        clock = VirtualClock(start=0.0)
        lifecycle = Lifecycle(Ledger(clock), clock, LifecyclePolicy.parse({"deliver_after": [1, 3600], "seed": 1}))
        for i in range(10_000):
            lifecycle.accept(
                str(9000000 + i),
                push_id=str(7000000 + i),
                number=str(5511987000000 + i),
                channel=8,
                token="t",
                credit="0.005",
                text="hello",
            )
        assert clock.pending() == 10_000
        started = time.perf_counter()
        clock.advance(hours=1)
        times.append((time.perf_counter() - started) * 1000)
        assert clock.pending() == 0
    return times


def push_path_cpu(rounds: int) -> dict[str, float]:
    """CPU microseconds of one ``Backend.push`` (single recipient, channel 8) by setting, the
    dispatcher not started (submitting only queues): what the lifecycle adds to the push path
    itself, apart from the sending that the dispatcher's thread does."""
    from picky_mock.backend import Backend, Incoming
    from picky_mock.config import Settings

    body = BODY.encode()
    incoming = Incoming(
        "POST", "/api/v2/push", (("host", "127.0.0.1"), ("content-type", "application/json")), body, body
    )
    at_once = {"deliver_after": 0, "read_after": 0}
    settings = {
        "lifecycle off": Settings(log_level="warning", clock="virtual"),
        "at once": Settings(log_level="warning", clock="virtual", lifecycle=at_once),
        "at once + webhooks queued": Settings(
            log_level="warning", clock="virtual", lifecycle=at_once, event_webhook_url="http://127.0.0.1:9/events"
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in settings}
    names = list(settings)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # the first rotates
            backend = Backend(settings[name])
            for _ in range(500):
                backend.push(incoming)
            gc.collect()  # the previous backend's garbage is not this one's cost
            started = time.process_time()
            for _ in range(8000):  # 16,000 reports queued at most: within the per-destination bound
                backend.push(incoming)
            figures[name].append((time.process_time() - started) / 8000 * 1e6)
            backend.close()
    return {name: statistics.median(values) for name, values in figures.items()}


def ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of each wrk run")
    parser.add_argument("--deliveries", type=int, default=10_000, help="of the dispatcher-alone figure")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s, 3,000 deliveries")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.deliveries = 2, 2.0, 3000
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (apt-get install wrk)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    core = core_bench()

    timers, _ = core.bench_timers(5)
    moves = lifecycle_timers(5)
    print(
        f"advance over 10,000 timers: trivial {statistics.median(timers):.1f} ms, lifecycle deliveries "
        f"{statistics.median(moves):.1f} ms (medians; target < 50 ms)",
        flush=True,
    )

    cpu = push_path_cpu(6)
    print("push path CPU per push (Backend.push, medians): " + ", ".join(f"{k} {v:.1f} us" for k, v in cpu.items()))

    process, url = core.start_receiver()
    try:
        alone = [core.bench_dispatch(url, args.deliveries, 8)[0] for _ in range(max(2, args.rounds // 2))]
    finally:
        process.terminate()
        process.wait(5)
    print(f"dispatcher alone: {statistics.median(alone):.0f} deliveries/s (median; target >= 2,000)", flush=True)

    figures = push_rounds(args.rounds, args.duration)
    off, on, hung = figures["lifecycle off"], figures["at once, 200 receiver"], figures["at once, hung receiver"]
    quiet = figures["at once, no webhook"]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("summary (medians of per-round ratios):")
    print(f"  push, lifecycle off:            {statistics.median(off):.0f} req/s")
    print(f"  push, at once, no webhook:      {statistics.median(quiet):.0f} req/s = {ratio(quiet, off):.3f}x")
    print(f"  push, at once + 200 receiver:   {statistics.median(on):.0f} req/s = {ratio(on, off):.3f}x (>= 0.85)")
    print(
        f"  push, at once + hung receiver:  {statistics.median(hung):.0f} req/s = {ratio(hung, on):.3f}x of the 200 "
        f"receiver (>= 0.95)"
    )
    print(
        f"  dispatch in the server:         {statistics.median(figures['dispatch in the server']):.0f} deliveries/s "
        f"(>= 2,000)"
    )
    print(f"  dispatcher alone:               {statistics.median(alone):.0f} deliveries/s")
    print(
        f"  advance over 10,000 timers:     {statistics.median(timers):.1f} ms trivial, "
        f"{statistics.median(moves):.1f} ms lifecycle (< 50)"
    )


if __name__ == "__main__":
    main()
