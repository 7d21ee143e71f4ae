"""The journal: what the mock received and answered, queried from Python and over the admin API,
bounded by ``retention``; and the health endpoint."""

from __future__ import annotations

import threading

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pushing import TOKEN, encode, expect_error, expect_success, number, push_body

from picky_mock.config import Settings
from picky_mock.journal import Journal, pack_headers, unpack_headers
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
    """Every header the client sent, in order, names lower-cased, values byte for byte (latin-1),
    including the odd ones that the packed form cannot hold as lines."""
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


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"host", b"x"), (b"content-type", b"application/json")],
        [(b"a", b"")],
        [(b"a", b"b: c")],  # ': ' in a value
        [(b"a: b", b"c")],  # ... in a name (in-process ASGI clients check nothing)
        [(b"a", b"b\nc"), (b"d", b"e")],  # a line break in a value
        [(b"[x", b"y")],  # the JSON marker as a name's first byte
        [(b"a:", b" b")],
        [(b"\xff", b"\x00\xe9")],
    ],
)
def test_packed_headers_round_trip(raw):
    assert unpack_headers(pack_headers(raw)) == tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


@given(st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=8)), max_size=6))
def test_packed_headers_round_trip_any_bytes(raw):
    """Shrinks toward the shortest list of the shortest names and values that do not round-trip."""
    assert unpack_headers(pack_headers(raw)) == tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


def test_packed_headers_are_one_small_object_per_entry():
    """What the journal keeps per request: one bytes object, not a pair and two strings per header."""
    raw = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"), (b"content-length", b"91")]
    block = pack_headers(raw)
    assert block == b"host: 127.0.0.1:8080\ncontent-type: application/json\ncontent-length: 91"


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


def test_journal_unit():
    journal = Journal(retention=3)
    assert journal.next_seq() == 1 and journal.next_seq() == 2
    with pytest.raises(ValueError):
        Journal(retention=0)


@pytest.mark.parametrize("read", [False, True], ids=["unread", "read-after-each-push"])
@pytest.mark.parametrize("threshold", [None, 3000], ids=["default-threshold", "threshold-3000"])
def test_a_full_journal_keeps_the_young_generation_small(threshold, read):
    """A full journal drops one entry per push. When entries were records, old ones freed one by
    one cancelled the new ones in CPython's allocation count: young collections stopped and the
    young generation grew with every push until one long collection stalled the server (see
    Journal.append). They are records again once read: whatever the collector's threshold (3,000:
    as Python 3.13's 2,000, and more), read or not, the young generation stays small."""
    import gc

    from picky_mock.backend import Backend, Incoming

    before = gc.get_threshold()
    was_enabled = gc.isenabled()
    gc.enable()
    if threshold is not None:
        gc.set_threshold(threshold, *before[1:])
    try:
        backend = Backend(Settings(retention=5000))
        raw = encode(push_body())
        incoming = Incoming("POST", "/api/v2/push", b"content-type: application/json", raw, raw)
        for _ in range(5200):  # fill the journal, then some
            backend.push(incoming)
        if read:
            backend.journal.snapshot()
        gc.collect()
        for _ in range(9000):
            backend.push(incoming)
            if read:  # decodes the new entry into a record: the journal then drops records
                backend.journal.snapshot()
        young = len(gc.get_objects(0))
    finally:
        gc.set_threshold(*before)
        if not was_enabled:
            gc.disable()
    limit = 5_000 if threshold is None else 3 * threshold
    assert young < limit, f"{young} objects in the young generation after 9,000 pushes"
    assert len(backend.journal) == 5000 and backend.journal.dropped == 9200


def test_the_journal_keeps_an_entry_as_one_object_and_gives_it_back_equal():
    """A full journal frees its oldest entry at each push: an entry of many objects cost the
    server a cache miss for each (see picky_mock.journal._store). An entry is kept as one bytes
    object, which leaves the collector nothing to count, and reads back equal, with its push, its
    messages and its violations, for one recipient and for several."""
    import gc

    from picky_mock.backend import Backend, Incoming
    from picky_mock.contract import Violation

    backend = Backend(Settings(retention=100_000))
    raw = encode(push_body(application=1))
    incoming = Incoming("POST", "/api/v2/push", b"content-type: application/json", raw, raw)
    for _ in range(100):
        backend.push(incoming)
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for _ in range(1000):
            backend.push(incoming)
        per_push = (gc.get_count()[0] - before) / 1000
        gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    assert per_push <= 0.1, f"an accepted push leaves {per_push} containers"
    kept = list(backend.journal._entries)
    assert all(type(stored) is bytes for stored in kept) and max(len(stored) for stored in kept) < 600

    outcome = backend.push(incoming)
    entry = backend.journal.snapshot()[-1]
    assert entry == outcome.entry and entry is not outcome.entry
    assert entry.push is not None and entry.push.recipients == 1 and entry.push.globalmessage == "hello"
    [message] = entry.messages
    assert message.push_id == entry.push_id and message.number == entry.body["data"][0]["number"]
    assert message.msg_id == entry.answer["data"][0]["msg_id"] and message.credit == entry.answer["data"][0]["credit"]

    many = encode(push_body("5511900000001", "5511900000002", "5511900000003"))
    outcome = backend.push(Incoming("POST", "/api/v2/push", b"", many, many))
    entry = backend.journal.snapshot()[-1]
    assert entry == outcome.entry
    assert [m.number for m in entry.messages] == ["5511900000001", "5511900000002", "5511900000003"]
    assert [m.msg_id for m in entry.messages] == [d["msg_id"] for d in entry.answer["data"]]
    assert [m.position for m in entry.messages[1:]] == [1, 2]

    bad = encode({"token": "t", "application": "x", "data": [{"number": 5}]})
    outcome = backend.push(Incoming("POST", "/api/v2/push", b"", bad, bad))
    entry = backend.journal.snapshot()[-1]
    assert entry == outcome.entry and len(entry.violations) >= 2
    assert all(type(v) is Violation for v in entry.violations)

    odd = entry._replace(seq=backend.journal.next_seq(), faults=(object(),))  # nothing marshal writes
    backend.journal.append(odd)
    assert backend.journal.snapshot()[-1] is odd, "an entry marshal cannot write is kept as it is"


def test_a_journal_read_after_each_push_decodes_each_entry_once(monkeypatch):
    """Entries are kept marshalled and decoded when first read: a test that reads the journal
    after each push must not decode the whole journal each time (quadratic: 3,000 pushes, 4.5
    million decodes). Each entry is decoded once and kept as a record; every read gives the same
    records, in order, without the entries the journal dropped."""
    from picky_mock import journal as journal_module
    from picky_mock.backend import Backend, Incoming

    decoded = []
    restore = journal_module._restore
    monkeypatch.setattr(journal_module, "_restore", lambda stored: decoded.append(1) or restore(stored))
    backend = Backend(Settings(retention=50))
    raw = encode(push_body())
    incoming = Incoming("POST", "/api/v2/push", b"content-type: application/json", raw, raw)
    seqs = []
    for round_ in range(200):
        seqs.append(backend.push(incoming).entry.seq)
        if round_ % 7 == 0:
            backend.push(incoming)  # unread: decoded by the next snapshot
            seqs.append(seqs[-1] + 1)
        snapshot = backend.journal.snapshot()
        assert [entry.seq for entry in snapshot] == seqs[-50:]
    assert len(decoded) == len(seqs), f"{len(decoded)} decodes for {len(seqs)} entries"
    assert backend.journal.snapshot()[0] is snapshot[0], "a second snapshot gives the same records"

    for _ in range(120):  # more than the retention between two reads
        seqs.append(backend.push(incoming).entry.seq)
    assert [entry.seq for entry in backend.journal.snapshot()] == seqs[-50:]
    backend.journal.clear()
    assert backend.journal.snapshot() == []
    seqs = [backend.push(incoming).entry.seq for _ in range(3)]
    assert [entry.seq for entry in backend.journal.snapshot()] == seqs


def test_a_read_that_fails_halfway_leaves_the_journal_whole(monkeypatch):
    """A decode that raises (no memory for a huge entry; a KeyboardInterrupt) must not leave
    the journal missing or doubling entries for the reads that follow."""
    from picky_mock import journal as journal_module
    from picky_mock.backend import Backend, Incoming

    backend = Backend(Settings(retention=8))
    raw = encode(push_body())
    incoming = Incoming("POST", "/api/v2/push", b"", raw, raw)
    seqs = [backend.push(incoming).entry.seq for _ in range(5)]
    backend.journal.snapshot()
    seqs += [backend.push(incoming).entry.seq for _ in range(3)]
    restore = journal_module._restore
    calls = []

    def failing(stored):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("simulated")
        return restore(stored)

    monkeypatch.setattr(journal_module, "_restore", failing)
    with pytest.raises(MemoryError):
        backend.journal.snapshot()
    assert [entry.seq for entry in backend.journal.snapshot()] == seqs
    seqs.append(backend.push(incoming).entry.seq)
    assert [entry.seq for entry in backend.journal.snapshot()] == seqs[-8:]


def test_an_entry_that_cannot_be_marshalled_is_kept_as_a_record(monkeypatch):
    """Its ids and credits are taken when the journal gets it: whatever marshal does (a value it
    cannot write, no memory for the copy) the entry is kept, as a record. So is a body over
    1 MiB, which a copy would only slow (a 64 MiB body answered 413: 30 ms on the event loop)."""
    from picky_mock import journal as journal_module
    from picky_mock.backend import Backend, Incoming

    backend = Backend(Settings())
    raw = encode(push_body())
    incoming = Incoming("POST", "/api/v2/push", b"", raw, raw)
    backend.push(incoming)
    assert type(backend.journal._entries[-1]) is bytes

    def no_memory(value, version):
        raise MemoryError("simulated")

    monkeypatch.setattr(journal_module.marshal, "dumps", no_memory)
    outcome = backend.push(incoming)
    assert backend.journal._entries[-1] is outcome.entry
    monkeypatch.undo()

    big = encode(push_body(padding="x" * (1 << 20)))
    outcome = backend.push(Incoming("POST", "/api/v2/push", b"", big, big))
    assert outcome.entry.status == 100 and backend.journal._entries[-1] is outcome.entry
    assert [entry.seq for entry in backend.journal.snapshot()] == [1, 2, 3]


def test_journal_appends_from_many_threads():
    from picky_mock.backend import Backend, Incoming

    backend = Backend(Settings(retention=1000))
    body = push_body()

    def work() -> None:
        for _ in range(100):
            raw = encode(body)
            backend.push(Incoming("POST", "/api/v2/push", b"", raw, raw))

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
