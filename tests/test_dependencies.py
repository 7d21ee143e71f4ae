"""No dependency internals: the package uses the documented APIs of ASGI, Starlette and uvicorn,
except for one function, :func:`picky_mock.transport.connection_of`, that reaches the connection a
transport fault breaks (ASGI cannot express that). Checked on the source, so that a new reach fails
here before it fails on a user's uvicorn upgrade."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pushing import ROOT

PACKAGE = ROOT / "picky_mock"
DEPENDENCIES = ("uvicorn", "starlette")
#: Modules of our dependencies that are not their documented interface (protocol, loop and
#: lifespan implementations; anything whose name starts with an underscore).
PRIVATE_MODULES = ("uvicorn.protocols", "uvicorn.loops", "uvicorn.lifespan", "uvicorn.supervisors")
#: Dunder attributes that read a function's or a bound method's internals.
INTROSPECTION = frozenset({"__code__", "__closure__", "__globals__", "__self__", "__func__", "co_names"})
THE_ONE_REACH = ("transport.py", "connection_of")


def _dependency_module(name: str) -> bool:
    return name.split(".")[0] in DEPENDENCIES


def _private_module(name: str) -> bool:
    return any(part.startswith("_") for part in name.split(".")) or name.startswith(PRIVATE_MODULES)


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node of ``tree`` and the name of the top-level function that holds it."""
    owner: dict[ast.AST, str] = {}
    for top in ast.iter_child_nodes(tree):
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(top):
                owner[node] = top.name
    return owner


def reaches(path: Path) -> list[str]:
    """Every reach into a dependency's internals in the source file ``path``, as ``line: what``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    owner = _enclosing_functions(tree)
    dependency_names: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _dependency_module(alias.name):
                    dependency_names.add((alias.asname or alias.name).split(".")[0])
                    if _private_module(alias.name):
                        found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and _dependency_module(node.module):
            if _private_module(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
            for alias in node.names:
                dependency_names.add(alias.asname or alias.name)
                if alias.name.startswith("_"):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    allowed = {node for node, name in owner.items() if (path.name, name) == THE_ONE_REACH}
    for node in ast.walk(tree):
        if node in allowed:
            continue
        if isinstance(node, ast.Attribute):
            if node.attr in INTROSPECTION:
                found.append(f"{node.lineno}: .{node.attr}")
            elif node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in dependency_names:
                    found.append(f"{node.lineno}: {base.id}....{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                name = node.args[1].value
                if name in INTROSPECTION or name == "transport":
                    found.append(f"{node.lineno}: {node.func.id}(..., {name!r})")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_dependency_internals(path):
    assert reaches(path) == []


def test_the_one_reach_is_where_it_is_documented(tmp_path):
    """The scan is not blind: it sees the reach in connection_of once that function is not the exempt one."""
    source = (PACKAGE / "transport.py").read_text(encoding="utf-8")
    probe = tmp_path / "transport.py"
    probe.write_text(source.replace("def connection_of(", "def some_other_function("), encoding="utf-8")
    found = reaches(probe)
    assert any("'__self__'" in line for line in found) and any("'transport'" in line for line in found)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("from uvicorn.protocols.http.httptools_impl import RequestResponseCycle\n", "from uvicorn.protocols"),
        ("import uvicorn.protocols.http.h11_impl\n", "import uvicorn.protocols"),
        ("from starlette._utils import is_async_callable\n", "from starlette._utils"),
        ("from starlette.routing import _something\n", "import _something"),
        ("import uvicorn\nx = uvicorn.Server._private\n", "uvicorn...._private"),
        ("def f(g):\n    return g.__code__.co_names\n", ".__code__"),
        ("def f(send):\n    return send.__self__\n", ".__self__"),
    ],
)
def test_the_scan_finds_each_kind_of_reach(tmp_path, source, what):
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = reaches(probe)
    assert found and any(what in line for line in found), found
