"""The project's metadata: one version, read from one place; every dependency's lower bound pinned in
the oldest-versions constraints that CI installs; the 'hypothesis' extra is part of 'test'."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from pushing import ROOT

import picky_mock
from picky_mock.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the oldest Python declared
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSTRAINTS = ROOT / "tests" / "oldest-constraints.txt"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lower_bounds() -> dict[str, str]:
    """``{name: version}`` for every ``>=`` bound in the dependencies and extras (the project's own
    extras, ``picky-mock[...]``, name no version)."""
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    bounds: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        assert match, requirement
        name, _, spec, _ = match.groups()
        lower = re.search(r">=\s*([0-9][^,\s]*)", spec)
        if lower:
            bounds[_canonical(name)] = lower.group(1)
    return bounds


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not name==version"
            pins[_canonical(name)] = version.strip()
    return pins


def _release(version: str) -> tuple[int, ...]:
    parts = [int(part) for part in re.findall(r"\d+", version)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def test_every_lower_bound_is_pinned_at_that_bound_in_the_oldest_constraints():
    bounds = _lower_bounds()
    pins = _pins(CONSTRAINTS)
    assert {"starlette", "uvicorn", "hypothesis", "pytest"} <= set(bounds)
    assert set(pins) == set(bounds), "each pin is a declared lower bound, and each lower bound is pinned"
    for name, version in bounds.items():
        assert _release(pins[name]) == _release(version), f"{name}: pyproject says >={version}, pinned {pins[name]}"


def test_the_hypothesis_extra_brings_the_strategies_dependencies_and_test_includes_it():
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {_canonical(REQUIREMENT.match(r).group(1)) for r in extras["hypothesis"]}
    assert names == {"hypothesis"}
    assert "picky-mock[hypothesis]" in extras["test"]
    runtime = {_canonical(REQUIREMENT.match(r).group(1)) for r in PYPROJECT["project"]["dependencies"]}
    assert not names & runtime, "the server and the fixture need no Hypothesis"


def test_the_version_is_written_in_one_place():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    source = PYPROJECT["tool"]["hatch"]["version"]["path"]
    text = (ROOT / source).read_text(encoding="utf-8")
    (written,) = re.findall(r'^__version__ = "([^"]+)"$', text, flags=re.MULTILINE)
    assert written == picky_mock.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", written), written


def test_version_option_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"picky-mock {picky_mock.__version__}\n"


def test_requires_python_names_the_oldest_python_the_tools_target():
    oldest = re.fullmatch(r">=\s*3\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert oldest, PYPROJECT["project"]["requires-python"]
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"3.{oldest.group(1)}"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{oldest.group(1)}"


def test_ci_tests_the_oldest_releases_on_the_oldest_python_with_tests_that_exist():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    oldest = re.fullmatch(r">=\s*(3\.\d+)", PYPROJECT["project"]["requires-python"])
    assert oldest and f"OLDEST_PYTHON=python{oldest.group(1)}\n" in script
    assert "-c tests/oldest-constraints.txt" in script
    (selection,) = re.findall(r"^OLDEST_TESTS=\(([^)]*)\)", script, flags=re.MULTILINE)
    paths = selection.split()
    assert len(paths) >= 5
    for path in paths:
        assert (ROOT / path).exists(), f".ci/run's oldest-releases step runs {path}, which is gone"
