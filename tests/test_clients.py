"""The HTTP clients integrators use, each with its defaults, against a real server over a socket.

Every request is checked twice: by the answer its client read (HTTP 200, API status 100) and by
the journal, which must hold the very bytes the client sent, with the headers that show the client
really did what the test is about (``Upgrade: h2c``, ``Expect: 100-continue``, a chunked body,
HTTP/1.0). A client whose runtime is not installed is skipped with the reason; the scripts driving
the clients of other languages are in ``tests/clients/``. Installing them: see ``.ci/run``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import socket
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from pushing import CURL, ROOT, TOKEN, clean_env, connect, number, push_body, read_until_closed
from test_cli import Served

from picky_mock.config import Settings
from picky_mock.journal import Entry
from picky_mock.server import ServerThread

CLIENTS = ROOT / "tests" / "clients"
RUN_TIMEOUT = 120  # a first `go run` compiles; a first `java X.java` too
BIG_RECIPIENTS = 38_000  # about 1.1 MB: over libcurl's 1 MiB threshold for "Expect: 100-continue"


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(Settings(host="127.0.0.1")) as running:
        yield running


_next_number = iter(range(900_000, 99_000_000))


def _body(big: bool = False) -> bytes:
    """A valid push to fresh numbers (so its journal entry is found by its bytes alone)."""
    count = BIG_RECIPIENTS if big else 1
    numbers = [number(next(_next_number)) for _ in range(count)]
    return json.dumps(push_body(*numbers, text="client test " * (4 if big else 1))).encode()


def _files(tmp_path: Path, bodies: Sequence[bytes], chunked: Sequence[bool] = ()) -> list[str]:
    paths = []
    for i, body in enumerate(bodies):
        path = tmp_path / (f"body{i}.json" + (".chunked" if i < len(chunked) and chunked[i] else ""))
        path.write_bytes(body)
        paths.append(str(path))
    return paths


def _entry(server: ServerThread, body: bytes) -> Entry:
    # the journal keeps a large body's first bytes and its length
    found = [
        e
        for e in server.backend.journal.entries()
        if e.body_size == len(body) and e.raw_body == body[: len(e.raw_body)] and e.raw_body
    ]
    assert len(found) == 1, f"{len(found)} journal entries hold the body sent"
    return found[0]


def _header(entry: Entry, name: str) -> str | None:
    return next((v for k, v in entry.headers if k == name), None)


def _check(server: ServerThread, lines: Sequence[str], bodies: Sequence[bytes]) -> list[Entry]:
    """Each of ``lines`` ("STATUS PROTOCOL BODY", one per request) a success, journaled with its body."""
    assert len(lines) == len(bodies), lines
    entries = []
    for line, body in zip(lines, bodies, strict=True):
        status, protocol, answer = line.split(" ", 2)
        assert status == "200", line
        assert protocol in ("HTTP/1.1", "HTTP_1_1", "HTTP/1.0"), line
        assert json.loads(answer)["status"] == 100, line
        entry = _entry(server, body)
        assert entry.http_status == 200 and entry.status == 100
        entries.append(entry)
    return entries


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT, env=env, cwd=CLIENTS)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done.stdout.decode().splitlines()


def _pairs(urls: Sequence[str], files: Sequence[str]) -> list[str]:
    return [item for pair in zip(urls, files, strict=True) for item in pair]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed here (see .ci/run)")
    return path


# --- Python ------------------------------------------------------------------------------------


def test_requests_session_keeps_the_connection(server: ServerThread) -> None:
    bodies = [_body(), _body(), _body(big=True)]
    with requests.Session() as session:
        lines = []
        for body in bodies:
            answer = session.post(server.push_url, data=body, headers={"content-type": "application/json"}, timeout=30)
            lines.append(f"{answer.status_code} HTTP/1.1 {answer.text}")
    _check(server, lines, bodies)


def test_requests_streams_a_generator_chunked(server: ServerThread) -> None:
    body = _body()
    answer = requests.post(server.push_url, data=iter([body[:10], body[10:]]), timeout=30)
    entry = _check(server, [f"{answer.status_code} HTTP/1.1 {answer.text}"], [body])[0]
    assert _header(entry, "transfer-encoding") == "chunked"


def test_httpx_client(server: ServerThread) -> None:
    bodies = [_body(), _body(big=True)]
    with httpx.Client(timeout=30) as client:
        answers = [client.post(server.push_url, content=body) for body in bodies]
    lines = [f"{a.status_code} HTTP/1.1 {a.text}" for a in answers]
    _check(server, lines, bodies)


def test_urllib(server: ServerThread) -> None:
    body = _body()
    request = urllib.request.Request(server.push_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        line = f"{answer.status} HTTP/1.1 {answer.read().decode()}"
    _check(server, [line], [body])


def test_http_1_0(server: ServerThread) -> None:
    """An HTTP/1.0 request (no keep-alive, no chunking) is answered in kind and the connection closed."""
    body = _body()
    head = "POST /api/v2/push HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    with connect(server.url, timeout=30) as sock:
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        received = read_until_closed(sock)  # the server closes an HTTP/1.0 connection after its answer
    status_line, _, rest = received.partition(b"\r\n")
    answer = rest.partition(b"\r\n\r\n")[2]
    assert status_line.startswith(b"HTTP/1.1 200 ")  # a server speaks its own version (RFC 9110 6.2)
    _check(server, [f"200 HTTP/1.0 {answer.decode()}"], [body])


def test_aiohttp_session_with_a_chunked_stream(server: ServerThread) -> None:
    aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    bodies = [_body(), _body(), _body(big=True)]

    async def stream(data: bytes) -> Any:
        yield data[:7]
        yield data[7:]

    async def main() -> list[str]:
        lines = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for i, body in enumerate(bodies):
                data = stream(body) if i == 1 else body
                async with session.post(server.push_url, data=data) as answer:
                    lines.append(f"{answer.status} HTTP/1.1 {await answer.text()}")
        return lines

    entries = _check(server, asyncio.run(main()), bodies)
    assert _header(entries[1], "transfer-encoding") == "chunked"


# --- curl ---------------------------------------------------------------------------------------


def _curl(*args: str) -> list[str]:
    argv = [CURL, "-sS", "--max-time", "30", "-H", "Content-Type: application/json", *args]
    done = subprocess.run(argv, capture_output=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode().splitlines()


def _curl_posts(url: str, files: Sequence[str], *options: str, connects: list[int] | None = None) -> list[str]:
    """One curl command, a POST of each file; "STATUS PROTOCOL BODY" each. ``connects`` gets the
    number of connections curl opened for each (0: it reused the kept-alive one)."""
    args: list[str] = []
    for i, path in enumerate(files):
        if i:
            args.append("--next")
        args += [*options, "-H", "Content-Type: application/json", "--data-binary", f"@{path}"]
        args += ["-w", "\n%{http_code} HTTP/%{http_version} %{num_connects}\n", url]
    out = _curl(*args)
    lines = []
    for answer, tail in zip(out[0::2], out[1::2], strict=True):
        status, protocol, opened = tail.split(" ")
        if connects is not None:
            connects.append(int(opened))
        lines.append(f"{status} {protocol} {answer}")
    return lines


def test_curl_http2_upgrade_is_answered_in_http_1_1_with_the_body_read(server: ServerThread, tmp_path: Path) -> None:
    bodies = [_body(), _body(), _body(big=True)]
    connects: list[int] = []
    lines = _curl_posts(server.push_url, _files(tmp_path, bodies), "--http2", connects=connects)
    assert connects == [1, 0, 0]  # kept alive
    for entry in _check(server, lines, bodies):
        assert _header(entry, "upgrade") == "h2c"


def test_curl_http2_through_the_pytest_fixture(picky_server: Any, tmp_path: Path) -> None:
    body = _body()
    [line] = _curl_posts(picky_server.push_url, _files(tmp_path, [body]), "--http2")
    assert line.startswith("200 HTTP/1.1 ")
    picky_server.assert_pushed(number=json.loads(body)["data"][0]["number"], count=1)


def test_an_upgrade_request_arriving_in_pieces(server: ServerThread) -> None:
    """The header block that says ``Upgrade`` may come in several packets; then a second request,
    on the same connection."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    bodies = [_body(), _body()]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        reader = sock.makefile("rb")
        for body in bodies:
            head = (
                f"POST /api/v2/push HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                f"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            for piece in (head[:9], head[9:70], head[70:-1], head[-1:] + body[:5], body[5:]):
                sock.sendall(piece)
                time.sleep(0.01)
            assert reader.readline().startswith(b"HTTP/1.1 200 ")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                length = int(value) if name.lower() == "content-length" else length
            assert json.loads(reader.read(length))["status"] == 100
        reader.close()
    for body in bodies:
        assert _header(_entry(server, body), "upgrade") == "h2c"


def test_curl_http2_on_the_command(tmp_path: Path) -> None:
    """The same, on ``picky-mock serve``: the push and the admin API."""
    with Served() as served:
        url = served.url()
        body = _body()
        [path] = _files(tmp_path, [body])
        [line] = _curl_posts(url + "/api/v2/push", [path], "--http2")
        assert line.startswith("200 HTTP/1.1 ") and json.loads(line.split(" ", 2)[2])["status"] == 100
        spec = '{"balance": "7.25"}'
        account = _curl("--http2", "-X", "PUT", "--data-binary", spec, url + "/_picky/accounts/tok-h2c")
        assert json.loads(account[0])["balance"] in ("7.25", 7.25)
        [path] = _files(tmp_path, [json.dumps({"token": "tok-h2c"}).encode()])
        [line] = _curl_posts(url + "/api/v2/check-balance", [path], "--http2")
        assert json.loads(line.split(" ", 2)[2])["balance"] == 7.25
        assert served.stop() == 0
    assert "upgrade" not in "".join(served.stderr).lower(), served.stderr


def test_curl_http2_on_check_balance_and_the_admin_api(server: ServerThread, tmp_path: Path) -> None:
    spec = _curl("--http2", "-X", "PUT", "--data-binary", '{"balance": "3.5"}', server.url + "/_picky/accounts/tok-2")
    assert json.loads(spec[0])["balance"] in ("3.5", 3.5)
    balance = json.dumps({"token": "tok-2"}).encode()
    [line] = _curl_posts(server.url + "/api/v2/check-balance", _files(tmp_path, [balance]), "--http2")
    assert line.startswith("200 HTTP/1.1 ") and json.loads(line.split(" ", 2)[2])["balance"] == 3.5
    assert _header(_entry(server, balance), "upgrade") == "h2c"


def test_curl_http2_on_the_delivery_report(server: ServerThread, tmp_path: Path) -> None:
    """The pulled delivery report reads its body too when the client asks for h2c."""
    push = json.loads(_body())
    answer = requests.post(server.push_url, json=push, timeout=30).json()
    report = json.dumps({"token": push["token"], "push_id": answer["push_id"]}).encode()
    [line] = _curl_posts(server.url + "/api/v2/delivery-report", _files(tmp_path, [report]), "--http2")
    status, protocol, text = line.split(" ", 2)
    assert (status, protocol) == ("200", "HTTP/1.1")
    document = json.loads(text)
    assert document["status"] == 100 and str(document["push_id"]) == answer["push_id"]
    assert [item["msg_id"] for item in document["data"]] == [answer["data"][0]["msg_id"]]


def test_curl_large_body_waits_for_100_continue(server: ServerThread, tmp_path: Path) -> None:
    bodies = [_body(big=True), _body(big=True)]
    lines = _curl_posts(server.push_url, _files(tmp_path, bodies))
    for entry in _check(server, lines, bodies):
        assert _header(entry, "expect") == "100-continue"


def test_curl_http2_large_body_with_100_continue(server: ServerThread, tmp_path: Path) -> None:
    bodies = [_body(big=True)]
    entry = _check(server, _curl_posts(server.push_url, _files(tmp_path, bodies), "--http2"), bodies)[0]
    assert _header(entry, "upgrade") == "h2c" and _header(entry, "expect") == "100-continue"


def test_curl_chunked(server: ServerThread, tmp_path: Path) -> None:
    bodies = [_body(), _body(big=True)]
    lines = _curl_posts(server.push_url, _files(tmp_path, bodies), "-H", "Transfer-Encoding: chunked")
    for entry in _check(server, lines, bodies):
        assert _header(entry, "transfer-encoding") == "chunked"


def test_curl_http_1_0(server: ServerThread, tmp_path: Path) -> None:
    bodies = [_body(), _body()]
    connects: list[int] = []
    lines = _curl_posts(server.push_url, _files(tmp_path, bodies), "--http1.0", connects=connects)
    assert connects == [1, 1]  # an HTTP/1.0 connection is closed after its answer
    _check(server, lines, bodies)


# --- the JDK's HttpClient -----------------------------------------------------------------------


def test_java_http_client_defaults(server: ServerThread, tmp_path: Path) -> None:
    """Its default, HTTP/2 preferred, adds ``Upgrade: h2c`` to every cleartext request."""
    java = _need("java")
    spec = _curl("-X", "PUT", "--data-binary", '{"balance": "500"}', server.url + "/_picky/accounts/" + TOKEN)
    assert json.loads(spec[0])["balance"] in ("500", 500)
    balance = json.dumps({"token": TOKEN}).encode()
    bodies = [balance, _body(), _body(big=True)]
    urls = [server.url + "/api/v2/check-balance", server.push_url, server.push_url]
    lines = _run([java, "PushClient.java", *_pairs(urls, _files(tmp_path, bodies))])
    assert json.loads(lines[0].split(" ", 2)[2])["balance"] == 500
    for line, body in zip(lines, bodies, strict=True):
        assert line.startswith("200 HTTP_1_1 "), line
        entry = _entry(server, body)
        assert _header(entry, "upgrade") == "h2c" and entry.status == 100
    _check(server, lines[1:], bodies[1:])


# --- Node: fetch and axios ------------------------------------------------------------------------


def test_node_fetch(server: ServerThread, tmp_path: Path) -> None:
    node = _need("node")
    bodies = [_body(), _body(), _body(big=True)]
    files = _files(tmp_path, bodies, chunked=[False, True])
    entries = _check(server, _run([node, "push_client.mjs", "fetch", *_pairs([server.push_url] * 3, files)]), bodies)
    assert _header(entries[1], "transfer-encoding") == "chunked"


@pytest.fixture(scope="session")
def axios_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axios, installed from the npm registry into a temporary prefix (skipped when offline)."""
    npm = _need("npm")
    prefix = tmp_path_factory.mktemp("axios")
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", "axios@1"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install axios took over 2 minutes (offline?)")
    if done.returncode != 0:
        pytest.skip(f"npm install axios failed (offline?): {done.stderr.decode(errors='replace')[-300:]}")
    return prefix


def test_node_axios(server: ServerThread, tmp_path: Path, axios_prefix: Path) -> None:
    node = _need("node")
    bodies = [_body(), _body(big=True)]
    argv = [node, "push_client.mjs", "axios", *_pairs([server.push_url] * 2, _files(tmp_path, bodies))]
    _check(server, _run(argv, env={**clean_env(), "AXIOS_PREFIX": str(axios_prefix)}), bodies)


# --- Go, PHP, Ruby --------------------------------------------------------------------------------


def test_go_net_http(server: ServerThread, tmp_path: Path) -> None:
    go = _need("go")
    bodies = [_body(), _body(), _body(big=True)]
    files = _files(tmp_path, bodies, chunked=[False, True])
    entries = _check(server, _run([go, "run", "push_client.go", *_pairs([server.push_url] * 3, files)]), bodies)
    assert _header(entries[1], "transfer-encoding") == "chunked"


def test_php_curl(server: ServerThread, tmp_path: Path) -> None:
    php = _need("php")
    if subprocess.run([php, "-r", "exit(function_exists('curl_init') ? 0 : 1);"], timeout=30).returncode:
        pytest.skip("PHP's curl extension is not installed (php-curl)")
    bodies = [_body(), _body(big=True)]
    lines = _run([php, "push_client.php", *_pairs([server.push_url] * 2, _files(tmp_path, bodies))])
    entries = _check(server, lines, bodies)
    assert _header(entries[1], "expect") == "100-continue"


def test_ruby_net_http(server: ServerThread, tmp_path: Path) -> None:
    ruby = _need("ruby")
    bodies = [_body(), _body(big=True)]
    _check(server, _run([ruby, "push_client.rb", *_pairs([server.push_url] * 2, _files(tmp_path, bodies))]), bodies)


# --- what no default client sends --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_is_refused_saying_why(server: ServerThread, encoding: str) -> None:
    """A compressed request body is not decoded (an API server reads the body as sent): the
    answer is the API's invalid request, and the error says what to change. A decompression bomb
    is therefore never inflated."""
    body = _body()
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    headers = {"content-type": "application/json", "content-encoding": encoding}
    answer = httpx.post(server.push_url, content=packed, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == 410
    assert f"Content-Encoding: {encoding}" in answer.headers["x-picky-error"]
    assert server.backend.journal.entries()[-1].raw_body == packed


def test_broken_json_in_the_form_field_or_query_parameter_says_where(server: ServerThread) -> None:
    form = httpx.post(server.push_url, data={"data": '{"token": '}, timeout=30)
    assert form.json()["status"] == 410
    assert form.headers["x-picky-error"].startswith("410 $: the form field data= is not valid JSON"), form.headers
    query = httpx.post(server.push_url, params={"data": "{oops"}, timeout=30)
    assert query.json()["status"] == 410
    assert query.headers["x-picky-error"].startswith("410 $: the query parameter data= is not valid JSON")
    body = httpx.post(server.push_url, content=b"{oops", headers={"content-type": "application/json"}, timeout=30)
    assert body.headers["x-picky-error"].startswith("410 $: the body is not valid JSON"), body.headers
