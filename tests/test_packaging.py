"""Packaging: the wheel and the sdist carry the schemas and ``py.typed``, and an installed wheel,
away from the checkout, imports from its own site-packages, finds its schemas there, and serves.

The virtual environments made here are plain ones (no ``--system-site-packages``): each installs
the wheel's dependencies itself, from the same index a user's pip reads, so the tests pass or fail
as a newcomer's install does, whatever the Python running pytest happens to have.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
from pushing import ROOT, expect_success, push_body

import picky_mock

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 240
SCHEMAS = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _outside_env(venv: Path) -> dict[str, str]:
    """An environment for the venv: no PYTHONPATH or PICKY_MOCK_*, the venv first on PATH."""
    dropped = ("PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PICKY_MOCK_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _fresh_venv(venv: Path) -> Path:
    """A new virtual environment with pip and nothing else; returns its Python."""
    _run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent)
    return venv / "bin" / "python"


def _version_of(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def _build_wheel(source: Path, out: Path) -> Path:
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
         cwd=out)
    (wheel,) = out.glob("picky_mock-*.whl")
    return wheel


def _check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for schema in SCHEMAS:
            assert f"picky_mock/schemas/{schema}" in names
            assert archive.read(f"picky_mock/schemas/{schema}") == (ROOT / "schemas" / schema).read_bytes()
        assert "picky_mock/py.typed" in names
        assert "picky_mock/__init__.py" in names and "picky_mock/cli.py" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry_points).decode()
    assert re.search(r"picky-mock\s*=\s*picky_mock\.cli:main", text)
    assert re.search(r"picky_mock\s*=\s*picky_mock\.plugin", text), "the pytest11 entry point"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = _build_wheel(ROOT, out)
    _check_wheel(built)
    assert _version_of(built) == picky_mock.__version__, "the wheel's version is the package's"
    return built


def _serves(script: list[str], cwd: Path, env: dict[str, str]) -> None:
    """``script serve`` starts on a free port, answers a push, and stops with status 0 on SIGTERM."""
    process = subprocess.Popen(
        [*script, "serve", "--port", "0", "--log-level", "warning"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"(http://\S+?)/api/v2/push", line)
        assert url, f"no URL in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        with httpx.Client(base_url=url.group(1), timeout=30, follow_redirects=False) as client:
            reply = expect_success(client.post("/api/v2/push", json=push_body()), recipients=1)
            assert reply["push_id"] == "7478630"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_wheel_installed_outside_the_checkout_imports_and_serves(tmp_path, wheel):
    assert not tmp_path.resolve().is_relative_to(ROOT)
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    env = _outside_env(venv)
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=env)

    probe = (
        "import json, picky_mock, picky_mock.contract as c; "
        "print(json.dumps({'file': picky_mock.__file__, 'schemas': str(c.schemas_dir()), "
        "'valid': c.validate_request({'token': 't', 'application': 1, 'globalmessage': 'x', "
        "'data': [{'number': '5511987654321'}]}) == []}))"
    )
    found = json.loads(_run([str(python), "-c", probe], cwd=tmp_path, env=env).stdout)
    package = Path(found["file"]).resolve()
    schemas = Path(found["schemas"]).resolve()
    assert package.is_relative_to(venv.resolve()), f"imported from {package}, not the venv"
    assert not package.is_relative_to(ROOT)
    assert schemas.is_relative_to(venv.resolve()) and schemas.name == "schemas", schemas
    assert sorted(p.name for p in schemas.glob("*.json")) == SCHEMAS
    assert found["valid"] is True

    script = venv / "bin" / "picky-mock"
    assert script.is_file()
    version = _run([str(script), "--version"], cwd=tmp_path, env=env).stdout
    assert version == f"picky-mock {_version_of(wheel)}\n"
    _serves([str(script)], tmp_path, env)

    # The strategies need the 'hypothesis' extra: without it the import fails on the missing
    # module (and says so); with it, they import and draw a valid push body.
    strategies = "import picky_mock.strategies"
    missing = subprocess.run([str(python), "-c", strategies], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=BUILD_TIMEOUT)
    assert missing.returncode == 1 and "hypothesis" in missing.stderr, missing.stderr
    _run([str(python), "-m", "pip", "install", "-q", f"picky-mock[hypothesis] @ {wheel.as_uri()}"], cwd=tmp_path,
         env=env)
    _run([str(python), "-c", strategies], cwd=tmp_path, env=env)


def _pipx_env(tmp_path: Path) -> dict[str, str]:
    """pipx confined to ``tmp_path``: its venvs, its commands and its man pages, none in the user's home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("PICKY_MOCK_")}
    env.update(
        PIPX_HOME=str(tmp_path / "pipx-home"),
        PIPX_BIN_DIR=str(tmp_path / "pipx-bin"),
        PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
        PIPX_DEFAULT_PYTHON=sys.executable,
        USE_EMOJI="0",
    )
    return env


def test_pipx_install_of_the_wheel_gives_a_working_command(tmp_path, wheel):
    env = _pipx_env(tmp_path)
    _run([sys.executable, "-m", "pipx", "install", str(wheel)], cwd=tmp_path, env=env)
    script = tmp_path / "pipx-bin" / "picky-mock"
    assert script.is_file()
    resolved = script.resolve()
    assert resolved.is_relative_to((tmp_path / "pipx-home").resolve()), resolved
    assert _run([str(script), "--version"], cwd=tmp_path, env=env).stdout == f"picky-mock {_version_of(wheel)}\n"
    _serves([str(script)], tmp_path, env)

    # The CI recipe of a project in another language, with this command first on PATH.
    recipe = ROOT / "examples" / "ci" / "with-picky-mock.sh"
    tests = ROOT / "examples" / "ci" / "project-tests.sh"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    recipe_env = {**env, "PATH": f"{script.parent}{os.pathsep}{env['PATH']}", "PICKY_MOCK_PORT": str(port)}
    check = f'test "$(command -v picky-mock)" = "{script}" && sh "{tests}"'
    done = _run(["sh", str(recipe), "sh", "-c", check], cwd=tmp_path, env=recipe_env)
    assert "project-tests: all 3 checks passed" in done.stdout

    _run([sys.executable, "-m", "pipx", "uninstall", "picky-mock"], cwd=tmp_path, env=env)
    assert not script.exists()


def test_pipx_run_from_the_project_path_serves(tmp_path, wheel):
    env = _pipx_env(tmp_path)
    pipx_run = [sys.executable, "-m", "pipx", "run", "--spec", str(ROOT), "picky-mock"]
    assert _run([*pipx_run, "--version"], cwd=tmp_path, env=env).stdout == f"picky-mock {_version_of(wheel)}\n"
    _serves(pipx_run, tmp_path, env)  # the second run reuses pipx's cached venv


def _build_sdist(out: Path) -> Path:
    build = "import sys; from hatchling.build import build_sdist; print(build_sdist(sys.argv[1]))"
    name = _run([sys.executable, "-c", build, str(out)], cwd=ROOT).stdout.strip().splitlines()[-1]
    return out / name


def test_sdist_carries_the_schemas_and_builds_a_complete_wheel(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    sdist = _build_sdist(out)
    assert sdist.name.endswith(".tar.gz") and sdist.is_file()
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        top = names[0].split("/")[0]
        members = {name.removeprefix(top + "/") for name in names}
        for schema in SCHEMAS:
            assert f"schemas/{schema}" in members
        for needed in ("pyproject.toml", "picky_mock/__init__.py", "picky_mock/py.typed", "README.md"):
            assert needed in members, needed
        archive.extractall(tmp_path / "src", filter="data")
    wheel_dir = tmp_path / "from-sdist"
    wheel_dir.mkdir()
    _check_wheel(_build_wheel(tmp_path / "src" / top, wheel_dir))
