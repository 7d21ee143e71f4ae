"""The failure-coverage report: which API status codes and fault kinds the tests drove a client
through, which delivery states its messages reached and which webhook retry paths its handlers met,
and which documented ones they never did.

No other mock tells a team what failures their client was never tested against. The pytest
plugin collects one :class:`~picky_mock.backend.Coverage` per server (per xdist worker), merges
them, and prints :func:`render` at the end of the session (and writes :func:`report` as JSON with
``--picky-coverage-json PATH``). The lifecycle's part (:func:`lifecycle_counts`) is taken from the
ledger and the webhook attempts at the end of each test, before the fixture's reset forgets them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import STATUS_MESSAGES
from .faults import ACTIONS
from .lifecycle import State, Transition
from .webhook_payloads import InstantReply, NoReply
from .webhooks import Attempt

__all__ = ["DELIVERY_STATES", "FAULT_KINDS", "WEBHOOK_PATHS", "lifecycle_counts", "merge", "render", "report"]

#: Every kind of failure a client can meet: the fault actions and the rate limit's two answers.
FAULT_KINDS = (*ACTIONS, "rate_limit_429", "rate_limit_drop")

#: The states a message can be moved to after Submitted (docs/contract.md §6.1).
DELIVERY_STATES = tuple(s.name.lower() for s in State if s is not State.SUBMITTED)

#: What a webhook delivery can go through: answered 200 at the first try; not answered 200 and
#: retried; answered 200 after a retry; never answered 200 and given up; for an incoming message,
#: answered with an instant reply, or with an answer that is none.
WEBHOOK_PATHS = ("delivered at once", "retried", "delivered after retry", "given up", "instant reply", "no reply")

_KEYS = ("api_statuses", "http_statuses", "faults", "delivery_states", "webhook_paths")


def lifecycle_counts(transitions: Iterable[Transition], attempts: Iterable[Attempt]) -> dict[str, dict[str, int]]:
    """The lifecycle's coverage part: each state moved to (Submitted at acceptance not counted), and
    each webhook delivery's path (a delivery counts once per path it took)."""
    states: Counter[str] = Counter(t.state.name.lower() for t in transitions if t.previous is not None)
    paths: Counter[str] = Counter()
    retried: set[int] = set()
    for attempt in attempts:
        if attempt.outcome == "retrying" and attempt.delivery not in retried:
            retried.add(attempt.delivery)
            paths["retried"] += 1
        elif attempt.outcome == "delivered":
            paths["delivered at once" if attempt.attempt == 1 else "delivered after retry"] += 1
        elif attempt.outcome == "given up":
            paths["given up"] += 1
        if isinstance(attempt.reply, InstantReply):
            paths["instant reply"] += 1
        elif isinstance(attempt.reply, NoReply):
            paths["no reply"] += 1
    return {"delivery_states": dict(states), "webhook_paths": dict(paths)}


def merge(parts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Add up coverage dicts (as ``Coverage.to_json()`` gives them)."""
    totals: dict[str, Counter[str]] = {key: Counter() for key in _KEYS}
    for part in parts:
        for key, counter in totals.items():
            counter.update({str(k): int(v) for k, v in part.get(key, {}).items()})
    return {key: dict(sorted(counter.items())) for key, counter in totals.items()}


def report(coverage: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The JSON report: what was driven, how often, and what never was."""
    api = {int(k): v for k, v in coverage.get("api_statuses", {}).items()}
    faults = dict(coverage.get("faults", {}))
    states = dict(coverage.get("delivery_states", {}))
    paths = dict(coverage.get("webhook_paths", {}))
    documented = sorted(STATUS_MESSAGES)
    return {
        "api_statuses": {str(k): v for k, v in sorted(api.items())},
        "api_statuses_never": {str(k): STATUS_MESSAGES[k] for k in documented if k not in api},
        "http_statuses": dict(coverage.get("http_statuses", {})),
        "faults": faults,
        "faults_never": [kind for kind in FAULT_KINDS if kind not in faults],
        "delivery_states": {s: states[s] for s in DELIVERY_STATES if s in states},
        "delivery_states_never": [s for s in DELIVERY_STATES if s not in states],
        "webhook_paths": {p: paths[p] for p in WEBHOOK_PATHS if p in paths},
        "webhook_paths_never": [p for p in WEBHOOK_PATHS if p not in paths],
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
        "  delivery states:    "
        + _counted(
            {k.title(): v for k, v in data["delivery_states"].items()},  # "Failed": no "failed" for a CI log grep
            [k.title() for k in data["delivery_states_never"]],
            len(DELIVERY_STATES),
        ),
        "  webhook paths:      " + _counted(data["webhook_paths"], data["webhook_paths_never"], len(WEBHOOK_PATHS)),
    ]
    return lines


def _counted(seen: Mapping[str, int], never: list[str], total: int) -> str:
    """``delivered x3, read x1 (2 of 5; never: failed, refunded, unknown)``."""
    shown = ", ".join(f"{k} x{v}" for k, v in seen.items()) or "none"
    return f"{shown} ({len(seen)} of {total}; never: {', '.join(never) or 'none'})"
