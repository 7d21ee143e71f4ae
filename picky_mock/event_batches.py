"""The event webhook as the server sends it: state changes batched under load, in order per message.

:class:`BatchingReporter` is the ledger subscriber the backend uses (the core's
:class:`~picky_mock.webhooks.EventReporter` sends one POST per change). Messages are spread over
``shards`` lanes by msg_id; each lane has at most one POST in flight. A change that finds its lane
idle is POSTed at once, alone in ``data[]`` (the service's sample shape); changes that arrive while
the lane's POST is in flight (or waits for a retry) are queued and go out together in the next POST,
up to ``batch`` items. So at low load every POST carries one change, and under load (a burst, a
policy that delivers and reads every message at once) one POST carries many, which keeps the
dispatcher's per-POST cost off the push path. With ``linger``, a lane that finishes a POST while
changes wait holds them that many seconds more before the next POST: a fast local receiver
otherwise answers before more than one or two changes have queued, and the POSTs (about a tenth of
a millisecond of the server's CPU each) take a fifth of its pushes. A message always falls in the
same lane, so its changes arrive in order, across retries; a lane whose receiver is down holds only
its own messages.

Report faults are honoured here: ``never`` sends nothing, ``twice`` queues the item two times, ``out of
order`` holds the item until the message's next change has been queued (or ``hold`` clock seconds).

Bounds: at most ``max_queued`` changes waiting in all; past it a change is dropped, counted in
``dropped`` and logged (the first at once, then at most every 5 s), never silently.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from .clock import Timer
from .lifecycle import Report, State, TrackedMessage, Transition
from .webhook_payloads import event_item
from .webhooks import Attempt, Dispatcher

__all__ = ["DEFAULT_BATCH", "DEFAULT_MAX_QUEUED", "DEFAULT_SHARDS", "BatchingReporter"]

log = logging.getLogger("picky_mock")

DEFAULT_BATCH = 100
"""Changes one POST carries at most."""
DEFAULT_SHARDS = 8
"""Lanes: POSTs in flight at once to the event URL (the dispatcher's per-destination concurrency)."""
DEFAULT_MAX_QUEUED = 100_000
"""Changes waiting for their lane, in all."""


class _Lane:
    __slots__ = ("busy", "generation", "items", "url")

    def __init__(self) -> None:
        self.generation = 0
        """Bumped by a reset: a POST (or a lingering wait) of an earlier generation, finishing
        after it, does not start a second chain of POSTs in the lane."""
        self.items: deque[tuple[str, dict[str, str]]] = deque()
        """``(url, item)`` waiting for the lane's POST in flight to finish."""
        self.busy = False
        self.url = ""


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
        self._lanes = [_Lane() for _ in range(shards)]
        self._lock = threading.Lock()
        self._queued = 0
        self._held: dict[str, tuple[str, dict[str, str], Timer]] = {}
        self.suppressed = 0
        """Reports not sent because of a ``never`` fault."""
        self.dropped = 0
        """Changes dropped because ``max_queued`` were waiting (or the dispatcher's queue was full)."""
        self.posts = 0
        self._last_drop_log = 0.0
        self._unlogged = 0

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

    def _release(self, msg_id: str) -> None:
        with self._lock:
            held = self._held.pop(msg_id, None)
        if held is not None:
            held[2].cancel()
            self._queue(msg_id, held[0], held[1])

    def _queue(self, msg_id: str, url: str, item: dict[str, str]) -> None:
        lane = self._lanes[zlib.crc32(msg_id.encode()) % len(self._lanes)]
        with self._lock:
            if self._queued >= self.max_queued:
                self._drop(1)
                return
            lane.items.append((url, item))
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
                url = lane.items[0][0]
                items: list[dict[str, str]] = []
                while lane.items and len(items) < self.batch and lane.items[0][0] == url:
                    items.append(lane.items.popleft()[1])
                self._queued -= len(items)
                generation = lane.generation
            body = orjson.dumps({"project_id": str(self.project_id()), "event_id": 1, "data": items})
            key = items[0]["msg_id"] if all(item["msg_id"] == items[0]["msg_id"] for item in items) else None
            self.posts += 1
            done = self._done(lane, generation)
            if self.dispatcher.submit("event", url, body, key=key, on_done=done) is not None:
                return
            with self._lock:  # the dispatcher's own bound: counted and logged there, counted here too
                self.dropped += len(items)

    def _done(self, lane: _Lane, generation: int) -> Callable[[Attempt], None]:
        def next_batch(attempt: Attempt) -> None:
            if self.linger > 0 and 0 < len(lane.items) < self.batch:
                # Real time on the dispatcher's loop, not the clock's: this is about CPU, not emulated time.
                self.dispatcher.later(self.linger, lambda: self._send(lane, generation))
            else:
                self._send(lane, generation)

        return next_batch

    def _drop(self, count: int) -> None:
        """Count dropped changes and log them (the first at once, then at most every 5 s); lock held."""
        self.dropped += count
        self._unlogged += count
        now = time.monotonic()
        if self.dropped == count or now - self._last_drop_log >= 5.0:
            log.warning(
                "event webhook: %d changes waiting, the limit: dropped %d (%d in all)",
                self._queued,
                self._unlogged,
                self.dropped,
            )
            self._last_drop_log = now
            self._unlogged = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queued": self._queued,
                "held": len(self._held),
                "dropped": self.dropped,
                "suppressed": self.suppressed,
                "posts": self.posts,
                "batch": self.batch,
                "lanes": len(self._lanes),
                "max_queued": self.max_queued,
            }

    def clear(self) -> None:
        """Forget what waits (a reset)."""
        with self._lock:
            for lane in self._lanes:
                lane.items.clear()
                lane.busy = False
                lane.generation += 1
            for _, _, timer in self._held.values():
                timer.cancel()
            self._held.clear()
            self._queued = 0
            self.dropped = self.suppressed = self.posts = 0

