"""Running the emulator: :func:`serve` in the foreground (the ``picky-mock serve`` command) and
:class:`ServerThread` in the background (the pytest fixture, or any test harness).

Both bind the listening socket themselves before uvicorn starts, so that ``port=0`` yields the
real port at once and a port in use is a clear :class:`~picky_mock.errors.ConfigError`. Once
serving, both check that transport faults can reach the connection
(:func:`~picky_mock.transport.check_connection`), and stop with a
:class:`~picky_mock.errors.ConfigError` when the installed uvicorn does not allow it.
uvloop and httptools are used where installed: on this kind of machine the plain asyncio loop
adds tens of milliseconds to keep-alive requests (uvicorn issue #3149). A connection whose first
request carries an ``Upgrade`` header is served by h11 instead (see :mod:`picky_mock.watchdog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Literal

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from .app import PUSH_PATHS, create_app
from .backend import Backend
from .config import Settings
from .errors import ConfigError
from .guard import GuardPolicy, admin_headers
from .logs import configure_logging
from .transport import check_connection
from .watchdog import ConnectionLimits, watched

__all__ = ["ServerThread", "bind", "serve"]

log = logging.getLogger("picky_mock")

MAX_HEADER_BYTES = 64 * 1024
"""Bytes of one request's headers (h11's own default is 16 KiB; httptools has no bound of its own)."""


def _loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def _protocol_class(name: str) -> type[asyncio.Protocol]:
    """uvicorn's protocol class for its documented ``http`` choice ``name`` (``h11``, ``httptools``)."""
    protocol_class: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS[name])
    return protocol_class


class _DeclinedUpgradeNoise(logging.Filter):
    """Drops uvicorn's two warnings on a request that asks to upgrade (``Unsupported upgrade
    request.``, then advice to install a WebSocket library): picky-mock serves no WebSocket, and
    answering an h2c upgrade request in HTTP/1.1 is the normal case, not one to warn about."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(("Unsupported upgrade request", "No supported WebSocket library"))


def _quiet_declined_upgrades() -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DeclinedUpgradeNoise) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_DeclinedUpgradeNoise())


def _http() -> tuple[type[asyncio.Protocol], type[asyncio.Protocol] | None]:
    """uvicorn's protocol class, and the one for connections whose first request asks to upgrade:
    httptools where installed, with h11 for the connections it would mishandle; else h11 alone."""
    if importlib.util.find_spec("httptools"):
        return _protocol_class("httptools"), _protocol_class("h11")
    return _protocol_class("h11"), None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "port already in use" if exc.errno in (48, 98) else exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def limits_of(settings: Settings) -> ConnectionLimits:
    """The connection limits a server with ``settings`` enforces (:mod:`picky_mock.watchdog`)."""
    return ConnectionLimits(settings.header_timeout, settings.max_connections, MAX_HEADER_BYTES)


def _config(
    backend: Backend, settings: Settings, limits: ConnectionLimits, *, lifespan: Literal["on", "off"] = "off"
) -> uvicorn.Config:
    _quiet_declined_upgrades()
    return uvicorn.Config(
        create_app(backend),
        loop=_loop(),
        http=watched(*_http(), limits=limits),
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # call_later takes a float
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        lifespan=lifespan,
        access_log=settings.access_log,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,  # a mock on loopback has no proxy to trust: skip uvicorn's per-request check
        timeout_graceful_shutdown=2,
    )


class _ForegroundServer(uvicorn.Server):
    """uvicorn's server, minus one habit: once shut down by SIGINT or SIGTERM, uvicorn raises the
    signal again so that the process dies of it (``KeyboardInterrupt``, exit status 130 or -15).
    ``picky-mock serve`` treats both signals as the normal way to stop, and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(settings: Settings, *, backend: Backend | None = None, announce: bool = True) -> None:
    """Serve in the foreground until SIGINT or SIGTERM. Raises :class:`ConfigError` when the
    address cannot be bound."""
    sock = bind(settings.host, settings.port)  # first: a port in use is one line, before any log line
    try:
        handler = configure_logging(settings.log_level)
    except BaseException:
        sock.close()
        raise
    try:
        backend = backend or Backend(settings)
    except BaseException:
        sock.close()
        handler.close()
        raise
    if log.isEnabledFor(logging.INFO):
        backend.push_line = handler.line
    gc.freeze()  # what exists now lives as long as the server: keep it out of every collection
    url = _url(sock)
    if announce:
        print(f"picky-mock {settings.mode} mode serving {url}{PUSH_PATHS[0]}", flush=True)
        print(f"  also {', '.join(PUSH_PATHS[1:])}; admin {url}/_picky/health", flush=True)
    for warning in GuardPolicy(settings).warnings():
        log.warning("%s", warning)
    log.info(
        "lifecycle: %s clock%s, policy %s, event webhook %s, incoming webhook %s",
        settings.clock,
        f" x{settings.time_scale:g}" if settings.clock == "wall" and settings.time_scale != 1 else "",
        "off" if settings.lifecycle is None else "on",
        settings.event_webhook_url or "none",
        settings.incoming_webhook_url or "none",
    )
    # The backend starts at the lifespan's startup: its webhook dispatcher joins the server's loop.
    server = _ForegroundServer(_config(backend, settings, limits_of(settings), lifespan="on"))
    failures: list[ConfigError] = []
    checker = threading.Thread(target=_check_when_started, args=(server, url, failures), daemon=True)
    checker.start()
    try:
        server.run(sockets=[sock])
    finally:
        server.should_exit = True
        checker.join(timeout=10)
        sock.close()
        backend.close()
        log.info("picky-mock stopped")
        handler.close()
    if failures:
        raise failures[0]


def _check_when_started(server: uvicorn.Server, url: str, failures: list[ConfigError]) -> None:
    """Once ``server`` serves, check that transport faults reach its connections; on failure,
    keep the error for :func:`serve` to raise and stop the server."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.005)
    try:
        check_connection(url)
    except ConfigError as exc:
        log.error("%s", exc)
        failures.append(exc)
        server.should_exit = True


class ServerThread:
    """A picky-mock server in a background thread, on a free loopback port by default.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with ServerThread() as server:
            requests.post(server.push_url, json=...)
            assert server.backend.journal.pushes()

    ``port`` is 0 (a free port) unless given here, whatever ``settings.port`` says: ``Settings``
    defaults to the command's port 8080, and a test server on a fixed port breaks the moment two
    run at once (pytest-xdist workers, two CI jobs on one machine). Read the port from :attr:`url`.
    ``host`` is ``settings.host`` (loopback by default) unless given here.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        host: str | None = None,
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        base = settings if settings is not None else Settings(host="127.0.0.1")
        self.settings = base.with_options(host=host, port=port)
        self.backend = backend or Backend(self.settings)
        self.startup_timeout = startup_timeout
        self.connections = limits_of(self.settings)
        """The open connections and the limits they are under."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._failure: BaseException | None = None
        self.url = ""

    @property
    def admin_headers(self) -> dict[str, str]:
        """The headers an HTTP call to the admin API sends (the token when one is set, and the
        ``X-Picky-Admin`` marker an admin POST needs)."""
        return admin_headers(self.settings.admin_token)

    @property
    def push_url(self) -> str:
        """The V4 push URL, ``<url>/api/v2/push``."""
        return self.url + PUSH_PATHS[0]

    @property
    def push_urls(self) -> list[str]:
        """Every served push URL (V4, V3 and legacy paths)."""
        return [self.url + path for path in PUSH_PATHS]

    def start(self) -> ServerThread:
        """Start serving; return once the server accepts connections (or raise after the
        startup deadline)."""
        if self._thread is not None:
            return self
        self._sock = bind(self.settings.host, self.settings.port)
        self.url = _url(self._sock)
        self.backend.start()
        self._server = uvicorn.Server(_config(self.backend, self.settings, self.connections))
        self._thread = threading.Thread(target=self._run, name=f"picky-mock {self.url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                failure = self._failure
                self.stop()
                raise ConfigError(f"picky-mock failed to start on {self.url}: {failure!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"picky-mock did not start on {self.url} within {self.startup_timeout} s")
            time.sleep(0.001)
        try:
            check_connection(self.url)
        except ConfigError:
            self.stop()
            raise
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start() or stop()
            self._failure = exc

    def stop(self) -> None:
        """Stop serving and wait for the thread (open connections are closed)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self.backend.close()
        self._thread = self._server = self._sock = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
