"""Lifecycle benchmark: the virtual clock's advance and the webhook dispatcher's throughput and isolation.

Three figures (and, after the first, the CPU cost per accepted message that the lifecycle adds to
the push path, by setting):

1. Advancing a virtual clock over 10,000 pending timers (distinct times, each a trivial callback):
   milliseconds, best and median of ``--rounds``. Target: < 50 ms.
2. Webhook deliveries a second from :class:`picky_mock.webhooks.Dispatcher` to a local receiver that
   answers 200 (a separate process: uvicorn with uvloop and httptools answering fixed bytes), with
   the aiohttp sender (the one picky-mock uses) and, for the record of the choice, an httpx sender
   that implements the same protocol. Target: >= 2,000 a second.
3. The same throughput while a receiver that never answers holds ``per_destination`` connections
   and has 1,000 deliveries queued behind them: the ratio to (2) in the same round. A hung
   receiver must delay only its own deliveries.

Rounds interleave the variants, who goes first rotating, so that the shared machine's noise hits all
alike; the load average is printed with the figures, and the deliveries per CPU second of the
dispatcher's process, which the load moves much less than the rate.

Run: ``python bench/lifecycle.py [--deliveries N] [--rounds N] [--per-destination N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from picky_mock.clock import VirtualClock  # noqa: E402
from picky_mock.webhook_payloads import origin  # noqa: E402
from picky_mock.webhook_senders import Sender  # noqa: E402
from picky_mock.webhooks import Dispatcher  # noqa: E402

RECEIVER = r"""
import sys, uvicorn
ANSWER = b"ok"
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": ANSWER})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="uvloop",
            http="httptools", access_log=False, lifespan="off", server_header=False, date_header=False)
"""

PAYLOAD = (
    b'{"project_id":"4242","event_id":1,"data":[{"push_id":"7478630","number":"5511987654321",'
    b'"msg_id":"9844217","status":"1","error_code":"","error_message":"","message":"hello",'
    b'"message_type":"text","media":"","channel_id":"1"}]}'
)


class HttpxSender:
    """The same protocol over httpx.AsyncClient, to compare with the aiohttp sender."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._client: Any = None

    async def send(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=self.per_host * 4))
        response = await self._client.post(
            url, content=body, headers={"content-type": "application/json"}, timeout=timeout
        )
        return response.status_code, response.content

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}/events?token=abc"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the receiver did not start")


def bench_timers(rounds: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each advance."""
    times, cpu = [], []
    for _ in range(rounds):
        clock = VirtualClock(start=0.0)
        count = [0]

        def bump(count: list[int] = count) -> None:
            count[0] += 1

        for i in range(10_000):
            clock.call_at(float(i + 1), bump)
        started, started_cpu = time.perf_counter(), time.process_time()
        clock.advance(20_000)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert count[0] == 10_000
    return times, cpu


def bench_accept(dispatcher_url: str | None) -> dict[str, float]:
    """CPU microseconds per accepted message added to the push path, by lifecycle setting."""
    from picky_mock.lifecycle import Ledger, Lifecycle, LifecyclePolicy
    from picky_mock.webhooks import EventReporter

    figures = {}
    for name, policy, report in (
        ("ledger only (policy off)", None, False),
        ("delivered + read at once", LifecyclePolicy.at_once(), False),
        ("at once + event webhooks queued", LifecyclePolicy.at_once(), True),
    ):
        clock = VirtualClock(start=0.0)
        ledger = Ledger(clock)
        dispatcher = None
        if report and dispatcher_url is not None:
            # Not started: submit only queues, which is all the push path pays.
            dispatcher = Dispatcher(clock, queue_limit=100_000, max_pending=100_000)
            ledger.subscribe(EventReporter(dispatcher, url=lambda m: dispatcher_url, project_id=lambda m: "1"))
        lifecycle = Lifecycle(ledger, clock, policy)
        started = time.process_time()
        for i in range(20_000):
            lifecycle.accept(
                str(9844217 + i), push_id=str(7478630 + i), number=str(5511987000000 + i), channel=8,
                token="t", credit="0.005", text="hello world",
            )
        figures[name] = (time.process_time() - started) / 20_000 * 1e6
        if dispatcher is not None:
            dispatcher.close()
    return figures


def bench_dispatch(
    url: str, deliveries: int, per_destination: int, *, sender: Sender | None = None, hung: str | None = None
) -> tuple[float, float]:
    """Deliveries a second to ``url`` (with ``hung`` holding its own queue meanwhile), and deliveries
    per CPU second of this process (the dispatcher's cost, whatever the machine's load)."""
    clock = VirtualClock(start=0.0)
    dispatcher = Dispatcher(
        clock, timeout=30.0, per_destination=per_destination, sender=sender, retention=deliveries + 2000
    ).start()
    try:
        if hung is not None:
            for i in range(1000):
                dispatcher.submit("event", hung, PAYLOAD, key=f"h{i}")
            time.sleep(0.2)  # the hung destination's workers are all waiting on it
        # Warm the connections up.
        for i in range(200):
            dispatcher.submit("event", url, PAYLOAD, key=f"w{i}")
        wait_for(dispatcher, url, 200)
        before = len(dispatcher.attempts(url=url))
        started, started_cpu = time.perf_counter(), time.process_time()
        for i in range(deliveries):
            dispatcher.submit("event", url, PAYLOAD, key=str(i))
        wait_for(dispatcher, url, before + deliveries)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        delivered = [a for a in dispatcher.attempts(url=url) if a.delivered]
        assert len(delivered) == before + deliveries, len(delivered)
        return deliveries / elapsed, deliveries / cpu
    finally:
        dispatcher.close(timeout=2.0)


def wait_for(dispatcher: Dispatcher, url: str, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dispatcher.stats()["destinations"].get(origin(url), {}).get("pending", 1) == 0:
            if len(dispatcher.attempts(url=url)) >= count:
                return
        time.sleep(0.002)
    raise SystemExit(f"deliveries to {url} did not finish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-destination", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2,000 deliveries, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.deliveries, args.rounds = 2000, 1
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    timers, cpu = bench_timers(max(5, args.rounds))
    print(f"1. advance over 10,000 timers: best {min(timers):.1f} ms, median {statistics.median(timers):.1f} ms "
          f"(CPU time: median {statistics.median(cpu):.1f} ms; target < 50 ms)")

    for name, micros in bench_accept("http://127.0.0.1:9/events").items():
        print(f"   accept, {name}: {micros:.1f} us CPU per message")

    process, url = start_receiver()
    hung_sock = socket.socket()
    hung_sock.bind(("127.0.0.1", 0))
    hung_sock.listen(4096)
    hung = f"http://127.0.0.1:{hung_sock.getsockname()[1]}/hook"
    results: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "httpx": [], "aiohttp + hung receiver": []}
    try:
        variants = {
            "aiohttp": lambda: bench_dispatch(url, args.deliveries, args.per_destination),
            "aiohttp + hung receiver": lambda: bench_dispatch(url, args.deliveries, args.per_destination, hung=hung),
            "httpx": lambda: bench_dispatch(
                url, max(1000, args.deliveries // 5), args.per_destination, sender=HttpxSender(args.per_destination)
            ),
        }
        names = list(variants)
        for round_ in range(args.rounds):
            # Who goes first rotates from round to round, so that warm-up and drifting load hit all alike.
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                results[name].append(variants[name]())
    finally:
        process.terminate()
        process.wait(5)
        hung_sock.close()
    print(f"2. deliveries a second to a local receiver ({args.deliveries} per run, {args.rounds} rounds, "
          f"per_destination={args.per_destination}; target >= 2,000):")
    for name, pairs in results.items():
        values, per_cpu = [p[0] for p in pairs], [p[1] for p in pairs]
        print(f"   {name:26s} median {statistics.median(values):7.0f}/s, {statistics.median(per_cpu):7.0f} per CPU "
              f"second of the dispatcher's process (runs: {', '.join(f'{v:.0f}' for v in values)})")
    ratios = [h[0] / a[0] for h, a in zip(results["aiohttp + hung receiver"], results["aiohttp"], strict=True)]
    print(f"3. with a hung receiver holding its own queue: {statistics.median(ratios):.2f}x of without "
          f"(paired by round: {', '.join(f'{r:.2f}' for r in ratios)})")
    speedup = statistics.median(p[0] for p in results["aiohttp"]) / statistics.median(p[0] for p in results["httpx"])
    print(f"   aiohttp / httpx: {speedup:.1f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
