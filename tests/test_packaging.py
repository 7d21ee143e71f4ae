"""Packaging: the wheel and the sdist carry the schemas and ``py.typed``, and an installed wheel,
away from the checkout, imports from its own site-packages, finds its schemas there, and serves."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
from pushing import ROOT, expect_success, push_body

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 240
SCHEMAS = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _outside_env(venv: Path) -> dict[str, str]:
    """An environment for the venv: no PYTHONPATH or PICKY_MOCK_*, the venv first on PATH."""
    import os

    dropped = ("PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PICKY_MOCK_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


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


def test_wheel_installed_outside_the_checkout_imports_and_serves(tmp_path):
    assert not tmp_path.resolve().is_relative_to(ROOT)
    out = tmp_path / "dist"
    out.mkdir()
    wheel = _build_wheel(ROOT, out)
    _check_wheel(wheel)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    env = _outside_env(venv)
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
         cwd=tmp_path, env=env)

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
    process = subprocess.Popen(
        [str(script), "serve", "--port", "0", "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"(http://\S+?)/api/v2/push", line)
        assert url, f"no URL in {line!r}"
        with httpx.Client(base_url=url.group(1), timeout=30, follow_redirects=False) as client:
            reply = expect_success(client.post("/api/v2/push", json=push_body()), recipients=1)
            assert reply["push_id"] == "7478630"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


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
