"""The fixture's assertion helpers: what their failure says, and that pytest's traceback ends at
the test's own line rather than inside picky-mock."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from picky_mock.server import ServerThread
from picky_mock.testing import PickyServer

pytest_plugins = ["pytester"]

BODY = {"token": "t", "application": 1, "globalmessage": "Your code is 1234", "data": [{"number": "5511987000001"}]}


@pytest.fixture
def picky() -> Iterator[PickyServer]:
    with ServerThread() as server:
        yield PickyServer(server)


def _failure(call: object) -> str:
    with pytest.raises(AssertionError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


def test_near_misses_say_what_differs(picky: PickyServer) -> None:
    httpx.post(picky.push_url, json=BODY, timeout=30)
    httpx.post(picky.push_url, json={**BODY, "application": 2}, timeout=30)
    httpx.post(picky.push_url, json={**BODY, "data": [{"number": "5511987000002"}], "globalmessage": "x"}, timeout=30)
    text = _failure(lambda: picky.assert_pushed(number="5511987000001", text="Your code is 1235", channel=1))
    near = text.split("nearest:\n", 1)[1].splitlines()
    # the closest first: right number and channel, text off at its 17th character
    assert "channel=1 text='Your code is 1234'" in near[0]
    assert near[1] == "    differs: text 'Your code is 1234' ≠ expected 'Your code is 1235' (from character 17)"
    assert "channel=2" in near[2]
    assert near[3].startswith("    differs: text ") and near[3].endswith("channel 2 ≠ expected 1")
    assert "number '5511987000002' ≠ expected '5511987000001' (from character 13)" in near[5]


def test_no_near_miss_when_nothing_is_alike(picky: PickyServer) -> None:
    httpx.post(picky.push_url, json=BODY, timeout=30)
    text = _failure(lambda: picky.assert_pushed(number="4420000000000", text="zzzzzzzzzzzzzzzzzzzzzz"))
    assert "nearest" not in text and "received 1 message(s)" in text


def test_the_traceback_ends_in_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner='''
import httpx

def test_pushed(picky_server):
    picky_server.assert_pushed(number="5511987000001")

def test_not_pushed(picky_server):
    httpx.post(picky_server.push_url, json={"token": "t", "application": 1, "globalmessage": "hi",
                                            "data": [{"number": "5511987000001"}]})
    picky_server.assert_not_pushed(number="5511987000001")
'''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long", timeout=120)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "testing.py" not in out, out
    assert "picky_server.assert_pushed(number=" in out and "picky_server.assert_not_pushed(number=" in out
