"""The batched log handler: every line kept, in order, with its time to the millisecond."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import datetime

from picky_mock.logs import BatchedLineHandler

LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (INFO|WARNING) picky-mock: (.*)")


def _stamped(line: str) -> tuple[float, str, str]:
    found = LINE.fullmatch(line)
    assert found, line
    when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(found.group(2)) / 1000
    return when, found.group(3), found.group(4)


def test_fast_lines_carry_their_millisecond_and_level():
    stream = io.StringIO()
    handler = BatchedLineHandler(stream, interval=60)
    before = time.time()
    handler.line("INFO", "first")
    handler.line("WARNING", "second")  # same millisecond, another level: its own head
    time.sleep(0.005)
    handler.line("INFO", "third")
    after = time.time()
    handler.close()
    lines = [_stamped(line) for line in stream.getvalue().splitlines()]
    assert [(level, text) for _, level, text in lines] == [("INFO", "first"), ("WARNING", "second"), ("INFO", "third")]
    times = [when for when, _, _ in lines]
    assert before - 0.001 <= times[0] <= times[1] <= times[2] <= after + 0.001
    assert times[2] - times[0] >= 0.004  # the head was remade after the sleep


def test_lines_from_many_threads_are_all_written():
    stream = io.StringIO()
    handler = BatchedLineHandler(stream, interval=0.01)

    def log(worker: int) -> None:
        for i in range(500):
            handler.line("INFO", f"w{worker} {i}")

    threads = [threading.Thread(target=log, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()
    texts = [_stamped(line)[2] for line in stream.getvalue().splitlines()]
    assert sorted(texts) == sorted(f"w{w} {i}" for w in range(4) for i in range(500))
    for w in range(4):  # each thread's lines in the order it logged them
        mine = [t for t in texts if t.startswith(f"w{w} ")]
        assert mine == [f"w{w} {i}" for i in range(500)]
