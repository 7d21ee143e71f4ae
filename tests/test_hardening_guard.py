"""The admin API's protection (picky_mock/guard.py), over real sockets: loopback as before, a
non-loopback bind locked or token-protected, DNS rebinding and cross-site requests refused."""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import pytest
from pushing import TIMEOUT, clean_env, console_script, push_body

from picky_mock import Backend, Settings
from picky_mock.app import create_app
from picky_mock.guard import ADMIN_BODY_LIMIT, is_loopback
from picky_mock.server import ServerThread

TOKEN = "s3cret-admin-token"
RULE = {"action": "api_error", "status": 403}


def _loopback_url(server: ServerThread) -> str:
    """A wildcard-bound server, reached through 127.0.0.1."""
    return server.url.replace("0.0.0.0", "127.0.0.1")


@pytest.fixture(scope="module")
def wide_locked():
    with ServerThread(Settings(host="0.0.0.0", log_level="warning")) as server:
        yield server


@pytest.fixture(scope="module")
def wide_token():
    with ServerThread(Settings(host="0.0.0.0", admin_token=TOKEN, log_level="warning")) as server:
        yield server


def test_loopback_admin_works_as_before_for_json_calls(client, picky_server):
    assert client.get("/_picky/journal").status_code == 200
    assert httpx.post(picky_server.url + "/_picky/faults", json=RULE).status_code == 201
    assert httpx.delete(picky_server.url + "/_picky/faults").status_code == 200


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "text/plain"}, b'{"action": "hang"}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b'{"action": "hang"}'),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({}, b""),
    ],
)
def test_a_simple_cross_site_post_cannot_change_state(picky_server, headers, content):
    for path in ("/_picky/faults", "/_picky/reset", "/_picky/state", "/_picky/seed", "/_picky/sessions"):
        answer = httpx.post(picky_server.url + path, content=content, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert "X-Picky-Admin" in answer.json()["error"]
    assert picky_server.faults == []


def test_the_marker_header_or_a_json_type_lets_an_admin_post_through(picky_server):
    url = picky_server.url + "/_picky/reset"
    assert httpx.post(url, headers={"X-Picky-Admin": "1"}).json() == {"reset": True}
    assert httpx.post(url, json={}).json() == {"reset": True}
    assert httpx.post(url, headers={"Content-Type": "application/vnd.api+json"}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
def test_a_foreign_origin_is_refused_even_with_json(picky_server, origin):
    answer = httpx.post(picky_server.url + "/_picky/faults", json=RULE, headers={"Origin": origin})
    assert answer.status_code == 403 and "cross-origin" in answer.json()["error"]
    assert httpx.get(picky_server.url + "/_picky/journal", headers={"Origin": origin}).status_code == 403
    assert picky_server.faults == []


def test_the_servers_own_origin_passes_and_no_cors_header_is_sent(picky_server):
    answer = httpx.post(picky_server.url + "/_picky/faults", json=RULE, headers={"Origin": picky_server.url})
    assert answer.status_code == 201
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    preflight = httpx.options(
        picky_server.url + "/_picky/faults",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_sec_fetch_site_cross_site_is_refused(picky_server):
    answer = httpx.get(picky_server.url + "/_picky/journal", headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "[::2]"])
def test_dns_rebinding_is_refused_on_every_path(picky_server, host):
    for method, path in (("GET", "/_picky/journal"), ("GET", "/_picky/health"), ("POST", "/api/v2/push")):
        answer = httpx.request(method, picky_server.url + path, json=push_body(), headers={"Host": host})
        assert answer.status_code == 403, (path, answer.text)
        assert "--allowed-host" in answer.json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8080", "app.localhost", "127.0.0.1", "127.1.2.3:9", "[::1]:80"]
)
def test_loopback_names_are_allowed(picky_server, host):
    assert httpx.get(picky_server.url + "/_picky/health", headers={"Host": host}).status_code == 200


def test_allowed_hosts_are_configurable():
    with ServerThread(Settings(allowed_hosts=("mock.internal",), log_level="warning")) as server:
        ok = httpx.get(server.url + "/_picky/health", headers={"Host": "mock.internal:8080"})
        refused = httpx.get(server.url + "/_picky/health", headers={"Host": "other.internal"})
    assert (ok.status_code, refused.status_code) == (200, 403)
    with ServerThread(Settings(allowed_hosts=("*",), log_level="warning")) as server:
        assert httpx.get(server.url + "/_picky/health", headers={"Host": "anything"}).status_code == 200


def test_in_process_transports_are_not_refused_for_their_made_up_host():
    async def go() -> int:
        transport = httpx.ASGITransport(app=create_app(Backend()))
        async with httpx.AsyncClient(transport=transport, base_url="http://picky.test") as client:
            return (await client.post("/_picky/faults", json=RULE)).status_code

    assert asyncio.run(go()) == 201


def test_a_non_loopback_bind_without_token_locks_the_admin_api(wide_locked):
    url = _loopback_url(wide_locked)
    for method, path in (("GET", "/_picky/journal"), ("POST", "/_picky/reset"), ("PUT", "/_picky/accounts/t")):
        answer = httpx.request(method, url + path, json={})
        assert answer.status_code == 403, path
        assert "--admin-token" in answer.json()["error"]
    assert httpx.get(url + "/_picky/health").status_code == 200
    assert httpx.post(url + "/api/v2/push", json=push_body()).json()["status"] == 100  # the API stays open


def test_admin_open_is_an_explicit_opt_out():
    with ServerThread(Settings(host="0.0.0.0", admin_open=True, log_level="warning")) as server:
        assert httpx.get(_loopback_url(server) + "/_picky/journal").status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-xx"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"X-Picky-Admin-Token": TOKEN[:-1]}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer  {TOKEN}"}, 200),
        ({"X-Picky-Admin-Token": TOKEN}, 200),
    ],
)
def test_the_token_is_required_beyond_loopback(wide_token, headers, status):
    answer = httpx.get(_loopback_url(wide_token) + "/_picky/journal", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in answer.json()["error"]


def test_a_cross_site_request_with_or_without_token_cannot_change_state(wide_token):
    url = _loopback_url(wide_token) + "/_picky/faults"
    form = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    assert httpx.post(url, content=b'{"action": "hang"}', headers=form).status_code == 403
    without_origin = {"Content-Type": "text/plain"}
    assert httpx.post(url, content=b'{"action": "hang"}', headers=without_origin).status_code == 401
    with_token = {**form, "Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(url, json={"action": "hang"}, headers=with_token).status_code == 403
    assert wide_token.backend.faults.rules == []
    assert httpx.post(url, json=RULE, headers=wide_token.admin_headers).status_code == 201
    wide_token.backend.faults.clear()


def test_a_token_also_protects_a_loopback_server():
    with ServerThread(Settings(admin_token=TOKEN, log_level="warning")) as server:
        assert httpx.get(server.url + "/_picky/state").status_code == 401
        assert httpx.get(server.url + "/_picky/state", headers=server.admin_headers).status_code == 200
        assert httpx.get(server.url + "/_picky/health").status_code == 200


def test_admin_bodies_are_bounded(picky_server):
    url = picky_server.url + "/_picky/faults"
    declared = httpx.post(url, content=b"[" + b" " * ADMIN_BODY_LIMIT + b"]", headers={"X-Picky-Admin": "1"})
    assert declared.status_code == 413 and "at most" in declared.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(ADMIN_BODY_LIMIT // 65536 + 2):
            yield b" " * 65536

    streamed = httpx.post(url, content=chunks(), headers={"X-Picky-Admin": "1"})
    assert streamed.status_code == 413
    assert picky_server.faults == []


def test_is_loopback():
    assert all(is_loopback(h) for h in ("localhost", "127.0.0.1", "127.9.9.9", "::1", "[::1]", "a.localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "localhost.evil", "example.com"))


@pytest.mark.parametrize(
    ("options", "warning"),
    [(["--host", "0.0.0.0"], "locked"), (["--host", "0.0.0.0", "--admin-open"], "OPEN")],
)
def test_serve_warns_at_start_when_bound_beyond_loopback(options, warning):
    process = subprocess.Popen(
        [*console_script(), "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # the banner: the server is up
        time.sleep(0.2)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=TIMEOUT)
    assert warning in err.decode()
