"""Reading recorded webhook attempts the way a test asks about them, and saying what was near when an
assertion fails (the companion of :meth:`PickyServer.assert_webhook <picky_mock.testing.PickyServer.assert_webhook>`).

An attempt is seen through its payload: an event webhook by its report (``msg_id``, ``number``,
``status``, ``push_id``, ``error_message``, ``reference_number``), an incoming-message webhook by its
sender and text (``number``, ``text``, ``type``), both by ``kind``, ``url``, ``outcome`` and
``attempt``. Values compare as strings, since the service sends every report value as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from .lifecycle import State, parse_state
from .webhooks import Attempt

__all__ = ["WebhookView", "describe", "matching", "near_misses", "views", "wanted"]

_STATE_NAMES = {str(int(s)): s.name.lower() for s in State}

WebhookView = dict[str, str]
"""One report (or incoming message) of one attempt, flattened: field -> value as a string."""


def views(attempt: Attempt) -> list[WebhookView]:
    """The reports an attempt carried (one for an incoming message; the ``data[]`` of an event)."""
    base = {
        "kind": attempt.kind,
        "url": attempt.url,
        "outcome": attempt.outcome,
        "attempt": str(attempt.attempt),
    }
    try:
        payload = orjson.loads(attempt.payload)
    except orjson.JSONDecodeError:
        return [base]
    if not isinstance(payload, Mapping):
        return [base]
    if attempt.kind == "incoming":
        text = payload.get("message_in_raw", payload.get("message-in", ""))
        return [{**base, "number": str(payload.get("number", "")), "text": str(text), "type": str(payload.get("type"))}]
    items = payload.get("data")
    if not isinstance(items, list) or not items:
        return [base]
    found = []
    for item in items:
        if isinstance(item, Mapping):
            found.append({**base, **{str(k): str(v) for k, v in item.items() if k != "message"}})
    return found or [base]


def wanted(criteria: Mapping[str, Any]) -> dict[str, str]:
    """The criteria given (``None`` left out) as strings; a ``status`` by name or number."""
    result: dict[str, str] = {}
    for name, value in criteria.items():
        if value is None:
            continue
        if name == "status":
            result[name] = str(int(parse_state(value)))
        else:
            result[name] = str(value)
    return result


def matching(attempts: Iterable[Attempt], criteria: Mapping[str, str]) -> list[Attempt]:
    """The attempts with one report that meets every criterion."""
    return [a for a in attempts if any(all(v.get(k) == value for k, value in criteria.items()) for v in views(a))]


def describe(attempt: Attempt) -> str:
    """One line: ``#3 try 2 event http://… -> 503 (retrying): msg 9000001 to 5511… status 1 delivered``."""
    answer = str(attempt.status) if attempt.status is not None else (attempt.error or "no answer")
    head = f"#{attempt.delivery} try {attempt.attempt} {attempt.kind} {attempt.url} -> {answer} ({attempt.outcome})"
    parts = []
    for view in views(attempt)[:3]:
        if attempt.kind == "incoming":
            parts.append(f"from {view.get('number')} text {view.get('text', '')[:40]!r}")
        elif "msg_id" in view:
            status = view.get("status", "?")
            parts.append(f"msg {view['msg_id']} to {view.get('number')} status {status} {_STATE_NAMES.get(status, '')}")
    return head + (": " + "; ".join(parts) if parts else "")


def near_misses(attempts: list[Attempt], criteria: Mapping[str, str], limit: int = 3) -> list[str]:
    """The attempts that meet the most criteria (at least one), each with what differs."""
    if not criteria:
        return []
    scored: list[tuple[int, int, Attempt, WebhookView]] = []
    for index, attempt in enumerate(attempts):
        best = max(views(attempt), key=lambda v: sum(v.get(k) == value for k, value in criteria.items()))
        same = sum(best.get(k) == value for k, value in criteria.items())
        if same:
            scored.append((-same, index, attempt, best))
    scored.sort(key=lambda item: item[:2])
    lines = []
    for _, _, attempt, view in scored[:limit]:
        differs = ", ".join(
            f"{k} {view.get(k)!r} ≠ expected {value!r}" for k, value in criteria.items() if view.get(k) != value
        )
        lines.append(f"  {describe(attempt)}")
        if differs:
            lines.append(f"    differs: {differs}")
    return lines
