"""Hardening figures: a served ``picky-mock serve`` process under hostile load.

    python bench/hardening.py [--quick]

Prints: the 64-way concurrency check (ids contiguous, none lost or doubled, credits exact), the
server's memory under 10 oversize bodies, 1,000 idle connections beside a normal client (closed
after the header timeout), catastrophic patterns (time per push), and adding 8,000 fault rules.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN = {"X-Picky-Admin": "1"}


class Served:
    """``picky-mock serve`` in a subprocess, on a free loopback port."""

    def __init__(self, *options: str) -> None:
        command = [sys.executable, "-m", "picky_mock", "serve", "--port", "0", "--log-level", "warning", *options]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        assert self.process.stdout is not None
        banner = self.process.stdout.readline().decode()
        found = re.search(r"(http://\S+?)/api/v2/push", banner)
        assert found, banner
        self.url = found.group(1)

    def memory(self, field: str = "VmRSS") -> int:
        """The process's memory in bytes (VmRSS now, VmHWM the peak)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def concurrency(workers: int, per_worker: int) -> None:
    served = Served()
    try:
        price = Decimal("0.005")
        httpx.put(served.url + "/_picky/accounts/t", json={"balance": "1000000"}, headers=ADMIN)
        answers: list[dict] = []
        lock = threading.Lock()

        def work(index: int) -> None:
            with httpx.Client(timeout=60) as client:
                for i in range(per_worker):
                    body = {
                        "token": "t",
                        "application": 1,
                        "globalmessage": "hi",
                        "data": [{"number": f"55119{index:04d}{i:04d}"}],
                    }
                    answer = client.post(served.url + "/api/v2/push", json=body).json()
                    with lock:
                        answers.append(answer)

        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        total = workers * per_worker
        push_ids = sorted(int(a["push_id"]) for a in answers)
        msg_ids = sorted(int(a["data"][0]["msg_id"]) for a in answers)
        contiguous = push_ids == list(range(push_ids[0], push_ids[0] + total)) and msg_ids == list(
            range(msg_ids[0], msg_ids[0] + total)
        )
        balance = Decimal(httpx.get(served.url + "/_picky/accounts", headers=ADMIN).json()["accounts"][0]["balance"])
        journal = httpx.get(served.url + "/_picky/state", headers=ADMIN).json()
        exact = balance == Decimal("1000000") - price * total
        print(
            f"concurrency: {total} pushes over {workers} connections in {elapsed:.1f} s; ids contiguous and "
            f"unique: {contiguous}; balance exact: {exact} ({balance}); state: {json.dumps(journal)[:120]}"
        )
    finally:
        served.stop()


def oversize(count: int, megabytes: int) -> None:
    served = Served()
    try:
        before = served.memory()
        chunk = b" " * (1024 * 1024)

        def body():
            yield b"["
            for _ in range(megabytes):
                yield chunk
            yield b"]"

        statuses = []
        with httpx.Client(timeout=120) as client:
            for _ in range(count):
                statuses.append(client.post(served.url + "/api/v2/push", content=body()).status_code)
        after, peak = served.memory(), served.memory("VmHWM")
        print(
            f"oversize: {count} bodies of {megabytes} MB -> {sorted(set(statuses))}; RSS {before / 2**20:.0f} MiB "
            f"before, {after / 2**20:.0f} MiB after (+{(after - before) / 2**20:.0f} MiB), peak {peak / 2**20:.0f} MiB"
        )
    finally:
        served.stop()


def idle(count: int, timeout: float) -> None:
    served = Served("--header-timeout", str(timeout))
    try:
        host, port = served.url.removeprefix("http://").split(":")
        sockets = [socket.create_connection((host, int(port))) for _ in range(count)]
        trickle = socket.create_connection((host, int(port)))
        trickle.sendall(b"POST /api/v2/push HTTP/1.1\r\n")
        worst = 0.0
        with httpx.Client(timeout=30) as client:
            for _ in range(50):
                started = time.perf_counter()
                answer = client.post(
                    served.url + "/api/v2/push",
                    json={"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "5511987654321"}]},
                )
                assert answer.json()["status"] == 100
                worst = max(worst, time.perf_counter() - started)
        deadline = time.monotonic() + timeout + 5
        closed = 0
        for sock in sockets:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                closed += sock.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                pass
            sock.close()
        trickle.settimeout(2)
        try:
            trickled_closed = trickle.recv(1) == b""
        except (TimeoutError, ConnectionResetError):
            trickled_closed = False
        print(
            f"idle: {closed} of {count} idle connections closed after the {timeout:g} s header timeout; "
            f"partial headers closed: {trickled_closed}; a normal client's worst push meanwhile {worst * 1000:.1f} ms"
        )
    finally:
        served.stop()


def patterns() -> None:
    served = Served()
    try:
        with httpx.Client(timeout=60, headers=ADMIN) as client:
            for pattern in ["(a+)+$", "(a|a)*b", "(a|aa)+$", "([a-z]+)*!", "(.*a){8}", "[ab]*a[ab]{40}!", "(.*a){12}"]:
                client.delete(served.url + "/_picky/faults")
                added = client.post(
                    served.url + "/_picky/faults", json={"action": "api_error", "status": 403, "text_pattern": pattern}
                )
                if added.status_code != 201:
                    print(f"pattern {pattern!r}: {added.status_code} {added.json()['error'][:100]}")
                    continue
                timings = []
                for length in (26, 1000, 100_000):
                    text = "a" * length + "!"
                    started = time.perf_counter()
                    client.post(
                        served.url + "/api/v2/push",
                        json={
                            "token": "t",
                            "application": 1,
                            "globalmessage": text,
                            "data": [{"number": "5511987654321"}],
                        },
                    )
                    timings.append(f"{length} chars {1000 * (time.perf_counter() - started):.1f} ms")
                print(f"pattern {pattern!r}: " + ", ".join(timings))
            for pattern in ["(a)\\1", "(?=a)"]:
                answer = client.post(served.url + "/_picky/faults", json={"action": "reset", "text_pattern": pattern})
                print(f"pattern {pattern!r}: {answer.status_code} {answer.json()['error'][:90]}")
            client.delete(served.url + "/_picky/faults")
            for count in (8000, 10000):
                rules = [{"action": "api_error", "status": 403, "number": f"55{i:011d}"} for i in range(count)]
                started = time.perf_counter()
                answer = client.post(served.url + "/_picky/faults", json=rules)
                print(
                    f"adding {count} rules in one call: {answer.status_code} in {time.perf_counter() - started:.2f} s"
                )
                client.delete(served.url + "/_picky/faults")
    finally:
        served.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    os.chdir(ROOT)
    concurrency(64, 20 if args.quick else 200)
    oversize(10, 70 if args.quick else 100)
    idle(200 if args.quick else 1000, 3.0)
    patterns()


if __name__ == "__main__":
    main()
