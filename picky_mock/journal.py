"""The journal: every request the mock received, as immutable records, bounded and queryable.

Like ``responses.calls`` or ``respx.calls``: a test asks what its client sent and what it was
answered. Entries are kept in arrival order; past ``retention`` entries or ``max_bytes`` of
estimated memory, the oldest are dropped (``Journal.dropped`` counts them), so a long run does not
grow without limit. :class:`JournalStore` is the interface a store implements (the in-memory
:class:`Journal` here; a durable store later), and :class:`Query` the criteria every store reads
the same way.
"""

from __future__ import annotations

import base64
import bisect
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import orjson

from .errors import ConfigError
from .recipients import body_recipients, number_matches, text_matches, wanted_number

if TYPE_CHECKING:
    from .contract import Violation

T = TypeVar("T")

__all__ = [
    "BODY_PREFIX_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PAGE",
    "INSTANT_REPLY",
    "MAX_PAGE",
    "MAX_RETENTION",
    "STEP",
    "Entry",
    "Journal",
    "JournalStore",
    "Message",
    "MessagePage",
    "Page",
    "Push",
    "Query",
    "body_prefix",
    "check_bounds",
    "header_pairs",
    "run_steps",
]

MAX_RETENTION = 10_000_000
"""The most entries a journal may be asked to keep."""
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""The estimated memory a journal keeps by default before it drops its oldest entries."""
MIN_MAX_BYTES = 1024 * 1024
MAX_MAX_BYTES = 1 << 40
BODY_PREFIX_BYTES = 64 * 1024
"""The most bytes of a request's body an entry keeps as :attr:`Entry.raw_body` (a refused
oversize body is kept as this prefix and its length, :attr:`Entry.body_size`)."""
INSTANT_REPLY = "instant reply"
"""The :attr:`Entry.path` of an instant reply: a message the mock sent because the app's incoming
webhook answered with one, journaled as an entry of its own (no request came in for it)."""
DEFAULT_PAGE = 100
"""Entries (or messages) in a page when no ``limit`` is given."""
MAX_PAGE = 1000
"""The largest ``limit`` a page query takes."""
STEP = 2048
"""The most entries (or messages) a query walks in one step: see :meth:`Journal.page_steps`
(about a millisecond of matching)."""
PAGE_BYTES = 16 * 1024 * 1024
"""A page ends early once its entries' estimated memory passes this (it holds at least one), so
that a page of large pushes stays a reasonable answer."""


def header_pairs(raw: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """A request's ASGI headers as the ``(name, value)`` string pairs an :class:`Entry` keeps."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def body_prefix(raw: bytes) -> bytes:
    """What an entry keeps of a body of bytes: all of it, up to :data:`BODY_PREFIX_BYTES`."""
    return raw if len(raw) <= BODY_PREFIX_BYTES else raw[:BODY_PREFIX_BYTES]


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


class Entry(NamedTuple):
    """One request received, accepted or not, and the answer it was given. Immutable: every query
    gives back the same record, which compares equal field by field. Built by keyword (a named
    tuple: one is made for every push, and it is the cheapest immutable record to make)."""

    seq: int
    """The request's number (its ``X-Picky-Request-Id``), increasing across the server's life."""
    time: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    """The request's headers, ``(name, value)`` in the order received (names lower-cased)."""
    body: Any = None
    """The JSON document as parsed (the body, or the ``data`` form field or query parameter), as
    sent: before any lenient-mode repair; ``None`` when it was not JSON or was not read."""
    raw_body: bytes = b""
    """The bytes of the body, up to :data:`BODY_PREFIX_BYTES` (see :attr:`body_size`)."""
    body_size: int = 0
    """The length of the body received, in bytes (more than ``len(raw_body)`` when it was cut)."""
    http_status: int = 200
    """The HTTP status sent (0 when a fault sent none)."""
    status: int | None = None
    """The API status code of the answer (100 for success), if one was sent."""
    push_id: str | None = None
    answer_bytes: bytes | None = None
    """The body sent (``None`` when a fault sent none); :attr:`answer` is it parsed."""
    push: Push | None = None
    """The normalised push (accepted pushes only)."""
    messages: tuple[Message, ...] = ()
    """The messages sent (accepted pushes only), in request order."""
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
    reply_to: str | None = None
    """On an instant reply (``path`` is :data:`INSTANT_REPLY`, ``method`` empty): the ``unique-id``
    of the customer's message it answers. ``body`` is then the handler's answer, ``push`` and
    ``messages`` the message sent."""

    @property
    def answer(self) -> Any:
        """The JSON body answered (``None`` when it was not JSON, or none was sent)."""
        if not self.answer_bytes:
            return None
        try:
            return orjson.loads(self.answer_bytes)
        except orjson.JSONDecodeError:
            return None

    @property
    def accepted(self) -> bool:
        """Answered status 100 and processed (a dropped request is answered 100 but not sent)."""
        return self.status == 100 and not self.dropped

    @property
    def numbers(self) -> tuple[str, ...]:
        """The recipients of the request: its messages' numbers when accepted, else as its body
        names them (see :func:`picky_mock.recipients.recipient_of`)."""
        if self.messages:
            return tuple(message.number for message in self.messages)
        return body_recipients(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view, for the admin API."""
        try:
            raw: dict[str, Any] = {"text": self.raw_body.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"base64": base64.b64encode(self.raw_body).decode("ascii")}
        if self.body_size > len(self.raw_body):
            raw["truncated"] = True
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
            "body_size": self.body_size,
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
            "reply_to": self.reply_to,
        }


def _index_numbers(entry: Entry) -> Iterable[str]:
    """The recipients the journal indexes ``entry`` by, each once."""
    messages = entry.messages
    if len(messages) == 1:
        return (messages[0].number,)
    if messages:
        return dict.fromkeys(message.number for message in messages)
    return dict.fromkeys(body_recipients(entry.body)) if entry.body is not None else ()


def estimated_size(entry: Entry) -> int:
    """A cheap estimate of the memory ``entry`` holds, in bytes, for the journal's byte bound: its
    bytes, its parsed body (a few times its length), and a share per header and message (figures
    from ``tracemalloc``: a single-recipient push takes about 2.5 KB, a rejected one 1.9 KB)."""
    size = 1000 + len(entry.raw_body) + 160 * len(entry.headers) + 400 * len(entry.messages)
    if entry.body is not None:
        size += 4 * entry.body_size
    if entry.answer_bytes is not None:
        size += len(entry.answer_bytes)
    return size


@dataclass(frozen=True, slots=True)
class Query:
    """Criteria on entries; every one given must hold. Every store reads them this way.

    ``number``: a recipient of the request, accepted or not (for a rejected one, as its body
    wrote it); ``text``: contained in the text of one of its messages (accepted pushes),
    case-sensitively (see :mod:`picky_mock.recipients`)."""

    path: str | None = None
    status: int | None = None
    push_id: str | None = None
    number: str | None = None
    text: str | None = None
    accepted: bool | None = None

    @classmethod
    def of(
        cls,
        *,
        path: str | None = None,
        status: int | None = None,
        push_id: str | int | None = None,
        number: str | int | None = None,
        text: str | None = None,
        accepted: bool | None = None,
    ) -> Query:
        """Criteria as a user gives them (ids and numbers as strings or whole numbers)."""
        return cls(
            path,
            status,
            None if push_id is None else str(push_id),
            None if number is None else wanted_number(number),
            text,
            accepted,
        )

    @property
    def empty(self) -> bool:
        return self == _EVERYTHING

    def matches(self, entry: Entry) -> bool:
        if self.path is not None and entry.path != self.path:
            return False
        if self.status is not None and entry.status != self.status:
            return False
        if self.push_id is not None and entry.push_id != self.push_id:
            return False
        if self.accepted is not None and entry.accepted != self.accepted:
            return False
        if self.number is not None and not any(number_matches(self.number, n) for n in entry.numbers):
            return False
        return self.text is None or any(text_matches(self.text, m.text) for m in entry.messages)


_EVERYTHING = Query()


class MessagePage(NamedTuple):
    """One page of messages: the messages, how many match in all, and the next page's offset."""

    messages: list[Message]
    total: int
    next: int | None
    """The ``offset`` of the next page; ``None`` on the last."""


class Page(NamedTuple):
    """One page of a query: the entries, how many match in all, and where the next page starts."""

    entries: list[Entry]
    total: int
    """Entries held that match the query (all pages)."""
    next: int | None
    """The ``seq`` to pass as ``after`` for the next page: the last entry of this page (the
    ``after`` given when the page is empty); ``None`` when nothing was ever returned."""
    more: bool
    """Whether entries that match come after this page (now)."""


@runtime_checkable
class JournalStore(Protocol):
    """What a journal store does: the in-memory :class:`Journal`, or a durable one.

    ``after=N`` means "the entries appended after entry N" (what a live view polls for); when N is
    no longer held, the entries held with a larger ``seq``."""

    retention: int
    max_bytes: int

    @property
    def dropped(self) -> int:
        """Entries dropped by the bounds since the last :meth:`clear`."""
        ...

    def next_seq(self) -> int: ...

    def append(self, entry: Entry) -> int: ...

    def get(self, seq: int) -> Entry | None: ...

    def page(self, query: Query = ..., *, after: int | None = None, limit: int = DEFAULT_PAGE) -> Page: ...

    def page_steps(
        self, query: Query = ..., *, after: int | None = None, limit: int = DEFAULT_PAGE
    ) -> Generator[None, None, Page]:
        """The same page, computed in steps: the caller may run other work between two (a store
        that answers at once yields nothing)."""
        ...

    def message_page_steps(
        self,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
    ) -> Generator[None, None, MessagePage]: ...

    def entries(self, **criteria: Any) -> list[Entry]: ...

    def messages(
        self,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
    ) -> list[Message]: ...

    def thread(self, number: str | int) -> list[Entry]: ...

    def snapshot(self) -> list[Entry]: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


def run_steps(steps: Generator[None, None, T]) -> T:
    """The result of a stepped query, run to its end at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def check_limit(limit: int) -> int:
    """``limit`` if it is a page size a query takes, else :class:`ConfigError` naming the range."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ConfigError(f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}")
    return limit


def check_bounds(retention: int, max_bytes: int) -> None:
    """:class:`ConfigError`, naming the bound, unless a journal can keep ``retention`` entries
    and ``max_bytes`` of them."""
    if isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= MAX_RETENTION:
        raise ConfigError(f"retention must be from 1 to {MAX_RETENTION:,}, not {retention!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not MIN_MAX_BYTES <= max_bytes <= MAX_MAX_BYTES:
        raise ConfigError(
            f"journal_bytes (the journal's memory bound) must be a whole number from {MIN_MAX_BYTES:,} "
            f"to {MAX_MAX_BYTES:,}, not {max_bytes!r}"
        )


@dataclass(slots=True)
class _Indexes:
    """Where each entry is, by absolute append position (positions only grow)."""

    held: dict[int, Entry] = field(default_factory=dict)
    sizes: deque[int] = field(default_factory=deque)
    """The estimated size of each entry held, oldest first."""
    by_seq: dict[int, int] = field(default_factory=dict)
    by_push: dict[str, int] = field(default_factory=dict)
    by_number: dict[str, int | deque[int]] = field(default_factory=dict)
    """A recipient's one position, or its positions once it has several (a deque per recipient
    would take more memory than most entries)."""


class Journal:
    """A bounded, thread-safe, in-memory :class:`JournalStore`.

    Entries are held by append position, with indexes by ``seq``, ``push_id`` and recipient, so a
    page of a large journal is found without a walk of it; a query takes the lock only to read
    where to start, and reads the entries without it. A query that must walk (by status, text,
    path) can run in steps (:meth:`page_steps`), which the admin API interleaves with pushes."""

    def __init__(self, retention: int = 10_000, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        check_bounds(retention, max_bytes)
        self.retention = retention
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        self._index = _Indexes()
        self._base = 0
        """The append position of the oldest entry held."""
        self._end = 0
        """The append position the next entry takes."""
        self._bytes = 0
        self._dropped = 0

    # -- writing ---------------------------------------------------------------------------

    def next_seq(self) -> int:
        """The next request number (numbers go on across clears, so an old one never names a new entry)."""
        with self._seq_lock:
            self._last_seq += 1
            return self._last_seq

    def append(self, entry: Entry) -> int:
        """Add ``entry``; past the retention or the byte bound, drop the oldest (the newest entry
        is always kept). Returns its ``seq``."""
        size = estimated_size(entry)
        numbers = _index_numbers(entry)
        with self._lock:
            index = self._index
            position = self._end
            self._end = position + 1
            index.held[position] = entry
            index.sizes.append(size)
            index.by_seq[entry.seq] = position
            if entry.push_id is not None:
                index.by_push[entry.push_id] = position
            by_number = index.by_number
            for number in numbers:
                positions = by_number.get(number)
                if positions is None:
                    by_number[number] = position
                elif isinstance(positions, int):
                    by_number[number] = deque((positions, position))
                else:
                    positions.append(position)
            self._bytes += size
            while self._end - self._base > self.retention or (
                self._bytes > self.max_bytes and self._end - self._base > 1
            ):
                self._drop_oldest()
        return entry.seq

    def _drop_oldest(self) -> None:
        """Forget the oldest entry (the lock is held)."""
        index = self._index
        position = self._base
        self._base = position + 1
        entry = index.held.pop(position)
        self._bytes -= index.sizes.popleft()
        self._dropped += 1
        if index.by_seq.get(entry.seq) == position:
            del index.by_seq[entry.seq]
        if entry.push_id is not None and index.by_push.get(entry.push_id) == position:
            del index.by_push[entry.push_id]
        if entry.messages or entry.body is not None:
            by_number = index.by_number
            for number in _index_numbers(entry):
                positions = by_number.get(number)
                if positions == position:
                    del by_number[number]
                elif isinstance(positions, deque) and positions[0] == position:
                    positions.popleft()
                    if len(positions) == 1:
                        by_number[number] = positions[0]

    def clear(self) -> None:
        """Forget every entry and the drop count (sequence numbers go on)."""
        with self._lock:
            self._index = _Indexes()
            self._base = self._end
            self._bytes = 0
            self._dropped = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Entries dropped by the bounds since the last :meth:`clear`."""
        return self._dropped

    @property
    def bytes(self) -> int:
        """The estimated memory of the entries held."""
        return self._bytes

    def __len__(self) -> int:
        return self._end - self._base

    def get(self, seq: int) -> Entry | None:
        """The entry of request ``seq``, if it is held."""
        index = self._index
        position = index.by_seq.get(seq)
        return None if position is None else index.held.get(position)

    def snapshot(self) -> list[Entry]:
        """Every entry held, oldest first."""
        with self._lock:
            return list(self._index.held.values())

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.snapshot())

    def _candidates(self, query: Query, after: int | None) -> tuple[_Indexes, Sequence[int], int]:
        """The positions an entry that matches ``query`` can be at (ascending), and the first
        position after the cursor; under the lock, with the index they belong to."""
        with self._lock:
            index = self._index
            base, end = self._base, self._end
            positions: Sequence[int]
            if query.push_id is not None:
                found = index.by_push.get(query.push_id)
                positions = () if found is None else (found,)
            elif query.number is not None:
                held_at = index.by_number.get(query.number, ())
                positions = (held_at,) if isinstance(held_at, int) else list(held_at)
            else:
                positions = range(base, end)
            if after is None:
                start = base
            elif (at := index.by_seq.get(after)) is not None:
                start = at + 1
            else:  # not held (dropped, or not yet appended): what came with a larger seq
                held = index.held
                start = bisect.bisect_right(range(base, end), after, key=lambda p: held[p].seq)
                start += base
        return index, positions, start

    def page(self, query: Query = _EVERYTHING, *, after: int | None = None, limit: int = DEFAULT_PAGE) -> Page:
        """Up to ``limit`` entries that match ``query``, appended after entry ``after``, oldest first."""
        return run_steps(self.page_steps(query, after=after, limit=limit))

    def page_steps(
        self, query: Query = _EVERYTHING, *, after: int | None = None, limit: int = DEFAULT_PAGE
    ) -> Generator[None, None, Page]:
        """:meth:`page`, computed in steps of at most :data:`STEP` entries: the caller may let
        other work run between two (the admin API lets the event loop serve pushes)."""
        check_limit(limit)
        index, positions, start = self._candidates(query, after)
        held = index.held
        found: list[Entry] = []
        room = PAGE_BYTES
        more = False
        first = bisect.bisect_left(positions, start)
        if query.empty:  # no walk: the page alone
            total = len(held)
            for position in positions[first:]:
                entry = held.get(position)
                if entry is None:
                    continue
                if len(found) == limit or room < 0:
                    more = True
                    break
                found.append(entry)
                room -= estimated_size(entry)
        else:
            total = 0
            for place, position in enumerate(positions):
                if place % STEP == STEP - 1:
                    yield
                entry = held.get(position)
                if entry is None or not query.matches(entry):
                    continue
                total += 1
                if place >= first:
                    if len(found) < limit and room >= 0:
                        found.append(entry)
                        room -= estimated_size(entry)
                    else:
                        more = True
        cursor = found[-1].seq if found else after
        return Page(found, total, cursor, more)

    def message_page_steps(
        self,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
    ) -> Generator[None, None, MessagePage]:
        """Up to ``limit`` of the messages :meth:`messages` gives, from the ``offset``-th, with
        their total; in steps of at most :data:`STEP` messages (see :meth:`page_steps`)."""
        check_limit(limit)
        query = Query.of(number=number, push_id=push_id)
        wanted = query.number
        index, positions, _ = self._candidates(query, None)
        found: list[Message] = []
        total = walked = 0
        for entry in map(index.held.get, positions):
            walked += 1
            if walked % STEP == 0:
                yield
            if entry is None or not entry.messages or not entry.accepted:
                continue
            if query.push_id is not None and entry.push_id != query.push_id:
                continue
            for message in entry.messages:
                walked += 1
                if walked % STEP == 0:
                    yield
                if channel is not None and message.channel != channel:
                    break  # one channel a push
                if wanted is not None and not number_matches(wanted, message.number):
                    continue
                if text is not None and not text_matches(text, message.text):
                    continue
                if offset <= total < offset + limit:
                    found.append(message)
                total += 1
        following = offset + len(found)
        return MessagePage(found, total, following if following < total else None)

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
        """Every entry that matches every criterion given (see :class:`Query`), oldest first."""
        query = Query.of(path=path, status=status, push_id=push_id, number=number, text=text, accepted=accepted)
        index, positions, _ = self._candidates(query, None)
        held = index.held
        return [entry for entry in map(held.get, positions) if entry is not None and query.matches(entry)]

    def pushes(self) -> list[Entry]:
        """The accepted pushes, oldest first (not the balance or delivery-report requests, nor the
        instant replies: :meth:`messages` has those too)."""
        return [e for e in self.snapshot() if e.accepted and e.push is not None and e.reply_to is None]

    def thread(self, number: str | int) -> list[Entry]:
        """Every request held that names recipient ``number``, accepted or not, and every instant
        reply sent to it, oldest first."""
        return self.entries(number=number)

    def messages(
        self,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
    ) -> list[Message]:
        """Messages sent, of accepted pushes and instant replies, that match every criterion
        given (``number`` exactly, ``text`` contained, case-sensitively: see
        :mod:`picky_mock.recipients`)."""
        query = Query.of(number=number, push_id=push_id)
        wanted = query.number
        index, positions, _ = self._candidates(query, None)
        found: list[Message] = []
        for entry in map(index.held.get, positions):
            if entry is None or not entry.messages or not entry.accepted:
                continue
            if query.push_id is not None and entry.push_id != query.push_id:
                continue
            for message in entry.messages:
                if channel is not None and message.channel != channel:
                    break  # one channel a push
                if wanted is not None and not number_matches(wanted, message.number):
                    continue
                if text is not None and not text_matches(text, message.text):
                    continue
                found.append(message)
        return found
