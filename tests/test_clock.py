"""Clocks and timers: the virtual clock's order, cancellation, settling, speed, and the wall clock's runner."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from picky_mock.clock import VirtualClock, WallClock, duration
from picky_mock.errors import ConfigError


def test_virtual_clock_runs_due_timers_in_time_order_then_scheduling_order() -> None:
    clock = VirtualClock(start=1000.0)
    seen: list[tuple[str, float]] = []
    clock.call_at(1030.0, lambda: seen.append(("c", clock.now())))
    clock.call_at(1010.0, lambda: seen.append(("a", clock.now())))
    clock.call_at(1010.0, lambda: seen.append(("b", clock.now())))
    clock.call_at(1100.0, lambda: seen.append(("late", clock.now())))
    assert clock.pending() == 4
    assert clock.advance(30) == 3
    # Each callback sees the clock at its own time, not at the end of the advance.
    assert seen == [("a", 1010.0), ("b", 1010.0), ("c", 1030.0)]
    assert clock.now() == 1030.0
    assert clock.pending() == 1
    assert clock.next_due() == 1100.0


def test_timers_scheduled_by_timers_during_an_advance_run_in_order() -> None:
    clock = VirtualClock(start=0.0)
    seen: list[float] = []

    def tick(n: int) -> None:
        seen.append(clock.now())
        if n:
            clock.call_later(10, tick, n - 1)
            # Earlier than the next tick, scheduled later: still runs first.
            clock.call_later(5, lambda: seen.append(clock.now() + 0.5))

    clock.call_at(10.0, tick, 3)
    clock.advance(minutes=1)
    assert seen == [10.0, 15.5, 20.0, 25.5, 30.0, 35.5, 40.0]
    assert clock.now() == 60.0
    assert clock.pending() == 0


def test_cancelled_timers_do_not_run_and_cancel_after_running_is_false() -> None:
    clock = VirtualClock(start=0.0)
    ran: list[int] = []
    first = clock.call_later(1, ran.append, 1)
    second = clock.call_later(2, ran.append, 2)
    assert second.cancel() is True
    assert second.cancel() is False
    assert clock.pending() == 1
    clock.advance(5)
    assert ran == [1]
    assert first.cancel() is False


def test_many_due_timers_keep_time_order_with_what_their_callbacks_do() -> None:
    """Among a thousand due timers, what a callback schedules, cancels or advances still happens
    in time order (ties in scheduling order)."""
    clock = VirtualClock(start=0.0)
    seen: list[tuple[str, float]] = []
    later = {}

    def tick(i: int) -> None:
        seen.append(("tick", clock.now()))
        if i == 10:  # earlier than every timer still waiting: runs next
            clock.call_at(11.5, lambda: seen.append(("inserted", clock.now())))
        if i == 20:  # the same instant as a waiting one, scheduled after it: runs after it
            clock.call_at(21.0, lambda: seen.append(("tie", clock.now())))
        if i == 30:
            assert later[40].cancel() is True  # taken with this one, not run yet: dropped
            assert later[40].cancel() is False
            assert clock.pending() == 1000 - 31 - 1  # ticks 0 to 30 ran, 40 is cancelled
        if i == 50:
            clock.advance(0)  # a callback may advance: nothing due runs out of its turn

    for i in range(1000):
        later[i] = clock.call_at(float(i + 1), tick, i)
    assert clock.advance(2000) == 1000 - 1 + 2
    expected = [("tick", float(i + 1)) for i in range(1000) if i != 40]
    expected.insert(11, ("inserted", 11.5))
    expected.insert(expected.index(("tick", 21.0)) + 1, ("tie", 21.0))
    assert seen == expected
    assert clock.pending() == 0 and later[500].cancel() is False


def test_clear_drops_timers_a_running_advance_has_taken() -> None:
    clock = VirtualClock(start=0.0)
    ran: list[int] = []

    def first() -> None:
        ran.append(0)
        assert clock.clear() == 299

    clock.call_at(1.0, first)
    for i in range(1, 300):
        clock.call_at(float(i + 1), ran.append, i)
    assert clock.advance(1000) == 1
    assert ran == [0] and clock.pending() == 0


def test_a_timer_in_the_past_runs_at_the_next_advance_and_time_never_goes_back() -> None:
    clock = VirtualClock(start=100.0)
    seen: list[float] = []
    clock.call_at(50.0, lambda: seen.append(clock.now()))
    assert clock.run_due() == 1
    assert seen == [100.0]
    assert clock.now() == 100.0


def test_a_failing_timer_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(start=0.0)
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    clock.call_later(1, boom)
    clock.call_later(2, ran.append, 2)
    with caplog.at_level(logging.ERROR, logger="picky_mock"):
        clock.advance(3)
    assert ran == [2]
    assert "boom" in caplog.text


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "5", True])
def test_durations_are_checked(bad: object) -> None:
    with pytest.raises(ConfigError, match="seconds"):
        duration(seconds=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        VirtualClock().advance(bad)  # type: ignore[arg-type]


def test_duration_adds_its_parts() -> None:
    assert duration(seconds=1, minutes=2, hours=3, days=1) == 1 + 120 + 3 * 3600 + 86400


def test_settlers_run_after_each_instant_and_can_add_due_work() -> None:
    clock = VirtualClock(start=0.0)
    log: list[str] = []
    started: list[float] = []

    def timer() -> None:
        log.append(f"timer@{clock.now():g}")
        started.append(clock.now())

    def settler(bound: float) -> None:
        # Work "finished elsewhere" schedules a follow-up 15 s later, like a failed POST its retry.
        while started:
            at = started.pop()
            log.append(f"settled@{at:g}")
            if at < 30:
                clock.call_at(at + 15, timer)

    remove = clock.add_settler(settler)
    clock.call_at(1.0, timer)
    clock.advance(60)
    assert log == ["timer@1", "settled@1", "timer@16", "settled@16", "timer@31", "settled@31"]
    remove()
    clock.call_at(70.0, timer)
    clock.advance(20)
    assert log[-1] == "timer@70"


def test_advancing_over_ten_thousand_pending_timers_is_fast() -> None:
    clock = VirtualClock(start=0.0)
    counter = [0]

    def bump() -> None:
        counter[0] += 1

    for i in range(10_000):
        clock.call_at(float(i % 997) + 1, bump)
    started = time.perf_counter()
    clock.advance(hours=1)
    elapsed = time.perf_counter() - started
    assert counter[0] == 10_000
    # Precise figure in bench/lifecycle.py (< 50 ms); a generous bound for a shared machine here.
    assert elapsed < 0.5


def test_mass_cancellation_keeps_the_heap_small() -> None:
    clock = VirtualClock(start=0.0)
    timers = [clock.call_later(i + 1, lambda: None) for i in range(5000)]
    for timer in timers[:4000]:
        timer.cancel()
    assert clock.pending() == 1000
    assert clock.advance(10_000) == 1000


def test_wall_clock_runs_timers_on_its_thread_at_the_scaled_time() -> None:
    clock = WallClock(scale=600).start()  # ten minutes a second
    try:
        fired = threading.Event()
        where: list[str] = []

        def run() -> None:
            where.append(threading.current_thread().name)
            fired.set()

        before = clock.now()
        clock.call_later(60, run)  # a minute of clock time: 0.1 s of real time
        assert fired.wait(3.0)
        assert where == ["picky-mock-clock"]
        assert clock.now() - before >= 60
    finally:
        clock.close()


def test_wall_clock_advance_jumps_and_runs_what_fell_due() -> None:
    clock = WallClock(scale=1)
    try:
        ran: list[int] = []
        clock.call_later(3600, ran.append, 1)
        before = clock.now()
        assert clock.advance(hours=1) == 1
        assert ran == [1]
        assert clock.now() - before >= 3600
    finally:
        clock.close()


@pytest.mark.parametrize("scale", [0, -1, float("nan"), True])
def test_wall_clock_scale_is_checked(scale: object) -> None:
    with pytest.raises(ConfigError, match="time scale"):
        WallClock(scale=scale)  # type: ignore[arg-type]
