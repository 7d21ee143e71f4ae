"""The journal: every request the mock received, as immutable records, bounded and queryable.

Like ``responses.calls`` or ``respx.calls``: a test asks what its client sent and what it was
answered. Entries are kept in arrival order; when more than ``retention`` requests have come, the
oldest are dropped (``Journal.dropped`` counts them), so a long run does not grow without limit.

Each entry is stored packed, as one ``bytes`` object (see :class:`Journal`), and read back as an
:class:`Entry` when a query asks for it.
"""

from __future__ import annotations

import base64
import itertools
import json
import marshal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, overload

import orjson

from .contract import Violation

__all__ = ["Entry", "Journal", "Message", "MessageBatch", "Push"]


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


class MessageBatch(Sequence[Message]):
    """The messages of one push, stored by column and read as :class:`Message` records.

    A push of 100,000 recipients is a handful of lists here, not 100,000 objects for the garbage
    collector to walk on every collection; the records are made when a test reads them.
    """

    __slots__ = (
        "_channel",
        "_credits",
        "_first",
        "_media",
        "_numbers",
        "_push_id",
        "_references",
        "_segments",
        "_texts",
    )

    def __init__(
        self,
        push_id: str,
        first_msg_id: int,
        channel: int,
        numbers: Sequence[str],
        texts: Sequence[str],
        media: Sequence[str | None],
        segments: Sequence[int],
        credits: Sequence[str],
        references: Sequence[str | None],
    ) -> None:
        self._push_id, self._first, self._channel = push_id, first_msg_id, channel
        self._numbers, self._texts, self._media = numbers, texts, media
        self._segments, self._credits, self._references = segments, credits, references

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Message, ...]: ...

    def __getitem__(self, index: int | slice) -> Message | tuple[Message, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("message index out of range")
        return Message(
            str(self._first + index),
            self._push_id,
            index,
            self._numbers[index],
            self._texts[index],
            self._media[index],
            self._channel,
            self._segments[index],
            self._credits[index],
            self._references[index],
        )

    def __iter__(self) -> Iterator[Message]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MessageBatch(push_id={self._push_id!r}, messages={len(self)})"

    def columns(self) -> tuple[Any, ...]:
        """The constructor's arguments, in order: ``MessageBatch(*batch.columns()) == batch``."""
        return (
            self._push_id,
            self._first,
            self._channel,
            self._numbers,
            self._texts,
            self._media,
            self._segments,
            self._credits,
            self._references,
        )

    @property
    def numbers(self) -> Sequence[str]:
        """The recipients, in request order (cheap: no records are made)."""
        return self._numbers

    @property
    def texts(self) -> Sequence[str]:
        return self._texts


NO_MESSAGES: Sequence[Message] = ()


class Push(NamedTuple):
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
        return self._asdict()


def _loads(document: bytes | None) -> Any:
    if document is None:
        return None
    if document.startswith(b"\xef\xbb\xbf"):
        document = document[3:]
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError:
        try:
            return json.loads(document)
        except (ValueError, RecursionError):
            return None


class Entry(NamedTuple):
    """One request received, accepted or not, and the answer it was given. Immutable.

    The request's JSON document and the answer are kept as the bytes that travelled and parsed
    when read (``body``, ``answer``): a long journal costs memory, not garbage-collector time.
    """

    seq: int
    time: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    raw_body: bytes
    document: bytes | None
    """The JSON document judged: the body, or the ``data`` form field or query parameter."""
    http_status: int
    """The HTTP status sent (0 when a fault sent none)."""
    status: int | None
    """The API status code of the answer (100 for success), if one was sent."""
    push_id: str | None
    answer_bytes: bytes | None
    """The body sent (``None`` when a fault sent none)."""
    push: Push | None = None
    messages: Sequence[Message] = NO_MESSAGES
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()
    """Contract notes: each quirk or deviation seen (CONTRACT.md 2.2, 2.3)."""
    error: str | None = None
    """What was wrong and where, as sent in the ``X-Picky-Error`` header."""
    faults: tuple[str, ...] = ()
    """The fault rules that fired on this request, described."""
    dropped: bool = False
    """Answered like a success but not processed (the rate limit's "drop" action)."""
    delay: float = 0.0
    """Seconds the answer was held back by latency faults."""

    @property
    def body(self) -> Any:
        """The parsed JSON document (``None`` when it did not parse)."""
        return _loads(self.document)

    @property
    def answer(self) -> Any:
        """The JSON body answered (``None`` when it was not JSON, or none was sent)."""
        return _loads(self.answer_bytes)

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
        answer = self.answer
        if answer is None and self.answer_bytes:
            answer = self.answer_bytes.decode("utf-8", "replace")
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
            "answer": answer,
            "push": self.push.to_json() if self.push else None,
            "messages": [m.to_json() for m in self.messages],
            "violations": [
                {"path": v.path, "expected": v.expected, "found": v.found, "status": v.status} for v in self.violations
            ],
            "notes": list(self.notes),
            "error": self.error,
            "faults": list(self.faults),
            "dropped": self.dropped,
            "delay": self.delay,
        }


class Journal:
    """A bounded, thread-safe record of requests; queries return snapshots (lists).

    Entries are kept packed: each is one ``bytes`` object made by :mod:`marshal` from its plain
    fields (:func:`pack`), and a query unpacks the ones it reads (:func:`unpack`). Why: held as
    live records, a full journal of 10,000 pushes is 30,000 objects that the garbage collector
    walks again and again, about 4 us of every push at 20,000 pushes a second, and the young
    collections themselves stall: freeing the oldest entry as each new one comes cancels the
    allocation count that starts them, so the young generation grows to a hundred thousand
    objects before one long collection (40 to 60 ms, the p99 of ``bench/bench.py`` at 64
    connections). Bytes are not containers: the collector never sees them, allocating and freeing
    them does not count, and they are a fifth of the memory. Packing costs about 1 us a push;
    reading a full journal about 3 us an entry.
    """

    def __init__(self, retention: int = 10_000) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.retention = retention
        self._entries: deque[bytes] = deque(maxlen=retention)
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.dropped = 0

    def next_seq(self) -> int:
        """The next request number (``next`` on an ``itertools.count`` is atomic: no lock)."""
        return next(self._seq)

    def append(self, entry: Entry) -> None:
        packed = pack(entry)  # outside the lock: the lock guards the deque and the count only
        with self._lock:
            if len(self._entries) == self.retention:
                self.dropped += 1
            self._entries.append(packed)

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
            packed = list(self._entries)
        return [unpack(blob) for blob in packed]

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
            if number is not None and str(number) not in _numbers(entry.messages):
                continue
            if text is not None and not any(text in t for t in _texts(entry.messages)):
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
        wanted = None if number is None else str(number)
        for entry in self.snapshot():
            if wanted is not None and wanted not in _numbers(entry.messages):
                continue
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


def _numbers(messages: Sequence[Message]) -> Sequence[str]:
    if isinstance(messages, MessageBatch):
        return messages.numbers
    return [m.number for m in messages]


def _texts(messages: Sequence[Message]) -> Sequence[str]:
    if isinstance(messages, MessageBatch):
        return messages.texts
    return [m.text for m in messages]


def pack(entry: Entry) -> bytes:
    """``entry`` as one ``bytes`` object (:func:`unpack` gives it back, equal field by field).

    Marshal format 2, without the back-references of later formats: a fifth faster to write, for
    a little more memory."""
    push = entry.push
    messages = entry.messages
    columns: tuple[Any, ...] | None
    if type(messages) is MessageBatch:
        columns = messages.columns()
    elif messages:
        columns = (tuple(map(tuple, messages)),)
    else:
        columns = None
    violations = entry.violations
    return marshal.dumps(
        (
            entry[:11],
            None if push is None else tuple(push),
            columns,
            tuple(map(_violation_fields, violations)) if violations else (),
            entry[14:],
        ),
        2,
    )


def _violation_fields(violation: Violation) -> tuple[str, str, str, int]:
    return (violation.path, violation.expected, violation.found, violation.status)


def unpack(packed: bytes) -> Entry:
    """The :class:`Entry` that :func:`pack` packed."""
    head, push, columns, violations, tail = marshal.loads(packed)
    messages: Sequence[Message]
    if columns is None:
        messages = NO_MESSAGES
    elif len(columns) == 1:
        messages = tuple(Message._make(fields) for fields in columns[0])
    else:
        messages = MessageBatch(*columns)
    return Entry._make(
        (
            *head,
            None if push is None else Push._make(push),
            messages,
            tuple(Violation(*fields) for fields in violations),
            *tail,
        )
    )
