"""The journal: every request the mock received, as immutable records, bounded and queryable.

Like ``responses.calls`` or ``respx.calls``: a test asks what its client sent and what it was
answered. Entries are kept in arrival order; when more than ``retention`` requests have come, the
oldest are dropped (``Journal.dropped`` counts them), so a long run does not grow without limit.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .contract import Violation

__all__ = ["Entry", "Journal", "Message", "Push"]


class Message(NamedTuple):
    """One message of an accepted push, as the mock would have sent it."""

    msg_id: str
    push_id: str
    position: int
    """Position of the recipient in the request's ``data[]``."""
    number: str
    """The recipient as digits (the ``messenger_id`` for Messenger)."""
    text: str
    """The resolved text: the recipient's own non-empty ``message``, else ``globalmessage``."""
    media: str | None
    channel: int
    segments: int
    """SMS segments (1 on every other channel)."""
    credit: str
    reference_number: str | None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True, slots=True)
class Push:
    """The normalised push: the request's top level after the quirks of CONTRACT.md 2.2 are undone."""

    token: str
    application: int
    priority: int
    globalmessage: str
    globalmedia: str | None
    template_id: str | None
    recipients: int
    unknown_keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Entry:
    """One request received, accepted or not, and the answer it was given."""

    seq: int
    time: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    raw_body: bytes
    body: Any
    """The parsed JSON document (``None`` when it did not parse)."""
    http_status: int
    answer: Mapping[str, Any] | None
    """The JSON body answered (``None`` when no JSON body was sent, as for a dropped connection)."""
    push: Push | None = None
    messages: tuple[Message, ...] = ()
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()
    """Contract notes: each quirk or deviation seen (CONTRACT.md 2.2, 2.3)."""
    error: str | None = None
    """What was wrong and where, as sent in the ``X-Picky-Error`` header."""
    faults: tuple[str, ...] = field(default=())
    """The fault rules that fired on this request, described."""
    dropped: bool = False
    """Answered like a success but not processed (the rate limit's "drop" action)."""

    @property
    def status(self) -> int | None:
        """The API status code of the answer (100 for success), if one was sent."""
        value = self.answer.get("status") if self.answer is not None else None
        return value if isinstance(value, int) else None

    @property
    def push_id(self) -> str | None:
        value = self.answer.get("push_id") if self.answer is not None else None
        return value if isinstance(value, str) else None

    @property
    def accepted(self) -> bool:
        """Answered status 100 and processed (a dropped request is answered 100 but not sent)."""
        return self.status == 100 and not self.dropped

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view, for the admin API."""
        try:
            raw: dict[str, str] = {"text": self.raw_body.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"base64": base64.b64encode(self.raw_body).decode("ascii")}
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "headers": [list(pair) for pair in self.headers],
            "raw_body": raw,
            "http_status": self.http_status,
            "status": self.status,
            "push_id": self.push_id,
            "answer": self.answer,
            "push": self.push.to_json() if self.push else None,
            "messages": [m.to_json() for m in self.messages],
            "violations": [
                {"path": v.path, "expected": v.expected, "found": v.found, "status": v.status}
                for v in self.violations
            ],
            "notes": list(self.notes),
            "error": self.error,
            "faults": list(self.faults),
            "dropped": self.dropped,
        }


class Journal:
    """A bounded, thread-safe record of requests; queries return snapshots (lists)."""

    def __init__(self, retention: int = 10_000) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.retention = retention
        self._entries: deque[Entry] = deque(maxlen=retention)
        self._lock = threading.Lock()
        self._seq = 0
        self.dropped = 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def append(self, entry: Entry) -> None:
        with self._lock:
            if len(self._entries) == self.retention:
                self.dropped += 1
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every entry (sequence numbers go on, so an old id never names a new entry)."""
        with self._lock:
            self._entries.clear()
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.snapshot())

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def entries(
        self,
        *,
        path: str | None = None,
        status: int | None = None,
        push_id: str | int | None = None,
        number: str | int | None = None,
        text: str | None = None,
        accepted: bool | None = None,
    ) -> list[Entry]:
        """The requests that match every criterion given (``number``/``text``: any message)."""
        found = []
        for entry in self.snapshot():
            if path is not None and entry.path != path:
                continue
            if status is not None and entry.status != status:
                continue
            if push_id is not None and entry.push_id != str(push_id):
                continue
            if accepted is not None and entry.accepted != accepted:
                continue
            if number is not None and not any(m.number == str(number) for m in entry.messages):
                continue
            if text is not None and not any(text in m.text for m in entry.messages):
                continue
            found.append(entry)
        return found

    def pushes(self) -> list[Entry]:
        """The accepted pushes, oldest first."""
        return [entry for entry in self.snapshot() if entry.accepted]

    def messages(
        self,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
    ) -> list[Message]:
        """Messages of accepted pushes matching every criterion (``text``: a substring)."""
        found = []
        for entry in self.snapshot():
            for message in entry.messages:
                if number is not None and message.number != str(number):
                    continue
                if push_id is not None and message.push_id != str(push_id):
                    continue
                if text is not None and text not in message.text:
                    continue
                if channel is not None and message.channel != channel:
                    continue
                found.append(message)
        return found
