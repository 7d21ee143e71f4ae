"""The failure-coverage report: which API status codes and fault kinds the tests drove a client
through, and which documented ones they never did.

No other mock tells a team what failures their client was never tested against. The pytest
plugin collects one :class:`~picky_mock.backend.Coverage` per server (per xdist worker), merges
them, and prints :func:`render` at the end of the session (and writes :func:`report` as JSON with
``--picky-coverage-json PATH``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import STATUS_MESSAGES
from .faults import ACTIONS

__all__ = ["FAULT_KINDS", "merge", "render", "report"]

#: Every kind of failure a client can meet: the fault actions and the rate limit's two answers.
FAULT_KINDS = (*ACTIONS, "rate_limit_429", "rate_limit_drop")


def merge(parts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Add up coverage dicts (as ``Coverage.to_json()`` gives them)."""
    totals: dict[str, Counter[str]] = {"api_statuses": Counter(), "http_statuses": Counter(), "faults": Counter()}
    for part in parts:
        for key, counter in totals.items():
            counter.update({str(k): int(v) for k, v in part.get(key, {}).items()})
    return {key: dict(sorted(counter.items())) for key, counter in totals.items()}


def report(coverage: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The JSON report: what was driven, how often, and what never was."""
    api = {int(k): v for k, v in coverage.get("api_statuses", {}).items()}
    faults = dict(coverage.get("faults", {}))
    documented = sorted(STATUS_MESSAGES)
    return {
        "api_statuses": {str(k): v for k, v in sorted(api.items())},
        "api_statuses_never": {str(k): STATUS_MESSAGES[k] for k in documented if k not in api},
        "http_statuses": dict(coverage.get("http_statuses", {})),
        "faults": faults,
        "faults_never": [kind for kind in FAULT_KINDS if kind not in faults],
    }


def render(coverage: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The terminal summary, a few lines."""
    data = report(coverage)
    seen = data["api_statuses"]
    documented = [k for k in STATUS_MESSAGES if str(k) in seen]
    lines = [
        f"the tests drove the client through {len(documented)} of {len(STATUS_MESSAGES)} API status codes "
        f"and {len(data['faults'])} of {len(FAULT_KINDS)} fault kinds",
        "  API codes answered: " + (", ".join(f"{k} x{v}" for k, v in seen.items()) or "none"),
        "  API codes never:    " + (", ".join(f"{k} {m}" for k, m in data["api_statuses_never"].items()) or "none"),
        "  faults fired:       " + (", ".join(f"{k} x{v}" for k, v in data["faults"].items()) or "none"),
        "  faults never:       " + (", ".join(data["faults_never"]) or "none"),
        "  HTTP statuses:      " + ", ".join(f"{k} x{v}" for k, v in data["http_statuses"].items()),
    ]
    return lines
