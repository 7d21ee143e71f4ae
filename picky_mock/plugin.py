"""The pytest plugin (registered by the ``pytest11`` entry point, so any project that installs
picky-mock has these fixtures without importing anything).

* ``picky_server``: a real server on a free loopback port, started once per session (once per
  worker under pytest-xdist), reset before each test; an exception raised inside the server fails
  the test that caused it.
* ``picky_settings``: the :class:`~picky_mock.config.Settings` the session server starts with;
  override it in a ``conftest.py`` to change prices, start ids or the mode.
* ``picky_asgi``: an in-process ASGI transport for ``httpx.AsyncClient``, no socket, fresh per test.

This module imports nothing heavy at collection time: the server is imported when first used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .config import Settings
    from .server import ServerThread
    from .testing import PickyServer

__all__ = ["picky_asgi", "picky_server", "picky_server_session", "picky_settings"]


@pytest.fixture(scope="session")
def picky_settings() -> Settings:
    """Settings of the session's server (defaults; override this fixture to change them)."""
    from .config import Settings

    return Settings(host="127.0.0.1", port=0, log_level="warning")


@pytest.fixture(scope="session")
def picky_server_session(picky_settings: Settings) -> Iterator[ServerThread]:
    """The session's server thread; most tests want ``picky_server`` instead."""
    from .server import ServerThread

    server = ServerThread(picky_settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def picky_server(picky_server_session: ServerThread) -> Iterator[PickyServer]:
    """A running picky-mock server, reset for this test."""
    from .testing import PickyServer

    picky = PickyServer(picky_server_session)
    picky.reset()
    yield picky
    picky.check()


@pytest.fixture
def picky_asgi(picky_settings: Settings) -> Any:
    """An ``httpx.ASGITransport`` over a fresh in-process app; its ``.app.state.backend`` is the
    backend (journal, sequences) the requests reach."""
    import httpx

    from .app import create_app
    from .backend import Backend

    return httpx.ASGITransport(app=create_app(Backend(picky_settings)))
