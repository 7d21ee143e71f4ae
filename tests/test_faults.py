"""Fault rules: when they apply (criteria), how often (nth, times, after, seeded probability), what
they record (hit counts, ``entry.faults``), and how bad rules are refused (ConfigError, HTTP 400)."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pushing import channel_push, status_of

from picky_mock.config import Settings
from picky_mock.errors import ConfigError
from picky_mock.faults import Action, Facts, FaultBook, FaultRule, facts_of
from picky_mock.server import ServerThread

NUMBER = "5511987654321"
push_body = channel_push
OTHER = "5511900000002"
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


# -- criteria -----------------------------------------------------------------------------------

CRITERIA = {
    "token": ({"token": "alpha"}, push_body(token="alpha"), push_body(token="beta")),
    "channel": ({"channel": 3}, push_body(channel=3), push_body(channel=1)),
    "channel-as-string": ({"channel": 3}, push_body(channel="3"), push_body(channel="1")),
    "number-exact-second-recipient": ({"number": OTHER}, push_body(NUMBER, OTHER), push_body(NUMBER)),
    "number-exact-integer-in-body": (
        {"number": NUMBER},
        {"token": "tok", "application": 1, "globalmessage": "hi", "data": [{"number": int(NUMBER)}]},
        push_body(OTHER),
    ),
    "number-prefix": ({"number_prefix": "4477"}, push_body(NUMBER, "447700900123"), push_body(NUMBER)),
    "number-pattern": ({"number_pattern": r"^1\d{10}$"}, push_body(NUMBER, "12025550123"), push_body("5512025550123")),
    "text-global": ({"text": "OTP"}, push_body(text="your OTP is 991"), push_body(text="hello")),
    "text-per-recipient": (
        {"text": "OTP"},
        {
            "token": "tok",
            "application": 1,
            "globalmessage": "hi",
            "data": [{"number": NUMBER}, {"number": OTHER, "message": "OTP 55"}],
        },
        {
            "token": "tok",
            "application": 1,
            "globalmessage": "hi",
            "data": [{"number": NUMBER}, {"number": OTHER, "message": "hello"}],
        },
    ),
    "text-pattern": ({"text_pattern": r"\bcode \d{4}\b"}, push_body(text="your code 1234"), push_body(text="code 12")),
    "token-and-channel": (
        {"token": "alpha", "channel": 3},
        push_body(token="alpha", channel=3),
        push_body(token="alpha"),
    ),
}


@pytest.mark.parametrize("case", list(CRITERIA))
def test_criterion_matches_only_its_requests(picky_server, client, case):
    criteria, matching, other = CRITERIA[case]
    handle = picky_server.add_fault("api_error", status=409, **criteria)
    assert status_of(client, picky_server.push_url, other) == 100
    assert status_of(client, picky_server.push_url, matching) == 409
    assert status_of(client, picky_server.push_url, other) == 100
    assert (handle.seen, handle.hits) == (1, 1)


def test_criterion_path(picky_server, client):
    v4, v3, legacy = picky_server.push_urls
    handle = picky_server.add_fault("api_error", status=409, path="/app/api/v2/push")
    assert status_of(client, v4, push_body()) == 100
    assert status_of(client, legacy, push_body()) == 100
    assert status_of(client, v3, push_body()) == 409
    assert status_of(client, v3 + "/", push_body()) == 409  # trailing slash: same path
    assert handle.hits == 2


def test_no_criterion_matches_every_push(picky_server, client):
    handle = picky_server.add_fault("api_error", status=101)
    for url in picky_server.push_urls:
        assert status_of(client, url, push_body()) == 101
    assert handle.hits == 3


# -- the index never loses a rule -------------------------------------------------------------
# ``FaultBook.fire_on`` looks rules up by their most selective criterion and skips reading a
# request's facts when a quick check says no rule can hold. Whatever the body (well-formed or not),
# the rules it fires must be exactly those whose criteria hold, tried one by one.

_NUMBERS = ["5511987654321", "447700900123", "4477", "12025550123"]
_TEXTS = ["hello", "your OTP is 991", "code 1234", ""]
_PATHS = ["/api/v2/push", "/api/v2/push/", "/app/api/v2/push", "/beta/api/v2/push/"]
_CRITERIA = {
    "token": st.sampled_from(["alpha", "beta", "5"]),
    "channel": st.sampled_from([1, 3, 5, 8]),
    "number": st.sampled_from(_NUMBERS),
    "number_prefix": st.sampled_from(["4477", "55", "1202", "9"]),
    "number_pattern": st.sampled_from([r"^1\d{10}$", "77", r"^55|00$", "x*"]),
    "text": st.sampled_from(["OTP", "code", "hello", "l"]),
    "text_pattern": st.sampled_from([r"\d{4}", "^h", "^$|xyz"]),
    "path": st.sampled_from(["/api/v2/push", "/app/api/v2/push/", "/nowhere"]),
}
_whens = st.dictionaries(st.sampled_from(sorted(_CRITERIA)), st.none(), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: _CRITERIA[k] for k in keys})
)
_odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 9),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
)
_well_formed_recipients = st.fixed_dictionaries(
    {"number": st.sampled_from([*_NUMBERS, int(_NUMBERS[0]), int(_NUMBERS[1])])},
    optional={"message": st.sampled_from(_TEXTS)},
)
_odd_recipients = st.one_of(
    st.fixed_dictionaries({"number": st.sampled_from([int(n) for n in _NUMBERS])}),
    st.fixed_dictionaries({"messenger_id": st.sampled_from(_NUMBERS)}),
    st.fixed_dictionaries({"number": _odd, "message": _odd}),
    _odd,
)
# Mostly pushes of the usual shape (where the quick check decides alone), some with one odd part
# (where it must give up rather than guess), and some bodies that are not pushes at all.
_pushes = st.fixed_dictionaries(
    {
        "token": st.sampled_from(["alpha", "beta", "5"]),
        "application": st.sampled_from([1, 3, "3", 8, "8"]),
        "data": st.lists(_well_formed_recipients, min_size=1, max_size=3),
    },
    optional={"globalmessage": st.sampled_from(_TEXTS)},
)
_odd_pushes = st.fixed_dictionaries(
    {
        "token": st.one_of(st.sampled_from(["alpha", "beta"]), _odd),
        "application": st.one_of(st.sampled_from([3, "3", "03", 3.0, True, "\u0663", "\u00b3"]), _odd),
        "data": st.one_of(
            st.lists(st.one_of(_well_formed_recipients, _odd_recipients), max_size=3),
            _odd,
            st.dictionaries(st.just("number"), st.just("4477")),
        ),
    },
    optional={"globalmessage": st.one_of(st.sampled_from(_TEXTS), _odd)},
)
_bodies = st.integers(0, 9).flatmap(lambda i: _pushes if i < 6 else _odd_pushes if i < 9 else _odd)


@settings(max_examples=500, deadline=None)
@given(
    whens=st.lists(_whens, min_size=1, max_size=4),
    catch_all=st.booleans(),
    path=st.sampled_from(_PATHS),
    body=_bodies,
    slow=st.sets(st.integers(0, 3)),
)
def test_fired_rules_are_exactly_those_that_hold(whens, catch_all, path, body, slow):
    """Brute force: every latency rule that holds, and the oldest other rule that holds."""
    book = FaultBook(seed=1)
    actions = [
        {"action": "latency", "seconds": 0.0} if i in slow else {"action": "api_error", "status": 409}
        for i in range(len(whens))
    ]
    rules = [book.add({**action, **when}) for action, when in zip(actions, whens, strict=True)]
    if catch_all and len(whens) == 1:  # a rule with no criterion: every request is a candidate
        rules.append(book.add({"action": "api_error", "status": 409}))
    facts = facts_of(path, body)
    holding = [rule for rule in rules if rule.when.holds(facts)]
    deciding = [rule for rule in holding if rule.action.kind != "latency"][:1]
    expected = [rule.id for rule in holding if rule.action.kind == "latency" or rule in deciding]
    assert [rule.id for rule in book.fire_on(path, body)] == expected
    assert [rule.seen for rule in rules] == [int(rule.id in expected) for rule in rules]


def test_prefilters_answer_alike_the_first_time_and_every_time_after():
    """The prefilters remember their answers for short texts (tests repeat their numbers): the same
    requests, again and again, past the memory's bound, and long texts, fire the same rules."""
    book = FaultBook(seed=1)
    book.add({"action": "latency", "seconds": 0.0, "number_pattern": "^5511[0-9]{3}7"})
    book.add({"action": "latency", "seconds": 0.0, "text_pattern": "code [0-9]{4}$"})
    for i in range(20):  # more plain texts than one standard-library search takes: RE2
        book.add({"action": "latency", "seconds": 0.0, "text": f"word{i}"})
    long_text = "x" * 300 + " code 1234"
    bodies = [
        {"token": "t", "application": 1, "globalmessage": text, "data": [{"number": number}]}
        for number in ("5511987654321", "5511000700000", "4411987654321")
        for text in ("hello", "your code 1234", "word7 here", long_text)
    ]
    expected = [[rule.id for rule in book.rules if rule.when.holds(facts_of("/api/v2/push", b))] for b in bodies]
    for _ in range(3):
        assert [[rule.id for rule in book.fire_on("/api/v2/push", b)] for b in bodies] == expected
    for i in range(5000):  # past the bound of what is remembered: forgotten, still right
        book.fire_on("/api/v2/push", {"token": "t", "application": 1, "data": [{"number": f"5511{i:09d}"}]})
    assert [[rule.id for rule in book.fire_on("/api/v2/push", b)] for b in bodies] == expected
    assert expected[1] and expected[3] and not expected[8]  # the criteria do fire, and do not


def test_channel_is_read_as_the_schema_reads_it():
    """5, 5.0 and "5" are channel 5; "05", a non-ASCII digit or a superscript are no channel (and
    no crash: int("²") raises although "²".isdigit())."""
    for application in (5, 5.0, "5"):
        assert facts_of("/api/v2/push", {"application": application}).channel == 5
    for application in ("05", "\u0665", "\u00b2", True, 5.5, "5 "):
        assert facts_of("/api/v2/push", {"application": application}).channel is None


def test_odd_channel_with_channel_rule_is_judged_not_crashed(picky_server, client):
    picky_server.add_fault("api_error", status=409, channel=2)
    for application in ("\u00b2", "\u0662", "02"):
        assert status_of(client, picky_server.push_url, push_body(channel=application)) == 410
    assert status_of(client, picky_server.push_url, push_body(channel=2)) == 409


# -- frequency ----------------------------------------------------------------------------------


def _run(client, url, bodies):
    return [status_of(client, url, b) for b in bodies]


def test_nth_fires_only_on_the_nth_match(picky_server, client):
    handle = picky_server.add_fault("api_error", status=409, number=NUMBER, nth=3)
    bodies = [push_body(NUMBER), push_body(OTHER)] * 5
    statuses = _run(client, picky_server.push_url, bodies)
    # only the 3rd request to NUMBER (index 4 overall); the OTHER requests do not count
    assert statuses == [100, 100, 100, 100, 409, 100, 100, 100, 100, 100]
    assert (handle.seen, handle.hits) == (5, 1)


def test_times_fires_on_the_next_n(picky_server, client):
    handle = picky_server.add_fault("api_error", status=409, times=2)
    assert _run(client, picky_server.push_url, [push_body()] * 5) == [409, 409, 100, 100, 100]
    assert (handle.seen, handle.hits) == (5, 2)


def test_after_fires_once_n_have_passed(picky_server, client):
    handle = picky_server.add_fault("api_error", status=409, after=2, channel=3)
    bodies = [push_body(channel=3), push_body(channel=1)] * 4
    statuses = _run(client, picky_server.push_url, bodies)
    assert statuses[1::2] == [100] * 4
    assert statuses[0::2] == [100, 100, 409, 409]
    assert (handle.seen, handle.hits) == (4, 2)


def test_after_and_times_combined(picky_server, client):
    handle = picky_server.add_fault("api_error", status=409, after=1, times=2)
    assert _run(client, picky_server.push_url, [push_body()] * 5) == [100, 409, 409, 100, 100]
    assert handle.hits == 2


# -- seeded probability ---------------------------------------------------------------------------


def _sequence(picky_server, client, n: int, numbers=(NUMBER,)):
    start = len(picky_server.requests)
    statuses = [
        status_of(client, picky_server.push_url, push_body(numbers[i % len(numbers)], text=f"m{i}")) for i in range(n)
    ]
    entries = picky_server.requests[start:]
    assert len(entries) == n
    return statuses, [e.faults for e in entries]


def test_same_seed_same_faults_different_seed_different(picky_server, client):
    picky_server.add_fault("api_error", status=409, probability=0.5)
    picky_server.seed(42)
    first, first_faults = _sequence(picky_server, client, 40)
    picky_server.seed(42)
    second, second_faults = _sequence(picky_server, client, 40)
    picky_server.seed(43)
    third, _ = _sequence(picky_server, client, 40)
    assert 409 in first and 100 in first
    assert first == second
    assert first_faults == second_faults
    assert first != third
    assert [bool(f) for f in first_faults] == [s == 409 for s in first]


def test_probability_is_drawn_from_the_seeded_generator(picky_server, client):
    picky_server.add_fault("api_error", status=409, probability=0.3)
    picky_server.seed(7)
    rng = random.Random(7)
    expected = [409 if rng.random() < 0.3 else 100 for _ in range(30)]
    statuses, _ = _sequence(picky_server, client, 30)
    assert statuses == expected


def test_probability_draws_only_for_matching_requests(picky_server, client):
    """Requests the rule does not match draw nothing, so interleaving them keeps the pattern."""
    picky_server.add_fault("api_error", status=409, number=NUMBER, probability=0.5)
    picky_server.seed(5)
    alone, _ = _sequence(picky_server, client, 20)
    picky_server.seed(5)
    mixed, _ = _sequence(picky_server, client, 40, numbers=(NUMBER, OTHER))
    assert mixed[1::2] == [100] * 20
    assert mixed[0::2] == alone


def test_configured_seed_repeats_after_reset():
    settings = Settings(
        port=0,
        log_level="warning",
        extra={"seed": 7, "faults": [{"action": "api_error", "status": 409, "probability": 0.4}]},
    )
    with ServerThread(settings) as server, httpx.Client(timeout=TIMEOUT) as c:
        runs = []
        for _ in range(2):
            server.backend.reset()
            runs.append([c.post(server.push_url, json=push_body(text=f"x{i}")).json()["status"] for i in range(30)])
            # rule ids keep counting across resets: compare what fired, without the id
            runs.append([tuple(f.split(": ", 1)[1] for f in e.faults) for e in server.backend.journal.snapshot()])
        assert server.backend.describe()["seed"] == 7
        assert c.get(server.url + "/_picky/faults").json()["seed"] == 7
    assert runs[0] == runs[2] and runs[1] == runs[3]
    assert 409 in runs[0] and 100 in runs[0]
    rng = random.Random(7)
    assert runs[0] == [409 if rng.random() < 0.4 else 100 for _ in range(30)]
    rng = random.Random(7)
    assert runs[0] == [409 if rng.random() < 0.4 else 100 for _ in range(30)]


def test_probability_extremes():
    book = FaultBook(seed=1)
    never = book.add({"action": "reset", "probability": 0.0})
    always = book.add({"action": "close", "probability": 1.0})
    for _ in range(50):
        assert [r.id for r in book.fire(Facts("/api/v2/push"))] == [always.id]
    assert (never.seen, never.hits, always.hits) == (50, 0, 50)


def test_latency_distributions_are_seeded_and_shaped():
    lognormal = Action("latency", median=0.2, sigma=1.0)
    rng = random.Random(11)
    many = sorted(lognormal.delay(rng) for _ in range(2001))
    assert 0.16 < many[1000] < 0.25  # the median
    assert many[-1] > 5 * many[1000]  # a long tail
    assert lognormal.delay(random.Random(3)) == lognormal.delay(random.Random(3))  # seeded
    uniform = Action("latency", low=0.1, high=0.3)
    rng = random.Random(4)
    assert all(0.1 <= uniform.delay(rng) <= 0.3 for _ in range(500))
    assert Action("latency", seconds=0.25).delay(random.Random()) == 0.25


# -- counters and the journal ---------------------------------------------------------------------


def test_journal_records_every_fired_rule(picky_server, client):
    slow = picky_server.add_fault("latency", seconds=0.01, name="slow")
    err = picky_server.add_fault("api_error", status=409, number=OTHER)
    assert status_of(client, picky_server.push_url, push_body(NUMBER)) == 100
    assert status_of(client, picky_server.push_url, push_body(OTHER)) == 409
    first, second = picky_server.requests
    delayed = f"{slow.rule.describe()}: delayed 0.010 s"  # a latency rule also records what it drew
    assert first.faults == (delayed,)
    assert second.faults == (delayed, err.rule.describe())
    assert first.delay == second.delay == 0.01
    assert "'slow'" in slow.rule.describe() and f"rule {err.rule.id}" in second.faults[1]
    assert (slow.seen, slow.hits, err.seen, err.hits) == (2, 2, 1, 1)


@pytest.mark.parametrize("indexed_first", [True, False])
def test_first_added_terminal_rule_decides(picky_server, client, indexed_first):
    """Rules from different index buckets are still tried in the order they were added."""
    if indexed_first:
        a = picky_server.add_fault("api_error", status=409, number=NUMBER)
        b = picky_server.add_fault("api_error", status=408)
    else:
        a = picky_server.add_fault("api_error", status=408)
        b = picky_server.add_fault("api_error", status=409, number=NUMBER)
    expected = a.rule.action.status
    assert status_of(client, picky_server.push_url, push_body(NUMBER)) == expected
    assert picky_server.requests[0].faults == (a.rule.describe(),)
    assert (b.seen, b.hits) == (0, 0)  # not tried: the request was a's


def test_queued_faults_answer_one_push_each_in_order(picky_server, client):
    """Two faults queued one after the other: the first push gets the first, the second the second
    (the second is not spent on the first push, which it could not answer)."""
    coverage = picky_server.backend.coverage.faults
    before = coverage.copy()
    first = picky_server.fail_next(http=503)
    second = picky_server.fail_next(http=502)
    third = picky_server.fail_next(403)
    statuses = []
    for _ in range(4):
        answer = client.post(picky_server.push_url, json=push_body())
        statuses.append(answer.status_code if answer.status_code != 200 else answer.json()["status"])
    assert statuses == [503, 502, 403, 100]
    # seen: the pushes each was tried on (a spent rule is still tried; one behind a deciding rule is not)
    assert [(h.seen, h.hits) for h in (first, second, third)] == [(4, 1), (3, 1), (2, 1)]
    assert [len(e.faults) for e in picky_server.requests] == [1, 1, 1, 0]
    assert coverage - before == {"http_error": 2, "api_error": 1}


def test_latency_rules_add_up_beside_the_deciding_rule(picky_server, client):
    slow = picky_server.add_fault("latency", seconds=0.01)
    failing = picky_server.fail_next(409)
    slower = picky_server.add_fault("latency", seconds=0.02)
    assert status_of(client, picky_server.push_url, push_body()) == 409
    entry = picky_server.requests[0]
    assert len(entry.faults) == 3 and entry.delay == pytest.approx(0.03)
    assert (slow.hits, failing.hits, slower.hits) == (1, 1, 1)


def test_latency_rules_add_up_to_the_cap_at_most():
    from picky_mock.backend import Backend, Incoming

    backend = Backend(Settings(log_level="warning"))
    for _ in range(3):
        backend.faults.add({"action": "latency", "seconds": 200})
    raw = json.dumps(push_body()).encode()
    outcome = backend.push(Incoming("POST", "/api/v2/push", (), raw, raw))
    assert outcome.delay == 300.0 and len(outcome.entry.faults) == 3


def test_push_rules_leave_check_balance_alone(picky_server, client):
    """A rule without a path is about pushes: a client that checks its balance first still sees the
    fault on its push. A rule that names the check-balance path hits it."""
    queued = picky_server.fail_next(http=503)
    balance = client.post(picky_server.url + "/api/v2/check-balance", json={"token": "tok"})
    assert balance.status_code == 200 and balance.json()["status"] == 100
    assert (queued.seen, queued.hits) == (0, 0)
    assert client.post(picky_server.push_url, json=push_body()).status_code == 503
    on_balance = picky_server.fail_next(http=502, path="/api/v2/check-balance")
    assert client.post(picky_server.url + "/api/v2/check-balance", json={"token": "tok"}).status_code == 502
    assert on_balance.hits == 1
    assert status_of(client, picky_server.push_url, push_body()) == 100


def test_many_indexed_rules(picky_server, client):
    handles = [picky_server.add_fault("api_error", status=409, number=f"4915{i:08d}") for i in range(100)]
    prefix = picky_server.add_fault("api_error", status=404, number_prefix="4477")
    by_token = picky_server.add_fault("api_error", status=405, token="other-token")
    by_channel = picky_server.add_fault("api_error", status=406, channel=8)
    assert status_of(client, picky_server.push_url, push_body(NUMBER)) == 100
    assert status_of(client, picky_server.push_url, push_body(NUMBER, "491500000042")) == 409
    assert status_of(client, picky_server.push_url, push_body("447700900123")) == 404
    assert status_of(client, picky_server.push_url, push_body(token="other-token")) == 405
    assert [h.hits for h in handles].count(1) == 1 and handles[42].hits == 1
    assert sum(h.seen for h in handles) == 1
    assert (prefix.hits, by_token.hits, by_channel.seen) == (1, 1, 0)


def test_admin_api_lists_counts_and_removes(picky_server, client):
    url = picky_server.url + "/_picky/faults"
    r = client.post(
        url, json=[{"action": "api_error", "status": 409, "number": NUMBER, "times": 1}, {"action": "html_label"}]
    )
    assert r.status_code == 201
    added = r.json()["added"]
    assert [a["action"] for a in added] == ["api_error", "html_label"]
    assert added[0]["when"] == {"number": NUMBER} and added[0]["times"] == 1
    assert status_of(client, picky_server.push_url, push_body()) == 409
    assert status_of(client, picky_server.push_url, push_body()) == 100
    rules = {r["id"]: r for r in client.get(url).json()["rules"]}
    assert (rules[added[0]["id"]]["seen"], rules[added[0]["id"]]["hits"]) == (2, 1)
    assert (rules[added[1]["id"]]["seen"], rules[added[1]["id"]]["hits"]) == (1, 1)  # not tried on the 409
    assert client.delete(f"{url}/{added[0]['id']}").json() == {"removed": added[0]["id"]}
    assert client.delete(f"{url}/{added[0]['id']}").status_code == 404
    assert [r["id"] for r in client.get(url).json()["rules"]] == [added[1]["id"]]
    assert client.delete(url).json() == {"cleared": True}
    assert client.get(url).json()["rules"] == []
    assert client.put(picky_server.url + "/_picky/seed", json={"seed": 99}).json() == {"seed": 99}
    assert client.get(url).json()["seed"] == 99
    assert client.put(picky_server.url + "/_picky/seed", json={"seed": "x"}).status_code == 400


# -- bad rules ------------------------------------------------------------------------------------

BAD_RULES = [
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"status": 403}, "'action' must be one of"),
    ({"action": "reset", "colour": "red"}, "unknown key(s) colour"),
    ({"action": "reset", "when": {"colour": "red"}}, "unknown criteria colour"),
    ({"action": "reset", "number_pattern": "("}, "number_pattern '(' is refused: missing )"),
    ({"action": "reset", "text_pattern": "[a-"}, "text_pattern '[a-' is refused: missing ]"),
    ({"action": "reset", "probability": 1.5}, "probability must be between 0 and 1"),
    ({"action": "reset", "probability": -0.1}, "probability must be between 0 and 1"),
    ({"action": "api_error"}, "api_error needs a status"),
    ({"action": "api_error", "status": "abc"}, "status must be a whole number"),
    ({"action": "api_error", "status": "4\u00b2"}, "status must be a whole number"),
    ({"action": "http_error"}, "http_error needs a status"),
    ({"action": "http_error", "status": 700}, "HTTP status 700 is not a final answer (200 to 599)"),
    ({"action": "http_error", "status": 101}, "HTTP status 101 is not a final answer (200 to 599)"),
    ({"action": "http_error", "status": 204, "body": "x"}, "an HTTP 204 answer has no body"),
    (
        {"action": "http_error", "status": 503, "retry_after": -5},
        "retry_after must be whole seconds from 0 to 86400, not -5",
    ),
    ({"action": "api_error", "status": "abc"}, "status must be a whole number, not 'abc'"),
    ({"action": "latency", "seconds": "1"}, "latency seconds must be a number of seconds from 0 to 300, not '1'"),
    ({"action": "latency", "seconds": True}, "latency seconds must be a number of seconds from 0 to 300, not True"),
    ({"action": "latency", "median": 1, "sigma": "x"}, "latency sigma must be a number from 0 to 10, not 'x'"),
    ({"action": "latency", "median": 1, "sigma": 1e6}, "latency sigma must be a number from 0 to 10, not 1000000.0"),
    ({"action": "latency", "seconds": 1e308}, "latency seconds must be a number of seconds from 0 to 300, not 1e+308"),
    ({"action": "hang", "seconds": 301}, "hang seconds must be a number of seconds from 0 to 300, not 301"),
    ({"action": "reset", "status": 403}, "reset takes no option status (its options: none)"),
    ({"action": "reset", "name": 5}, "name must be a string of at most 4096 characters, not 5"),
    ({"action": "reset", "number": True}, "number must be a string, not True"),
    ({"action": "reset", "token": ["t"]}, "token must be a string, not ['t']"),
    (
        {"action": "api_error", "status": 403, "seconds": 1},
        "api_error takes no option seconds (its options: message, status)",
    ),
    ({"action": "latency"}, "latency needs seconds"),
    ({"action": "latency", "low": 2, "high": 1}, "low must not exceed high"),
    ({"action": "latency", "seconds": -1}, "latency seconds must be a number of seconds from 0 to 300, not -1"),
    ({"action": "reset", "times": 0}, "times must be a whole number from 1 to"),
    ({"action": "reset", "nth": 0}, "nth must be a whole number from 1 to"),
    ({"action": "reset", "after": -1}, "after must be a whole number from 0 to"),
    ({"action": "reset", "channel": "sms"}, "channel must be a whole number"),
    ("reset", "expected a table/object"),
    ({"action": "reset", "text_pattern": "(a)\\1"}, "no backreferences"),
    ({"action": "reset", "text_pattern": "(?=a)b"}, "invalid perl operator"),
    ({"action": "reset", "text_pattern": "a" * 1001}, "longer than 1000 characters"),
    ({"action": "reset", "text_pattern": "((a{100}){100}){100}"}, "is refused"),
    ({"action": "reset", "text": "x" * 4097}, "text is longer than 4096 characters"),
    ({"action": "dribble", "chunk": 2**40}, "chunk must be a whole number of bytes from 1 to"),
    ({"action": "http_error", "status": 503, "headers": {f"x-{i}": "v" for i in range(65)}}, "at most 64 header"),
    ({"action": "reset", "times": 10**13}, "times must be a whole number from 1 to 1000000000000"),
    ({"action": "api_error", "status": "9" * 5000}, "status must be a whole number"),
]


@pytest.mark.parametrize(("spec", "fragment"), BAD_RULES, ids=[str(s) for s, _ in BAD_RULES])
def test_bad_rule_config_error(spec, fragment):
    with pytest.raises(ConfigError) as info:
        FaultRule.from_dict(spec)
    assert fragment in str(info.value)
    assert str(info.value).startswith("fault: ")


@pytest.mark.parametrize(
    ("action", "options", "fragment"),
    [
        ("explode", {}, "unknown action"),
        ("reset", {"colour": 1}, "unknown key(s) colour"),
        ("reset", {"number_pattern": "(("}, "is refused: missing )"),
        ("reset", {"probability": 2}, "probability must be between 0 and 1"),
        ("api_error", {}, "api_error needs a status"),
    ],
)
def test_bad_rule_from_add_fault(picky_server, action, options, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        picky_server.add_fault(action, **options)
    assert picky_server.faults == []


@pytest.mark.parametrize(("spec", "fragment"), BAD_RULES, ids=[str(s) for s, _ in BAD_RULES])
def test_bad_rule_admin_api_400(picky_server, client, spec, fragment):
    r = client.post(picky_server.url + "/_picky/faults", json=spec)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert fragment in r.json()["error"]
    assert client.get(picky_server.url + "/_picky/faults").json()["rules"] == []


def test_admin_api_batch_with_one_bad_rule_adds_nothing(picky_server, client):
    r = client.post(picky_server.url + "/_picky/faults", json=[{"action": "reset"}, {"action": "api_error"}])
    assert r.status_code == 400 and "api_error needs a status" in r.json()["error"]
    assert picky_server.faults == []
    assert client.post(picky_server.url + "/_picky/faults", content=b"{not json").status_code == 400


@pytest.mark.parametrize("when", [5, "number=1", ["a"]])
def test_bad_when_is_a_config_error(when):
    with pytest.raises(ConfigError):
        FaultRule.from_dict({"action": "reset", "when": when})


@pytest.mark.parametrize("chunk", ["x", 0, -5])
def test_bad_dribble_chunk_is_a_config_error(chunk):
    with pytest.raises(ConfigError):
        FaultRule.from_dict({"action": "dribble", "chunk": chunk})


def test_bad_when_admin_api_400():
    with ServerThread(Settings(port=0, log_level="critical")) as server, httpx.Client(timeout=TIMEOUT) as c:
        r = c.post(server.url + "/_picky/faults", json={"action": "reset", "when": 5})
        server.backend.take_server_errors()
    assert r.status_code == 400 and "when" in r.json()["error"]


# -- from a test: fail_next, add_fault as a context manager, the marker ----------------------------


def test_add_fault_context_manager_removes_the_rule(picky_server, client):
    with picky_server.add_fault("api_error", status=409, number=NUMBER) as handle:
        assert status_of(client, picky_server.push_url, push_body()) == 409
        assert [r.id for r in picky_server.faults] == [handle.rule.id]
    assert picky_server.faults == []
    assert status_of(client, picky_server.push_url, push_body()) == 100
    assert handle.hits == 1
    assert "seen=1 hits=1" in repr(handle)


def test_handle_remove(picky_server, client):
    keep = picky_server.add_fault("html_label")
    gone = picky_server.add_fault("api_error", status=409)
    gone.remove()
    assert [r.id for r in picky_server.faults] == [keep.rule.id]
    assert status_of(client, picky_server.push_url, push_body()) == 100


def test_fail_next_status_once(picky_server, client):
    handle = picky_server.fail_next(403)
    assert _run(client, picky_server.push_url, [push_body()] * 3) == [403, 100, 100]
    assert handle.hits == 1


def test_fail_next_http_with_criteria(picky_server, client):
    picky_server.fail_next(http=503, times=2, channel=3)
    codes = [client.post(picky_server.push_url, json=push_body(channel=ch)).status_code for ch in (1, 3, 3, 3)]
    assert codes == [200, 503, 503, 200]


def test_fail_next_transport(picky_server, client):
    picky_server.fail_next(transport="reset", number=OTHER)
    assert status_of(client, picky_server.push_url, push_body(NUMBER)) == 100
    with pytest.raises(httpx.TransportError):
        client.post(picky_server.push_url, json=push_body(OTHER))
    assert status_of(client, picky_server.push_url, push_body(OTHER)) == 100


@pytest.mark.parametrize("kwargs", [{}, {"status": 403, "http": 503}, {"http": 502, "transport": "close"}])
def test_fail_next_needs_exactly_one_kind(picky_server, kwargs):
    with pytest.raises(TypeError, match="exactly one"):
        picky_server.fail_next(**kwargs)


@pytest.mark.picky(faults=[{"action": "api_error", "status": 409, "number": OTHER, "probability": 0.5}], seed=11)
def test_marker_sets_faults_and_seed(picky_server, client):
    assert picky_server.backend.faults.seed == 11
    assert len(picky_server.faults) == 1
    rng = random.Random(11)
    expected = [409 if rng.random() < 0.5 else 100 for _ in range(12)]
    statuses, _ = _sequence(picky_server, client, 12, numbers=(OTHER,))
    assert statuses == expected


def test_marker_unknown_option(picky_server):
    with pytest.raises(TypeError, match="unknown option"):
        picky_server.apply_marker({"fautls": []})


@pytest.mark.parametrize(
    "criteria", [{"text": 5}, {"path": 5}, {"number_pattern": 7}, {"number": ""}, {"channel": "x"}]
)
def test_a_bad_criterion_is_refused_and_leaves_the_book_usable(client, picky_server, criteria):
    faults, admin = picky_server.url + "/_picky/faults", picky_server.admin_headers
    answer = client.post(faults, headers=admin, json={"action": "api_error", "status": 403, **criteria})
    assert answer.status_code == 400 and "fault:" in answer.json()["error"]
    assert picky_server.faults == []
    assert client.post(faults, headers=admin, json={"action": "api_error", "status": 403}).status_code == 201
    assert client.post(picky_server.push_url, json=push_body()).json()["status"] == 403


@pytest.mark.parametrize(
    "options",
    [{"headers": {"x-a": 1}}, {"headers": "x"}, {"body": 5}, {"headers": {"x-a": "€"}}, {"headers": {"x": "a\nb"}}],
)
def test_http_error_options_are_checked_when_the_rule_is_made(options):
    with pytest.raises(ConfigError):
        FaultRule.from_dict({"action": "http_error", "status": 502, **options})


def test_dribble_chunk_and_retry_after_are_checked():
    with pytest.raises(ConfigError, match="chunk"):
        FaultRule.from_dict({"action": "dribble", "chunk": 0})
    with pytest.raises(ConfigError, match="retry_after"):
        FaultRule.from_dict({"action": "http_error", "status": 429, "retry_after": "soon"})


def test_a_listed_rule_can_be_posted_back(client, picky_server):
    faults, admin = picky_server.url + "/_picky/faults", picky_server.admin_headers
    client.post(faults, headers=admin, json={"action": "api_error", "status": 409, "number": "5511987654321"})
    [listed] = client.get(faults, headers=admin).json()["rules"]
    client.delete(faults, headers=admin)
    again = client.post(faults, headers=admin, json=listed)
    assert again.status_code == 201, again.text


def test_check_balance_honours_the_html_label_fault(client, picky_server):
    picky_server.add_fault("html_label", path="/api/v2/check-balance")
    answer = client.post(picky_server.url + "/api/v2/check-balance", json={"token": "t"})
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.json()["status"] == 100
