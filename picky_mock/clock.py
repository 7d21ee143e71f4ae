"""Clocks and timers: the one notion of time of a message's life, so that a test can make it pass.

Everything that happens *later* in picky-mock (a delivery report after a policy delay, a webhook
retry after 15 minutes, an instant reply after ``delay`` seconds, the end of a 24-hour window) is a
:class:`Timer` on a :class:`Clock`, never a ``sleep``. Two clocks share one API:

- :class:`VirtualClock` stands still until a test calls :meth:`VirtualClock.advance`, which runs every
  timer that falls due, one at a time in time order (ties in scheduling order), including the timers
  those timers schedule while it advances. Work that a timer starts elsewhere (a webhook POST on the
  dispatcher's own thread) can make the advance wait for it through a *settler*
  (:meth:`Clock.add_settler`), so that a retry chain of 1 min, 15 min, 2 h and 6 h completes inside one
  ``advance(hours=9)``, in milliseconds.
- :class:`WallClock` follows real time, optionally sped up by ``scale`` (60: a minute passes each
  second). Its due timers are run by a runner **thread** that it owns (:meth:`WallClock.start`). A
  thread rather than a task on the server's event loop because the backend is synchronous and
  thread-safe, the clock must also work where there is no loop (the CLI, a plain test), and timer work
  (10,000 policy moves that fall due together) must not stall the loop that answers pushes.
  :meth:`WallClock.advance` jumps it forward too.

Clock time is seconds since the epoch as a float (:meth:`Clock.now`), so that records carry real-looking
dates; a virtual clock starts at the real time unless given ``start``. Callbacks run outside the clock's
lock, one at a time per clock; one that raises is logged and the others still run.

Wiring: the backend owns one clock (virtual in the fixture, wall in ``picky-mock serve``), hands it to
:class:`~picky_mock.lifecycle.Ledger`, :class:`~picky_mock.lifecycle.Lifecycle`, the account model and
:class:`~picky_mock.webhooks.Dispatcher`; ``picky_server.advance(minutes=15)`` and the admin API call
:meth:`Clock.advance`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["Clock", "Timer", "VirtualClock", "WallClock", "duration"]

log = logging.getLogger("picky_mock")

#: A settler: called after the timers due at one instant have run, with a bound in real seconds; it
#: returns once the work those timers started elsewhere is finished (or the bound has passed).
Settler = Callable[[float], object]


def duration(*, seconds: float = 0.0, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
    """A duration in seconds from keyword parts, refusing what is not a finite, non-negative number."""
    for name, value in (("seconds", seconds), ("minutes", minutes), ("hours", hours), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
            raise ConfigError(f"{name}: expected a non-negative number, got {value!r}")
        if value == float("inf"):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    return seconds + 60.0 * minutes + 3600.0 * hours + 86400.0 * days


class Timer:
    """One scheduled call; :meth:`cancel` it before it runs to drop it."""

    __slots__ = ("_clock", "args", "callback", "cancelled", "seq", "when")

    def __init__(self, clock: Clock, when: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...]):
        self._clock = clock
        self.when = when
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> bool:
        """Drop the timer; ``False`` when it had already run or been cancelled."""
        return self._clock._cancel(self)

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<Timer at {self.when:.3f} #{self.seq} {getattr(self.callback, '__qualname__', self.callback)}{state}>"


class Clock:
    """What :class:`VirtualClock` and :class:`WallClock` share: a heap of timers and how they run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One thread runs timers at a time, so that they run in time order; re-entrant, because a
        # callback may advance the clock (an admin call made from a test's timer, say).
        self._running = threading.RLock()
        # (when, seq, timer): tuples compare in C; seq is unique, so timers themselves are never compared.
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._settlers: list[Settler] = []
        self.fired = 0
        """How many timers have run."""

    # -- time -------------------------------------------------------------------------------------
    def now(self) -> float:
        """The clock's time, seconds since the epoch."""
        raise NotImplementedError

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> int:
        """Move the clock forward and run every timer that falls due; returns how many ran."""
        raise NotImplementedError

    # -- timers -----------------------------------------------------------------------------------
    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` once the clock reads ``when`` (at once, on the next run, if past)."""
        if when != when:
            raise ConfigError("a timer's time cannot be NaN")
        with self._lock:
            timer = Timer(self, when, next(self._seq), callback, args)
            entry = (when, timer.seq, timer)
            first = not self._heap or entry < self._heap[0]
            heapq.heappush(self._heap, entry)
        if first:
            self._wake()
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` ``delay`` clock seconds from now (0 or less: at the next run)."""
        return self.call_at(self.now() + max(0.0, delay), callback, *args)

    def _cancel(self, timer: Timer) -> bool:
        with self._lock:
            if timer.cancelled or timer.seq < 0:
                return False
            timer.cancelled = True
            self._cancelled += 1
            # Lazy deletion keeps cancel O(1); compact when the heap is mostly dead timers.
            if self._cancelled > 1024 and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0
            return True

    def pending(self) -> int:
        """How many timers are waiting."""
        with self._lock:
            return len(self._heap) - self._cancelled

    def next_due(self) -> float | None:
        """The time of the earliest waiting timer, if any."""
        with self._lock:
            self._drop_cancelled_top()
            return self._heap[0][0] if self._heap else None

    def add_settler(self, settler: Settler) -> Callable[[], None]:
        """Have :meth:`advance` call ``settler(bound)`` after each instant's timers; returns a remover."""
        with self._lock:
            self._settlers.append(settler)

        def remove() -> None:
            with self._lock:
                if settler in self._settlers:
                    self._settlers.remove(settler)

        return remove

    # -- running ----------------------------------------------------------------------------------
    def _drop_cancelled_top(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
            self._cancelled -= 1

    def _pop_due(self, until: float) -> tuple[Timer | None, float | None]:
        """The first timer due at ``until`` or before (if any), and when the one after it is due."""
        with self._lock:
            self._drop_cancelled_top()
            if not self._heap or self._heap[0][0] > until:
                return None, None
            timer = heapq.heappop(self._heap)[2]
            timer.seq = -1 - timer.seq  # marks it as run: cancel() now answers False
            self._drop_cancelled_top()
            return timer, (self._heap[0][0] if self._heap else None)

    def _run_until(self, until: Callable[[], float], *, settle: float | None) -> int:
        """Run due timers one by one; with ``settle``, let the settlers finish each instant's work."""
        ran = 0
        # Work started before the advance (a POST in flight) may schedule what the advance must run.
        unsettled = settle is not None
        with self._running:
            while True:
                timer, following = self._pop_due(until())
                if timer is None:
                    if unsettled and settle is not None:
                        # What the settlers finish may schedule timers that are already due.
                        unsettled = False
                        self._settle(settle)
                        continue
                    return ran
                self._before(timer.when)
                self.fired += 1
                try:
                    timer.callback(*timer.args)
                except Exception:
                    log.exception("timer %r failed", timer)
                ran += 1
                unsettled = True
                if settle is not None and self._settlers and (following is None or following > timer.when):
                    # Let the work started at this instant finish (and schedule what follows from it)
                    # before moving to a later instant. (A timer the callback scheduled for this same
                    # instant runs first: it is due, and the settle after it covers both.)
                    unsettled = False
                    self._settle(settle)

    def _settle(self, bound: float) -> None:
        """Call the settlers, each bounded by ``bound`` real seconds."""
        with self._lock:
            settlers = list(self._settlers)
        for settler in settlers:
            try:
                settler(bound)
            except Exception:  # pragma: no cover - a settler is our own code
                log.exception("clock settler failed")

    def _before(self, when: float) -> None:
        """Hook: a virtual clock moves its time to the timer's before calling it."""

    def _wake(self) -> None:
        """Hook: a wall clock wakes its runner when an earlier timer arrives."""

    def clear(self) -> int:
        """Drop every waiting timer (the clock keeps its time and keeps running); returns how many."""
        with self._lock:
            dropped = len(self._heap) - self._cancelled
            for entry in self._heap:
                entry[2].cancelled = True
            self._heap.clear()
            self._cancelled = 0
            return dropped

    def close(self) -> None:
        """Stop running timers (a wall clock's runner thread ends); waiting timers are dropped."""
        with self._lock:
            self._heap.clear()
            self._cancelled = 0


class VirtualClock(Clock):
    """A clock that moves only when told: :meth:`advance` runs the due timers in the caller's thread.

    ``settle`` bounds (in real seconds) how long an advance waits, at each instant, for work its timers
    started elsewhere (see :meth:`Clock.add_settler`).
    """

    def __init__(self, start: float | None = None, *, settle: float = 30.0) -> None:
        super().__init__()
        self._now = time.time() if start is None else float(start)
        self.settle = settle

    def now(self) -> float:
        return self._now

    def _before(self, when: float) -> None:
        if when > self._now:
            self._now = when

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> int:
        step = duration(seconds=seconds, minutes=minutes, hours=hours, days=days)
        with self._running:
            target = self._now + step
            ran = self._run_until(lambda: target, settle=self.settle)
            if target > self._now:
                self._now = target
            return ran

    def advance_to(self, when: float) -> int:
        """Advance to the absolute time ``when`` (nothing happens if it is past)."""
        return self.advance(max(0.0, when - self._now))

    def run_due(self) -> int:
        """Run the timers already due (scheduled at or before now) without moving the clock."""
        return self.advance(0.0)


class WallClock(Clock):
    """Real time, sped up ``scale`` times, with a runner thread that runs due timers.

    ``start`` (epoch seconds) is what :meth:`now` reads at the moment the clock is made; by default
    the real time. :meth:`advance` jumps forward (the offset stays) and runs what fell due.
    """

    def __init__(self, scale: float = 1.0, *, start: float | None = None, name: str = "picky-mock-clock") -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale < 1e9):
            raise ConfigError(f"time scale: expected a positive number, got {scale!r}")
        super().__init__()
        self.scale = float(scale)
        self._origin = time.time() if start is None else float(start)
        self._mono = time.monotonic()
        self._offset = 0.0
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopping = False

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._mono) * self.scale + self._offset

    def start(self) -> WallClock:
        """Start the runner thread (idempotent); returns the clock."""
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._runner, name=self._name, daemon=True)
                self._thread.start()
        return self

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _runner(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                due = self.next_due()
                wait = None if due is None else (due - self.now()) / self.scale
                if wait is None or wait > 0:
                    # Bounded wait: a slept-through jump (suspend, an advance) is seen within 1 s.
                    self._cond.wait(1.0 if wait is None else min(wait, 1.0))
                    continue
            self._run_until(self.now, settle=None)

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> int:
        step = duration(seconds=seconds, minutes=minutes, hours=hours, days=days)
        with self._running:
            self._offset += step
            return self._run_until(self.now, settle=None)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        super().close()
