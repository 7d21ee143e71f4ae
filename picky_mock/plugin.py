"""The pytest plugin (registered by the ``pytest11`` entry point, so any project that installs
picky-mock has these fixtures without importing anything).

* ``picky_server``: a real server on a free loopback port, started once per session (once per
  worker under pytest-xdist), reset before each test; an exception raised inside the server fails
  the test that caused it. ``@pytest.mark.picky(mode=..., faults=[...], accounts={...},
  sessions=[...], seed=..., rate_limit=..., lifecycle={...}, event_webhook=URL,
  incoming_webhook=URL)`` sets a test's faults, account state, lifecycle policy and webhooks. The
  server runs on a virtual clock (time moves only with ``picky_server.advance(...)``) and its message
  lifecycle is off unless a test (or the config file) asks for a policy, so tests stay exact.
* ``picky_settings``: the :class:`~picky_mock.config.Settings` the session server starts with:
  the defaults, or the TOML file of ``--picky-config PATH`` / the ``picky_config`` ini option (the
  file ``picky-mock serve --config`` takes); or override it in a ``conftest.py``.
* ``picky_webhook_receiver``: a local HTTP endpoint (:class:`~picky_mock.receiver.WebhookReceiver`)
  that collects the webhooks a test makes the server send, and answers what the test says.
* ``picky_asgi``: an in-process ``httpx.ASGITransport`` for ``httpx.AsyncClient``, no socket,
  fresh per test.

At the end of a session that used ``picky_server``, a short report tells which API status codes
and fault kinds the tests drove the client through, which delivery states their messages reached and
which webhook retry paths their handlers met, and which they never did
(``--picky-coverage-json PATH`` writes it as JSON; ``--no-picky-coverage`` turns it off).

Faults with a ``probability`` draw from a seeded generator. The session's seed is ``--picky-seed N``,
else the seed in ``picky_settings`` (``Settings(extra={"seed": N})``), else a random one drawn once
per run and shared by every xdist worker; the report prints it (and so does a failing run with the
report off), and each test starts from it, so a failure repeats with ``--picky-seed N``, whatever
order the tests run in.

This module imports nothing heavy at collection time: the server is imported when first used.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .backend import Backend
    from .config import Settings
    from .receiver import WebhookReceiver
    from .server import ServerThread
    from .testing import PickyServer

__all__ = ["picky_asgi", "picky_server", "picky_server_session", "picky_settings", "picky_webhook_receiver"]

_BACKENDS = pytest.StashKey[list["Backend"]]()
_WORKER_PARTS = pytest.StashKey[list[dict[str, Any]]]()
_SEED = pytest.StashKey[int]()
_LIFECYCLE = pytest.StashKey[list[dict[str, Any]]]()
_OUTPUT_KEY = "picky_mock_coverage"
_SEED_KEY = "picky_mock_seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("picky-mock")
    group.addoption(
        "--picky-coverage-json",
        metavar="PATH",
        default=None,
        help="write the picky-mock failure-coverage report (API codes and faults driven) as JSON",
    )
    group.addoption(
        "--picky-seed",
        metavar="N",
        type=int,
        default=None,
        help="seed of the session server's fault generator (default: the one in picky_settings, "
        "else a random one; the report prints it)",
    )
    group.addoption(
        "--picky-config",
        metavar="PATH",
        default=None,
        help="TOML config file of the session server, as for `picky-mock serve --config` (prices, ids, "
        "mode, retention, accounts, faults...; its host and port are ignored: a free loopback port is used). "
        "Default: the `picky_config` ini option, else none",
    )
    parser.addini(
        "picky_config",
        "TOML config file of picky-mock's session server (relative to the ini file), as --picky-config",
        default="",
    )
    group.addoption(
        "--no-picky-coverage",
        action="store_true",
        default=False,
        help="do not print the picky-mock failure-coverage summary",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "picky(mode=None, faults=(), accounts=None, sessions=(), seed=None, rate_limit=None, lifecycle=None, "
        "event_webhook=None, incoming_webhook=None): picky-mock state for this test (applied by the picky_server "
        "fixture)",
    )
    config.stash[_BACKENDS] = []
    config.stash[_WORKER_PARTS] = []
    config.stash[_LIFECYCLE] = []
    given = config.getoption("--picky-config", None)
    if given:  # relative to where pytest was started, whatever a test does to the working directory
        config.option.picky_config = str(config.invocation_params.dir / given)
    if _config_path(config) is not None and not config.getoption("help", False):
        # A bad file is one clear line now, not the same error in every test. The backend checks
        # the sections it reads (faults, accounts, seed, rate limit, sessions), so build one.
        from .backend import Backend
        from .config import Settings
        from .errors import ConfigError

        try:
            Backend(Settings(**_settings_values(config)))
        except ConfigError as exc:
            raise pytest.UsageError(f"picky-mock: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _SEED_KEY in workerinput:  # an xdist worker: the controller's seed
        config.stash[_SEED] = int(workerinput[_SEED_KEY])
    else:
        chosen = config.getoption("--picky-seed", None)
        config.stash[_SEED] = chosen if chosen is not None else random.SystemRandom().randrange(2**32)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker's server draws from the same seed."""
    node.workerinput[_SEED_KEY] = node.config.stash[_SEED]


@pytest.fixture(scope="session")
def picky_settings(pytestconfig: pytest.Config) -> Settings:
    """Settings of the session's server: the defaults, or the config file given by
    ``--picky-config`` / the ``picky_config`` ini option; override this fixture to change them.

    The server always listens on a free loopback port, and logs at ``warning`` and runs on the
    virtual clock (``[clock] kind = "virtual"``) unless the file says otherwise. ``PICKY_MOCK_*``
    environment variables are not read here, so what a developer's shell exports cannot change what
    a test suite sees; name the file instead."""
    from .config import Settings

    return Settings(**_settings_values(pytestconfig))


def _settings_values(config: pytest.Config) -> dict[str, Any]:
    values: dict[str, Any] = {"log_level": "warning", "clock": "virtual"}
    path = _config_path(config)
    if path is not None:
        from .config import read_config_file

        values.update(read_config_file(path))
    values.update(host="127.0.0.1", port=0)
    return values


def _config_path(config: pytest.Config) -> Path | None:
    """``--picky-config``, relative to the directory pytest was started in, else ``picky_config``
    from the ini file, relative to that file."""
    given = config.getoption("--picky-config", None)
    if given:
        return Path(given)
    ini = str(config.getini("picky_config") or "")
    if not ini:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / ini


@pytest.fixture(scope="session")
def picky_server_session(picky_settings: Settings, pytestconfig: pytest.Config) -> Iterator[ServerThread]:
    """The session's server thread; most tests want ``picky_server`` instead."""
    from .server import ServerThread

    server = ServerThread(_seeded(picky_settings, pytestconfig)).start()
    pytestconfig.stash[_BACKENDS].append(server.backend)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def picky_server(picky_server_session: ServerThread, request: pytest.FixtureRequest) -> Iterator[PickyServer]:
    """A running picky-mock server, reset for this test (and set up by its ``picky`` marker)."""
    from .testing import PickyServer

    parts = request.config.stash[_LIFECYCLE]
    picky = PickyServer(picky_server_session, harvest=lambda backend: parts.append(_lifecycle_part(backend)))
    picky.reset()
    for marker in reversed(list(request.node.iter_markers("picky"))):
        picky.apply_marker(marker.kwargs)
    yield picky
    picky.harvest()
    picky.check()


def _lifecycle_part(backend: Backend) -> dict[str, dict[str, int]]:
    from .coverage import lifecycle_counts

    backend.webhooks.wait_idle(1.0)
    return lifecycle_counts(backend.ledger.transitions(), backend.webhooks.attempts())


@pytest.fixture
def picky_asgi(picky_settings: Settings, pytestconfig: pytest.Config) -> Iterator[Any]:
    """An ``httpx.ASGITransport`` over a fresh in-process app; ``.app.backend`` is the
    backend (journal, sequences) the requests reach. Its faults draw from the session's seed."""
    import httpx

    from .app import create_app
    from .backend import Backend

    backend = Backend(_seeded(picky_settings, pytestconfig))
    pytestconfig.stash[_BACKENDS].append(backend)  # in the report, like the server's
    try:
        yield httpx.ASGITransport(app=create_app(backend))
    finally:
        backend.close()  # the webhook dispatcher's thread, when a test started it


@pytest.fixture
def picky_webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP endpoint on a free loopback port, in its own thread, for this test: point a
    webhook at ``.url`` (or ``.url_for("/events")``), tell it what to answer (``.respond(503,
    times=2)``, ``.down()``, ``.hang()``), wait with ``.wait_for(n)`` and read ``.received``."""
    from .receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver


def _seeded(settings: Settings, config: pytest.Config) -> Settings:
    """``settings`` with the session's fault seed: ``--picky-seed``, else the settings' own, else
    the one drawn for this run."""
    if config.getoption("--picky-seed") is not None or "seed" not in settings.extra:
        return replace(settings, extra={**settings.extra, "seed": config.stash[_SEED]})
    return settings


def _local_parts(config: pytest.Config) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {**backend.coverage.to_json(), "seed": backend.seed} for backend in config.stash.get(_BACKENDS, [])
    ]
    lifecycle: list[dict[str, Any]] = config.stash.get(_LIFECYCLE, [])
    return parts + lifecycle


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the controller what this worker saw
        workeroutput[_OUTPUT_KEY] = json.dumps(_local_parts(config))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect a worker's coverage."""
    raw = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY)
    if raw:
        node.config.stash[_WORKER_PARTS].extend(json.loads(raw))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from .coverage import merge, render, report

    parts = _local_parts(config) + config.stash.get(_WORKER_PARTS, [])
    if not parts:
        return
    coverage = merge(parts)
    seeds = sorted({int(part["seed"]) for part in parts if "seed" in part})
    seed_line = "fault seed " + ", ".join(map(str, seeds))
    if len(seeds) == 1:
        seed_line += f" (--picky-seed {seeds[0]} repeats this run's faults)"
    path = config.getoption("--picky-coverage-json")
    if path:
        Path(path).write_text(json.dumps({**report(coverage), "seeds": seeds}, indent=2) + "\n", encoding="utf-8")
    if not config.getoption("--no-picky-coverage"):
        terminalreporter.section("picky-mock failure coverage")
        for line in render(coverage):
            terminalreporter.write_line(line)
        terminalreporter.write_line("  " + seed_line)
        if path:
            terminalreporter.write_line(f"  report written to {path}")
    elif exitstatus not in (0, 5) and seeds:  # tests failed: the seed is what repeats them
        terminalreporter.write_line(f"picky-mock: {seed_line}")
