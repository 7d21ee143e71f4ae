"""picky-mock benchmark: every figure beside a baseline measured in the same run.

Run it with ``bash bench/run`` (installs what is missing first); see bench/README.md for what is
measured and how to read the ratios. Writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LUA = HERE / "push.lua"
PUSH_PATH = "/api/v2/push"
SINGLE = b'{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'
CONNECTIONS = (1, 16, 64)
SIZES = (1_000, 10_000, 100_000)
SERVERS = ("bare", "picky", "picky_warn")
LABEL = {"bare": "bare", "picky": "picky (info)", "picky_warn": "picky (warning)"}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- servers ---------------------------------------------------------------------------------


class Proc:
    """A server subprocess that prints its URL on its first stdout line."""

    def __init__(self, name: str, argv: list[str], stderr_path: str, pattern: str) -> None:
        self.name = name
        self.argv = argv
        self.stderr_path = stderr_path
        self._err = open(stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL)
        self.url = self._wait_url(pattern)

    def _wait_url(self, pattern: str, timeout: float = 20.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline().decode()
                if not line:
                    break
                for word in line.split():
                    if word.startswith("http://") and pattern in line:
                        parts = urlsplit(word)
                        return f"http://{parts.hostname}:{parts.port}"
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise SystemExit(f"bench: {self.name} did not start ({' '.join(self.argv)}); see {self.stderr_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()


class Client:
    """One keep-alive HTTP/1.1 connection (http.client)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, path: str, body: bytes) -> tuple[float, int, bytes]:
        t0 = time.perf_counter()
        self.conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        return (time.perf_counter() - t0) * 1e3, resp.status, data

    def put(self, path: str, body: bytes) -> None:
        self.conn.request("PUT", path, body=body)
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: PUT {path} answered {resp.status}")

    def get_json(self, path: str) -> object:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())

    def close(self) -> None:
        self.conn.close()


def picky_cmd() -> list[str]:
    exe = shutil.which("picky-mock")
    return [exe] if exe else [sys.executable, "-m", "picky_mock"]


# -- wrk ---------------------------------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """CPU time used so far by every thread of process ``pid``, in ns (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total


def run_wrk(url: str, conns: int, duration: float, pin: list[str], pid: int | None = None) -> dict[str, object]:
    threads = 1 if conns == 1 else 2
    argv = [*pin, "wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
            "-s", str(LUA),
            url + PUSH_PATH]
    env = dict(os.environ, BENCH_BODY=SINGLE.decode())
    cpu0 = cpu_ns(pid) if pid else 0
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60)
    cpu1 = cpu_ns(pid) if pid else 0
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line[len("WRK_RESULT "):])
            if pid and result["requests"]:
                result["server_cpu_us_per_req"] = (cpu1 - cpu0) / 1e3 / result["requests"]
                result["server_cpu_busy"] = (cpu1 - cpu0) / 1e3 / result["duration_us"]
            errors = result["errors"]
            if any(errors.values()):
                print(f"  warning: wrk reported errors against {url} at {conns} conns: {errors}", flush=True)
            return result
    raise SystemExit(f"bench: wrk gave no result:\n{done.stdout}\n{done.stderr}")


def start_servers(pin_server: list[str]) -> dict[str, Proc]:
    """Fresh processes of the three servers; checks that the bare app answers picky-mock's bytes."""
    procs: dict[str, Proc] = {}
    try:
        procs["picky"] = Proc("picky-mock (info)", [*pin_server, *picky_cmd(), "serve", "--port", "0"],
                              str(RESULTS / "picky-info.log"), "serving")
        procs["picky_warn"] = Proc("picky-mock (warning)", [*pin_server, *picky_cmd(), "serve", "--port", "0",
                                                            "--log-level", "warning"],
                                   str(RESULTS / "picky-warning.log"), "serving")
        probe = Client(procs["picky"].url)
        _, status, answer = probe.post(PUSH_PATH, SINGLE)
        probe.close()
        if status != 200 or not answer.startswith(b'{"status":100'):
            raise SystemExit(f"bench: picky-mock did not accept the push: {status} {answer!r}")
        (RESULTS / "answer-1.json").write_bytes(answer)
        procs["bare"] = Proc("bare app", [*pin_server, sys.executable, str(HERE / "bare_app.py"),
                                          str(RESULTS / "answer-1.json")], str(RESULTS / "bare.log"), "serving")
        probe = Client(procs["bare"].url)
        _, status, bare_answer = probe.post(PUSH_PATH, SINGLE)
        probe.close()
        assert bare_answer == answer, (bare_answer, answer)
    except BaseException:
        stop_servers(procs)
        raise
    return procs


def stop_servers(procs: dict[str, Proc]) -> None:
    for proc in reversed(list(procs.values())):
        proc.stop()


def throughput(pin_server: list[str], rounds: int, cycles: int, duration: float,
               pin: list[str]) -> tuple[dict[str, object], dict[str, Proc]]:
    """wrk at each connection count on each server: ``rounds`` rounds of ``cycles`` cycles, a
    cycle being one run on each server, back to back. Returns the figures and the last round's
    servers, still running (section 2 goes on with them).

    Every round starts fresh processes: the speed of a Python server process depends on the luck of
    its start (memory layout, hash seed), up to 10% here between two processes of the same code.
    With one process per server for the whole run, one draw would bias every round alike; with fresh
    ones, the median over rounds averages it out.

    The ratios are paired: each picky run is divided by the bare run of the same cycle, a few
    seconds away, and the verdict is the median of those ratios. This machine's speed drifts by
    10 to 20% over a minute (other tenants); a ratio of two medians taken minutes apart carries
    that drift, a ratio of two neighbouring runs mostly cancels it. Who goes first rotates from
    cycle to cycle, so neither server always follows the other."""
    samples: dict[str, dict[int, list[dict[str, object]]]] = {s: {c: [] for c in CONNECTIONS} for s in SERVERS}
    procs: dict[str, Proc] = {}
    try:
        for r in range(rounds):
            stop_servers(procs)
            procs = {}
            procs = start_servers(pin_server)
            for server in SERVERS:  # warm-up: not recorded
                run_wrk(procs[server].url, 16, max(1, round(duration / 2)), pin)
            for conns in CONNECTIONS:
                for c in range(cycles):
                    turn = (r * cycles + c) % len(SERVERS)
                    for server in SERVERS[turn:] + SERVERS[:turn]:
                        proc = procs[server]
                        samples[server][conns].append(run_wrk(proc.url, conns, duration, pin, proc.proc.pid))
            print(f"  round {r + 1}/{rounds} done", flush=True)
    except BaseException:
        stop_servers(procs)
        raise
    table = {}
    for conns in CONNECTIONS:
        row: dict[str, object] = {}
        for server in SERVERS:
            runs = samples[server][conns]
            row[server] = {
                "rps": median([x["rps"] for x in runs]),
                "p50_ms": median([x["p50_us"] for x in runs]) / 1e3,
                "p99_ms": median([x["p99_us"] for x in runs]) / 1e3,
                "rps_runs": [x["rps"] for x in runs],
                "cpu_us_per_req": median([x["server_cpu_us_per_req"] for x in runs]),
                "cpu_busy": median([x["server_cpu_busy"] for x in runs]),
            }

        def paired(a: str, b: str, key: str = "rps", conns: int = conns) -> list[float]:
            return [x[key] / y[key] for x, y in zip(samples[a][conns], samples[b][conns], strict=True)]

        for server in ("picky", "picky_warn"):
            pairs = paired(server, "bare")
            row[f"{server}_over_bare"] = median(pairs)
            row[f"{server}_over_bare_pairs"] = pairs
            row[f"{server}_over_bare_of_medians"] = row[server]["rps"] / row["bare"]["rps"]
            # CPU per request the other way round (bare / picky): the rps ratio when both saturate a core
            row[f"{server}_capacity"] = median(paired("bare", server, "server_cpu_us_per_req"))
        pairs = paired("picky", "picky_warn")
        row["info_over_warn"] = median(pairs)
        row["info_over_warn_pairs"] = pairs
        table[str(conns)] = row
    return {"rounds": rounds, "cycles": cycles, "duration_s": duration, "table": table, "raw": samples}, procs


# -- large pushes ------------------------------------------------------------------------------


def big_body(n: int) -> bytes:
    data = ",".join(f'{{"number":"55119{i:08d}"}}' for i in range(n))
    return ('{"token":"t","application":"1","globalmessage":"hello","data":[' + data + "]}").encode()


def large(urls: dict[str, str], pids: dict[str, int], reps: dict[int, int]) -> dict[str, object]:
    picky, bare = Client(urls["picky"]), Client(urls["bare"])
    out = {}
    try:
        for n in SIZES:
            body = big_body(n)
            _, status, answer = picky.post(PUSH_PATH, body)  # warm-up, and the answer for the baseline
            parsed = json.loads(answer)
            if status != 200 or parsed.get("status") != 100 or len(parsed["data"]) != n:
                raise SystemExit(f"bench: picky-mock did not accept the {n}-recipient push: {answer[:300]!r}")
            bare.put("/_bench/answer", answer)
            bare.post(PUSH_PATH, body)
            times: dict[str, list[float]] = {"bare": [], "picky": []}
            cpu: dict[str, list[float]] = {"bare": [], "picky": []}
            for i in range(reps[n]):
                pair = (("bare", bare), ("picky", picky)) if i % 2 == 0 else (("picky", picky), ("bare", bare))
                for name, client in pair:
                    cpu0 = cpu_ns(pids[name])
                    ms, status, data = client.post(PUSH_PATH, body)
                    cpu[name].append((cpu_ns(pids[name]) - cpu0) / 1e6)
                    if status != 200 or not data.startswith(b'{"status":100'):
                        raise SystemExit(f"bench: {name} answered {status} {data[:200]!r}")
                    times[name].append(ms)
            b, p = median(times["bare"]), median(times["picky"])
            bc, pc = median(cpu["bare"]), median(cpu["picky"])
            out[str(n)] = {
                "recipients": n,
                "body_bytes": len(body),
                "answer_bytes": len(answer),
                "runs": reps[n],
                "bare_ms": b,
                "picky_ms": p,
                "picky_over_bare": p / b,
                "added_ms": p - b,
                "picky_us_per_recipient": p * 1e3 / n,
                "added_us_per_recipient": (p - b) * 1e3 / n,
                "bare_cpu_ms": bc,
                "picky_cpu_ms": pc,
                "added_cpu_us_per_recipient": (pc - bc) * 1e3 / n,
                "bare_runs_ms": times["bare"],
                "picky_runs_ms": times["picky"],
                "bare_cpu_runs_ms": cpu["bare"],
                "picky_cpu_runs_ms": cpu["picky"],
            }
            print(f"  {n} recipients done", flush=True)
    finally:
        picky.close()
        bare.close()
    return out


# -- fixture ------------------------------------------------------------------------------------


def fixture(cold_runs: int, starts: int, resets: int, affinity: set[int]) -> dict[str, object]:
    script = str(HERE / "fixture.py")

    def run(*args: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: os.sched_setaffinity(0, affinity))
        if done.returncode != 0:
            raise SystemExit(f"bench: fixture.py {' '.join(args)} failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    cold: dict[str, list[dict[str, object]]] = {"picky": [], "bare": []}
    for _ in range(cold_runs):
        for kind in ("bare", "picky"):
            cold[kind].append(run(f"cold-{kind}"))
    warm = run("warm", str(starts), str(resets))
    return {"cold": cold, "warm": warm}


# -- report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(res: dict[str, object]) -> str:
    lines: list[str] = []
    add = lines.append
    env = res["env"]
    add("=" * 100)
    add("picky-mock bench")
    add(f"  picky-mock {env['picky_mock']} at {env['git']}")
    add(f"  python {env['python']}, uvicorn {env['uvicorn']}, starlette {env['starlette']}, {env['wrk']}, "
        f"{env['cpus']} CPUs; {env['pinning']}")
    add("  picky (info):    `picky-mock serve --port 0` (defaults: strict, log level info, one INFO line per push;")
    add("                   its stderr, where that line goes, -> bench/results/picky-info.log)")
    add("  picky (warning): `picky-mock serve --port 0 --log-level warning`")
    add("                   (stderr -> bench/results/picky-warning.log)")
    add("  bare:            bench/bare_app.py: Starlette on uvicorn (uvloop, httptools, 1 worker, access log off),")
    add("                   reads the body, answers picky-mock's single-recipient answer bytes + headers")
    add("")

    t = res["throughput"]
    add(f"1. Throughput: single-recipient push, wrk POST, {t['duration_s']:g} s per run; {t['rounds']} rounds of fresh "
        f"server processes, {t['cycles']} cycles per round and connection count (one run of each server, back to")
    add("   back, who goes first rotating). Ratios are paired: each run over the bare run of its cycle; the")
    add("   median of those pairs is the figure, [min..max] their spread. rps and latencies: medians of the runs")
    add(f"   {'conns':>5} {'bare rps':>9} {'picky rps':>9} {'picky/bare':>10} {'[pairs]':>13} "
        f"{'warn rps':>9} {'warn/bare':>9} {'info/warn':>9}  {'p50/p99 ms: bare':>17} {'picky':>13} {'warn':>13}")
    for conns in CONNECTIONS:
        row = t["table"][str(conns)]
        pairs = row["picky_over_bare_pairs"]
        spread = f"[{min(pairs):.2f}..{max(pairs):.2f}]"

        def lat(s: str, row: dict = row) -> str:  # type: ignore[type-arg]
            return f"{row[s]['p50_ms']:.2f}/{row[s]['p99_ms']:.2f}"

        add(f"   {conns:>5} {row['bare']['rps']:>9.0f} {row['picky']['rps']:>9.0f} {row['picky_over_bare']:>9.2f}x "
            f"{spread:>13} {row['picky_warn']['rps']:>9.0f} {row['picky_warn_over_bare']:>8.2f}x "
            f"{row['info_over_warn']:>8.2f}x  {lat('bare'):>17} {lat('picky'):>13} {lat('picky_warn'):>13}")
    add("   server CPU per request: CPU time of all the server's threads (/proc/PID/task/*/schedstat) / requests,")
    add("   medians; capacity = bare us / picky us (paired, median), the rps ratio when both saturate a core.")
    add("   busy = server CPU / wall time (1.00 = its core saturated: only then is its rps its own limit)")
    add(f"   {'conns':>5} {'bare us':>8} {'picky us':>8} {'warn us':>8} {'capacity picky/bare':>19} "
        f"{'warn/bare':>9}  {'busy: bare':>10} {'picky':>5} {'warn':>5}")
    for conns in CONNECTIONS:
        row = t["table"][str(conns)]
        bu, pu, wu = (row[s]["cpu_us_per_req"] for s in SERVERS)
        add(f"   {conns:>5} {bu:>8.1f} {pu:>8.1f} {wu:>8.1f} {row['picky_capacity']:>18.2f}x "
            f"{row['picky_warn_capacity']:>8.2f}x  "
            f"{row['bare']['cpu_busy']:>10.2f} {row['picky']['cpu_busy']:>5.2f} {row['picky_warn']['cpu_busy']:>5.2f}")
    for conns in (16, 64):
        row = t["table"][str(conns)]
        r, cap, whole = row["picky_over_bare"], row["picky_capacity"], row["picky_over_bare_of_medians"]
        add(f"   target picky/bare >= 0.85x at {conns:>2} conns: rps {verdict(r >= 0.85)} ({r:.2f}x; ratio of the "
            f"medians {whole:.2f}x), capacity {verdict(cap >= 0.8)} ({cap:.2f}x)")
    iw = [t["table"][str(c)]["info_over_warn"] for c in CONNECTIONS]
    cost = [t["table"][str(c)]["picky"]["cpu_us_per_req"] - t["table"][str(c)]["picky_warn"]["cpu_us_per_req"]
            for c in CONNECTIONS]
    share = [c / t["table"][str(n)]["picky"]["cpu_us_per_req"] for c, n in zip(cost, CONNECTIONS, strict=False)]
    add(f"   INFO line per push (info vs warning): rps {', '.join(f'{x:.2f}x' for x in iw)}; CPU "
        f"{', '.join(f'{x:+.1f} us ({y:.0%})' for x, y in zip(cost, share, strict=False))} per request, at "
        f"{', '.join(str(c) for c in CONNECTIONS)} conns")
    add("")

    big, full = res["large"]["fresh"], res["large"]["full"]
    add("2. Large push: one push over HTTP/1.1 keep-alive (http.client), median of N runs, interleaved with bare;")
    add("   bare = same request body to the bare app, answered with picky-mock's answer bytes for that push.")
    add("   picky (info) server, journal reset first (POST /_picky/reset, as each test starts); last columns: the same")
    add("   pushes before that reset, journal full (10,000 entries left by section 1), measured in their own pass")
    add(f"   {'recipients':>10} {'body KB':>7} {'answ KB':>7} {'runs':>4} {'bare ms':>7} {'picky ms':>8} "
        f"{'picky/bare':>10} {'added ms':>8} {'us/rcpt':>7} {'added us/rcpt':>13} | "
        f"{'full: picky ms':>14} {'/bare':>6}")
    for n in SIZES:
        r, f = big[str(n)], full[str(n)]
        add(f"   {n:>10} {r['body_bytes'] / 1024:>7.0f} {r['answer_bytes'] / 1024:>7.0f} {r['runs']:>4} "
            f"{r['bare_ms']:>7.1f} {r['picky_ms']:>8.1f} {r['picky_over_bare']:>9.1f}x {r['added_ms']:>8.1f} "
            f"{r['picky_us_per_recipient']:>7.2f} {r['added_us_per_recipient']:>13.2f} | {f['picky_ms']:>14.1f} "
            f"{f['picky_over_bare']:>5.1f}x")
    add("   the same pushes in server CPU time (all the server's threads, /proc schedstat): what the wall times")
    add("   would be on an idle machine, less the client's and the kernel's share")
    add(f"   {'recipients':>10} {'bare cpu ms':>11} {'picky cpu ms':>12} {'added cpu us/rcpt':>17} | "
        f"{'full: picky cpu ms':>18}")
    for n in SIZES:
        r, f = big[str(n)], full[str(n)]
        add(f"   {n:>10} {r['bare_cpu_ms']:>11.1f} {r['picky_cpu_ms']:>12.1f} "
            f"{r['added_cpu_us_per_recipient']:>17.2f} | {f['picky_cpu_ms']:>18.1f}")
    ten, ten_full = big[str(10_000)]["picky_ms"], full[str(10_000)]["picky_ms"]
    add(f"   target 10,000 recipients <= 50 ms: {verdict(ten <= 50)} ({ten:.1f} ms after reset; "
        f"{verdict(ten_full <= 50)} {ten_full:.1f} ms with a full journal; server CPU "
        f"{big[str(10_000)]['picky_cpu_ms']:.1f} ms)")
    per = [big[str(n)]["added_us_per_recipient"] for n in SIZES]
    per_cpu = [big[str(n)]["added_cpu_us_per_recipient"] for n in SIZES]
    add(f"   per-recipient cost added by picky-mock, 100k vs 1k: {per[-1] / per[0]:.2f}x wall, "
        f"{per_cpu[-1] / per_cpu[0]:.2f}x CPU (1.00x: flat; above 1: grows with the push)")
    add("")

    f = res["fixture"]
    warm, cold = f["warm"], f["cold"]
    add("3. pytest fixture, in-process (medians); baselines: a bare uvicorn thread started the same way /")
    add("   deque.clear() of the same 100 journal entries")
    add(f"   {'':<50} {'picky-mock':>12} {'baseline':>12} {'ratio':>7}")

    def fx(label: str, p: float, b: float | None, unit: str) -> None:
        base = f"{b:>9.3f} {unit}" if b is not None else f"{'-':>12}"
        ratio = f"{p / b:>6.2f}x" if b else f"{'-':>7}"
        add(f"   {label:<50} {p:>9.3f} {unit} {base} {ratio}")

    cold_p = median([x["start_ms"] for x in cold["picky"]])
    cold_b = median([x["start_ms"] for x in cold["bare"]])
    fx(f"session start, cold: imports+start() ({len(cold['picky'])} procs)", cold_p, cold_b, "ms")
    fx(f"session start, warm: start() ({len(warm['picky_start_ms'])} runs)", median(warm["picky_start_ms"]),
       median(warm["bare_start_ms"]), "ms")
    fx("session stop: stop()", median(warm["picky_stop_ms"]), median(warm["bare_stop_ms"]), "ms")
    n = len(warm["backend_reset_us"])
    fx(f"Backend.reset(), {warm['entries']} entries ({n} runs)", median(warm["backend_reset_us"]),
       median(warm["baseline_deque_clear_us"]), "us")
    fx("Backend.reset(), empty journal", median(warm["backend_reset_empty_us"]), None, "us")
    fx(f"PickyServer.reset(), {warm['entries']} entries", median(warm["pickyserver_reset_us"]),
       median(warm["baseline_deque_clear_us"]), "us")
    fx("picky_server per test: PickyServer+reset+check", median(warm["fixture_per_test_us"]),
       median(warm["baseline_deque_clear_us"]), "us")
    add(f"   target session start < 0.5 s: {verdict(cold_p < 500)} ({cold_p:.0f} ms cold)")
    worst = max(median(warm["backend_reset_us"]), median(warm["pickyserver_reset_us"]))
    add(f"   target reset < 1 ms: {verdict(worst < 1000)} ({worst:.1f} us)")
    add("")
    add(f"total bench time {res['elapsed_s']:.0f} s; results in bench/results/latest.json")
    add("=" * 100)
    return "\n".join(lines)


def git_state() -> str:
    """Commit and whether picky_mock/ differs from it (read-only git: no index refresh)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, env=env,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "picky_mock"], cwd=HERE.parent, env=env,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"
    if not head:
        return "unknown commit"
    return f"commit {head}" + (" + uncommitted changes in picky_mock/" if dirty else "")


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=2, help="whole seconds per wrk run (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="wrk rounds, each on fresh server processes (default 5)")
    parser.add_argument("--cycles", type=int, default=2,
                        help="cycles per round and connection count, one run of each server each (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 s runs, 1 round, few repeats")
    parser.add_argument("--pin", action="store_true",
                        help="pin the servers to one CPU and wrk/clients to another (default: no pinning, as a user "
                             "runs it; pinning makes 1-connection latency pay cross-CPU wake-ups and loses to other "
                             "load on a shared machine)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.cycles = 1, 1, 1
    reps = {1_000: 5, 10_000: 3, 100_000: 1} if args.quick else {1_000: 15, 10_000: 9, 100_000: 3}
    began = time.monotonic()
    RESULTS.mkdir(exist_ok=True)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk not found (bash bench/run installs it)")

    affinity = os.sched_getaffinity(0)
    cpus = sorted(affinity)
    pin_server: list[str] = []
    pinning = "not pinned"
    if args.pin and len(cpus) >= 2 and shutil.which("taskset"):
        pin_server = ["taskset", "-c", str(cpus[0])]
        os.sched_setaffinity(0, {cpus[1]})  # this process, its wrk and http.client runs: the other CPU
        pinning = f"servers pinned to CPU {cpus[0]}, wrk and clients to CPU {cpus[1]}"

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    env = {
        "python": platform.python_version(),
        "uvicorn": importlib.metadata.version("uvicorn"),
        "starlette": importlib.metadata.version("starlette"),
        "picky_mock": importlib.metadata.version("picky-mock"),
        "wrk": wrk_version,
        "cpus": len(cpus),
        "pinning": pinning,
        "machine": platform.machine(),
        "git": git_state(),
    }
    print(f"bench: {pinning}; wrk runs of {args.duration:g} s, {args.rounds} round(s) of {args.cycles} cycle(s)",
          flush=True)

    print("1/3 throughput (wrk)", flush=True)
    tp, procs = throughput(pin_server, args.rounds, args.cycles, args.duration, [])
    try:
        picky = procs["picky"]
        urls = {name: proc.url for name, proc in procs.items()}
        pids = {name: proc.proc.pid for name, proc in procs.items()}
        state = Client(picky.url)
        journal = state.get_json("/_picky/state")
        rejected = state.get_json("/_picky/journal?accepted=false")
        state.close()
        if rejected["entries"]:
            raise SystemExit(f"bench: picky-mock rejected pushes: {rejected['entries'][0]['error']}")
        tp["picky_journal_after"] = {k: journal[k] for k in ("journal_entries", "journal_dropped")}

        print("2/3 large pushes", flush=True)
        lg = {"full": large(urls, pids, reps)}
        admin = Client(picky.url)
        admin.conn.request("POST", "/_picky/reset")
        admin.conn.getresponse().read()
        admin.close()
        lg["fresh"] = large(urls, pids, reps)
    finally:
        stop_servers(procs)

    print("3/3 fixture start/reset (in-process)", flush=True)
    fx = fixture(cold_runs=3 if args.quick else 5, starts=5 if args.quick else 10,
                 resets=50 if args.quick else 300, affinity=affinity)

    res = {
        "env": env,
        "settings": {"duration_s": args.duration, "rounds": args.rounds, "cycles": args.cycles, "quick": args.quick},
        "throughput": tp,
        "large": lg,
        "fixture": fx,
    }
    res["elapsed_s"] = time.monotonic() - began
    text = report(res)
    res["report"] = text.splitlines()
    (RESULTS / "latest.json").write_text(json.dumps(res, indent=1) + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    main()
