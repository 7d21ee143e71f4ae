"""The lifecycle's settings: the config file's [clock], [webhooks] and [lifecycle] sections, the
environment variables, the command line, their range checks, and ``picky-mock serve`` POSTing event
webhooks on the wall clock."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from receiving import Receiver
from test_cli import Served

from picky_mock.config import load_settings, read_config_file
from picky_mock.errors import ConfigError
from picky_mock.guard import admin_headers


def test_config_file_sections(tmp_path: Path) -> None:
    config = tmp_path / "picky.toml"
    config.write_text(
        """
[clock]
kind = "virtual"
time_scale = 60

[webhooks]
event_url = "http://127.0.0.1:9000/events?key=1"
incoming_url = "https://hooks.example/in"
project_id = "4242"
timeout = 2.5
retries = false

[lifecycle]
deliver_after = "5s"
read_after = [60, 600]
seed = 3
[lifecycle.channels.1]
fail_share = 0.5
"""
    )
    settings = load_settings(config, environ={})
    assert settings.clock == "virtual" and settings.time_scale == 60
    assert settings.event_webhook_url == "http://127.0.0.1:9000/events?key=1"
    assert settings.incoming_webhook_url == "https://hooks.example/in"
    assert settings.project_id == "4242" and settings.webhook_timeout == 2.5 and settings.webhook_retries is False
    assert settings.lifecycle is not None and settings.lifecycle["seed"] == 3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[clock]\nkind = "sundial"', "clock"),
        ("[clock]\ntime_scale = 1e9", "time_scale"),
        ('[webhooks]\nevent_url = "file:///etc/passwd"', "event_webhook_url"),
        ("[webhooks]\ntimeout = 0", "webhook_timeout"),
        ('[webhooks]\nsecret = "x"', "unknown key [webhooks] secret"),
        ("[lifecycle]\nfail_share = 1.5", "lifecycle.fail_share"),
        ('[lifecycle]\ndeliver_after = "soon"', "lifecycle.deliver_after"),
        ('lifecycle = "fast"', "[lifecycle] must be a table"),
        (f'[lifecycle]\nfail_share = 1\nfail_error = "{"x" * 1001}"', "lifecycle.fail_error: longer than 1,000"),
        ("[webhooks]\nlinger = 2", "webhook_linger"),
    ],
)
def test_config_file_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError) as refused:
        read_config_file(config)
    assert words in str(refused.value)
    assert "bad.toml" in str(refused.value)


def test_environment_variables() -> None:
    env = {
        "PICKY_MOCK_CLOCK": "virtual",
        "PICKY_MOCK_EVENT_WEBHOOK_URL": "http://127.0.0.1:1/e",
        "PICKY_MOCK_WEBHOOK_RETRIES": "false",
        "PICKY_MOCK_LIFECYCLE": '{"deliver_after": 0}',
        "PICKY_MOCK_TIME_SCALE": "10",
    }
    settings = load_settings(environ=env)
    assert settings.clock == "virtual" and settings.event_webhook_url == "http://127.0.0.1:1/e"
    assert settings.webhook_retries is False and settings.lifecycle == {"deliver_after": 0}
    for name, value, words in (
        ("PICKY_MOCK_CLOCK", "sundial", "PICKY_MOCK_CLOCK"),
        ("PICKY_MOCK_TIME_SCALE", "0", "PICKY_MOCK_TIME_SCALE"),
        ("PICKY_MOCK_LIFECYCLE", "{nope", "PICKY_MOCK_LIFECYCLE"),
        ("PICKY_MOCK_INCOMING_WEBHOOK_URL", "ftp://x", "incoming_webhook_url"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_settings(environ={name: value})


def test_serve_posts_event_webhooks_on_the_wall_clock(receiver: Receiver) -> None:
    with Served("--event-webhook-url", receiver.url + "/events", "--deliver-after", "0", "--read-after", "1") as served:
        url = served.url()
        body = {"token": "t", "application": 8, "data": [{"number": "5511987654321", "message": "hi"}]}
        answer = httpx.post(url + "/api/v2/push", json=body).json()
        assert answer["status"] == 100
        assert receiver.wait_for_items(2, timeout=15)
        assert [item["status"] for item in receiver.items()] == ["1", "3"]
        report = httpx.post(url + "/api/v2/delivery-report", json={"token": "t", "push_id": answer["push_id"]}).json()
        assert report["data"][0]["status"] == "3"
        assert served.stop() == 0
    log = "".join(served.stderr)
    assert "4 submitted -> 1 delivered" in log and "1 delivered -> 3 read" in log


def test_serve_resets_and_stops_cleanly_with_a_post_hanging(receiver: Receiver) -> None:
    """``picky-mock serve`` delivers from the server's own loop: a POST hung on a receiver that never
    answers neither blocks the pushes nor a reset (its lane starts afresh and the next changes go
    out) nor the shutdown (exit 0, no traceback)."""
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}/events"
    body = {"token": "t", "application": 8, "data": [{"number": "5511987654321", "message": "hi"}]}
    try:
        with Served("--event-webhook-url", hung_url, "--deliver-after", "0") as served:
            url = served.url()
            headers = admin_headers(None)
            for _ in range(20):
                assert httpx.post(url + "/api/v2/push", json=body, timeout=5).json()["status"] == 100
            state = httpx.get(url + "/_picky/state", timeout=5).json()
            assert state["webhooks_pending"] >= 1 and state["events_queued"] + state["events_in_flight"] == 20
            assert httpx.post(url + "/_picky/reset", headers=headers, timeout=5).status_code == 200
            changed = {"event_url": receiver.url + "/events"}
            assert httpx.put(url + "/_picky/webhooks", json=changed, headers=headers, timeout=5).status_code == 200
            assert httpx.post(url + "/api/v2/push", json=body, timeout=5).json()["status"] == 100
            assert receiver.wait_for_items(1, timeout=10)
            assert [item["status"] for item in receiver.items()] == ["1"]
            assert served.stop() == 0
    finally:
        hung.close()
    assert "Traceback" not in "".join(served.stderr)


def test_serve_stops_quietly_during_an_advance_that_waits_for_a_hung_receiver() -> None:
    """A virtual clock's advance over the admin API waits for the webhook POSTs its timers start;
    stopping the server meanwhile answers that call 503 and logs one line, not a traceback."""
    import socket
    import threading
    import time

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    answers: list[httpx.Response] = []
    try:
        with Served("--clock", "virtual", "--webhook-timeout", "20", "--deliver-after", "0",
                    "--event-webhook-url", f"http://127.0.0.1:{hung.getsockname()[1]}/events") as served:
            url = served.url()
            body = {"token": "t", "application": 8, "data": [{"number": "5511987654321", "message": "hi"}]}
            assert httpx.post(url + "/api/v2/push", json=body, timeout=5).json()["status"] == 100

            def advance() -> None:
                answers.append(httpx.post(url + "/_picky/clock", json={"advance": "7h"},
                                          headers=admin_headers(None), timeout=30))

            caller = threading.Thread(target=advance, daemon=True)
            caller.start()
            time.sleep(0.5)  # the advance waits for the first retry's POST
            assert served.stop(signal.SIGINT) == 0
            caller.join(10)
    finally:
        hung.close()
    log = "".join(served.stderr)
    assert "Traceback" not in log and "the clock's advance was not waited for" in log
    assert [a.status_code for a in answers] in ([503], [])  # the answer may not make it out


def test_serve_refuses_bad_lifecycle_options() -> None:
    from test_cli import run

    for args, words in (
        (["--event-webhook-url", "ftp://x"], "event_webhook_url"),
        (["--lifecycle", "[1]"], "--lifecycle"),
        (["--deliver-after", "soon"], "deliver_after"),
        (["--time-scale", "0"], "time_scale"),
        (["--clock", "sundial"], "--clock"),
    ):
        done = run("serve", "--port", "0", *args)
        assert done.returncode == 2 and words in done.stderr.decode(), done.stderr
