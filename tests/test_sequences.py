"""The id sequences (docs/contract.md §3.1): a push takes one push_id and a contiguous block of msg_ids, so
ids are unique and increasing, also under concurrent requests."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from pushing import expect_success, number, push_body

from picky_mock.backend import Sequences


def test_sequences_take_blocks_and_reset():
    seq = Sequences(100, 5000)
    assert seq.take(3) == (100, 5000)
    assert seq.take(1) == (101, 5003)
    assert seq.take(10) == (102, 5004)
    assert seq.take(2) == (103, 5014)
    seq.reset()
    assert seq.take(1) == (100, 5000)


def test_sequences_under_many_threads():
    seq = Sequences(1, 1_000_000)
    threads, per_thread = 16, 400
    results: list[list[tuple[int, int, int]]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        rnd = random.Random(index)
        barrier.wait()
        for _ in range(per_thread):
            size = rnd.randint(1, 50)
            push_id, first = seq.take(size)
            results[index].append((push_id, first, size))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)

    every = [take for taken in results for take in taken]
    assert len(every) == threads * per_thread
    push_ids = sorted(p for p, _, _ in every)
    assert push_ids == list(range(1, 1 + len(every))), "push_ids unique, no gap"
    # blocks are disjoint and, in push_id order, tile the msg_id range with no gap
    blocks = sorted((p, first, size) for p, first, size in every)
    expected_first = 1_000_000
    for _, first, size in blocks:
        assert first == expected_first
        expected_first += size
    # each thread saw its ids increase
    for taken in results:
        assert [p for p, _, _ in taken] == sorted(p for p, _, _ in taken)
        assert [f for _, f, _ in taken] == sorted(f for _, f, _ in taken)


def _push_many(url: str, worker: int, pushes: int, sizes: list[int]) -> list[dict[str, Any]]:
    replies = []
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client:
        for i in range(pushes):
            size = sizes[(worker + i) % len(sizes)]
            body = push_body(*[number(worker * 100_000 + i * 1_000 + k) for k in range(size)], text=f"w{worker} p{i}")
            replies.append(expect_success(client.post("/api/v2/push", json=body), recipients=size))
    return replies


def _check_blocks(replies: list[dict[str, Any]]) -> list[int]:
    every: list[int] = []
    for reply in replies:
        ids = [int(item["msg_id"]) for item in reply["data"]]
        assert ids == list(range(ids[0], ids[0] + len(ids))), "each push's block is contiguous"
        every += ids
    assert len(every) == len(set(every)), "msg_ids unique across every answer"
    return every


def test_concurrent_http_pushes_get_unique_contiguous_ids(picky_server):
    threads, pushes = 16, 25
    sizes = [1, 2, 3, 5, 8, 13, 4, 1, 7]
    with ThreadPoolExecutor(threads) as pool:
        per_worker = list(pool.map(lambda w: _push_many(picky_server.url, w, pushes, sizes), range(threads)))
    replies = [reply for worker in per_worker for reply in worker]
    assert len(replies) == threads * pushes
    every = _check_blocks(replies)
    assert sorted(every) == list(range(9844217, 9844217 + len(every))), "no msg_id skipped"
    push_ids = sorted(int(r["push_id"]) for r in replies)
    assert push_ids == list(range(7478630, 7478630 + len(replies)))
    for worker in per_worker:  # one client's pushes, one after the other: increasing ids
        ids = [int(r["push_id"]) for r in worker]
        assert ids == sorted(ids)
    # the journal agrees with the answers
    assert len(picky_server.pushes()) == len(replies)
    answered = {(r["push_id"], d["msg_id"], d["number"]) for r in replies for d in r["data"]}
    journaled = {(m.push_id, m.msg_id, m.number) for m in picky_server.messages()}
    assert journaled == answered


def test_large_pushes_judged_in_worker_threads_keep_blocks_contiguous(picky_server):
    """Bodies over 256 KiB are judged in a thread pool, concurrently with the small ones."""
    big = 9_000  # about 300 KB of JSON

    def send_big(worker: int) -> dict[str, Any]:
        body = push_body(*[number(worker * 10_000 + k) for k in range(big)], text=f"big {worker}")
        with httpx.Client(base_url=picky_server.url, timeout=60) as client:
            return expect_success(client.post("/api/v2/push", json=body), recipients=big)

    with ThreadPoolExecutor(8) as pool:
        bigs = [pool.submit(send_big, w) for w in range(4)]
        smalls = [pool.submit(_push_many, picky_server.url, 50 + w, 10, [1, 3]) for w in range(4)]
        replies = [f.result(timeout=120) for f in bigs] + [r for f in smalls for r in f.result(timeout=120)]
    every = _check_blocks(replies)
    assert sorted(every) == list(range(9844217, 9844217 + len(every)))
