"""The journal: what the mock received and answered, queried from Python and over the admin API,
bounded by ``retention``; and the health endpoint."""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pushing import TOKEN, encode, expect_error, expect_success, number, push_body

from picky_mock.config import Settings
from picky_mock.errors import ConfigError
from picky_mock.journal import (
    BODY_PREFIX_BYTES,
    MAX_MAX_BYTES,
    MAX_RETENTION,
    MIN_MAX_BYTES,
    Entry,
    Journal,
    JournalStore,
    Message,
    Query,
    header_pairs,
)
from picky_mock.recipients import text_matches
from picky_mock.server import ServerThread


@pytest.fixture
def traffic(client, picky_server):
    """Three accepted pushes on two channels and two rejected ones."""
    one = expect_success(client.post("/api/v2/push", json=push_body(number(1), number(2), text="first text")))
    two = expect_success(client.post("/app/api/v2/push", json=push_body(number(2), text="second text", application=3)))
    expect_error(client.post("/api/v2/push", json=push_body("+1")), 406)
    expect_error(client.post("/api/v2/push", json={"application": 1, "data": []}), 401)
    body = {"token": TOKEN, "application": 1, "data": [{"number": number(3), "message": "own text"}]}
    three = expect_success(client.post("/beta/api/v2/push/", json=body))
    return one, two, three


def test_python_queries(picky_server, traffic):
    one, two, three = traffic
    journal = picky_server.journal
    assert len(journal) == 5 and journal.dropped == 0
    assert [e.seq for e in journal.snapshot()] == sorted(e.seq for e in journal.snapshot())
    assert [e.push_id for e in journal.entries(number=number(2))] == [one["push_id"], two["push_id"]]
    assert [e.push_id for e in journal.entries(push_id=two["push_id"])] == [two["push_id"]]
    assert [e.push_id for e in journal.entries(push_id=int(three["push_id"]))] == [three["push_id"]]
    assert [e.status for e in journal.entries(status=406)] == [406]
    assert len(journal.entries(status=100)) == 3
    assert [e.push_id for e in journal.entries(text="second")] == [two["push_id"]]
    assert len(journal.entries(accepted=False)) == 2
    assert [e.path for e in journal.entries(path="/beta/api/v2/push/")] == ["/beta/api/v2/push/"]
    assert journal.entries(number=number(9)) == []
    assert journal.entries(number=number(2), text="first")[0].push_id == one["push_id"]

    assert [m.number for m in journal.messages(number=number(2))] == [number(2), number(2)]
    assert [m.text for m in journal.messages(number=number(2))] == ["first text", "second text"]
    assert [m.msg_id for m in journal.messages(push_id=one["push_id"])] == [d["msg_id"] for d in one["data"]]
    assert [m.channel for m in journal.messages(channel=3)] == [3]
    assert [m.text for m in journal.messages(text="own")] == ["own text"]
    assert journal.messages(number=number(2), channel=3)[0].push_id == two["push_id"]
    assert len(journal.messages()) == 4
    assert [e.push_id for e in journal.pushes()] == [one["push_id"], two["push_id"], three["push_id"]]


def test_entries_hold_request_and_answer(picky_server, traffic):
    one = traffic[0]
    entry = picky_server.journal.entries(push_id=one["push_id"])[0]
    assert entry.method == "POST" and entry.path == "/api/v2/push" and entry.http_status == 200
    assert entry.answer == one and entry.accepted
    assert entry.header("Content-Type") == "application/json"
    assert entry.body == push_body(number(1), number(2), text="first text")
    assert entry.push is not None and entry.push.token == TOKEN and entry.push.recipients == 2
    first = entry.messages[0]
    assert (first.msg_id, first.push_id, first.number, first.text, first.channel, first.segments, first.credit) == (
        one["data"][0]["msg_id"], one["push_id"], number(1), "first text", 1, 1, "0.005",
    )
    rejected = picky_server.journal.entries(status=406)[0]
    assert rejected.error and rejected.error.startswith("$.data[0].number")
    assert rejected.violations[0].path == "$.data[0].number" and rejected.violations[0].status == 406


def test_entry_headers_are_what_the_client_sent(client, picky_server):
    """Every header the client sent, in order, names lower-cased, values byte for byte (latin-1)."""
    odd = [
        ("X-Colon-Space", "a: b"),  # ': ' in a value
        ("X-Empty", ""),
        ("X-Latin", "caf\xe9"),
        ("X-Twice", "1"),
        ("X-Twice", "2"),
    ]
    client.post("/api/v2/push", json=push_body(number(1)), headers=httpx.Headers(odd, encoding="latin-1"))
    entry = picky_server.journal.snapshot()[-1]
    sent = [(name.lower(), value) for name, value in odd]
    assert [pair for pair in entry.headers if pair[0].startswith("x-")] == sent
    assert entry.header("x-twice") == "1" and entry.header("X-LATIN") == "caf\xe9"
    assert [pair for pair in entry.to_json()["headers"] if pair[0].startswith("x-")] == [list(p) for p in sent]


@given(st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=8)), max_size=6))
def test_header_pairs_keep_any_bytes(raw):
    """ASGI headers as an entry keeps them: latin-1 strings, in order, byte for byte."""
    assert header_pairs(raw) == tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


def test_http_queries(client, traffic):
    one, two, _ = traffic
    everything = client.get("/_picky/journal").json()
    assert len(everything["entries"]) == 5 and everything["dropped"] == 0
    by_number = client.get("/_picky/journal", params={"number": number(2)}).json()["entries"]
    assert [e["push_id"] for e in by_number] == [one["push_id"], two["push_id"]]
    assert [e["status"] for e in client.get("/_picky/journal", params={"status": "406"}).json()["entries"]] == [406]
    rejected = client.get("/_picky/journal", params={"accepted": "false"}).json()["entries"]
    assert [e["status"] for e in rejected] == [406, 401]
    assert rejected[0]["violations"][0]["path"] == "$.data[0].number" and rejected[0]["error"]
    by_push = client.get("/_picky/journal", params={"push_id": two["push_id"]}).json()["entries"]
    assert by_push[0]["messages"][0]["text"] == "second text" and by_push[0]["answer"] == two
    by_text = client.get("/_picky/journal", params={"text": "first"}).json()["entries"]
    assert [e["push_id"] for e in by_text] == [one["push_id"]]

    messages = client.get("/_picky/messages").json()["messages"]
    assert [m["number"] for m in messages] == [number(1), number(2), number(2), number(3)]
    sms = client.get("/_picky/messages", params={"channel": 3}).json()["messages"]
    assert [(m["number"], m["credit"]) for m in sms] == [(number(2), "0.01")]
    assert len(client.get("/_picky/messages", params={"number": number(2)}).json()["messages"]) == 2
    of_push = client.get("/_picky/messages", params={"push_id": one["push_id"]}).json()["messages"]
    assert [m["number"] for m in of_push] == [number(1), number(2)]


@pytest.mark.parametrize(("endpoint", "name"), [("journal", "status"), ("messages", "channel")])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "\u00b2", "\u0663"])
def test_http_query_bad_number_is_400_not_ignored(client, endpoint, name, value):
    """A filter that is not a whole number is refused with what was wrong, not silently dropped
    (which would return everything) nor a crash (int("²") raises although "²".isdigit())."""
    r = client.get(f"/_picky/{endpoint}", params={name: value})
    assert r.status_code == 400, r.text
    assert name in r.json()["error"] and "whole number" in r.json()["error"]


@pytest.mark.parametrize("value", ["maybe", "2", "t"])
def test_http_query_bad_yes_no_is_400_not_ignored(client, traffic, value):
    r = client.get("/_picky/journal", params={"accepted": value})
    assert r.status_code == 400 and "accepted" in r.json()["error"] and "true or false" in r.json()["error"]
    for answer, count in (("false", 2), ("0", 2), ("no", 2), ("TRUE", 3), ("yes", 3), ("", 5)):
        assert len(client.get("/_picky/journal", params={"accepted": answer}).json()["entries"]) == count


def test_number_finds_rejected_requests_too(picky_server, client):
    """Debugging a client, the request to look for is often the refused one."""
    expect_error(client.post("/api/v2/push", json=push_body("+5511987000009")), 406)
    expect_success(client.post("/api/v2/push", json=push_body(number(9))))
    journal = picky_server.journal
    assert [e.status for e in journal.entries(number="+5511987000009")] == [406]
    assert [e.status for e in journal.entries(number=number(9))] == [100]
    found = client.get("/_picky/journal", params={"number": "+5511987000009"}).json()["entries"]
    assert [e["status"] for e in found] == [406]


def test_state_accepts_the_mode_and_says_what_else_cannot_change(client):
    url = "/_picky/state"
    r = client.put(url, json={"retention": 5})
    assert r.status_code == 400 and "(retention: only the mode changes while serving)" in r.json()["error"]
    r = client.put(url, json={"mode": "lenient", "retention": 5, "seed": -1})
    assert r.status_code == 400 and "(retention, seed: only the mode" in r.json()["error"]
    state = client.get(url).json()  # read, change the mode, write back
    assert client.put(url, json={**state, "mode": "lenient"}).json()["mode"] == "lenient"
    assert client.put(url, json={"mode": "strict"}).json()["mode"] == "strict"
    assert client.put(url, json={"mode": "other"}).status_code == 400


def test_delete_journal_and_reset(client, picky_server, traffic):
    assert client.delete("/_picky/journal").json() == {"cleared": True}
    assert len(picky_server.journal) == 0
    assert client.get("/_picky/journal").json()["entries"] == []
    after_clear = expect_success(client.post("/api/v2/push", json=push_body()))
    assert int(after_clear["push_id"]) == int(traffic[2]["push_id"]) + 1, "clearing the journal keeps the ids going"
    assert client.post("/_picky/reset").json() == {"reset": True}
    assert client.get("/_picky/journal").json()["entries"] == []
    after_reset = expect_success(client.post("/api/v2/push", json=push_body()))
    assert after_reset["push_id"] == "7478630" and after_reset["data"][0]["msg_id"] == "9844217"


def test_admin_requests_are_not_journaled(client, picky_server):
    client.get("/_picky/health")
    client.get("/_picky/journal")
    client.get("/_picky/messages")
    client.get("/_picky/state")
    assert len(picky_server.journal) == 0


def test_invalid_utf8_body_is_shown_as_base64(client):
    expect_error(client.post("/api/v2/push", content=b"\xff\xfe garbage"), 410)
    (entry,) = client.get("/_picky/journal").json()["entries"]
    assert entry["raw_body"] == {"base64": "//4gZ2FyYmFnZQ=="}


def test_retention_bounds_the_journal():
    with ServerThread(Settings(port=0, retention=5, log_level="warning")) as server:
        with httpx.Client(base_url=server.url) as client:
            for i in range(8):
                if i % 2 == 0:
                    expect_success(client.post("/api/v2/push", json=push_body(number(i))))
                else:
                    expect_error(client.post("/api/v2/push", json=push_body("+1")), 406)
            view = client.get("/_picky/journal").json()
            state = client.get("/_picky/state").json()
        journal = server.backend.journal
        assert len(journal) == 5 and journal.dropped == 3
        assert [e.seq for e in journal.snapshot()] == [4, 5, 6, 7, 8], "the oldest are dropped"
        assert len(view["entries"]) == 5 and view["dropped"] == 3
        assert state["journal_entries"] == 5 and state["journal_dropped"] == 3 and state["retention"] == 5
        assert [m.number for m in journal.messages()] == [number(4), number(6)]


def _entry(seq: int, **fields):
    """A record built as the backend builds one: by keyword."""
    return Entry(seq=seq, time=0.0, method="POST", path="/api/v2/push", **fields)


def _message(push_id: str, position: int, number_: str, text: str = "hello", channel: int = 1) -> Message:
    return Message(
        msg_id=str(1000 + position),
        push_id=push_id,
        position=position,
        number=number_,
        text=text,
        media=None,
        channel=channel,
        segments=1,
        credit="0.005",
        reference_number=None,
    )


def _accepted(seq: int, *numbers: str, text: str = "hello", channel: int = 1):
    push_id = str(5000 + seq)
    messages = tuple(_message(push_id, i, n, text, channel) for i, n in enumerate(numbers))
    return _entry(seq, status=100, push_id=push_id, messages=messages, body={"data": [{"number": n} for n in numbers]})


def _rejected(seq: int, *numbers: str, status: int = 406):
    return _entry(seq, status=status, body={"data": [{"number": n} for n in numbers]})


@pytest.mark.parametrize("retention", [0, -1, MAX_RETENTION + 1, 99999999999999999999, True, 2.5, "10"])
def test_retention_outside_its_range_is_refused_clearly(retention):
    with pytest.raises(ConfigError, match=r"retention must be from 1 to 10,000,000"):
        Journal(retention)


@pytest.mark.parametrize("max_bytes", [0, 1000, MAX_MAX_BYTES + 1, True, 1.5])
def test_max_bytes_outside_its_range_is_refused_clearly(max_bytes):
    with pytest.raises(ConfigError, match="journal_bytes"):
        Journal(10, max_bytes=max_bytes)


def test_journal_unit():
    journal = Journal(retention=3)
    assert isinstance(journal, JournalStore)
    assert journal.next_seq() == 1 and journal.next_seq() == 2
    assert journal.append(_accepted(7, "551")) == 7
    assert journal.get(7) is journal.snapshot()[0] and journal.get(8) is None
    assert Journal(MAX_RETENTION).retention == MAX_RETENTION


def test_entries_are_plain_immutable_records_given_back_as_they_are():
    """An entry is a frozen record of public fields: every query returns the same object, and two
    entries with the same fields compare equal."""
    journal = Journal()
    entry = _accepted(1, "5511", "5522", text="your code 12")
    journal.append(entry)
    journal.append(_rejected(2, "+1"))
    assert journal.snapshot()[0] is entry
    assert journal.entries(number="5522")[0] is entry
    assert journal.page(Query.of(push_id=entry.push_id)).entries[0] is entry
    assert journal.get(1) is entry and journal.thread("5511") == [entry]
    assert entry == _accepted(1, "5511", "5522", text="your code 12") and entry != _accepted(1, "5511")
    with pytest.raises(AttributeError):
        entry.status = 406  # type: ignore[misc]
    assert journal.messages(number="5522") == [entry.messages[1]]
    assert set(inspect.signature(Entry).parameters) == {
        "seq", "time", "method", "path", "headers", "body", "raw_body", "body_size", "http_status", "status",
        "push_id", "answer_bytes", "push", "messages", "violations", "notes", "error", "faults", "dropped", "delay",
        "reply_to",
    }


def test_text_means_contained_case_sensitively_everywhere():
    journal = Journal()
    journal.append(_accepted(1, "5511", text="Your code is 1234"))
    assert [e.seq for e in journal.entries(text="code is")] == [1]
    assert journal.entries(text="CODE") == [] and journal.messages(text="code IS") == []
    assert [m.text for m in journal.messages(text="1234")] == ["Your code is 1234"]
    assert text_matches("code", "Your code") and not text_matches("Code", "Your code")


def test_the_journal_is_bounded_by_bytes_and_keeps_the_newest():
    journal = Journal(retention=1000, max_bytes=MIN_MAX_BYTES)
    blob = b"x" * (BODY_PREFIX_BYTES)
    for seq in range(1, 101):
        journal.append(_entry(seq, raw_body=blob, body_size=50 * 1024 * 1024, http_status=413))
    assert journal.bytes <= MIN_MAX_BYTES
    assert 0 < len(journal) < 100 and journal.dropped == 100 - len(journal)
    assert journal.snapshot()[-1].seq == 100
    huge = _accepted(101, *[f"55{i}" for i in range(5000)])  # more than the bound alone: kept, alone
    journal.append(huge)
    assert journal.snapshot() == [huge] and journal.dropped == 100
    journal.clear()
    assert len(journal) == 0 and journal.dropped == 0 and journal.bytes == 0


def test_a_refused_oversize_body_keeps_a_bounded_prefix_and_its_length():
    """A body over max_body_bytes is answered 413; the journal keeps its first bytes and its length,
    not the body (eight 100 MB pushes must not cost 500 MB)."""
    limit = 2 * 1024 * 1024
    with ServerThread(Settings(port=0, max_body_bytes=limit, log_level="warning")) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for size in (limit + 1, 3 * limit):
                r = client.post("/api/v2/push", content=b"{" + b" " * (size - 1))
                assert r.status_code == 413
            page = client.get("/_picky/journal").json()
        entries = server.backend.journal.snapshot()
    assert [e.body_size for e in entries] == [limit + 1, 3 * limit]
    assert all(len(e.raw_body) == BODY_PREFIX_BYTES and e.raw_body.startswith(b"{ ") for e in entries)
    assert all(e.body is None for e in entries)
    assert [e["body_size"] for e in page["entries"]] == [limit + 1, 3 * limit]
    assert all(e["raw_body"]["truncated"] for e in page["entries"])


def _naive(entries, query):
    return [e for e in entries if query.matches(e)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(st.sampled_from(["1", "2", "3"]), min_size=1, max_size=3)),
        max_size=40,
    ),
    st.integers(1, 12),
    st.sampled_from([Query(), Query.of(number="2"), Query.of(accepted=False), Query.of(status=100, number="1")]),
    st.integers(1, 7),
)
def test_pages_walk_the_journal_as_a_filter_would(traffic_plan, retention, query, limit):
    """Pages chained by their cursor give exactly the entries a plain filter of the journal gives,
    in order, with the right total, whatever the indexes have dropped."""
    journal = Journal(retention)
    for seq, (accepted, numbers) in enumerate(traffic_plan, start=1):
        journal.append(_accepted(seq, *numbers) if accepted else _rejected(seq, *numbers))
    expected = _naive(journal.snapshot(), query)
    assert journal.entries(**{k: v for k, v in dataclasses.asdict(query).items() if v is not None}) == expected
    walked, after = [], None
    for _ in range(100):
        page = journal.page(query, after=after, limit=limit)
        assert page.total == len(expected) and len(page.entries) <= limit
        walked += page.entries
        after = page.next
        if not page.more:
            break
    assert walked == expected


def test_a_cursor_past_a_dropped_entry_goes_on_from_there():
    journal = Journal(retention=3)
    for seq in range(1, 6):
        journal.append(_accepted(seq, "55"))
    assert [e.seq for e in journal.page(after=1).entries] == [3, 4, 5], "entry 1 was dropped"
    assert [e.seq for e in journal.page(after=4).entries] == [5]
    page = journal.page(after=5)
    assert page.entries == [] and page.next == 5 and not page.more
    with pytest.raises(ConfigError, match="limit"):
        journal.page(limit=0)


def test_http_paging(client, picky_server):
    for i in range(7):
        expect_success(client.post("/api/v2/push", json=push_body(number(i % 3))))
    first = client.get("/_picky/journal", params={"limit": 3}).json()
    assert len(first["entries"]) == 3 and first["total"] == 7 and first["more"] and first["dropped"] == 0
    second = client.get("/_picky/journal", params={"limit": 3, "after": first["next"]}).json()
    third = client.get("/_picky/journal", params={"limit": 3, "after": second["next"]}).json()
    seqs = [e["seq"] for page in (first, second, third) for e in page["entries"]]
    assert seqs == [e.seq for e in picky_server.journal.snapshot()] and not third["more"]
    of_one = client.get("/_picky/journal", params={"number": number(1), "limit": 1}).json()
    assert of_one["total"] == 2 and len(of_one["entries"]) == 1 and of_one["more"]
    messages = client.get("/_picky/messages", params={"limit": 4}).json()
    assert len(messages["messages"]) == 4 and messages["total"] == 7 and messages["next"] == 4
    rest = client.get("/_picky/messages", params={"limit": 4, "offset": 4}).json()
    assert len(rest["messages"]) == 3 and rest["next"] is None
    for bad in ("0", "10001", "-1", "x", "9" * 30):
        r = client.get("/_picky/journal", params={"limit": bad})
        assert r.status_code == 400 and "limit" in r.json()["error"], bad


def test_a_full_journal_reset_is_cheap():
    """What the fixture pays between tests: clearing a journal of 10,000 entries."""
    journal = Journal()
    for seq in range(1, 10_001):
        journal.append(_accepted(seq, "5511"))
    started = time.perf_counter()
    journal.clear()
    assert time.perf_counter() - started < 0.5 and len(journal) == 0


def test_journal_appends_from_many_threads():
    from picky_mock.backend import Backend, Incoming

    backend = Backend(Settings(retention=1000))
    body = push_body()

    def work() -> None:
        for _ in range(100):
            raw = encode(body)
            backend.push(Incoming("POST", "/api/v2/push", (), raw, raw))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    entries = backend.journal.snapshot()
    assert len(entries) == 800 and backend.journal.dropped == 0
    assert len({e.seq for e in entries}) == 800
    assert len({e.push_id for e in entries}) == 800


def test_health(client, picky_server):
    answer = client.get("/_picky/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "mode": "strict"}
    assert answer.headers["content-type"].startswith("application/json")
    assert client.head("/_picky/health").status_code == 200
    state = client.get("/_picky/state").json()
    assert state["push_id_start"] == 7478630 and state["msg_id_start"] == 9844217


def test_the_journal_bounds_are_settings_checked_at_start(tmp_path, capsys):
    """``--retention 99999999999999999999`` is one clear line at start, not a 500 later."""
    from picky_mock.cli import main

    with pytest.raises(ConfigError, match="retention must be from 1 to 10,000,000"):
        Settings(retention=99999999999999999999)
    with pytest.raises(ConfigError, match="journal_bytes"):
        Settings(journal_bytes=10)
    config = tmp_path / "picky.toml"
    config.write_text("retention = 50\njournal_bytes = 2097152\n")
    from picky_mock.config import load_settings

    loaded = load_settings(config)
    assert (loaded.retention, loaded.journal_bytes) == (50, 2097152)
    assert main(["serve", "--retention", "99999999999999999999"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "retention must be from 1 to 10,000,000" in line


def test_a_walking_query_comes_in_steps_that_give_the_same_page():
    """A query that must walk the journal (by status, text, path) yields between steps of at most
    STEP entries, so the admin API can serve pushes between two; its result is the page itself."""
    from picky_mock.journal import STEP, run_steps

    journal = Journal(retention=3 * STEP)
    for seq in range(1, 3 * STEP + 1):
        journal.append(_accepted(seq, "55") if seq % 100 else _rejected(seq, "+1"))
    query = Query.of(status=406)
    steps = journal.page_steps(query, limit=5)
    pauses = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            page = done.value
            break
        pauses += 1
    assert pauses >= 2, "a walk of 3 steps' worth of entries pauses between them"
    assert page == run_steps(journal.page_steps(query, limit=5)) == journal.page(query, limit=5)
    assert page.total == 3 * STEP // 100 and [e.seq for e in page.entries] == [100, 200, 300, 400, 500]
    assert sum(1 for _ in journal.page_steps(Query(), limit=5)) == 0, "an unfiltered page needs no walk"


def test_admin_paths_are_never_journaled_and_a_404_journals_what_it_sent(client, picky_server):
    wrong = client.get("/_picky/reset")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "allowed" in wrong.json()
    missing = client.get("/_picky/nothing")
    assert missing.status_code == 404 and "/_picky/health" in missing.json()["admin"]
    assert picky_server.requests == []
    client.get("/no/such/path")
    [entry] = picky_server.requests
    assert entry.http_status == 404 and entry.answer["error"] == "not found" and entry.status is None
