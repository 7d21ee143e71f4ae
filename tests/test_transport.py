"""The one reach into the server: transport faults need the connection, which ASGI does not
expose. A server checks at start that it can reach it, and refuses to start, with a clear error,
when the installed uvicorn does not allow it (rather than letting faults quietly do nothing)."""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest
import uvicorn
from pushing import connect, push_body

import picky_mock.transport
from picky_mock.app import InProcessFault, create_app
from picky_mock.backend import Backend
from picky_mock.config import Settings
from picky_mock.errors import ConfigError
from picky_mock.server import ServerThread, serve
from picky_mock.transport import CONNECTION_PATH, check_connection


def test_the_installed_uvicorn_exposes_the_connection():
    with ServerThread(Settings(log_level="warning")) as server:
        answer = httpx.get(server.url + CONNECTION_PATH, timeout=5)
        assert answer.status_code == 200 and answer.json() == {"connection": True}
        check_connection(server.url)  # what start() did


def test_in_process_there_is_no_connection():
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(Backend(Settings())))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.get(CONNECTION_PATH)

    answer = asyncio.run(go())
    assert answer.status_code == 500 and answer.json()["connection"] is False


def test_a_server_thread_refuses_to_start_without_the_connection(monkeypatch):
    monkeypatch.setattr(picky_mock.transport, "connection_of", lambda send: None)
    server = ServerThread(Settings(log_level="critical"))
    with pytest.raises(ConfigError, match=f"uvicorn {uvicorn.__version__} does not expose the connection"):
        server.start()
    # stopped, not left serving: no server thread left, and its port no longer takes connections
    assert not [thread for thread in threading.enumerate() if thread.name == f"picky-mock {server.url}"]
    with pytest.raises(ConnectionRefusedError):
        connect(server.url, timeout=5).close()


def test_serve_stops_with_a_clear_error_without_the_connection(monkeypatch):
    monkeypatch.setattr(picky_mock.transport, "connection_of", lambda send: None)
    log = logging.getLogger("picky_mock")  # serve() configures it: restored after the test
    for name in ("handlers", "level", "propagate"):
        monkeypatch.setattr(log, name, list(log.handlers) if name == "handlers" else getattr(log, name))
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            serve(Settings(port=0, log_level="critical"), announce=False)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError)
    assert "does not expose the connection" in str(outcome[0])


def test_check_connection_names_an_unreachable_server():
    with pytest.raises(ConfigError, match="could not check"):
        check_connection("http://127.0.0.1:9", timeout=1)


def test_in_process_transport_fault_reaches_the_client_not_the_server_errors():
    backend = Backend(Settings())
    backend.faults.add({"action": "reset"})

    async def go() -> None:
        transport = httpx.ASGITransport(app=create_app(backend))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            with pytest.raises(InProcessFault):
                await client.post("/api/v2/push", json=push_body())

    asyncio.run(go())
    assert backend.take_server_errors() == []
    assert isinstance(InProcessFault("x"), ConnectionResetError)
