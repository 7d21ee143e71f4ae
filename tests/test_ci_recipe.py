"""The CI recipe for projects in other languages (``examples/ci/with-picky-mock.sh``), run for real:
it starts ``picky-mock serve`` in the background, waits for its health check, runs the project's
tests (a few curl calls here), passes their exit status on, and stops the server however they end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pushing import ROOT

RECIPE = ROOT / "examples" / "ci" / "with-picky-mock.sh"
PROJECT_TESTS = ROOT / "examples" / "ci" / "project-tests.sh"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the stand-in project tests call curl")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(port: int, **extra: str) -> dict[str, str]:
    """The picky-mock of this Python first on PATH, as after `pipx install` or an activated venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKY_MOCK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PICKY_MOCK_PORT"] = str(port)
    env.update(extra)
    return env


def _recipe(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(RECIPE), *argv], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _stopped(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_recipe_runs_the_project_tests_against_a_running_mock_and_stops_it(tmp_path):
    port = _free_port()
    done = _recipe(["sh", str(PROJECT_TESTS)], _env(port), tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "project-tests: all 3 checks passed" in done.stdout
    assert f"serving http://127.0.0.1:{port}/api/v2/push" in done.stdout
    assert _stopped(port), "the mock is still running after the recipe"


def test_the_tests_see_the_urls_and_their_exit_status_is_the_recipes(tmp_path):
    port = _free_port()
    check = 'test "$PICKY_URL" = "http://127.0.0.1:$PICKY_MOCK_PORT/api/v2/push" && ' \
            'test "$PICKY_ADMIN" = "http://127.0.0.1:$PICKY_MOCK_PORT/_picky" && ' \
            'curl -sS --fail "$PICKY_ADMIN/health" && exit 3'
    done = _recipe(["sh", "-c", check], _env(port), tmp_path)
    assert done.returncode == 3, f"{done.stdout}\n{done.stderr}"
    assert '"status":"ok"' in done.stdout.replace(" ", "")
    assert _stopped(port)


def test_project_tests_that_fail_fail_the_recipe(tmp_path):
    port = _free_port()
    # A fault makes the mock answer 403 Insufficient Balance: the stand-in tests catch it and fail.
    config = tmp_path / "picky.toml"
    config.write_text('mode = "strict"\n[[faults]]\naction = "api_error"\nstatus = 403\n')
    done = _recipe(["sh", str(PROJECT_TESTS)], _env(port, PICKY_MOCK_CONFIG=str(config)), tmp_path)
    assert done.returncode == 1
    assert "project-tests: FAILED: the push was not accepted" in done.stderr
    assert _stopped(port)


def test_a_port_taken_by_something_else_fails_the_recipe_in_the_wait_time(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        started = time.monotonic()
        done = _recipe(["sh", "-c", "echo the tests ran"], _env(port, PICKY_MOCK_WAIT="2"), tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert "the tests ran" not in done.stdout
    assert f"http://127.0.0.1:{port}/_picky/health not ready after 2s" in done.stderr
    assert elapsed < 30


def test_the_recipe_without_a_command_says_how_to_use_it(tmp_path):
    done = _recipe([], _env(_free_port()), tmp_path)
    assert done.returncode == 2 and "usage:" in done.stderr
