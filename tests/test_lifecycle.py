"""The lifecycle: the state machine, the ledger and its timelines, policies and delivery faults."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picky_mock.clock import VirtualClock
from picky_mock.errors import ConfigError, PickyMockError
from picky_mock.lifecycle import (
    LEGAL_MOVES,
    ChannelPolicy,
    Delay,
    DeliveryFault,
    How,
    IllegalTransition,
    Ledger,
    Lifecycle,
    LifecycleError,
    LifecyclePolicy,
    Report,
    State,
    TrackedMessage,
    Transition,
    UnknownMessage,
    parse_state,
    refusal,
)

START = 1_780_000_000.0


def make_ledger(**kwargs: object) -> tuple[VirtualClock, Ledger]:
    clock = VirtualClock(start=START)
    return clock, Ledger(clock, **kwargs)  # type: ignore[arg-type]


def accept(ledger: Ledger, msg_id: str, *, push_id: str = "7478630", number: str = "5511999990000", channel: int = 8,
           **kwargs: object) -> Transition:
    return ledger.accept(msg_id, push_id=push_id, number=number, channel=channel, token="t", credit="0.005",
                         text="hello", **kwargs)  # type: ignore[arg-type]


def test_states_are_numbered_as_the_contract_and_there_is_no_sent() -> None:
    assert [(s.name, int(s)) for s in State] == [
        ("UNKNOWN", 0), ("DELIVERED", 1), ("FAILED", 2), ("READ", 3), ("SUBMITTED", 4), ("REFUNDED", 5)
    ]
    assert "SENT" not in State.__members__


def test_an_accepted_message_is_submitted_with_a_first_record() -> None:
    _, ledger = make_ledger()
    first = accept(ledger, "9844217", reference_number="order-1", media="https://x.test/a.jpg")
    assert first.state is State.SUBMITTED and first.previous is None and first.how is How.ACCEPTED
    assert first.at == START
    message = ledger.get("9844217")
    assert isinstance(message, TrackedMessage)
    assert message.state is State.SUBMITTED
    assert (message.push_id, message.number, message.channel) == ("7478630", "5511999990000", 8)
    assert message.credit == "0.005"
    assert message.reference_number == "order-1" and message.media == "https://x.test/a.jpg"
    assert message.timeline == (first,)
    with pytest.raises(LifecycleError, match="already"):
        accept(ledger, "9844217")


def test_delivered_then_read_builds_a_timeline_with_clock_times() -> None:
    clock, ledger = make_ledger()
    accept(ledger, "1")
    clock.advance(30)
    ledger.move("1", "delivered")
    clock.advance(minutes=2)
    ledger.move("1", 3)
    timeline = ledger.get("1").timeline
    assert [(t.state, t.previous, t.at - START, t.how) for t in timeline] == [
        (State.SUBMITTED, None, 0.0, How.ACCEPTED),
        (State.DELIVERED, State.SUBMITTED, 30.0, How.DEMAND),
        (State.READ, State.DELIVERED, 150.0, How.DEMAND),
    ]
    assert [t.seq for t in timeline] == sorted(t.seq for t in timeline)
    # Records are immutable.
    with pytest.raises(AttributeError):
        timeline[0].state = State.READ  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "channel", "group", "why"),
    [
        (["read"], 8, False, "Read comes only after Delivered"),
        (["refunded", "delivered"], 8, False, "Refunded is final"),
        (["refunded", "failed"], 8, False, "Refunded is final"),
        (["delivered", "read", "delivered"], 8, False, "Read is final"),
        (["delivered", "delivered"], 8, False, "already Delivered"),
        (["delivered", "failed"], 8, False, "Delivered never becomes Failed"),
        (["delivered", "read"], 1, False, "phone automation"),
        (["delivered", "read"], 4, False, "phone automation"),
        (["delivered", "read"], 101, True, "group"),
        (["failed", "delivered"], 8, False, "Failed never becomes Delivered"),
    ],
)
def test_illegal_moves_are_refused_with_a_typed_error_and_nothing_is_recorded(
    path: list[str], channel: int, group: bool, why: str
) -> None:
    _, ledger = make_ledger()
    accept(ledger, "42", channel=channel, group=group)
    *legal, last = path
    for state in legal:
        ledger.move("42", state)
    before = ledger.get("42").timeline
    with pytest.raises(IllegalTransition) as caught:
        ledger.move("42", last)
    error = caught.value
    assert isinstance(error, PickyMockError)
    assert error.msg_id == "42" and error.to_state is parse_state(last)
    assert error.from_state is before[-1].state
    assert "42" in str(error) and why in str(error)
    assert ledger.get("42").timeline == before


def test_the_legal_table() -> None:
    assert LEGAL_MOVES[State.SUBMITTED] == {State.DELIVERED, State.FAILED, State.REFUNDED, State.UNKNOWN}
    assert LEGAL_MOVES[State.REFUNDED] == frozenset()
    assert refusal(State.DELIVERED, State.READ, channel=10) is None
    assert refusal(State.FAILED, State.REFUNDED, channel=3) is None
    assert refusal(State.UNKNOWN, State.DELIVERED, channel=3) is None


def test_unknown_ids_and_states_name_the_field() -> None:
    _, ledger = make_ledger()
    with pytest.raises(UnknownMessage) as caught:
        ledger.move("404", "delivered")
    assert caught.value.field == "msg_id" and "404" in str(caught.value)
    with pytest.raises(UnknownMessage, match="push_id"):
        ledger.move_push("1", "delivered")
    with pytest.raises(UnknownMessage, match="number"):
        ledger.move_number("551100", "delivered")
    for bad in ("sent", 6, -1, True, None, "4.0"):
        with pytest.raises(LifecycleError, match="status"):
            parse_state(bad)
    assert parse_state(" READ ") is State.READ and parse_state("5") is State.REFUNDED


def test_refund_gives_the_credit_back_through_the_callback() -> None:
    refunds: list[tuple[str, Decimal]] = []
    _, ledger = make_ledger(on_refund=lambda message, credit: refunds.append((message.token, credit)))
    accept(ledger, "1")
    accept(ledger, "2")
    ledger.move("1", "failed", error_message="Number not on WhatsApp")
    ledger.move("1", "refunded", error_message="credit back")
    ledger.move("2", "delivered")
    assert refunds == [("t", Decimal("0.005"))]
    assert ledger.get("1").error_message == "credit back"


def test_a_refund_callback_that_fails_makes_no_move() -> None:
    def refuse(message: TrackedMessage, credit: Decimal) -> None:
        raise RuntimeError("book closed")

    _, ledger = make_ledger(on_refund=refuse)
    accept(ledger, "1")
    with pytest.raises(RuntimeError):
        ledger.move("1", "refunded")
    assert ledger.state("1") is State.SUBMITTED


def test_moves_on_a_push_are_all_or_nothing_unless_told_to_skip() -> None:
    _, ledger = make_ledger()
    for i, channel in enumerate((8, 8, 2)):
        accept(ledger, str(i), push_id="P", number=f"55119999000{i}", channel=channel)
    accept(ledger, "other", push_id="Q")
    ledger.move_push("P", "delivered")
    assert [m.state for m in ledger.messages(push_id="P")] == [State.DELIVERED] * 3
    with pytest.raises(IllegalTransition, match="phone automation"):
        ledger.move_push("P", "read")
    assert [m.state for m in ledger.messages(push_id="P")] == [State.DELIVERED] * 3
    done = ledger.move_push("P", "read", skip_illegal=True)
    assert [t.msg_id for t in done] == ["0", "1"]
    assert ledger.state("other") is State.SUBMITTED


def test_moves_on_a_number_reach_every_message_to_it() -> None:
    _, ledger = make_ledger()
    accept(ledger, "1", push_id="A", number="5511")
    accept(ledger, "2", push_id="B", number="5511")
    accept(ledger, "3", push_id="B", number="5522")
    moved = ledger.move_number("5511", State.FAILED, error_message="blocked")
    assert [t.msg_id for t in moved] == ["1", "2"]
    assert ledger.state("3") is State.SUBMITTED
    assert [m.msg_id for m in ledger.messages(number="5511")] == ["1", "2"]
    assert [m.msg_id for m in ledger.messages(push_id="B", number="5522")] == ["3"]


def test_subscribers_get_every_transition_in_order_and_a_failing_one_breaks_nothing() -> None:
    _, ledger = make_ledger()
    seen: list[tuple[str, State, State]] = []
    ledger.subscribe(lambda t, m: seen.append((t.msg_id, t.state, m.state)))

    def broken(t: Transition, m: TrackedMessage) -> None:
        raise RuntimeError("listener")

    ledger.subscribe(broken)
    accept(ledger, "1")
    ledger.move("1", "delivered")
    assert seen == [("1", State.SUBMITTED, State.SUBMITTED), ("1", State.DELIVERED, State.DELIVERED)]
    assert [t.state for t in ledger.transitions(since=1)] == [State.DELIVERED]


def test_the_ledger_is_bounded() -> None:
    _, ledger = make_ledger(retention=3)
    for i in range(5):
        accept(ledger, str(i), push_id="P")
    assert len(ledger) == 3 and ledger.evicted == 2
    assert [m.msg_id for m in ledger.messages(push_id="P")] == ["2", "3", "4"]
    with pytest.raises(UnknownMessage):
        ledger.get("0")


# -- policy ---------------------------------------------------------------------------------------


def test_policy_parsing_names_the_field() -> None:
    policy = LifecyclePolicy.parse(
        {"deliver_after": "30s", "read_after": [60, "5m"], "fail_share": 0.1, "seed": 7,
         "channels": {"3": {"deliver_after": 5, "refund_share": 0.2}}}
    )
    assert policy.default.deliver_after == Delay(30, 30)
    assert policy.default.read_after == Delay(60, 300)
    assert policy.for_channel(3).deliver_after == Delay(5, 5)
    assert policy.for_channel(3).fail_share == 0.1  # inherited from the default
    assert policy.for_channel(3).refund_share == 0.2
    assert policy.seed == 7
    for spec, where in [
        ({"deliver_after": -1}, "lifecycle.deliver_after"),
        ({"deliver_after": "soon"}, "lifecycle.deliver_after"),
        ({"read_after": [5, 1]}, "lifecycle.read_after"),
        ({"fail_share": 1.5}, "lifecycle.fail_share"),
        ({"fail_share": 0.6, "refund_share": 0.6}, "lifecycle"),
        ({"channels": {"x": {}}}, "lifecycle.channels.x"),
        ({"channels": {"8": {"colour": 1}}}, "lifecycle.channels.8.colour"),
        ({"seed": "1"}, "lifecycle.seed"),
    ]:
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            LifecyclePolicy.parse(spec)


def test_a_seeded_policy_plans_the_same_fate_for_the_same_message() -> None:
    spec = {"deliver_after": [1, 600], "read_after": [1, 3600], "fail_share": 0.2, "refund_share": 0.1, "seed": 3}
    one, two = LifecyclePolicy.parse(spec), LifecyclePolicy.parse(spec)
    other = LifecyclePolicy.parse({**spec, "seed": 4})
    plans = [one.plan(str(i), 8) for i in range(500)]
    assert plans == [two.plan(str(i), 8) for i in range(500)]
    # Order does not matter: a message's fate is its own.
    assert [one.plan(str(i), 8) for i in reversed(range(500))] == list(reversed(plans))
    assert plans != [other.plan(str(i), 8) for i in range(500)]
    finals = [p[0].state for p in plans]
    assert 60 < finals.count(State.FAILED) < 140
    assert 20 < finals.count(State.REFUNDED) < 85
    for plan in plans:
        assert all(1 <= step.after <= 4200 for step in plan)
        if plan[0].state is State.DELIVERED:
            assert [s.state for s in plan] == [State.DELIVERED, State.READ]
            assert plan[1].after >= plan[0].after
        if plan[0].state is State.FAILED:
            assert plan[0].error_message


def test_policy_never_plans_read_where_it_cannot_happen() -> None:
    policy = LifecyclePolicy.at_once()
    for channel in (1, 2, 3, 4):
        assert [s.state for s in policy.plan("1", channel)] == [State.DELIVERED]
    assert [s.state for s in policy.plan("1", 8, group=True)] == [State.DELIVERED]
    assert [s.state for s in policy.plan("1", 8)] == [State.DELIVERED, State.READ]


def test_lifecycle_at_once_moves_inside_accept() -> None:
    clock, ledger = make_ledger()
    lifecycle = Lifecycle(ledger, clock, LifecyclePolicy.at_once())
    lifecycle.accept("1", push_id="P", number="5511", channel=8)
    lifecycle.accept("2", push_id="P", number="5512", channel=3)
    assert ledger.state("1") is State.READ and ledger.state("2") is State.DELIVERED
    assert {t.how for t in ledger.get("1").timeline[1:]} == {How.POLICY}


def test_lifecycle_plays_its_policy_on_the_clock() -> None:
    clock, ledger = make_ledger()
    policy = LifecyclePolicy(ChannelPolicy(deliver_after=Delay(60, 60), read_after=Delay(300, 300)))
    lifecycle = Lifecycle(ledger, clock, policy)
    lifecycle.accept("1", push_id="P", number="5511", channel=101)
    assert ledger.state("1") is State.SUBMITTED
    clock.advance(59)
    assert ledger.state("1") is State.SUBMITTED
    clock.advance(1)
    assert ledger.state("1") is State.DELIVERED
    clock.advance(minutes=5)
    assert ledger.state("1") is State.READ
    assert [t.at - START for t in ledger.get("1").timeline] == [0, 60, 360]


def test_a_planned_move_that_became_illegal_is_skipped() -> None:
    clock, ledger = make_ledger()
    lifecycle = Lifecycle(ledger, clock, LifecyclePolicy(ChannelPolicy(deliver_after=Delay(60, 60))))
    lifecycle.accept("1", push_id="P", number="5511", channel=8)
    ledger.move("1", "refunded")  # a test moved it first
    clock.advance(120)
    assert ledger.state("1") is State.REFUNDED and lifecycle.skipped == 1


def test_a_delivery_fault_fails_the_message_with_its_error_and_marks_its_reports() -> None:
    clock, ledger = make_ledger()
    lifecycle = Lifecycle(ledger, clock, LifecyclePolicy(ChannelPolicy(deliver_after=Delay(10, 10))))
    lifecycle.accept("1", push_id="P", number="5511", channel=8, fault=DeliveryFault(fail_with="Spam"))
    lifecycle.accept("2", push_id="P", number="5512", channel=8, fault=DeliveryFault(report=Report.TWICE))
    clock.advance(10)
    failed = ledger.get("1").timeline[-1]
    assert (failed.state, failed.error_message, failed.how) == (State.FAILED, "Spam", How.FAULT)
    delivered = ledger.get("2").timeline[-1]
    assert (delivered.state, delivered.report) == (State.DELIVERED, Report.TWICE)


def test_a_fault_works_without_a_policy_and_on_demand_moves_pick_their_target() -> None:
    clock, ledger = make_ledger()
    lifecycle = Lifecycle(ledger, clock)
    lifecycle.accept("1", push_id="P", number="5511", channel=8, fault=DeliveryFault(fail_with="Blocked", after=5))
    lifecycle.accept("2", push_id="P", number="5512", channel=8)
    assert ledger.state("1") is State.SUBMITTED
    clock.advance(5)
    assert ledger.state("1") is State.FAILED and ledger.state("2") is State.SUBMITTED
    assert [t.msg_id for t in lifecycle.deliver("delivered", number="5512")] == ["2"]
    with pytest.raises(LifecycleError, match="exactly one"):
        lifecycle.deliver("read", msg_id="2", number="5512")


# -- property: any sequence of moves keeps every timeline a legal path ----------------------------


@settings(max_examples=200, deadline=None)
@given(
    channels=st.lists(st.sampled_from([1, 3, 5, 8, 10, 101, 121]), min_size=1, max_size=4),
    groups=st.lists(st.booleans(), min_size=4, max_size=4),
    moves=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(list(State)), st.integers(0, 120)), max_size=30),
)
def test_any_sequence_of_moves_keeps_every_timeline_legal(
    channels: list[int], groups: list[bool], moves: list[tuple[int, State, int]]
) -> None:
    refunds: list[str] = []
    clock = VirtualClock(start=START)
    ledger = Ledger(clock, on_refund=lambda m, credit: refunds.append(m.msg_id))
    model: dict[str, State] = {}
    for i, channel in enumerate(channels):
        ledger.accept(str(i), push_id="1", number=str(5500 + i), channel=channel, credit="0.01", group=groups[i])
        model[str(i)] = State.SUBMITTED
    for index, target, wait in moves:
        clock.advance(wait)
        msg_id = str(index % len(channels))
        legal = refusal(model[msg_id], target, channel=channels[int(msg_id)], group=groups[int(msg_id)]) is None
        try:
            ledger.move(msg_id, target)
        except IllegalTransition as error:
            assert not legal and error.from_state is model[msg_id] and error.to_state is target
        else:
            assert legal
            model[msg_id] = target
    for msg_id, expected in model.items():
        message = ledger.get(msg_id)
        assert message.state is expected
        states = [t.state for t in message.timeline]
        assert states[0] is State.SUBMITTED
        for before, after in itertools.pairwise(states):
            assert after in LEGAL_MOVES[before]
        if message.channel in (1, 2, 3, 4) or message.group:
            assert State.READ not in states
        times = [t.at for t in message.timeline]
        assert times == sorted(times)
        assert refunds.count(msg_id) == states.count(State.REFUNDED) <= 1


def test_transitions_are_logged_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from picky_mock.lifecycle import log_transitions

    _, ledger = make_ledger()
    stop = log_transitions(ledger)
    with caplog.at_level(logging.INFO, logger="picky_mock"):
        accept(ledger, "9844217")
        ledger.move("9844217", "failed", error_message="Number not on WhatsApp", report=Report.NEVER)
        stop()
        ledger.move("9844217", "refunded")
    assert caplog.messages == [
        "message 9844217 (push 7478630, to 5511999990000): new -> 4 submitted, accepted",
        "message 9844217 (push 7478630, to 5511999990000): 4 submitted -> 2 failed, on demand, "
        "error_message 'Number not on WhatsApp', report never",
    ]


def test_error_messages_and_faults_are_checked() -> None:
    _, ledger = make_ledger()
    accept(ledger, "1")
    with pytest.raises(LifecycleError, match="error_message: longer"):
        ledger.move("1", "failed", error_message="x" * 1001)
    with pytest.raises(LifecycleError, match="error_message: expected a string"):
        ledger.move("1", "failed", error_message=None)  # type: ignore[arg-type]
    with pytest.raises(LifecycleError, match="fail_with"):
        DeliveryFault(fail_with="x" * 5000)
    with pytest.raises(ConfigError, match="after"):
        DeliveryFault(fail_with="x", after=-1)
    with pytest.raises(ConfigError, match="report"):
        DeliveryFault(report="twice")  # type: ignore[arg-type]
    assert ledger.state("1") is State.SUBMITTED
