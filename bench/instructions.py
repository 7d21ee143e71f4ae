"""Instructions per request, counted by valgrind's callgrind: a figure that noise cannot move.

Wall-clock throughput on a shared 2-core machine moves by 20% from one minute to the next; the number
of instructions a server executes per request does not. Each server runs under callgrind, gets N1 and
then (in a second run) N2 sequential single-recipient pushes over one keep-alive connection, and
(instructions(N2) - instructions(N1)) / (N2 - N1) is its cost per request, start-up excluded.

Servers: the bare Starlette app (the baseline), ``picky-mock serve --log-level warning`` and
``picky-mock serve`` (info: one log line per push). The ratio bare / picky is the throughput ratio
the servers would have if every instruction cost the same (it ignores cache misses, which a larger
program pays more of: read it beside the wrk figures, not instead of them).

A fourth server, ``picky-mock serve --log-level warning`` with the 100 fault rules of
``bench/faults.py`` that match none of these pushes, prices idle rules the same way: warning / rules
is the noise-free form of issue #3's ">= 0.95x of the figure without rules". A fifth is the fourth
with one request hung by the hang rule, held open through both runs: rules / hung is the noise-free
form of "a hang of one request does not lower the throughput of the others by more than 10%".

Run: ``python bench/instructions.py [--requests N]`` (needs valgrind; ``bash bench/run`` runs it when
valgrind is installed). About a minute.

``--cache`` measures the cache instead (not part of ``bench/run``: about 10 minutes). The bare app
and ``picky-mock serve`` run under cachegrind's cache simulation with a 1 MiB last-level cache (this
machine's L2 per core; its L3 is shared with the host's other tenants), first for 12,000 pushes,
which fill the journal's 10,000 entries, then for 12,000 + N (4,000 by default: a shorter
window lets a full garbage collection or start-up jitter show): misses of that cache per push,
instructions and data, the difference over N. It is the noise-free form of the cost a full
journal adds at 64 connections, which wall-clock runs show only through the machine's load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faults import HANG_NUMBER, rules_toml  # bench/faults.py: the 100 rules that match nothing, and a hang

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SINGLE = b'{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'
ANSWER = (
    b'{"status":100,"push_id":"7478630","message":"Success","data":[{"msg_id":"9844217",'
    b'"number":"5511987654321","credit":"0.005"}]}'
)


def python() -> str:
    """The interpreter to run under valgrind: ``sys.executable`` as invoked, so that a virtual
    environment's packages are found (its ``python`` is a link to the real binary), unless that is
    a script (a pyenv shim), which valgrind would trace instead: then the binary it stands for."""
    with open(sys.executable, "rb") as handle:
        script = handle.read(2) == b"#!"
    return os.path.realpath(sys.executable) if script else sys.executable


CALLGRIND = ["--tool=callgrind"]
CACHEGRIND = ["--tool=cachegrind", "--cache-sim=yes", "--LL=1048576,16,64"]


def count(argv: list[str], requests: int, *, hang: bool = False) -> int:
    """Total instructions of the server process ``argv`` after ``requests`` pushes (with ``hang``,
    after one push the hang rule holds, sent first and held open to the end)."""
    return events(CALLGRIND, argv, requests, hang=hang)["Ir"]


def events(tool: list[str], argv: list[str], requests: int, *, hang: bool = False) -> dict[str, int]:
    """The totals of the valgrind ``tool`` (its options) for the server process ``argv`` after
    ``requests`` pushes: ``{"Ir": ...}``, and the cache events under cachegrind."""
    out = tempfile.NamedTemporaryFile(prefix="valgrind.", delete=False).name
    proc = subprocess.Popen(
        ["valgrind", *tool, f"--{tool[0][7:]}-out-file={out}", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = ""
        deadline = time.monotonic() + 300
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                raise SystemExit(f"bench: {argv} exited before serving")
            found = re.search(r"http://([0-9.]+):(\d+)", line)
            if found and "serving" in line:
                url = found.group(0)
                host, port = found.group(1), int(found.group(2))
        held = None
        if hang:
            body = SINGLE.replace(b"5511987654321", HANG_NUMBER.encode())
            held = socket.create_connection((host, port), timeout=120)
            held.sendall(b"POST /api/v2/push HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (host.encode(), port, len(body), body))
            time.sleep(2)  # under valgrind: let the server take it in before the pushes
        conn = http.client.HTTPConnection(host, port, timeout=120)
        for _ in range(requests):
            conn.request("POST", "/api/v2/push", SINGLE, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"bench: {argv} answered HTTP {response.status}")
        conn.close()
        if held is not None:
            held.setblocking(False)
            try:
                answered = held.recv(1)
            except BlockingIOError:  # nothing came: it hung, as it should
                answered = b""
            held.close()
            if answered:
                raise SystemExit(f"bench: {argv} answered the request its hang rule should hold")
    finally:
        proc.send_signal(2)
        proc.wait(timeout=120)
    text = Path(out).read_text(errors="replace")
    Path(out).unlink(missing_ok=True)
    names = re.search(r"^events: (.+)$", text, re.M)
    totals = re.search(r"^(?:summary|totals): (.+)$", text, re.M)
    if names is None or totals is None:
        raise SystemExit(f"bench: no valgrind totals for {argv}")
    return dict(zip(names.group(1).split(), map(int, totals.group(1).split()), strict=True))


def cache_misses(extra: int) -> None:
    """``--cache``: misses of a 1 MiB last-level cache per push, with a full journal (see above)."""
    answer = RESULTS / "answer-instructions.json"
    servers = {
        "bare": [python(), str(HERE / "bare_app.py"), str(answer)],
        "picky (info)": [python(), "-m", "picky_mock", "serve", "--port", "0"],
    }
    base = 12_000  # past the journal's retention (10,000): each push drops the oldest entry
    per_push = {}
    for name, argv in servers.items():
        before, after = events(CACHEGRIND, argv, base), events(CACHEGRIND, argv, base + extra)
        per_push[name] = {event: (after[event] - before[event]) / extra for event in after}
    print()
    print(f"6b. Cache misses per single-recipient push (cachegrind, 1 MiB last-level cache, {extra} pushes")
    print(f"    after {base:,}: the journal full)")
    print("    server                 instructions   LL misses (instr + data read + data write)")
    for name, cost in per_push.items():
        parts = f"{cost['ILmr']:.1f} + {cost['DLmr']:.1f} + {cost['DLmw']:.1f}"
        misses = cost["ILmr"] + cost["DLmr"] + cost["DLmw"]
        print(f"    {name:21s} {cost['Ir'] / 1000:10.1f}k   {misses:8.1f} ({parts})")
    (RESULTS / "cache-misses.json").write_text(json.dumps(per_push, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--requests", type=int, help="extra requests of the second run (default 1000; 4000 with --cache)"
    )
    parser.add_argument("--quick", action="store_true", help="300 extra requests")
    parser.add_argument("--cache", action="store_true", help="cache misses per push with a full journal instead")
    parser.add_argument("--pin", action="store_true", help="accepted with bench/run's options; not used here")
    parser.add_argument("--duration", help="accepted with bench/run's options; not used here")
    parser.add_argument("--rounds", help="accepted with bench/run's options; not used here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("bench: valgrind not found (apt-get install valgrind): instruction counts skipped")
        return
    extra = 300 if args.quick else args.requests or (4000 if args.cache else 1000)
    RESULTS.mkdir(exist_ok=True)
    answer = RESULTS / "answer-instructions.json"
    answer.write_bytes(ANSWER)
    if args.cache:
        cache_misses(extra)
        return
    rules = RESULTS / "rules-instructions.toml"
    rules.write_text(rules_toml(100))
    warning = [python(), "-m", "picky_mock", "serve", "--port", "0", "--log-level", "warning"]
    servers = {
        "bare": [python(), str(HERE / "bare_app.py"), str(answer)],
        "picky (warning)": warning,
        "picky (info)": [python(), "-m", "picky_mock", "serve", "--port", "0"],
        "picky (100 rules)": [*warning, "--config", str(rules)],
    }
    base = 200
    per_request = {}
    for name, argv in servers.items():
        per_request[name] = (count(argv, base + extra) - count(argv, base)) / extra
    hung = servers["picky (100 rules)"]
    per_request["picky (rules, 1 hung)"] = (count(hung, base + extra, hang=True) - count(hung, base, hang=True)) / extra
    print()
    print(f"6. Instructions per single-recipient push (valgrind callgrind, {extra} requests, one connection)")
    bare = per_request["bare"]
    for name, value in per_request.items():
        ratio = "" if name == "bare" else f"   bare/picky {bare / value:.2f}x"
        print(f"   {name:21s} {value / 1000:8.1f}k instructions{ratio}")
    idle = per_request["picky (warning)"] / per_request["picky (100 rules)"]
    print(f"   100 idle fault rules (bench/faults.py's, warning level): {idle:.3f}x of none (target >= 0.95x)")
    held = per_request["picky (100 rules)"] / per_request["picky (rules, 1 hung)"]
    print(f"   one request hung (with those rules): {held:.3f}x of none hung (target >= 0.90x)")
    (RESULTS / "instructions.json").write_text(json.dumps(per_request, indent=1) + "\n")


if __name__ == "__main__":
    main()
