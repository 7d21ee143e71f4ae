"""The journal: every request the mock received, as immutable records, bounded and queryable.

Like ``responses.calls`` or ``respx.calls``: a test asks what its client sent and what it was
answered. Entries are kept in arrival order; when more than ``retention`` requests have come, the
oldest are dropped (``Journal.dropped`` counts them), so a long run does not grow without limit.
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import itertools
import json
import marshal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, overload

import orjson

from .contract import LongInteger, Violation, json_int

__all__ = [
    "Entry",
    "Journal",
    "Message",
    "MessageBatch",
    "Push",
    "pack_headers",
    "pack_messages",
    "unpack_headers",
]


def pack_headers(raw: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A request's headers (ASGI's ``(name, value)`` byte pairs) as the one bytes object an
    :class:`Entry` keeps: ``name: value`` lines joined by ``\n``.

    One object instead of three per header (a pair and two strings) makes a journal entry about
    half as large and a third as many objects. A full journal of 10,000 entries is walked through
    memory once per 10,000 pushes (each new entry reuses memory an old one freed), and at 64
    connections that walk was a tenth of the server's time (``bench/README.md``). Over HTTP/1.1 a
    name has no ``:`` and a value no line break, so the lines split back exactly. A header from
    somewhere else (an in-process ASGI client) that could break that rule is kept as a JSON array
    of pairs instead, which starts with ``[`` where no header name can."""
    if not raw:
        return b""
    block = b"\n".join([b": ".join(pair) for pair in raw])
    if block.count(b"\n") == len(raw) - 1 and block.count(b": ") == len(raw) and not block.startswith(b"["):
        return block
    return orjson.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in raw])


def unpack_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    """The ``(name, value)`` pairs :func:`pack_headers` packed, as latin-1 strings."""
    if not block:
        return ()
    if block.startswith(b"["):
        return tuple((name, value) for name, value in orjson.loads(block))
    text = block.decode("latin-1")
    return tuple((name, value) for name, _, value in (line.partition(": ") for line in text.split("\n")))


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


def pack_messages(
    first_msg_id: int,
    channel: int,
    numbers: tuple[str, ...],
    texts: tuple[str, ...],
    media: tuple[str | None, ...],
    segments: tuple[int, ...],
    credits: tuple[str, ...],
    references: tuple[str | None, ...],
) -> tuple[Any, ...]:
    """The messages of one push, given by column, as the one plain tuple an :class:`Entry` keeps
    (read them back as :class:`MessageBatch`).

    More than one recipient is kept by column, ``(first_msg_id, channel, numbers, texts, ...)``,
    so a push of 100,000 recipients is eight objects, not 100,000; one recipient is kept flat,
    ``(first_msg_id, channel, number, text, ...)``. Only plain tuples of strings and numbers, which
    the journal can marshal (see :meth:`Journal.append`); a one-recipient push makes one tuple,
    where a batch object and six columns would make seven."""
    if len(numbers) == 1:
        return (first_msg_id, channel, numbers[0], texts[0], media[0], segments[0], credits[0], references[0])
    return (first_msg_id, channel, numbers, texts, media, segments, credits, references)


class MessageBatch(Sequence[Message]):
    """The messages of one push, read as :class:`Message` records from their packed form
    (:func:`pack_messages`); the records are made when a test reads them."""

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

    def __init__(self, push_id: str, packed: tuple[Any, ...]) -> None:
        first, channel, *columns = packed
        if type(columns[0]) is str:  # one recipient, kept flat
            columns = [(value,) for value in columns]  # (Entry.messages reads those itself)
        self._push_id: str = push_id
        self._first: int = first
        self._channel: int = channel
        self._numbers: Sequence[str] = columns[0]
        self._texts: Sequence[str] = columns[1]
        self._media: Sequence[str | None] = columns[2]
        self._segments: Sequence[int] = columns[3]
        self._credits: Sequence[str] = columns[4]
        self._references: Sequence[str | None] = columns[5]

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

    @property
    def numbers(self) -> Sequence[str]:
        """The recipients, in request order (cheap: no records are made)."""
        return self._numbers

    @property
    def texts(self) -> Sequence[str]:
        return self._texts


NO_MESSAGES: Sequence[Message] = ()


class Push(NamedTuple):
    """The normalised push: the request's top level after the quirks of docs/contract.md §2.2 are undone."""

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
            return json.loads(document, parse_int=json_int)  # integers of any length (LongInteger)
        except (ValueError, RecursionError):
            return None


class Entry(NamedTuple):
    """One request received, accepted or not, and the answer it was given. Immutable.

    What an entry holds is stored lean and read through properties: the request's JSON document
    and the answer as the bytes that travelled (``body``, ``answer``), the headers packed
    (``headers``), the push and its messages as plain tuples (``push``, ``messages``). The journal
    keeps each entry as one bytes object until it is first read, and gives back a record equal to
    the one appended (see :meth:`Journal.snapshot`): compare entries with ``==``, not ``is``.
    """

    seq: int
    time: float
    method: str
    path: str
    header_block: bytes
    """The request's headers as stored (see :func:`pack_headers`); read them as :attr:`headers`."""
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
    push_fields: tuple[Any, ...] | None = None
    """The normalised push's fields as stored (a plain tuple); read it as :attr:`push`."""
    packed_messages: tuple[Any, ...] | None = None
    """The messages as stored (:func:`pack_messages`); read them as :attr:`messages`."""
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()
    """Contract notes: each quirk or deviation seen (docs/contract.md §2.2, §2.3)."""
    error: str | None = None
    """What was wrong and where, as sent in the ``X-Picky-Error`` header."""
    faults: tuple[str, ...] = ()
    """The fault rules that fired on this request, described."""
    dropped: bool = False
    """Answered like a success but not processed (the rate limit's "drop" action)."""
    delay: float = 0.0
    """Seconds the answer was held back by latency faults."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The request's headers, ``(name, value)`` in the order received (names lower-cased)."""
        return unpack_headers(self.header_block)

    @property
    def push(self) -> Push | None:
        """The normalised push (accepted pushes only)."""
        return None if self.push_fields is None else Push._make(self.push_fields)

    @property
    def messages(self) -> Sequence[Message]:
        """The messages sent (accepted pushes only), in request order."""
        packed, push_id = self.packed_messages, self.push_id
        if packed is None or push_id is None:
            return NO_MESSAGES
        if type(packed[2]) is str:  # one recipient, kept flat
            first, channel, number, text, media, segments, credit, reference = packed
            return (Message(str(first), push_id, 0, number, text, media, channel, segments, credit, reference),)
        return MessageBatch(push_id, packed)

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


_VIOLATIONS = Entry._fields.index("violations")
_VIOLATION_FIELDS = tuple(field.name for field in dataclasses.fields(Violation))

_MARSHAL_AT_MOST = 1 << 20
"""The largest body :func:`_store` marshals (bytes)."""


def _store(entry: Entry) -> Entry | bytes:
    """How the journal keeps ``entry``: as one bytes object (:mod:`marshal`), read back by
    :func:`_restore` into an equal :class:`Entry`.

    Why one object. A full journal drops its oldest entry at each request, so every entry is
    written into memory that was last touched 10,000 requests earlier, and freeing it touches that
    memory again: an entry of fourteen objects (record, headers, bodies, strings, columns, ids)
    cost about 90 misses of a 1 MiB cache per push (cachegrind's cache simulation, 8,000 pushes
    over a full journal), each evicting data the interpreter was using, where the bare app has
    none. One bytes object costs about 10, for 1 µs of marshalling; it holds no object the garbage
    collector tracks, and it takes 60% of the memory (until it is read: see
    :meth:`Journal.snapshot`). ``marshal`` writes exactly the types an entry holds (str, bytes,
    int, float, bool, None, tuples; violations as tuples) and is read back only by this process
    (its version 4 writes the body once, though an entry holds it twice, as ``raw_body`` and
    ``document``). An entry holding anything else (none does today), or a body of more than
    1 MiB (a copy of which would cost more than its objects: 30 ms on the event loop for a 64 MiB
    body answered 413), is kept as it is, and so is an entry that cannot be copied for want of
    memory: its ids and credits are already taken, and it must not be lost."""
    if len(entry.raw_body) > _MARSHAL_AT_MOST:
        return entry
    fields: tuple[Any, ...] = tuple(entry)
    violations = entry.violations
    if violations:
        kept = tuple(tuple(getattr(v, name) for name in _VIOLATION_FIELDS) for v in violations)
        fields = (*fields[:_VIOLATIONS], kept, *fields[_VIOLATIONS + 1 :])
    try:
        return marshal.dumps(fields, 4)
    except Exception:  # a value marshal cannot write, or no memory for the copy: keep the record
        return entry


def _restore(stored: bytes) -> Entry:
    """The :class:`Entry` that :func:`_store` kept as ``stored``."""
    fields = marshal.loads(stored)
    if fields[_VIOLATIONS]:
        violations = tuple(Violation(*v) for v in fields[_VIOLATIONS])
        fields = (*fields[:_VIOLATIONS], violations, *fields[_VIOLATIONS + 1 :])
    return Entry._make(fields)


RELEASE_BATCH = 256
"""The fewest dropped entries :meth:`Journal.append` frees at a time (more when the garbage
collector's first threshold is higher: see there)."""


def _release_batch() -> int:
    return max(RELEASE_BATCH, gc.get_threshold()[0])


class Journal:
    """A bounded, thread-safe record of requests; queries return snapshots (lists)."""

    def __init__(self, retention: int = 10_000) -> None:
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.retention = retention
        self._entries: deque[Entry | bytes] = deque()
        """Entries as :func:`_store` keeps them, or as :meth:`snapshot` decoded them."""
        self._appended = 0
        """Entries appended since the journal was made (clears included): the entry appended
        ``k``-th is ``_entries[k - (_appended - len(_entries))]`` while it is held."""
        self._decoded_upto = 0
        """The entries appended before this one are all records, or gone (see :meth:`snapshot`)."""
        self._released: list[Entry | bytes] = []
        """Entries dropped but not yet freed: see :meth:`append`."""
        self._release_at = _release_batch()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.dropped = 0

    def next_seq(self) -> int:
        """The next request number (``next`` on an ``itertools.count`` is atomic: no lock)."""
        return next(self._seq)

    def append(self, entry: Entry) -> None:
        """Add ``entry``; past the retention, drop the oldest.

        The entry is kept as one bytes object (see :func:`_store`), which the garbage collector
        does not track. Dropped entries are freed in batches, for the entries :meth:`snapshot` has
        decoded into records: CPython starts a young collection when allocations of container
        objects outnumber deallocations by a threshold (``gc.get_threshold()[0]``, 700 on 3.11),
        and freeing *any* container counts as a deallocation, old ones included. A full journal
        of records that freed one old record per new one would hold that count near zero: young
        collections would stop, the young generation would grow with every push, and the
        collection that finally came would stall the server for 40 to 60 ms. A batch of at least
        the threshold lets collections come at their pace. The entries of a batch are held beyond
        the retention until it is freed; they are never returned.
        """
        stored = _store(entry)
        released = None
        with self._lock:
            entries = self._entries
            if len(entries) >= self.retention:
                self.dropped += 1
                self._released.append(entries.popleft())
                if len(self._released) >= self._release_at:
                    released, self._released = self._released, []
                    self._release_at = _release_batch()
            entries.append(stored)
            self._appended += 1
        del released  # freed here, outside the lock

    def clear(self) -> None:
        """Forget every entry (sequence numbers go on, so an old id never names a new entry)."""
        with self._lock:
            self._entries.clear()
            self._released.clear()
            self._decoded_upto = self._appended
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.snapshot())

    def snapshot(self) -> list[Entry]:
        """Every entry held, oldest first.

        Entries are kept marshalled (see :func:`_store`) and decoded when first read: about 2 µs
        an accepted push, 7 µs a request rejected with three violations (a full journal of
        10,000 entries: 30 to 70 ms, the first time). The journal then keeps the record in place
        of the bytes, so each entry is decoded once (a test that reads ``requests[-1]`` after
        each of 3,000 pushes decodes 3,000 entries, not 4.5 million), every later read gives the
        same records, and an entry is held once, as bytes or as a record (which takes about twice
        the memory). A server under load that nobody reads keeps bytes alone."""
        with self._lock:
            held = list(self._entries)
            first = self._appended - len(held)  # how many came before held[0]
            start = max(0, self._decoded_upto - first)
        unread: list[tuple[int, bytes]] = [
            (place, stored) for place in range(start, len(held)) if type(stored := held[place]) is bytes
        ]
        for place, stored in unread:  # nothing changes until all are decoded
            held[place] = _restore(stored)
        with self._lock:
            entries = self._entries
            shift = first - (self._appended - len(entries))  # held[i] is now entries[i + shift]
            for place, stored in unread:
                now = place + shift
                if now >= 0 and entries[now] is stored:  # not dropped or cleared since, nor decoded by another read
                    entries[now] = held[place]
            self._decoded_upto = max(self._decoded_upto, first + len(held))
        return held  # type: ignore[return-value]

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
        """The requests that match every criterion given. ``number``: a recipient of the request,
        accepted or not (for a rejected one, as its body wrote it: digits, or a string as sent);
        ``text``: a substring of any message's text (accepted pushes)."""
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
            if number is not None and str(number) not in (
                _body_numbers(entry.body) if entry.packed_messages is None else _column(entry, _NUMBERS)
            ):
                continue
            if text is not None and not any(text in t for t in _column(entry, _TEXTS)):
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
        wanted_push = None if push_id is None else str(push_id)
        for entry in self.snapshot():  # the cheap tests first: no records are made for a miss
            packed = entry.packed_messages
            if packed is None or (wanted_push is not None and entry.push_id != wanted_push):
                continue
            if (channel is not None and packed[_CHANNEL] != channel) or (
                wanted is not None and wanted not in _column(entry, _NUMBERS)
            ):
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


def _body_numbers(body: Any) -> list[str]:
    """The recipients a request's body names (``number``, else ``messenger_id``), as written."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    found = []
    for item in data:
        if isinstance(item, dict):
            value = item.get("number", item.get("messenger_id"))
            if isinstance(value, (str, int, LongInteger)) and not isinstance(value, bool):
                found.append(str(value))
    return found


_CHANNEL, _NUMBERS, _TEXTS = 1, 2, 3
"""Places in a :func:`pack_messages` tuple."""


def _column(entry: Entry, place: int) -> Sequence[Any]:
    """One column of an entry's packed messages (``()`` when it has none), read in place."""
    packed = entry.packed_messages
    if packed is None:
        return ()
    column = packed[place]
    return (column,) if type(column) is str else column
