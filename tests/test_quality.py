"""The type and lint gate: ``mypy --strict`` on the package and ``ruff check`` on the package and
the tests exit 0 (the configuration is the pyproject's)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from pushing import ROOT

TIMEOUT = 300

def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def _ruff(*paths: str) -> subprocess.CompletedProcess[str]:
    _tool("ruff")
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_mypy_strict():
    _tool("mypy")
    done = subprocess.run(  # mypy's own cache, .mypy_cache in the checkout (ignored by git): fast when warm
        [sys.executable, "-m", "mypy", "--strict", "picky_mock"],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff():
    done = _ruff("picky_mock", "tests", "examples", "bench", "conftest.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_bench_s_fault_rules_are_still_accepted():
    """``bench/faults.py`` and ``bench/instructions.py`` load these rules into a live server; a rule
    the validator has since learned to refuse would stop the bench only when someone runs it."""
    check = (
        "import sys; sys.path.insert(0, 'bench'); import faults\n"
        "try:\n    import tomllib\nexcept ImportError:\n    import tomli as tomllib\n"
        "from picky_mock.faults import FaultRule\n"
        "[FaultRule.from_dict(rule) for rule in faults.rules(100)]\n"
        "[FaultRule.from_dict(rule) for rule in tomllib.loads(faults.rules_toml(100))['faults']]\n"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
