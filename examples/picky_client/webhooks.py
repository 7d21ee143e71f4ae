"""Handlers for the two webhooks Picky Assist calls (docs/contract.md §6): delivery reports and incoming
messages. Both are written for the payloads as they really come: every delivery-report value a
string, ``message-in`` URL-encoded, numeric fields sometimes JSON numbers and sometimes strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["DeliveryUpdate", "IncomingMessage", "parse_delivery_report", "parse_inbound", "reply"]

STATES = {0: "unknown", 1: "delivered", 2: "failed", 3: "read", 4: "submitted", 5: "refunded"}
FAILED = frozenset({"failed", "refunded"})
MAX_REPLY_DELAY = 3600


@dataclass(frozen=True)
class DeliveryUpdate:
    push_id: str
    msg_id: str
    number: str
    state: str
    channel: int
    reference: str | None
    error: str | None

    @property
    def failed(self) -> bool:
        return self.state in FAILED


@dataclass(frozen=True)
class IncomingMessage:
    sender: str
    """The number (or, for Messenger, the ``messenger_id``); on phone automation it may be the
    name under which the sender is saved in the phone's contacts."""
    text: str
    channel: int
    kind: int
    outbound: bool
    name: str


def _int(value: Any, default: int = 0) -> int:
    """``1``, ``"1"`` and ``" 1 "`` alike; the docs say numeric, the samples send strings."""
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def parse_delivery_report(event: Mapping[str, Any]) -> list[DeliveryUpdate]:
    """The updates of one event-webhook call; events other than delivery reports give none."""
    if _int(event.get("event_id")) != 1:
        return []
    updates = []
    for report in event.get("data") or []:
        state = STATES.get(_int(report.get("status"), -1), "unknown")
        updates.append(
            DeliveryUpdate(
                push_id=str(report.get("push_id", "")),
                msg_id=str(report.get("msg_id", "")),
                number=str(report.get("number", "")),
                state=state,
                channel=_int(report.get("channel_id")),
                reference=report.get("reference_number") or None,
                error=report.get("error_message") or None,
            )
        )
    return updates


def parse_inbound(payload: Mapping[str, Any]) -> IncomingMessage:
    """An incoming message. The raw text is preferred; ``message-in`` is URL-encoded, form style."""
    raw = payload.get("message_in_raw")
    text = raw if isinstance(raw, str) else unquote_plus(str(payload.get("message-in", "")))
    channel = _int(payload.get("application"))
    sender = str(payload.get("messenger_id")) if channel == 5 and payload.get("messenger_id") else ""
    return IncomingMessage(
        sender=sender or str(payload.get("number", "")),
        text=text,
        channel=channel,
        kind=_int(payload.get("type"), 1),
        outbound=_int(payload.get("direction")) == 1,
        name=str(payload.get("name") or ""),
    )


def reply(text: str, *, delay: int = 0) -> dict[str, Any]:
    """The answer that makes Picky Assist reply at once, without a push."""
    if not 0 <= delay <= MAX_REPLY_DELAY:
        raise ValueError(f"delay must be 0 to {MAX_REPLY_DELAY} seconds, not {delay}")
    return {"message-out": text, "delay": delay}
