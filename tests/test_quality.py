"""The type and lint gate: ``mypy --strict`` on the package and ``ruff check`` on the package and
the tests exit 0 (the configuration is the pyproject's), and the tests check behaviour through
public names only: none reads, imports or patches a private (underscore) name."""

from __future__ import annotations

import ast
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


#: Underscore names that are public: the named tuple API, and what a test's own helper objects keep.
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
OWN_OBJECTS = {"self", "cls"}


def _private_uses(path: str, source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id in OWN_OBJECTS):
            names = [node.attr]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("picky_mock"):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if called in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) >= 2:
                name = node.args[1]
                names = [name.value] if isinstance(name, ast.Constant) and isinstance(name.value, str) else []
        for name in names:
            if name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE:
                found.append(f"{path}:{node.lineno}: {name}")
    return found


def test_no_test_reads_a_private_name():
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        found += _private_uses(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
    assert found == [], "tests check behaviour through public names:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("backend._lock", ["_lock"]),
        ("from picky_mock.contract import _rank, validate_request", ["_rank"]),
        ("monkeypatch.setattr(journal, '_entries', [])", ["_entries"]),
        ("getattr(server, '_thread')", ["_thread"]),
        ("self._readers, cls._cache, entry._replace(seq=2), type(x).__name__", []),
    ],
)
def test_the_private_name_check_finds_each_kind_of_use(source, found):
    assert _private_uses("t.py", source) == [f"t.py:1: {name}" for name in found]
