"""The life of a message after the push: its delivery state, the moves allowed, and who moves it.

docs/contract.md §6.1: every accepted message starts *Submitted* (4) and may become *Delivered* (1), *Read*
(3), *Failed* (2, with an ``error_message``), *Refunded* (5, its credit goes back) or *Unknown* (0).
There is no "sent" state. The pieces, each usable alone:

- :class:`State`, :data:`LEGAL_MOVES` and :func:`refusal`: the state machine. Read never happens on the
  phone-automation channels (1 to 4) nor for a group, nor before Delivered; nothing follows Refunded or
  Read. A refused move raises :class:`IllegalTransition` (msg_id, from, to, why) and records nothing.
- :class:`Ledger`: every accepted message (:meth:`Ledger.accept`) with a timeline of immutable
  :class:`Transition` records; moves on one message (:meth:`Ledger.move`), on all messages of a push
  (:meth:`Ledger.move_push`) or on every message to a number (:meth:`Ledger.move_number`). A move to
  Refunded hands the credit to ``on_refund(message, credit)`` (the account book gives it back). Every
  recorded transition is handed, in order, to the subscribers (:meth:`Ledger.subscribe`): the event
  webhook (:class:`~picky_mock.webhooks.EventReporter`), the log, a live view.
- :class:`LifecyclePolicy` (:class:`ChannelPolicy` per channel, :class:`Delay` fixed or a seeded spread)
  says when a message is delivered and read and which seeded share fails or is refunded.
  :meth:`LifecyclePolicy.plan` is a pure function of (seed, msg_id, channel), so a message's fate does
  not depend on what else is in flight.
- :class:`Lifecycle` ties a ledger, a clock and a policy: :meth:`Lifecycle.accept` records a message and
  schedules its moves on the clock (moves due at once are made at once). A :class:`DeliveryFault` (what
  a fault rule asks for) makes the message fail with a given ``error_message`` and/or changes how its
  reports travel (:class:`Report`: never sent, sent twice, out of order); the transition carries that
  ``report`` and the reporter honours it, so the state itself is always right.

Wiring: the backend makes one ``Ledger(clock, on_refund=...)`` and one ``Lifecycle(ledger, clock,
policy)``; after accepting a push it calls :meth:`Lifecycle.accept` per message, or, when nothing
will move them later (no policy or one that moves them at once, :meth:`LifecyclePolicy.immediate`,
and no fault), :meth:`Ledger.defer` for the whole push (records built on first use, the at-once
moves handed to the subscribers as they happen, whole to those that take a :class:`PlannedPush`);
``picky_server.deliver(...)`` and the admin API call :meth:`Ledger.move` and friends with
``how=How.DEMAND``; :meth:`Ledger.get` / :meth:`Ledger.messages` give the timeline to the journal views.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import random
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, NamedTuple

from .clock import Clock
from .errors import ConfigError, PickyMockError
from .pricing import parse_amount

__all__ = [
    "DEFAULT_FAIL_ERROR",
    "DEFAULT_REFUND_ERROR",
    "LEGAL_MOVES",
    "MAX_DELAY",
    "MAX_ERROR_MESSAGE",
    "PHONE_CHANNELS",
    "ChannelPolicy",
    "Delay",
    "DeliveryFault",
    "How",
    "IllegalTransition",
    "Ledger",
    "Lifecycle",
    "LifecycleError",
    "LifecyclePolicy",
    "Listener",
    "Move",
    "PlannedPush",
    "Report",
    "State",
    "Step",
    "TrackedMessage",
    "Transition",
    "UnknownMessage",
    "describe",
    "log_transitions",
    "parse_duration",
    "parse_state",
    "refusal",
]

log = logging.getLogger("picky_mock")

#: Channels sent through a phone ("Phone Automation"): never a read receipt (docs/contract.md §6.1).
PHONE_CHANNELS = frozenset({1, 2, 3, 4})


class State(IntEnum):
    """A delivery state, numbered as the Delivery Report API and the event webhook send it."""

    UNKNOWN = 0
    DELIVERED = 1
    FAILED = 2
    READ = 3
    SUBMITTED = 4
    REFUNDED = 5


#: Where each state may go. Read and Refunded are final; a failed message may still be refunded.
LEGAL_MOVES: Mapping[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.DELIVERED, State.FAILED, State.REFUNDED, State.UNKNOWN}),
    State.UNKNOWN: frozenset({State.DELIVERED, State.FAILED, State.REFUNDED}),
    State.DELIVERED: frozenset({State.READ}),
    State.FAILED: frozenset({State.REFUNDED}),
    State.READ: frozenset(),
    State.REFUNDED: frozenset(),
}


class How(str, Enum):
    """What made a transition."""

    ACCEPTED = "accepted"
    """The push was accepted: the first, Submitted, record."""
    DEMAND = "on demand"
    POLICY = "policy"
    FAULT = "fault"


class Report(str, Enum):
    """How the report of a transition travels to the event webhook (a fault may change it)."""

    NORMAL = "normal"
    NEVER = "never"
    """The state changes, but no webhook is sent."""
    TWICE = "twice"
    """The webhook is sent two times."""
    OUT_OF_ORDER = "out of order"
    """The webhook is held and sent after the message's next report."""


class LifecycleError(PickyMockError):
    """A lifecycle request that cannot be done; ``field`` names what was wrong."""

    field: str = "msg_id"


class UnknownMessage(LifecycleError):
    """No accepted message has this id (or push id, or number)."""

    def __init__(self, value: str, *, field: str = "msg_id") -> None:
        self.value = value
        self.field = field
        super().__init__(f"{field}: no accepted message with {field} {value!r}")


class IllegalTransition(LifecycleError):
    """A move the state machine refuses; nothing was recorded."""

    field = "status"

    def __init__(self, msg_id: str, from_state: State, to_state: State, reason: str) -> None:
        self.msg_id = msg_id
        self.from_state = from_state
        self.to_state = to_state
        self.reason = reason
        super().__init__(
            f"message {msg_id}: cannot move from {from_state.value} {from_state.name} "
            f"to {to_state.value} {to_state.name}: {reason}"
        )


_STATE_NAMES = {s.name.lower(): s for s in State}


def parse_state(value: object, *, field: str = "status") -> State:
    """A :class:`State` from ``3``, ``"3"``, ``"read"`` or ``State.READ``; else a :class:`LifecycleError`."""
    if isinstance(value, State):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _STATE_NAMES:
            return _STATE_NAMES[text]
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value in State._value2member_map_:
        return State(value)
    error = LifecycleError(f"{field}: {value!r} is not a delivery state (0-5 or {', '.join(_STATE_NAMES)})")
    error.field = field
    raise error


def refusal(current: State, target: State, *, channel: int, group: bool = False) -> str | None:
    """Why ``current -> target`` is illegal for a message on ``channel``, or ``None`` if it is legal."""
    if target is State.READ:
        if channel in PHONE_CHANNELS:
            return f"channel {channel} is phone automation, which never reports Read"
        if group:
            return "a group never reports Read"
    if target in LEGAL_MOVES[current]:
        return None
    if current in (State.REFUNDED, State.READ):
        return f"{current.name.title()} is final"
    if target is State.READ:
        return "Read comes only after Delivered"
    if target is current:
        return f"already {current.name.title()}"
    return f"{current.name.title()} never becomes {target.name.title()}"


class Transition(NamedTuple):
    """One recorded state change of one message (immutable; a named tuple, cheap to make)."""

    seq: int
    """Order of the transition among all the ledger's transitions."""
    msg_id: str
    push_id: str
    number: str
    state: State
    previous: State | None
    """``None`` for the first record (Submitted at acceptance)."""
    at: float
    """Clock time, seconds since the epoch."""
    how: How
    error_message: str = ""
    report: Report = Report.NORMAL

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "msg_id": self.msg_id,
            "push_id": self.push_id,
            "number": self.number,
            "status": int(self.state),
            "state": self.state.name.lower(),
            "previous": None if self.previous is None else int(self.previous),
            "at": self.at,
            "how": self.how.value,
            "error_message": self.error_message,
            "report": self.report.value,
        }


class TrackedMessage(NamedTuple):
    """A message as the ledger knows it: what was sent and its timeline (a snapshot, immutable)."""

    msg_id: str
    push_id: str
    number: str
    channel: int
    token: str
    credit: str
    text: str
    media: str | None = None
    reference_number: str | None = None
    group: bool = False
    timeline: tuple[Transition, ...] = ()

    @property
    def state(self) -> State:
        return self.timeline[-1].state if self.timeline else State.SUBMITTED

    @property
    def error_message(self) -> str:
        return self.timeline[-1].error_message if self.timeline else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "push_id": self.push_id,
            "number": self.number,
            "channel": self.channel,
            "credit": self.credit,
            "text": self.text,
            "media": self.media,
            "reference_number": self.reference_number,
            "group": self.group,
            "status": int(self.state),
            "timeline": [t.to_json() for t in self.timeline],
        }


#: A subscriber: called with each recorded transition and the message's snapshot after it.
Listener = Callable[[Transition, TrackedMessage], None]


@dataclass(slots=True)
class _Record:
    message: TrackedMessage  # without its timeline
    timeline: list[Transition] = field(default_factory=list)
    fault: DeliveryFault | None = None

    def snapshot(self) -> TrackedMessage:
        # The message's fields, its timeline last: twice as fast as ``_replace``, and every
        # transition published makes one.
        return TrackedMessage._make((*self.message[:-1], tuple(self.timeline)))


class _IdIndex:
    """The msg_ids of each push (or number), oldest first. A key with one msg_id (most pushes have
    one recipient) holds the string itself, not a deque: a deque is 600 bytes and an object for the
    collector to walk, for every single-recipient push the ledger keeps."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: dict[str, str | deque[str]] = {}

    def add(self, key: str, msg_id: str) -> None:
        held = self._ids.get(key)
        if held is None:
            self._ids[key] = msg_id
        elif isinstance(held, str):
            self._ids[key] = deque((held, msg_id))
        else:
            held.append(msg_id)

    def ids(self, key: str) -> list[str]:
        held = self._ids.get(key)
        if held is None:
            return []
        return [held] if isinstance(held, str) else list(held)

    def remove(self, key: str, msg_id: str) -> None:
        held = self._ids.get(key)
        if held is None:
            return
        if isinstance(held, str):
            if held == msg_id:
                del self._ids[key]
            return
        if held and held[0] == msg_id:
            held.popleft()
        elif msg_id in held:
            held.remove(msg_id)
        if len(held) == 1:
            self._ids[key] = held[0]
        elif not held:
            del self._ids[key]

    def clear(self) -> None:
        self._ids.clear()


class _Deferred(NamedTuple):
    """A push whose records are not built yet (:meth:`Ledger.defer`)."""

    push_id: str
    first: int
    size: int
    at: float
    token: str
    messages: Sequence[Any]
    seq: int
    """The ``seq`` before the push's first transition: each message holds ``1 + len(steps)`` from there."""
    steps: tuple[Step, ...]
    """The moves every message made as it was accepted (an at-once policy), after Submitted."""


class PlannedPush(NamedTuple):
    """A push whose messages all made the same moves the moment they were accepted (an at-once
    policy), as handed to a subscriber's ``planned`` callback (:meth:`Ledger.subscribe`): one call
    for the whole push instead of one per transition. ``messages`` are the journal's, in order; each
    went Submitted, then through ``steps``, all at clock time ``at``."""

    push_id: str
    token: str
    at: float
    messages: Sequence[Any]
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Move:
    """A requested move, for :meth:`Ledger.move_many`."""

    msg_id: str
    state: State
    error_message: str = ""
    how: How = How.DEMAND
    report: Report = Report.NORMAL


class Ledger:
    """Every accepted message's delivery state and timeline, bounded and thread-safe.

    ``retention`` bounds how many messages are kept: past it the oldest are forgotten (``evicted``
    counts them) and a move on them raises :class:`UnknownMessage`. ``on_refund(message, credit)`` is
    called when a message becomes Refunded, before the transition is recorded; if it raises, the move
    is not made. Subscribers run in transition order, under the ledger's lock: they must be quick
    (hand the work to a queue) and never wait for another thread that uses the ledger. A subscriber
    that reads the ledger back while a deferred push's transitions are handed to it sees the
    message's last state (its records are built with every step), not the one being published.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        retention: int = 100_000,
        on_refund: Callable[[TrackedMessage, Decimal], None] | None = None,
    ) -> None:
        if retention < 1:
            raise ConfigError(f"ledger retention: expected at least 1, got {retention!r}")
        self.clock = clock
        self.retention = retention
        self.on_refund = on_refund
        self._lock = threading.RLock()
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._by_push = _IdIndex()
        self._by_number = _IdIndex()
        self._seq = 0
        self._listeners: list[Listener] = []
        self._on_accept: list[Listener] = []
        """The listeners that also want the first record (Submitted at acceptance)."""
        self._gates: dict[Listener, Callable[[], bool]] = {}
        """``active`` predicates of the listeners that gave one (:meth:`subscribe`)."""
        self._planned: dict[Listener, Callable[[PlannedPush], None]] = {}
        """``planned`` callbacks of the listeners that gave one (:meth:`subscribe`)."""
        self._wholes: tuple[tuple[Callable[[PlannedPush], None], Callable[[], bool] | None], ...] = ()
        self._accepting_wholes: tuple[tuple[Callable[[PlannedPush], None], Callable[[], bool] | None], ...] = ()
        self._eaches: tuple[Callable[[], bool] | None, ...] = ()
        self._accepting_eaches: tuple[Callable[[], bool] | None, ...] = ()
        # Oldest first, forgotten from the front: an OrderedDict does that in constant time (a dict
        # scans the slots its earlier deletions left).
        self._deferred: OrderedDict[str, _Deferred] = OrderedDict()
        self._deferred_firsts: list[int] = []
        """The first msg_ids of deferred pushes, sorted; may still hold forgotten ones (each is
        checked against ``_deferred_by_first``), so that forgetting the oldest costs no list shift."""
        self._deferred_by_first: dict[int, str] = {}
        self._deferred_count = 0
        self._out_of_order = False
        """Whether a deferred push was built after a later message's record: the records are then
        not in acceptance order, and readers sort them by their first ``seq``."""
        self.evicted = 0
        """Messages forgotten because more than ``retention`` were accepted."""

    # -- subscribers ------------------------------------------------------------------------------
    def subscribe(
        self,
        listener: Listener,
        *,
        accepted: bool = True,
        active: Callable[[], bool] | None = None,
        planned: Callable[[PlannedPush], None] | None = None,
    ) -> Callable[[], None]:
        """Hand every transition recorded from now on to ``listener`` (with ``accepted=False``, all
        but the first record of each message, Submitted at acceptance: a push then costs such a
        listener nothing); returns an unsubscriber. ``active()``, when given, is asked before each
        publication: while it answers false the listener is skipped, and a transition no active
        listener wants costs no snapshot (a log line below the log level). ``planned``, when given,
        gets each push deferred with at-once moves (:meth:`defer`) as one :class:`PlannedPush`
        instead of its transitions one by one (the event webhook's queue takes a push in one step)."""
        with self._lock:
            self._listeners.append(listener)
            if accepted:
                self._on_accept.append(listener)
            if active is not None:
                self._gates[listener] = active
            if planned is not None:
                self._planned[listener] = planned
            self._regroup()

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
                if listener in self._on_accept:
                    self._on_accept.remove(listener)
                self._gates.pop(listener, None)
                self._planned.pop(listener, None)
                self._regroup()

        return unsubscribe

    def _regroup(self) -> None:
        """What a deferred push is handed to, worked out once per (un)subscription (lock held):
        the ``planned`` callbacks and the gates of the listeners that want transitions one by
        one; for a push with steps (every listener) and for one without (those that want the
        Submitted records)."""
        gates, planned = self._gates, self._planned
        self._wholes = tuple((planned[lst], gates.get(lst)) for lst in self._listeners if lst in planned)
        self._accepting_wholes = tuple((planned[lst], gates.get(lst)) for lst in self._on_accept if lst in planned)
        self._eaches = tuple(gates.get(lst) for lst in self._listeners if lst not in planned)
        self._accepting_eaches = tuple(gates.get(lst) for lst in self._on_accept if lst not in planned)

    def _wanted(self, listeners: list[Listener]) -> list[Listener]:
        """The ``listeners`` active now, in order (a copy: a listener may unsubscribe meanwhile)."""
        gates = self._gates
        if not gates:
            return list(listeners)
        return [listener for listener in listeners if (gate := gates.get(listener)) is None or gate()]

    def _publish(self, transition: Transition, record: _Record, whole: bool = False) -> None:
        listeners = self._wanted(self._on_accept if transition.previous is None else self._listeners)
        if whole and self._planned:  # those that took the push whole have had it
            listeners = [listener for listener in listeners if listener not in self._planned]
        if not listeners:
            return
        snapshot = record.snapshot()
        for listener in listeners:
            try:
                listener(transition, snapshot)
            except Exception:
                log.exception("lifecycle listener %r failed on %s", listener, transition)

    # -- accepting --------------------------------------------------------------------------------
    def accept(
        self,
        msg_id: str,
        *,
        push_id: str,
        number: str,
        channel: int,
        token: str = "",
        credit: str | Decimal = "0",
        text: str = "",
        media: str | None = None,
        reference_number: str | None = None,
        group: bool = False,
        fault: DeliveryFault | None = None,
        at: float | None = None,
    ) -> Transition:
        """Record an accepted message, Submitted now (or at clock time ``at``); returns that first transition."""
        message = _tracked(msg_id, push_id, number, channel, token, credit, text, media, reference_number, group)
        with self._lock:
            record = self._add(message, fault)
            return self._record(record, State.SUBMITTED, How.ACCEPTED, "", Report.NORMAL, at)

    def _add(self, message: TrackedMessage, fault: DeliveryFault | None) -> _Record:
        """A new record for ``message``, indexed (lock held)."""
        if message.msg_id in self._records:
            raise LifecycleError(f"msg_id: message {message.msg_id} is already in the ledger")
        record = _Record(message, fault=fault)
        self._records[message.msg_id] = record
        self._by_push.add(message.push_id, message.msg_id)
        self._by_number.add(message.number, message.msg_id)
        while len(self._records) > self.retention:
            self._evict()
        return record

    def defer(
        self,
        push_id: str,
        messages: Sequence[Any],
        *,
        token: str = "",
        at: float | None = None,
        steps: Sequence[Step] = (),
    ) -> None:
        """Record the messages of a push, Submitted at ``at``, without building their records yet.

        A push that nothing will move later (no policy, or one that moves every message the moment
        it is accepted, and no fault) costs one dictionary entry here; its records are built the
        first time any reader or move asks for one of its messages (by msg_id, push_id or number),
        with the acceptance time and the ``seq`` numbers it had. ``steps``: the moves every message
        makes at once after Submitted (:meth:`LifecyclePolicy.immediate`; no Refunded, whose credit
        goes back at once); they are published to the subscribers now, in order, and recorded in
        the timelines when built. ``messages`` are objects with ``msg_id``, ``number``, ``channel``,
        ``credit``, ``text``, ``media`` and ``reference_number`` attributes (the journal's
        messages), their msg_ids contiguous.
        """
        if not messages:
            return
        first = int(messages[0].msg_id)
        when = self.clock.now() if at is None else at
        planned = tuple(steps)
        for step in planned:
            if step.state is State.REFUNDED:
                raise LifecycleError("steps: a refund is not deferred (its credit goes back at once)")
        with self._lock:
            deferred = _Deferred(str(push_id), first, len(messages), when, token, messages, self._seq, planned)
            self._seq += deferred.size * (1 + len(planned))
            self._deferred[deferred.push_id] = deferred
            self._deferred_by_first[first] = deferred.push_id
            if self._deferred_firsts and first < self._deferred_firsts[-1]:
                bisect.insort(self._deferred_firsts, first)
            else:
                self._deferred_firsts.append(first)
            self._deferred_count += deferred.size
            while self._deferred_count > self.retention:
                forgotten = self._forget_deferred(next(iter(self._deferred)))
                self.evicted += forgotten.size if forgotten is not None else 0
            if self._listeners:
                self._publish_planned(deferred)

    def _forget_deferred(self, push_id: str) -> _Deferred | None:
        deferred = self._deferred.pop(push_id, None)
        if deferred is None:
            return None
        del self._deferred_by_first[deferred.first]
        if len(self._deferred_firsts) > 2 * len(self._deferred_by_first) + 1024:
            self._deferred_firsts = sorted(self._deferred_by_first)  # drop the forgotten, now and then
        self._deferred_count -= deferred.size
        return deferred

    def _build(self, push_id: str) -> None:
        """Build the records of a deferred push (lock held)."""
        deferred = self._forget_deferred(push_id)
        if deferred is None:
            return
        seq, at, steps = deferred.seq, deferred.at, deferred.steps
        if self._records and next(reversed(self._records.values())).timeline[0].seq > seq:
            self._out_of_order = True  # built after a later one: readers sort by acceptance
        for message in deferred.messages:  # their transitions were published when deferred
            record = self._add(self._deferred_message(deferred, message), None)
            seq += 1
            self._record(record, State.SUBMITTED, How.ACCEPTED, "", Report.NORMAL, at, seq, False)
            for step in steps:
                seq += 1
                self._record(record, step.state, step.how, step.error_message, Report.NORMAL, at, seq, False)

    @staticmethod
    def _deferred_message(deferred: _Deferred, message: Any) -> TrackedMessage:
        return _tracked(
            message.msg_id,
            deferred.push_id,
            message.number,
            message.channel,
            deferred.token,
            message.credit,
            message.text or "",
            message.media,
            message.reference_number,
            False,
        )

    def _publish_planned(self, deferred: _Deferred) -> None:
        """Hand a deferred push's transitions to the subscribers as they happen, in order (lock
        held): Submitted to those that want it, the steps to all; as one :class:`PlannedPush` to
        those that take a push whole, else transition by transition."""
        steps = deferred.steps
        for whole, gate in self._wholes if steps else self._accepting_wholes:
            if gate is None or gate():
                try:
                    whole(PlannedPush(deferred.push_id, deferred.token, deferred.at, deferred.messages, steps))
                except Exception:
                    log.exception("lifecycle listener %r failed on push %s", whole, deferred.push_id)
        for gate in self._eaches if steps else self._accepting_eaches:
            if gate is None or gate():
                self._publish_each(deferred)
                return

    def _publish_each(self, deferred: _Deferred) -> None:
        seq, at = deferred.seq, deferred.at
        for message in deferred.messages:
            record = _Record(self._deferred_message(deferred, message))  # not kept: built again when read
            seq += 1
            self._publish_one(Transition(seq, record.message.msg_id, deferred.push_id, record.message.number,
                                         State.SUBMITTED, None, at, How.ACCEPTED), record)
            for step in deferred.steps:
                seq += 1
                self._publish_one(
                    Transition(seq, record.message.msg_id, deferred.push_id, record.message.number, step.state,
                               record.timeline[-1].state, at, step.how, step.error_message),
                    record,
                )

    def _publish_one(self, transition: Transition, record: _Record) -> None:
        record.timeline.append(transition)
        self._publish(transition, record, whole=True)

    def _build_msg(self, msg_id: str) -> None:
        """Build the deferred push that holds ``msg_id``, if one does (lock held)."""
        if not self._deferred or not (msg_id.isascii() and msg_id.isdigit()) or len(msg_id) > 30:
            return
        wanted = int(msg_id)
        index = bisect.bisect_right(self._deferred_firsts, wanted) - 1
        if index >= 0:
            first = self._deferred_firsts[index]
            push_id = self._deferred_by_first.get(first)  # None: that push was forgotten, and its msg_ids with it
            if push_id is not None and wanted < first + self._deferred[push_id].size:
                self._build(push_id)

    def _build_number(self, number: str) -> None:
        """Build the deferred pushes that hold a message to ``number`` (lock held): a scan of the
        deferred messages, far cheaper than building them all."""
        if not self._deferred:
            return
        holding = [
            push_id
            for push_id, deferred in self._deferred.items()
            if any(message.number == number for message in deferred.messages)
        ]
        for push_id in holding:
            self._build(push_id)

    def _build_all(self) -> None:
        """Build every deferred push (lock held)."""
        while self._deferred:
            self._build(next(iter(self._deferred)))

    def _evict(self) -> None:
        msg_id, record = self._records.popitem(last=False)
        self.evicted += 1
        self._by_push.remove(record.message.push_id, msg_id)
        self._by_number.remove(record.message.number, msg_id)

    def _record(
        self,
        record: _Record,
        state: State,
        how: How,
        error_message: str,
        report: Report,
        at: float | None = None,
        seq: int | None = None,
        publish: bool = True,
    ) -> Transition:
        if seq is None:
            self._seq += 1
            seq = self._seq
        timeline = record.timeline
        message = record.message
        # In field order (seq, msg_id, push_id, number, state, previous, at, how, error_message,
        # report): by position, a third cheaper than by keyword, and an advance makes thousands.
        transition = Transition(
            seq,
            message.msg_id,
            message.push_id,
            message.number,
            state,
            timeline[-1].state if timeline else None,
            self.clock.now() if at is None else at,
            how,
            error_message,
            report,
        )
        timeline.append(transition)
        if publish and (self._listeners or self._on_accept):
            self._publish(transition, record)
        return transition

    # -- reading ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records) + self._deferred_count

    def __contains__(self, msg_id: object) -> bool:
        with self._lock:
            self._build_msg(str(msg_id))
            return str(msg_id) in self._records

    def get(self, msg_id: str) -> TrackedMessage:
        """The message and its timeline; :class:`UnknownMessage` if it is not (or no longer) here."""
        with self._lock:
            self._build_msg(str(msg_id))
            record = self._records.get(str(msg_id))
            if record is None:
                raise UnknownMessage(str(msg_id))
            return record.snapshot()

    def state(self, msg_id: str) -> State:
        return self.get(msg_id).state

    def fault(self, msg_id: str) -> DeliveryFault | None:
        """The delivery fault the message was accepted with, if any."""
        with self._lock:
            self._build_msg(str(msg_id))
            record = self._records.get(str(msg_id))
            return None if record is None else record.fault

    def messages(self, *, push_id: str | None = None, number: str | None = None) -> list[TrackedMessage]:
        """Messages in acceptance order: all, those of a push, or those to a number (both: both)."""
        with self._lock:
            if push_id is not None:
                self._build(str(push_id))
            elif number is not None:
                self._build_number(str(number))
            else:
                self._build_all()
            ids: Iterable[str]
            if push_id is not None:
                ids = self._by_push.ids(str(push_id))
                if number is not None:
                    ids = [i for i in ids if self._records[i].message.number == str(number)]
            elif number is not None:
                ids = self._by_number.ids(str(number))
            else:
                ids = list(self._records)
            return [self._records[i].snapshot() for i in self._in_acceptance_order(ids)]

    def _in_acceptance_order(self, ids: Iterable[str]) -> Iterable[str]:
        """``ids`` (of built records) in acceptance order (lock held)."""
        if not self._out_of_order:
            return ids
        records = self._records
        return sorted(ids, key=lambda msg_id: records[msg_id].timeline[0].seq)

    def transitions(self, since: int = 0) -> list[Transition]:
        """Every kept transition with ``seq`` above ``since``, in order."""
        with self._lock:
            self._build_all()
            found = [t for r in self._records.values() for t in r.timeline if t.seq > since]
        found.sort(key=lambda t: t.seq)
        return found

    # -- moving -----------------------------------------------------------------------------------
    def check(self, msg_id: str, state: State | int | str) -> str | None:
        """Why moving ``msg_id`` to ``state`` would be refused, or ``None``."""
        target = parse_state(state)
        with self._lock:
            self._build_msg(str(msg_id))
            record = self._records.get(str(msg_id))
            if record is None:
                raise UnknownMessage(str(msg_id))
            m = record.message
            return refusal(record.timeline[-1].state, target, channel=m.channel, group=m.group)

    def move(
        self,
        msg_id: str,
        state: State | int | str,
        *,
        error_message: str = "",
        how: How = How.DEMAND,
        report: Report = Report.NORMAL,
    ) -> Transition:
        """Move one message; :class:`IllegalTransition` or :class:`UnknownMessage` if it cannot be."""
        target = parse_state(state)
        _check_error_message(error_message)
        key = str(msg_id)
        with self._lock:
            self._build_msg(key)
            record = self._records.get(key)
            if record is None:
                raise UnknownMessage(key)
            current = record.timeline[-1].state
            m = record.message
            why = refusal(current, target, channel=m.channel, group=m.group)
            if why is not None:
                raise IllegalTransition(key, current, target, why)
            if target is State.REFUNDED and self.on_refund is not None:
                self.on_refund(record.snapshot(), Decimal(m.credit))
            return self._record(record, target, how, error_message, report)

    def move_planned(self, msg_id: str, state: State, how: How, error_message: str, report: Report) -> str | None:
        """Make a move the lifecycle planned, its arguments checked when the policy or the fault
        was read: ``None`` once made, else why it is no longer legal (a test moved the message
        meanwhile, or it was forgotten). :meth:`move` without the checks of user input: an
        advance makes thousands."""
        with self._lock:
            if self._deferred:
                self._build_msg(msg_id)
            record = self._records.get(msg_id)
            if record is None:
                return f"unknown msg_id {msg_id}"
            m = record.message
            why = refusal(record.timeline[-1].state, state, channel=m.channel, group=m.group)
            if why is not None:
                return why
            if state is State.REFUNDED and self.on_refund is not None:
                self.on_refund(record.snapshot(), Decimal(m.credit))
            self._record(record, state, how, error_message, report)
            return None

    def move_many(self, moves: Iterable[Move], *, skip_illegal: bool = False) -> list[Transition]:
        """Make several moves at once: all or none (unless ``skip_illegal``: the legal ones)."""
        wanted = list(moves)
        with self._lock:
            chosen: list[tuple[_Record, Move]] = []
            for move in wanted:
                _check_error_message(move.error_message)
                self._build_msg(move.msg_id)
                record = self._records.get(move.msg_id)
                if record is None:
                    if skip_illegal:
                        continue
                    raise UnknownMessage(move.msg_id)
                current = record.timeline[-1].state
                # Several moves of the same message in one call apply in order.
                for earlier_record, earlier in chosen:
                    if earlier_record is record:
                        current = earlier.state
                m = record.message
                why = refusal(current, move.state, channel=m.channel, group=m.group)
                if why is not None:
                    if skip_illegal:
                        continue
                    raise IllegalTransition(move.msg_id, current, move.state, why)
                chosen.append((record, move))
            done = []
            for record, move in chosen:
                if move.state is State.REFUNDED and self.on_refund is not None:
                    self.on_refund(record.snapshot(), Decimal(record.message.credit))
                done.append(self._record(record, move.state, move.how, move.error_message, move.report))
            return done

    def move_push(
        self,
        push_id: str,
        state: State | int | str,
        *,
        error_message: str = "",
        how: How = How.DEMAND,
        report: Report = Report.NORMAL,
        skip_illegal: bool = False,
    ) -> list[Transition]:
        """Move every message of a push (all or none, unless ``skip_illegal``)."""
        move = Move("", parse_state(state), error_message, how, report)
        return self._move_all(self._build, self._by_push, "push_id", str(push_id), move, skip_illegal)

    def move_number(
        self,
        number: str,
        state: State | int | str,
        *,
        error_message: str = "",
        how: How = How.DEMAND,
        report: Report = Report.NORMAL,
        skip_illegal: bool = False,
    ) -> list[Transition]:
        """Move every message sent to ``number`` (all or none, unless ``skip_illegal``)."""
        move = Move("", parse_state(state), error_message, how, report)
        return self._move_all(self._build_number, self._by_number, "number", str(number), move, skip_illegal)

    def _move_all(
        self,
        build: Callable[[str], None],
        index: _IdIndex,
        what: str,
        key: str,
        move: Move,
        skip_illegal: bool,
    ) -> list[Transition]:
        """Make ``move`` for every message ``index`` holds under ``key`` (a push id or a number),
        once ``build`` has made the records of its deferred pushes."""
        with self._lock:
            build(key)
            ids = index.ids(key)
            if not ids:
                raise UnknownMessage(key, field=what)
            ordered = self._in_acceptance_order(ids)
            return self.move_many([dataclasses.replace(move, msg_id=i) for i in ordered], skip_illegal=skip_illegal)

    def clear(self) -> None:
        """Forget every message (timers that still point at them find nothing and do nothing)."""
        with self._lock:
            self._records.clear()
            self._by_push.clear()
            self._by_number.clear()
            self._deferred.clear()
            self._deferred_firsts.clear()
            self._deferred_by_first.clear()
            self._deferred_count = 0
            self._out_of_order = False


#: The longest ``error_message`` accepted (a move from the admin API is the user's input).
MAX_ERROR_MESSAGE = 1000


def _check_error_message(value: object, *, field: str = "error_message") -> None:
    if not isinstance(value, str):
        error = LifecycleError(f"{field}: expected a string, got {type(value).__name__}")
        error.field = field
        raise error
    if len(value) > MAX_ERROR_MESSAGE:
        error = LifecycleError(f"{field}: longer than {MAX_ERROR_MESSAGE:,} characters")
        error.field = field
        raise error


def describe(transition: Transition) -> str:
    """The server's log line for a transition."""
    before = transition.previous
    previous = "new" if before is None else f"{int(before)} {before.name.lower()}"
    line = (
        f"message {transition.msg_id} (push {transition.push_id}, to {transition.number}): {previous} -> "
        f"{int(transition.state)} {transition.state.name.lower()}, {transition.how.value}"
    )
    if transition.error_message:
        line += f", error_message {transition.error_message!r}"
    if transition.report is not Report.NORMAL:
        line += f", report {transition.report.value}"
    return line


def log_transitions(ledger: Ledger, logger: logging.Logger = log, level: int = logging.INFO) -> Callable[[], None]:
    """Log every transition of ``ledger`` (one :func:`describe` line each); returns the unsubscriber."""

    def write(transition: Transition, message: TrackedMessage) -> None:
        if logger.isEnabledFor(level):
            logger.log(level, "%s", describe(transition))

    return ledger.subscribe(write)


def _tracked(
    msg_id: str,
    push_id: str,
    number: str,
    channel: int,
    token: str,
    credit: str | Decimal,
    text: str,
    media: str | None,
    reference_number: str | None,
    group: bool,
) -> TrackedMessage:
    """A message as the ledger keeps it (without its timeline), its credit checked."""
    return TrackedMessage(
        str(msg_id),
        str(push_id),
        str(number),
        int(channel),
        token,
        _credit(credit),
        text,
        media or None,
        reference_number,
        group,
    )


def _credit(value: str | Decimal) -> str:
    try:
        parse_amount("credit", value)  # the price table's rule for an amount of money
    except ConfigError as exc:
        raise LifecycleError(str(exc)) from None
    return str(value)


# -- policy ---------------------------------------------------------------------------------------

_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|)\s*$")
#: No delay beyond a year: a typo (``1e12``) would otherwise schedule timers no test reaches.
MAX_DELAY = 366 * 86400.0


def _seconds(where: str, value: object) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ConfigError(f"{where}: expected seconds or a duration like '90s', '15m', '2h', got {value!r}")
    if not (0 <= seconds <= MAX_DELAY):
        raise ConfigError(f"{where}: {value!r} is outside 0 .. {MAX_DELAY:.0f} seconds")
    return seconds


def parse_duration(where: str, value: object) -> float:
    """Seconds from ``30``, ``2.5`` or ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` (0 .. a year);
    :class:`ConfigError` naming ``where`` otherwise."""
    return _seconds(where, value)


@dataclass(frozen=True, slots=True)
class Delay:
    """A delay in clock seconds: fixed (``low == high``) or drawn uniformly in ``[low, high]``."""

    low: float
    high: float

    @classmethod
    def parse(cls, where: str, value: object) -> Delay:
        """``30``, ``"15m"``, ``[10, 60]`` or ``{"min": "1m", "max": "5m"}``."""
        if isinstance(value, Delay):
            return value
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ConfigError(f"{where}: a spread is [low, high], got {value!r}")
            low, high = _seconds(f"{where}[0]", value[0]), _seconds(f"{where}[1]", value[1])
        elif isinstance(value, Mapping):
            unknown = set(value) - {"min", "max"}
            if unknown or not {"min", "max"} <= set(value):
                raise ConfigError(f"{where}: a spread is {{'min': ..., 'max': ...}}, got {dict(value)!r}")
            low, high = _seconds(f"{where}.min", value["min"]), _seconds(f"{where}.max", value["max"])
        else:
            low = high = _seconds(where, value)
        if low > high:
            raise ConfigError(f"{where}: low {low} is above high {high}")
        return cls(low, high)

    def draw(self, rng: random.Random | None) -> float:
        """The delay: ``low`` when fixed, else drawn from ``rng`` (which a spread needs)."""
        if self.low == self.high or rng is None:
            return self.low
        return rng.uniform(self.low, self.high)


DEFAULT_FAIL_ERROR = "Message could not be delivered"
DEFAULT_REFUND_ERROR = "Message not delivered, credit refunded"


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """What happens to messages on one channel (or every channel without its own)."""

    deliver_after: Delay | None = None
    """``None``: never delivered by the policy (stays Submitted until a test moves it)."""
    read_after: Delay | None = None
    """Counted from delivery; ``None``: never read. Ignored where Read cannot happen."""
    read_share: float = 1.0
    """The share of delivered messages that are read (others hide their read receipts)."""
    fail_share: float = 0.0
    refund_share: float = 0.0
    fail_error: str = DEFAULT_FAIL_ERROR
    refund_error: str = DEFAULT_REFUND_ERROR
    drawn: bool = field(init=False, default=False, compare=False, repr=False)
    """Whether anything is left to chance (a spread, a share strictly between 0 and 1): else a plan
    needs no random draws (a generator per message costs more than the rest of the plan)."""

    def __post_init__(self) -> None:
        spreads = any(d is not None and d.low != d.high for d in (self.deliver_after, self.read_after))
        shares = any(0 < share < 1 for share in (self.read_share, self.fail_share, self.refund_share, self.fail_share
                                                  + self.refund_share))
        object.__setattr__(self, "drawn", spreads or shares)

    _KEYS = frozenset(
        "deliver_after read_after read_share fail_share refund_share fail_error refund_error".split()
    )

    @classmethod
    def parse(
        cls, where: str, spec: Mapping[str, Any], base: ChannelPolicy | None = None, *, also: tuple[str, ...] = ()
    ) -> ChannelPolicy:
        """From a config mapping; keys missing from ``spec`` come from ``base``. ``also``: keys the
        caller reads itself (named in the error for an unknown key)."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a table, got {spec!r}")
        unknown = set(spec) - cls._KEYS - set(also)
        if unknown:
            known = ", ".join(sorted(cls._KEYS | set(also)))
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key (known: {known})")
        changes: dict[str, Any] = {}
        for key in ("deliver_after", "read_after"):
            if key in spec:
                value = spec[key]
                changes[key] = None if value is None or value is False else Delay.parse(f"{where}.{key}", value)
        for key in ("read_share", "fail_share", "refund_share"):
            if key in spec:
                value = spec[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= 1):
                    raise ConfigError(f"{where}.{key}: expected a share between 0 and 1, got {value!r}")
                changes[key] = float(value)
        for key in ("fail_error", "refund_error"):
            if key in spec:
                if not isinstance(spec[key], str):
                    raise ConfigError(f"{where}.{key}: expected a string, got {spec[key]!r}")
                if len(spec[key]) > MAX_ERROR_MESSAGE:
                    raise ConfigError(f"{where}.{key}: longer than {MAX_ERROR_MESSAGE:,} characters")
                changes[key] = spec[key]
        policy = dataclasses.replace(base or cls(), **changes)
        if policy.fail_share + policy.refund_share > 1:
            raise ConfigError(f"{where}: fail_share + refund_share is over 1")
        return policy


@dataclass(frozen=True, slots=True)
class Step:
    """One planned move: ``state`` after ``after`` clock seconds from acceptance."""

    after: float
    state: State
    error_message: str = ""
    how: How = How.POLICY


@dataclass(frozen=True, slots=True)
class DeliveryFault:
    """What a fault rule can do to one message's delivery.

    ``fail_with``: the message fails with this ``error_message`` (at the policy's delivery time, or
    ``after`` seconds when given or when there is no policy). ``report``: how its reports travel;
    ``on``: the states whose report it affects (all when ``None``).
    """

    fail_with: str | None = None
    after: float | None = None
    report: Report = Report.NORMAL
    on: frozenset[State] | None = None

    def __post_init__(self) -> None:
        if self.fail_with is not None:
            _check_error_message(self.fail_with, field="fail_with")
        if self.after is not None:
            _seconds("after", self.after)
        if not isinstance(self.report, Report):
            raise ConfigError(f"report: expected one of {', '.join(r.value for r in Report)}, got {self.report!r}")

    def report_for(self, state: State) -> Report:
        return self.report if self.on is None or state in self.on else Report.NORMAL


@dataclass(frozen=True)
class LifecyclePolicy:
    """When messages are delivered, read, failed or refunded, per channel, from a seed."""

    default: ChannelPolicy = ChannelPolicy()
    channels: Mapping[int, ChannelPolicy] = field(default_factory=dict)
    seed: int = 0
    _immediate: dict[int, tuple[Step, ...] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def parse(cls, spec: Mapping[str, Any], *, where: str = "lifecycle") -> LifecyclePolicy:
        """From a config table: the :class:`ChannelPolicy` keys, ``seed`` and ``channels = {id: {...}}``."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a table, got {spec!r}")
        own = {k: v for k, v in spec.items() if k not in ("seed", "channels")}
        default = ChannelPolicy.parse(where, own, also=("seed", "channels"))
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where}.seed: expected an integer, got {seed!r}")
        channels: dict[int, ChannelPolicy] = {}
        raw = spec.get("channels", {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}.channels: expected a table of channel ids, got {raw!r}")
        for key, value in raw.items():
            try:
                channel = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.channels.{key}: a channel id is a number") from None
            channels[channel] = ChannelPolicy.parse(f"{where}.channels.{key}", value, default)
        return cls(default, channels, seed)

    @classmethod
    def at_once(cls, *, seed: int = 0) -> LifecyclePolicy:
        """Every message delivered and (where possible) read as soon as it is accepted."""
        return cls(ChannelPolicy(deliver_after=Delay(0, 0), read_after=Delay(0, 0)), {}, seed)

    def for_channel(self, channel: int) -> ChannelPolicy:
        return self.channels.get(channel, self.default)

    def immediate(self, channel: int) -> tuple[Step, ...] | None:
        """The moves every message on ``channel`` makes the moment it is accepted, when the policy
        leaves nothing to chance there and plans nothing for later (an at-once policy); else
        ``None``. A plan with a refund is ``None`` too (its credit goes back through the ledger's
        ``on_refund``, move by move). Such messages can be deferred (:meth:`Ledger.defer`)."""
        if channel in self._immediate:
            return self._immediate[channel]
        found: tuple[Step, ...] | None = None
        if not self.for_channel(channel).drawn:
            steps = tuple(self.plan("0", channel))
            if steps and all(s.after <= 0 and s.state is not State.REFUNDED for s in steps):
                found = steps
        if len(self._immediate) < 1024:  # channel ids come from requests: a bounded memo
            self._immediate[channel] = found
        return found

    def plan(
        self, msg_id: str, channel: int, *, group: bool = False, fault: DeliveryFault | None = None
    ) -> list[Step]:
        """The moves of one message, as a pure function of (seed, msg_id, channel, group, fault)."""
        policy = self.for_channel(channel)
        rng: random.Random | None = None
        if policy.drawn:
            # Seeded by (seed, msg_id) alone, so a message's fate does not depend on what else is in
            # flight; an integer seed for decimal ids (a string seed costs a SHA-512).
            numeric = msg_id.isascii() and msg_id.isdigit() and len(msg_id) < 40
            rng = random.Random((self.seed << 136) ^ int(msg_id) if numeric else f"{self.seed}:{msg_id}")
        fate = rng.random() if rng is not None else 0.5  # with shares of 0 or 1 only, any fate gives the same
        deliver = policy.deliver_after.draw(rng) if policy.deliver_after is not None else None
        read = policy.read_after.draw(rng) if policy.read_after is not None else None
        reads = (rng.random() if rng is not None else 0.5) < policy.read_share
        if fault is not None and fault.fail_with is not None:
            after = fault.after if fault.after is not None else (deliver if deliver is not None else 0.0)
            return [Step(after, State.FAILED, fault.fail_with, How.FAULT)]
        if deliver is None:
            return []
        if fate < policy.fail_share:
            return [Step(deliver, State.FAILED, policy.fail_error)]
        if fate < policy.fail_share + policy.refund_share:
            return [Step(deliver, State.REFUNDED, policy.refund_error)]
        steps = [Step(deliver, State.DELIVERED)]
        if read is not None and reads and channel not in PHONE_CHANNELS and not group:
            steps.append(Step(deliver + read, State.READ))
        return steps


class Lifecycle:
    """A ledger, a clock and a policy (``None``: off): accepts messages and plays their moves.

    Moves due at once (delay 0) are made inside :meth:`accept`; later ones are timers on the clock. A
    planned move that is no longer legal when it falls due (a test moved the message meanwhile) is
    skipped and logged at debug level.
    """

    def __init__(self, ledger: Ledger, clock: Clock, policy: LifecyclePolicy | None = None) -> None:
        self.ledger = ledger
        self.clock = clock
        self.policy = policy
        self.skipped = 0
        """Planned moves dropped because the message had moved on (or was forgotten)."""

    def accept(
        self,
        msg_id: str,
        *,
        push_id: str,
        number: str,
        channel: int,
        token: str = "",
        credit: str | Decimal = "0",
        text: str = "",
        media: str | None = None,
        reference_number: str | None = None,
        group: bool = False,
        fault: DeliveryFault | None = None,
    ) -> list[Step]:
        """Record the message (Submitted) and schedule what the policy and the fault plan for it."""
        self.ledger.accept(
            msg_id,
            push_id=push_id,
            number=number,
            channel=channel,
            token=token,
            credit=credit,
            text=text,
            media=media,
            reference_number=reference_number,
            group=group,
            fault=fault,
        )
        steps = self.plan(str(msg_id), int(channel), group=group, fault=fault)
        for step in steps:
            if step.after <= 0:
                self._play(str(msg_id), step, fault)
            else:
                self.clock.call_later(step.after, self._play, str(msg_id), step, fault)
        return steps

    def plan(self, msg_id: str, channel: int, *, group: bool = False, fault: DeliveryFault | None = None) -> list[Step]:
        if self.policy is not None:
            return self.policy.plan(msg_id, channel, group=group, fault=fault)
        if fault is not None and fault.fail_with is not None:
            return [Step(fault.after or 0.0, State.FAILED, fault.fail_with, How.FAULT)]
        return []

    def _play(self, msg_id: str, step: Step, fault: DeliveryFault | None) -> None:
        if fault is None:
            report, how = Report.NORMAL, step.how
        else:
            report = fault.report_for(step.state)
            how = How.FAULT if report is not Report.NORMAL and step.how is How.POLICY else step.how
        try:
            why = self.ledger.move_planned(msg_id, step.state, how, step.error_message, report)
        except LifecycleError as exc:  # a message the ledger cannot build any more
            why = str(exc)
        if why is not None:
            self.skipped += 1
            log.debug("planned move of %s to %s skipped: %s", msg_id, step.state.name.title(), why)

    def deliver(
        self,
        state: State | int | str,
        *,
        msg_id: str | None = None,
        push_id: str | None = None,
        number: str | None = None,
        error_message: str = "",
        report: Report = Report.NORMAL,
    ) -> list[Transition]:
        """The on-demand move of ``picky_server.deliver``: exactly one of msg_id, push_id, number."""
        given = [name for name, value in (("msg_id", msg_id), ("push_id", push_id), ("number", number)) if value]
        if len(given) != 1:
            error = LifecycleError("msg_id: give exactly one of msg_id, push_id, number")
            raise error
        if msg_id:
            return [self.ledger.move(msg_id, state, error_message=error_message, report=report)]
        if push_id:
            return self.ledger.move_push(push_id, state, error_message=error_message, report=report)
        assert number is not None
        return self.ledger.move_number(number, state, error_message=error_message, report=report)
