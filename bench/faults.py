"""Fault-injection benchmark: what loaded fault rules and a hung request cost the other requests.

Two figures, each a ratio against a baseline measured in the same run, rounds interleaved:

1. 100 rules that match nothing (exact numbers, number prefixes, tokens, channels, paths, number
   patterns and texts, in the proportions a real suite might have) against no rules:
   single-recipient push requests/s with wrk. Target: >= 0.95x.
2. One request hung by a ``hang`` rule (held open by a client for the whole run) against none,
   on the same server with the same rules: requests/s of the others. Target: >= 0.90x.

Both compare one server process with itself: the rules are loaded and cleared between runs through
the admin API (``POST``/``DELETE /_picky/faults``, what a test does). Two processes of the same code
differ by up to 10% here (memory layout, hash seed: the luck of the start), more than the 5% judged;
a second process would measure that luck, not the rules.

Run: ``python bench/faults.py [--duration S] [--rounds N] [--quick]`` (``bash bench/run`` runs it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import RESULTS, Proc, median, picky_cmd, run_wrk  # noqa: E402

CONNECTIONS = (16, 64)
HANG_NUMBER = "5500000000001"


def rules(count: int) -> list[dict[str, object]]:
    """``count`` fault rules that match none of the bench's pushes, plus one hang rule."""
    kinds: list[tuple[str, Callable[[int], object]]] = [
        ("number", lambda i: f"55990000{i:05d}"),
        ("number", lambda i: f"55880000{i:05d}"),
        ("number_prefix", lambda i: f"4{i:03d}"),
        ("token", lambda i: f"other-token-{i}"),
        ("channel", lambda i: 1000 + i),
        ("path", lambda i: f"/api/v2/nowhere-{i}"),
        ("number_pattern", lambda i: f"^99{i:02d}"),
        ("text", lambda i: f"never sent {i}"),
    ]
    made: list[dict[str, object]] = []
    for i in range(count):
        key, value = kinds[i % len(kinds)]
        made.append({"action": "api_error", "status": 409, key: value(i)})
    made.append({"action": "hang", "seconds": 300, "number": HANG_NUMBER})  # the cap
    return made


def rules_toml(count: int) -> str:
    """The same rules as a config file (``bench/instructions.py`` loads them this way)."""
    lines = ["seed = 1"]
    for rule in rules(count):
        lines.append("[[faults]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in rule.items()]
    return "\n".join(lines) + "\n"


def set_rules(url: str, wanted: list[dict[str, object]]) -> None:
    """Make ``wanted`` the server's only fault rules, through the admin API."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("DELETE", "/_picky/faults")
        conn.getresponse().read()
        if wanted:
            conn.request("POST", "/_picky/faults", json.dumps(wanted), {"Content-Type": "application/json"})
            answer = conn.getresponse()
            body = answer.read()
            if answer.status != 201:
                raise SystemExit(f"bench: the server refused the rules: {answer.status} {body[:300]!r}")
        conn.request("GET", "/_picky/faults")
        loaded = json.loads(conn.getresponse().read())["rules"]
        if len(loaded) != len(wanted):
            raise SystemExit(f"bench: {len(loaded)} rules loaded, {len(wanted)} wanted")
    finally:
        conn.close()


def verdict(ratio: float, target: float) -> str:
    return f"{'PASS' if ratio >= target else 'FAIL'} ({ratio:.2f}x)"


def hold_hung_request(url: str) -> socket.socket:
    """Send one push that the hang rule holds; return its socket (close it to end the hang)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(
        {"token": "t", "application": "1", "globalmessage": "hello", "data": [{"number": HANG_NUMBER}]}
    ).encode()
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(
        f"POST /api/v2/push HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    time.sleep(0.2)
    sock.settimeout(0.05)
    try:
        if sock.recv(1):
            raise SystemExit("bench: the hung request was answered")
    except TimeoutError:
        pass  # no answer: it hangs, as it should
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # More, shorter rounds than bench.py: the figures judged here are 5% effects, and the median of
    # many interleaved runs moves less with the machine's other load than that of a few long ones.
    parser.add_argument("--duration", type=int, default=3, help="whole seconds per wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 s runs, 1 round")
    parser.add_argument("--pin", action="store_true", help="accepted with bench/run's options; no pinning here")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 1, 1
    RESULTS.mkdir(exist_ok=True)
    loaded = rules(100)
    cmd = [*picky_cmd(), "serve", "--port", "0", "--log-level", "warning"]
    server = Proc("picky-mock", cmd, str(RESULTS / "faults.log"), "serving")
    try:
        wanted = {"plain": [], "rules": loaded, "hung": loaded}
        samples: dict[str, dict[int, list[float]]] = {
            k: {c: [] for c in CONNECTIONS} for k in ("plain", "rules", "hung")
        }
        cpu: dict[str, dict[int, list[float]]] = {k: {c: [] for c in CONNECTIONS} for k in samples}
        for name in ("rules", "plain"):  # warm-up, both ways
            set_rules(server.url, wanted[name])
            run_wrk(server.url, 16, 1, [], None)
        for r in range(args.rounds):
            for conns in CONNECTIONS:
                order = ["plain", "rules", "hung"] if r % 2 == 0 else ["hung", "rules", "plain"]
                for name in order:
                    set_rules(server.url, wanted[name])
                    hung = hold_hung_request(server.url) if name == "hung" else None
                    try:
                        result = run_wrk(server.url, conns, args.duration, [], server.proc.pid)
                    finally:
                        if hung is not None:
                            hung.close()
                    samples[name][conns].append(float(result["rps"]))  # type: ignore[arg-type]
                    cpu[name][conns].append(float(result["server_cpu_us_per_req"]))  # type: ignore[arg-type]
            print(f"  faults round {r + 1}/{args.rounds} done", flush=True)
    finally:
        server.stop()

    print()
    print("4. Fault injection: single-recipient push, wrk, medians of interleaved rounds; one server, its")
    print("   100 rules loaded and cleared between runs through the admin API")
    print("   conns  no rules rps  100 rules rps  rules/none   1 hung + rules rps  hung/rules")
    verdicts = []
    table = {}
    for conns in CONNECTIONS:
        plain_rps = median(samples["plain"][conns])
        rules_rps = median(samples["rules"][conns])
        hung_rps = median(samples["hung"][conns])
        table[str(conns)] = {
            "plain": plain_rps,
            "rules": rules_rps,
            "hung": hung_rps,
            "raw": {k: v[conns] for k, v in samples.items()},
            "cpu_us_per_req": {k: median(v[conns]) for k, v in cpu.items()},
        }
        print(
            f"   {conns:5d}  {plain_rps:12.0f}  {rules_rps:13.0f}  {rules_rps / plain_rps:9.2f}x"
            f"   {hung_rps:18.0f}  {hung_rps / rules_rps:9.2f}x"
        )
    print("   server CPU per request (all its threads, /proc schedstat), medians; capacity = the rps ratio")
    print("   when the server saturates its core, steadier than rps on a shared machine")
    print("   conns  no rules us  100 rules us  capacity rules/none  1 hung + rules us  capacity hung/rules")
    for conns in CONNECTIONS:
        us = table[str(conns)]["cpu_us_per_req"]
        assert isinstance(us, dict)
        rules_capacity = us["plain"] / us["rules"]
        hung_capacity = us["rules"] / us["hung"]
        print(
            f"   {conns:5d}  {us['plain']:11.1f}  {us['rules']:12.1f}  {rules_capacity:18.2f}x"
            f"  {us['hung']:17.1f}  {hung_capacity:18.2f}x"
        )
        entry = table[str(conns)]
        rules_rps_ratio = float(entry["rules"]) / float(entry["plain"])  # type: ignore[arg-type]
        hung_rps_ratio = float(entry["hung"]) / float(entry["rules"])  # type: ignore[arg-type]
        verdicts.append((conns, rules_rps_ratio, rules_capacity, hung_rps_ratio, hung_capacity))
    for conns, rules_rps_ratio, rules_capacity, hung_rps_ratio, hung_capacity in verdicts:
        print(
            f"   target 100 rules >= 0.95x at {conns} conns: rps {verdict(rules_rps_ratio, 0.95)}, capacity "
            f"{verdict(rules_capacity, 0.95)}; one hang >= 0.90x: rps {verdict(hung_rps_ratio, 0.90)}, "
            f"capacity {verdict(hung_capacity, 0.90)}"
        )
    (RESULTS / "faults.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
