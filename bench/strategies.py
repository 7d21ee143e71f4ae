"""How fast the strategies of picky_mock.strategies draw, against baselines measured in the same run.

    python bench/strategies.py [--examples 500] [--rounds 3] [--jsonschema-examples 30] [--quick]

Each strategy runs as the argument of a ``@given`` test with a no-op body, generate phase only
(no shrinking, no database, no deadline), under Hypothesis's default health checks (those of
picky-mock's strategies must pass them; only the hypothesis-jsonschema baseline has them off).
A rate is examples / elapsed, on wall-clock and on CPU time of this process: on a shared machine
the CPU figure is the steadier. Rounds are interleaved and the best of each is kept.

Baselines: ``st.integers()`` (the engine's own cost per example, the ceiling of any strategy) and
``hypothesis_jsonschema.from_schema(<push-request schema>)`` (what one would use without
picky-mock). The goal: ``push_requests()`` at 200 draws/s or more; the exit status is 1 if it
draws fewer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from picky_mock import strategies as ps  # noqa: E402

GOAL = 200.0


def measure(strategy: st.SearchStrategy[Any], examples: int, *, checks: bool = True) -> tuple[float, float]:
    """``(draws/s on the wall clock, draws/s on CPU time)`` for ``examples`` draws."""
    count = 0
    options: dict[str, Any] = {"max_examples": examples, "phases": [Phase.generate], "database": None,
                               "deadline": None}
    if not checks:
        options["suppress_health_check"] = list(HealthCheck)

    @settings(**options)
    @given(strategy)
    def draw(value: Any) -> None:
        nonlocal count
        count += 1

    wall, cpu = time.perf_counter(), time.process_time()
    draw()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, count / max(cpu, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="draws per strategy and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--jsonschema-examples", type=int, default=30,
                        help="draws of the hypothesis-jsonschema baseline (slow: a few a second); 0 skips it")
    parser.add_argument("--quick", action="store_true", help="200 draws, 2 rounds, no jsonschema baseline")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.rounds, args.jsonschema_examples = 200, 2, 0

    cases: list[tuple[str, Callable[[], st.SearchStrategy[Any]], int, bool]] = [
        ("st.integers()  [baseline]", st.integers, args.examples, True),
        ("push_requests()", ps.push_requests, args.examples, True),
        ("push_requests(quirks=False)", lambda: ps.push_requests(quirks=False), args.examples, True),
        ("invalid_push_requests()", ps.invalid_push_requests, args.examples, True),
        ("message_texts()", ps.message_texts, args.examples, True),
        ("phone_numbers()", ps.phone_numbers, args.examples, True),
        ("push_responses()", ps.push_responses, args.examples, True),
        ("delivery_report_events()", ps.delivery_report_events, args.examples, True),
        ("inbound_messages()", ps.inbound_messages, args.examples, True),
    ]
    if args.jsonschema_examples:
        try:  # not a dependency of picky-mock: the baseline runs where it is installed and works
            from hypothesis_jsonschema import from_schema

            schema = json.loads((ROOT / "schemas" / "push-request.schema.json").read_text(encoding="utf-8"))
            baseline = from_schema(schema)
            measure(baseline, 3, checks=False)  # warm up: the schema is canonicalised on first use
        except Exception as exc:  # not installed, or broken by the installed Hypothesis
            print(f"the from_schema baseline is left out: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}\n")
        else:
            cases.insert(
                1, ("from_schema(push-request)  [baseline]", lambda: baseline, args.jsonschema_examples, False)
            )

    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, build, examples, checks in cases:
            wall, cpu = measure(build(), examples, checks=checks)
            old = best.get(name, (0.0, 0.0))
            best[name] = (max(old[0], wall), max(old[1], cpu))

    integers = best[cases[0][0]][1]
    jsonschema = best.get("from_schema(push-request)  [baseline]", (0.0, 0.0))[1]
    print(f"best of {args.rounds} rounds, {args.examples} draws each (CPU time is the steadier figure)\n")
    header = f"{'strategy':40} {'draws/s wall':>13} {'draws/s CPU':>12} {'vs integers':>12}"
    header += f" {'vs from_schema':>15}" if jsonschema else ""
    print(header)
    print("-" * len(header))
    for name, _, _, _ in cases:
        wall, cpu = best[name]
        line = f"{name:40} {wall:13.0f} {cpu:12.0f} {cpu / integers:12.3f}"
        line += f" {cpu / jsonschema:15.1f}" if jsonschema else ""
        print(line)

    rate = best["push_requests()"][1]
    verdict = "meets" if rate >= GOAL else "MISSES"
    print(f"\npush_requests(): {rate:.0f} draws/s (CPU), {verdict} the goal of {GOAL:.0f}/s; "
          f"{rate / integers:.1%} of st.integers()'s rate"
          + (f", {rate / jsonschema:.0f}x hypothesis-jsonschema's" if jsonschema else ""))
    return 0 if rate >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
