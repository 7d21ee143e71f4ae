"""The event webhook as the server sends it: state changes batched under load, in order per message.

:class:`BatchingReporter` is the ledger subscriber the backend uses (the core's
:class:`~picky_mock.webhooks.EventReporter` sends one POST per change). Messages are spread over
``shards`` lanes by msg_id, for each URL the changes go to; each lane has at most one POST in
flight (a POST waiting for its retries to a URL since replaced holds up nothing for the new one). A
change that finds its lane idle is POSTed at once, alone in ``data[]`` (the service's sample
shape), or with the other changes its message made at the same instant (Delivered and Read under
an at-once policy); changes that arrive while the lane's POST is in flight (or waits for a retry)
are queued and go out together in the next POST, up to ``batch`` items. So at low load every POST
carries one change, and under load (a burst, a policy that delivers and reads every message at
once) one POST carries many, which keeps the dispatcher's per-POST cost off the push path. A push
whose messages all moved as they were accepted comes whole (:meth:`BatchingReporter.planned`): one
queue entry per message, made into ``data[]`` items when its POST is built, not on the push path.
With ``linger``, a lane rests that many seconds after each POST that was not full, and what
arrives meanwhile goes in its next POST: a fast local receiver otherwise answers before more than
one or two changes have queued, and the POSTs (a few tenths of a millisecond of the server's CPU
each) take a fifth of its pushes. A message always falls in the same lane of a URL, so its changes
arrive in order, across retries; a lane whose receiver is down holds only its own messages.

Report faults are honoured here: ``never`` sends nothing, ``twice`` queues the item two times, ``out of
order`` holds the item until the message's next change has been queued (or ``hold`` clock seconds).

Bounds: at most ``max_queued`` changes waiting in all; past it a change is dropped, counted in
``dropped`` and logged (the first at once, then at most every 5 s: the drops of a burst are told
within 5 s of the last one), never silently.
"""

from __future__ import annotations

import threading
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from .clock import Timer
from .lifecycle import PlannedPush, Report, State, Step, TrackedMessage, Transition
from .webhook_payloads import event_item, event_item_of
from .webhooks import Attempt, Dispatcher, DropLog

__all__ = ["DEFAULT_BATCH", "DEFAULT_MAX_QUEUED", "DEFAULT_SHARDS", "BatchingReporter"]

DEFAULT_BATCH = 250
"""Changes one POST carries at most."""
DEFAULT_SHARDS = 8
"""Lanes: POSTs in flight at once to the event URL (the dispatcher's per-destination concurrency)."""
DEFAULT_MAX_QUEUED = 100_000
"""Changes waiting for their lane, in all."""


class _Steps(NamedTuple):
    """A lane's marker: each planned message after it, up to the next marker, made these at-once moves."""

    steps: tuple[Step, ...]


def _planned_items(message: Any, steps: tuple[Step, ...]) -> list[dict[str, str]]:
    """The ``data[]`` items of a message that made ``steps`` as it was accepted."""
    first = event_item_of(message, int(steps[0].state), steps[0].error_message)
    made = [first]
    for step in steps[1:]:
        if step.error_message:
            made.append(event_item_of(message, int(step.state), step.error_message))
            continue
        # The same message, a state without an error: a copy keeps the keys' order.
        item = first.copy()
        item["status"] = str(int(step.state))
        item["error_message"] = ""
        made.append(item)
    return made


class _Lane:
    __slots__ = ("busy", "changes", "generation", "head", "items", "tail", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self.generation = 0
        """Bumped by a reset: a POST (or a lingering wait) of an earlier generation, finishing
        after it, does not start a second chain of POSTs in the lane."""
        self.items: deque[Any] = deque()
        """What waits for the lane's POST in flight to finish, in order: ``data[]`` items (dicts),
        messages of planned pushes (kept as the journal has them: queueing one makes no object;
        their items are made when their POST is built), and :class:`_Steps` markers where the
        planned moves change."""
        self.head: tuple[Step, ...] = ()
        """The planned moves in force at the front."""
        self.tail: tuple[Step, ...] | None = None
        """The planned moves in force at the back (``None``: no marker yet)."""
        self.changes = 0
        """The changes queued (a planned message is as many as its steps)."""
        self.busy = False

    def add(self, steps: tuple[Step, ...] | None, entry: Any) -> None:
        """Queue an item (``steps`` ``None``) or a planned message (lock held)."""
        if steps is not None and steps != self.tail:
            self.tail = steps
            self.items.append(_Steps(steps))
        self.items.append(entry)
        self.changes += 1 if steps is None else len(steps)

    def take(self, batch: int) -> tuple[list[Any], int]:
        """The entries of the next POST (lock held; something is queued): items, and ``(message,
        steps)`` pairs, and how many changes they are, at most ``batch``."""
        items = self.items
        taken: list[Any] = []
        count = 0
        while items:
            first = items[0]
            if isinstance(first, _Steps):
                self.head = first.steps
                items.popleft()
                continue
            size = 1 if isinstance(first, dict) else len(self.head)
            if count + size > batch:
                if count:
                    break  # the next POST's
                # A batch smaller than one message's moves: its items, one POST at a time.
                items.popleft()
                items.extendleft(reversed(_planned_items(first, self.head)))
                continue
            items.popleft()
            taken.append(first if isinstance(first, dict) else (first, self.head))
            count += size
        self.changes -= count
        return taken, count

    def clear(self) -> None:
        self.items.clear()
        self.head, self.tail = (), None
        self.changes = 0


class BatchingReporter:
    """A ledger subscriber that POSTs state changes to the event webhook; see the module's docstring.

    ``url()`` and ``project_id()`` are read at each change (the backend's current values).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        url: Callable[[], str | None],
        project_id: Callable[[], str],
        batch: int = DEFAULT_BATCH,
        shards: int = DEFAULT_SHARDS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        hold: float = 60.0,
        linger: float = 0.0,
    ) -> None:
        self.dispatcher = dispatcher
        self.url = url
        self.project_id = project_id
        self.batch = batch
        self.hold = hold
        self.linger = linger
        self.max_queued = max_queued
        self.shards = shards
        self._lanes: dict[str, list[_Lane]] = {}
        """Each URL's lanes: a POST waiting for its retries to an old URL holds up no change for
        the URL set since."""
        self._lock = threading.Lock()
        self._queued = 0
        self._held: dict[str, tuple[str, dict[str, str], Timer]] = {}
        self.suppressed = 0
        """Reports not sent because of a ``never`` fault."""
        self.dropped = 0
        """Changes dropped because ``max_queued`` were waiting (or the dispatcher's queue was full)."""
        self.posts = 0
        self._in_flight = 0
        """Changes in POSTs not yet delivered or given up."""
        self.drop_log = DropLog("event webhook", "changes", dispatcher.remind)

    def __call__(self, transition: Transition, message: TrackedMessage) -> None:
        if transition.previous is None and transition.state is State.SUBMITTED:
            return
        url = self.url()
        if url is None:
            return
        report = transition.report
        if report is Report.NEVER:
            self.suppressed += 1
            return
        item = event_item(message, transition)
        msg_id = message.msg_id
        if report is Report.OUT_OF_ORDER:
            timer = self.dispatcher.clock.call_later(self.hold, self._release, msg_id)
            with self._lock:
                earlier = self._held.pop(msg_id, None)
                self._held[msg_id] = (url, item, timer)
            if earlier is not None:  # two held in a row: the first goes now
                earlier[2].cancel()
                self._queue(msg_id, earlier[0], earlier[1])
            return
        self._queue(msg_id, url, item)
        if report is Report.TWICE:
            self._queue(msg_id, url, item)
        if self._held:
            self._release(msg_id)

    def planned(self, push: PlannedPush) -> None:
        """The ledger's ``planned`` callback: queue a whole push's at-once changes in one step
        (one entry per message, its items made when its POST is built)."""
        url = self.url()
        if url is None or not push.steps:
            return
        steps = push.steps
        size = len(steps)
        count = self.shards
        idle: list[_Lane] = []
        with self._lock:
            lanes = self._lanes_of(url)
            for message in push.messages:
                if self._queued + size > self.max_queued:
                    self._drop(size)
                    continue
                lane = lanes[zlib.crc32(message.msg_id.encode()) % count]
                lane.add(steps, message)
                self._queued += size
                if not lane.busy:
                    lane.busy = True
                    idle.append(lane)
        for lane in idle:
            self._send(lane)

    def _lanes_of(self, url: str) -> list[_Lane]:
        """The lanes of ``url`` (lock held), made on first use. URLs are few, but set from outside:
        past 64, the lanes of URLs with nothing queued or in flight are let go."""
        lanes = self._lanes.get(url)
        if lanes is None:
            if len(self._lanes) >= 64:
                for known, held in list(self._lanes.items()):
                    if not any(lane.busy or lane.items for lane in held):
                        del self._lanes[known]
            lanes = self._lanes[url] = [_Lane(url) for _ in range(self.shards)]
        return lanes

    def _release(self, msg_id: str) -> None:
        with self._lock:
            held = self._held.pop(msg_id, None)
        if held is not None:
            held[2].cancel()
            self._queue(msg_id, held[0], held[1])

    def _queue(self, msg_id: str, url: str, item: dict[str, str]) -> None:
        with self._lock:
            if self._queued >= self.max_queued:
                self._drop(1)
                return
            lane = self._lanes_of(url)[zlib.crc32(msg_id.encode()) % self.shards]
            lane.add(None, item)
            self._queued += 1
            if lane.busy:
                return
            lane.busy = True
        self._send(lane)

    def _send(self, lane: _Lane, after: int | None = None) -> None:
        """POST the lane's first items (one URL, at most ``batch``), or mark the lane idle. ``after``:
        the generation of the POST this one follows; a reset since then gave the lane to a new
        chain of POSTs, and this one is not sent."""
        while True:
            with self._lock:
                if after is not None and lane.generation != after:
                    return
                if not lane.items:
                    lane.busy = False
                    return
                url = lane.url
                taken, count = lane.take(self.batch)
                self._queued -= count
                self._in_flight += count
                generation = lane.generation
            # Planned moves become items here, outside the reporter's lock (on the push path only
            # when a lane was found idle: then its first POST goes at once).
            items: list[dict[str, str]] = []
            for entry in taken:
                if isinstance(entry, dict):
                    items.append(entry)
                else:
                    items.extend(_planned_items(*entry))
            body = orjson.dumps({"project_id": str(self.project_id()), "event_id": 1, "data": items})
            key = items[0]["msg_id"] if all(item["msg_id"] == items[0]["msg_id"] for item in items) else None
            self.posts += 1
            done = self._done(lane, generation, len(items))
            if self.dispatcher.submit("event", url, body, key=key, on_done=done) is not None:
                return
            with self._lock:  # the dispatcher's own bound: counted and logged there, counted here too
                self.dropped += len(items)
                if lane.generation == generation:
                    self._in_flight -= len(items)

    def _done(self, lane: _Lane, generation: int, count: int) -> Callable[[Attempt], None]:
        def next_batch(attempt: Attempt) -> None:
            with self._lock:
                if lane.generation == generation:  # a reset since forgot them already
                    self._in_flight -= count
            if self.linger > 0 and lane.changes < self.batch:
                # The lane rests ``linger`` seconds after each POST (a full batch goes at once):
                # what arrives meanwhile waits and goes in one POST. Real time on the dispatcher's
                # loop, not the clock's: this is about CPU, not emulated time.
                self.dispatcher.later(self.linger, lambda: self._send(lane, generation))
            else:
                self._send(lane, generation)

        return next_batch

    def _drop(self, count: int) -> None:
        """Count dropped changes and log them (:class:`~picky_mock.webhooks.DropLog`); lock held."""
        self.dropped += count
        self.drop_log.dropped(count, self.dropped, lambda: f"{self._queued} changes waiting, the limit")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queued": self._queued,
                "in_flight": self._in_flight,
                "held": len(self._held),
                "dropped": self.dropped,
                "suppressed": self.suppressed,
                "posts": self.posts,
                "batch": self.batch,
                "lanes": self.shards,
                "urls": len(self._lanes),
                "max_queued": self.max_queued,
            }

    def clear(self) -> None:
        """Forget what waits (a reset)."""
        with self._lock:
            for lanes in self._lanes.values():
                for lane in lanes:
                    lane.clear()
                    lane.busy = False
                    lane.generation += 1  # a POST of the session that ends starts nothing after it
            self._lanes.clear()
            for _, _, timer in self._held.values():
                timer.cancel()
            self._held.clear()
            self._queued = self._in_flight = 0
            self.dropped = self.suppressed = self.posts = 0
            self.drop_log.reset()

