"""Conversations: the messages customers send in (:class:`Inbound`), and one number's thread.

A customer's message (``backend.receive(...)``, ``POST /_picky/inbound``) becomes an :class:`Inbound`
record, kept in an :class:`InboundBook` (bounded, thread-safe): what was received, when (on the
backend's clock), where it was POSTed and what the handler answered (an instant reply, or why there
is none). A thread (:class:`ThreadItem`) puts one number's messages in both directions in clock
order: the pushes' messages, the customer's messages and the instant replies sent back.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from .lifecycle import LifecycleError
from .recipients import channel_of
from .webhook_payloads import InstantReply, NoReply, WebhookUrlError, check_url

__all__ = ["MAX_INBOUND", "MAX_INBOUND_TEXT", "Inbound", "InboundBook", "ThreadItem", "check_inbound"]

MAX_INBOUND = 10_000
"""Customer messages an :class:`InboundBook` keeps (older ones are forgotten, and counted)."""


@dataclass(slots=True)
class Inbound:
    """One message a customer sent in, and what became of it.

    ``reply`` and ``reply_msg_id`` are filled in when the handler has answered (on the webhook
    dispatcher's thread); ``delivery`` is ``None`` when no incoming-webhook URL was set, or the
    delivery was dropped (a full queue).
    """

    unique_id: str
    number: str
    text: str
    type: int
    application: int
    at: float
    """Clock time it was received."""
    media: str | None = None
    name: str | None = None
    payload: dict[str, Any] | None = None
    """The incoming-webhook body POSTed (``None`` when no URL was set)."""
    url: str | None = None
    delivery: int | None = None
    outcome: str = "not sent"
    """``not sent`` (no URL), ``dropped``, ``pending``, ``delivered`` or ``given up``."""
    reply: InstantReply | NoReply | None = None
    reply_msg_id: str | None = None
    """The msg_id of the instant reply once sent."""

    def to_json(self) -> dict[str, Any]:
        reply: dict[str, Any] | None = None
        if isinstance(self.reply, InstantReply):
            reply = {"message-out": self.reply.text, "delay": self.reply.delay, "msg_id": self.reply_msg_id}
        elif isinstance(self.reply, NoReply):
            reply = {"none": self.reply.reason}
        return {
            "unique_id": self.unique_id,
            "number": self.number,
            "text": self.text,
            "type": self.type,
            "application": self.application,
            "at": self.at,
            "media": self.media,
            "name": self.name,
            "url": self.url,
            "delivery": self.delivery,
            "outcome": self.outcome,
            "reply": reply,
        }


class InboundBook:
    """The customer messages received, oldest first, at most ``limit``; ids from a counter."""

    def __init__(self, limit: int = MAX_INBOUND, first_id: int = 1) -> None:
        self.limit = limit
        self._first_id = first_id
        self._lock = threading.Lock()
        self._items: deque[Inbound] = deque()
        self._next = first_id
        self.forgotten = 0

    def next_id(self) -> str:
        with self._lock:
            value = self._next
            self._next += 1
            return str(value)

    def add(self, inbound: Inbound) -> None:
        with self._lock:
            self._items.append(inbound)
            while len(self._items) > self.limit:
                self._items.popleft()
                self.forgotten += 1

    def all(self, number: str | None = None) -> list[Inbound]:
        with self._lock:
            items = list(self._items)
        return items if number is None else [i for i in items if i.number == number]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._next = self._first_id
            self.forgotten = 0

    def __len__(self) -> int:
        return len(self._items)


class ThreadItem(NamedTuple):
    """One message of a conversation: ``out`` (to the customer) or ``in`` (from the customer)."""

    direction: Literal["in", "out"]
    at: float
    """Clock time: when the push was accepted, the message received or the reply sent."""
    number: str
    text: str
    media: str | None = None
    msg_id: str | None = None
    """An outbound message's id (a push's or an instant reply's)."""
    push_id: str | None = None
    unique_id: str | None = None
    """An inbound message's ``unique-id``."""
    status: int | None = None
    """An outbound message's delivery state now (docs/contract.md §6.1)."""
    kind: str = ""
    """``push``, ``instant reply`` or ``customer``."""

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


#: The longest text, name, payload and id a customer's message may carry (characters).
MAX_INBOUND_TEXT = 65_536
MAX_INBOUND_FIELD = 1024
_TYPES = (1, 2, 3, 4, 5, 6, 7, 9)
_MEDIA_TYPES = (2, 3, 4, 6)


def _error(field: str, detail: str) -> LifecycleError:
    error = LifecycleError(f"{field}: {detail}")
    error.field = field
    return error


def _optional_text(field: str, value: object, limit: int = MAX_INBOUND_FIELD) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _error(field, f"expected a string, got {type(value).__name__}")
    text = str(value)
    if len(text) > limit:
        raise _error(field, f"longer than {limit:,} characters")
    return text


def check_inbound(
    *,
    number: object,
    text: object = "",
    type: object = 1,
    media: object = None,
    name: object = None,
    application: object = None,
    payload: object = None,
    messenger_id: object = None,
    context_msg_id: object = None,
) -> dict[str, Any]:
    """A customer's message checked and normalised, or a :class:`~picky_mock.lifecycle.LifecycleError`
    naming the field (``number``, ``text``, ``type``, ``media``, ...)."""
    if isinstance(number, bool) or not isinstance(number, (str, int)):
        raise _error("number", f"expected the sender's number as a string, got {number!r}")
    sender = str(number).strip()
    if not sender or len(sender) > 64 or not sender.isprintable():
        raise _error("number", f"expected 1 to 64 printable characters, got {str(number)[:80]!r}")
    if not isinstance(text, str):
        raise _error("text", f"expected a string, got {type_name(text)}")
    if len(text) > MAX_INBOUND_TEXT:
        raise _error("text", f"longer than {MAX_INBOUND_TEXT:,} characters")
    kind = type
    if isinstance(kind, str) and kind.strip().isdigit():
        kind = int(kind)
    if isinstance(kind, bool) or kind not in _TYPES:
        raise _error("type", f"{type!r} is not an incoming message type (1 text, 2 image, 3 video, 4 audio, "
                     "5 location, 6 document, 7 contact, 9 button reply)")
    assert isinstance(kind, int)
    media_url = None
    if media is not None:
        try:
            media_url = check_url(media, field="media")
        except WebhookUrlError as exc:
            raise _error("media", str(exc).removeprefix("media: ")) from None
    if kind in _MEDIA_TYPES and media_url is None:
        raise _error("media", f"type {kind} needs a media URL")
    if kind not in _MEDIA_TYPES and media_url is not None:
        raise _error("media", f"type {kind} carries no media (2 image, 3 video, 4 audio, 6 document)")
    channel: int | None = None
    if application is not None:
        channel = channel_of(application)
        if channel is None or channel < 1:
            raise _error("application", f"{application!r} is not a channel id")
    return {
        "number": sender,
        "text": text,
        "type": kind,
        "media": media_url,
        "name": _optional_text("name", name),
        "application": channel,
        "payload": _optional_text("payload", payload, MAX_INBOUND_TEXT),
        "messenger_id": _optional_text("messenger_id", messenger_id),
        "context_msg_id": _optional_text("context_msg_id", context_msg_id),
    }


def type_name(value: object) -> str:
    """The JSON-ish name of a value's type, for an error message."""
    return type(value).__name__
