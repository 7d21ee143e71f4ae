"""Where a push's server CPU goes: ``picky-mock serve`` beside variants with parts of the push path
taken out, and the bare app, measured side by side.

Variants (each a fresh ``picky-mock serve --port 0`` process started through this file, which
replaces the named parts before the command runs; the bench's own harness, not an option of the
product):

* ``picky``: the command as a user runs it (log level ``info``).
* ``no log line``: ``--log-level warning``.
* ``no recording``: at warning, the journal's ``append`` and the ledger's ``defer`` do nothing (the
  push is judged and answered, nothing is kept).
* ``fixed answer``: at warning, ``Backend.push`` returns the outcome of the first push for every
  push (the HTTP layer, the admin guard and the connection watch alone).
* ``bare``: ``bench/bare_app.py``, the baseline of ``bench/bench.py``.

wrk posts the single-recipient push at 16 connections, 3 s a run; each round starts fresh processes
and runs every variant once per cycle, the first one rotating. Printed: the server CPU per request
(all its threads, ``/proc`` schedstat) and requests/s, medians, and each variant's requests/s over
the bare app's in the same cycle (median of the pairs).

Run: ``python bench/push_cost.py [--rounds 2] [--cycles 3] [--duration 3]``. About two minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

VARIANTS = {
    "picky": ("", []),
    "no log line": ("", ["--log-level", "warning"]),
    "no recording": ("no-recording", ["--log-level", "warning"]),
    "fixed answer": ("fixed-answer", ["--log-level", "warning"]),
}
STRIP = "PICKY_BENCH_STRIP"


def serve_stripped() -> int:
    """``picky-mock serve`` with the part named by ``$PICKY_BENCH_STRIP`` taken out."""
    from picky_mock.backend import Backend
    from picky_mock.cli import main
    from picky_mock.journal import Journal
    from picky_mock.lifecycle import Ledger

    strip = os.environ.get(STRIP, "")
    if strip == "no-recording":
        Journal.append = lambda self, entry: entry.seq  # type: ignore[method-assign]
        Ledger.defer = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    elif strip == "fixed-answer":
        judge = Backend.push
        first: dict[str, object] = {}

        def push(self: Backend, incoming: object) -> object:
            if "outcome" not in first:
                first["outcome"] = judge(self, incoming)  # type: ignore[arg-type]
            return first["outcome"]

        Backend.push = push  # type: ignore[assignment,method-assign]
    return main(["serve", *sys.argv[2:]])


def main() -> None:
    import bench

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3)
    args = parser.parse_args()
    bench.RESULTS.mkdir(exist_ok=True)
    names = [*VARIANTS, "bare"]
    cpu: dict[str, list[float]] = {name: [] for name in names}
    rps: dict[str, list[float]] = {name: [] for name in names}
    over_bare: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        procs: dict[str, bench.Proc] = {}
        try:
            for name, (strip, options) in VARIANTS.items():
                os.environ[STRIP] = strip
                argv = [sys.executable, __file__, "--serve", "--port", "0", *options]
                log = str(bench.RESULTS / f"push-cost-{name.replace(' ', '-')}.log")
                procs[name] = bench.Proc(name, argv, log, "serving")
            probe = bench.Client(procs["picky"].url)
            _, _, answer = probe.post(bench.PUSH_PATH, bench.SINGLE)
            probe.close()
            (bench.RESULTS / "answer-1.json").write_bytes(answer)
            procs["bare"] = bench.Proc("bare", [sys.executable, str(HERE / "bare_app.py"),
                                                str(bench.RESULTS / "answer-1.json")],
                                       str(bench.RESULTS / "bare.log"), "serving")
            for proc in procs.values():  # warm-up
                bench.run_wrk(proc.url, 16, 1, [])
            for cycle in range(args.cycles):
                turn = (round_ * args.cycles + cycle) % len(names)
                results = {}
                for name in names[turn:] + names[:turn]:
                    proc = procs[name]
                    results[name] = bench.run_wrk(proc.url, 16, args.duration, [], proc.proc.pid)
                for name, result in results.items():
                    cpu[name].append(float(result["server_cpu_us_per_req"]))
                    rps[name].append(float(result["rps"]))
                for name in VARIANTS:
                    over_bare[name].append(float(results[name]["rps"]) / float(results["bare"]["rps"]))
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
        finally:
            bench.stop_servers(procs)
    print("\nsingle-recipient push, wrk 16 connections; medians (requests/s over bare: median of the pairs)")
    print(f"{'variant':16} {'CPU us/request':>15} {'requests/s':>11} {'over bare':>10}")
    for name in names:
        ratio = f"{statistics.median(over_bare[name]):.2f}x" if name in over_bare else ""
        print(f"{name:16} {statistics.median(cpu[name]):15.1f} {statistics.median(rps[name]):11.0f} {ratio:>10}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.exit(serve_stripped())
    main()
