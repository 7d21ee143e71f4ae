"""The docs cannot drift: every code block of README.md and docs/*.md that can run here is run.

A block is a fenced block with a language tag; how it is checked depends on the tag:

- ``console``: each ``$ `` line (continued by a trailing ``\\``) is a command, run by bash in a
  scratch directory, with ``picky-mock`` on ``PATH``, against a fresh server whose port replaces
  ``8080``; the lines after it are its standard output, compared exactly, a line ``...`` standing
  for any number of lines.
- ``sh``: a bash script, run with ``set -e`` in its own process group (killed afterwards), ``8080``
  replaced by a free port; it starts what it needs. ``npm`` is a stand-in that pushes one message
  to ``$PICKY_URL`` and fails unless it is accepted, so a CI recipe is checked end to end.
- ``python``: a module with ``test_`` functions is run by pytest (the page's modules in one run,
  with picky-mock's plugin; a block after ``<!-- doc-test: conftest -->`` is that run's
  ``conftest.py``); any other block is a script, run against a fresh server (``8080`` replaced),
  and must exit 0.
- ``toml``: a config file, loaded by the real loader and served by a real server.
- ``json``: must parse; after ``<!-- doc-test: request -->`` it must be a valid push body, after
  ``<!-- doc-test: response -->`` a valid answer, after ``<!-- doc-test: fault -->`` a fault rule
  the server takes.
- ``text``: output or layout, never run.

``<!-- doc-test: skip: why -->`` on the line before a fence leaves that block out (a reason is
required). Any other tag fails the test, so that no block is left unchecked by accident.

Also checked: every relative link of those pages (and of bench/README.md, CHANGELOG.md,
examples/README.md) leads to a file of the repository, and every ``#anchor`` into a page to one of
its headings or ``<a id>``; no page tells the project's history or points outside the repository;
and nothing in the package, schemas, tests or examples cites the contract but as docs/contract.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from picky_mock import ServerThread, Settings
from picky_mock.config import load_settings
from picky_mock.contract import validate_request, validate_response
from picky_mock.faults import FaultRule

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OTHER_PAGES = [ROOT / "bench" / "README.md", ROOT / "CHANGELOG.md", ROOT / "examples" / "README.md"]
RUNNABLE = {"console", "sh", "python", "toml", "json", "text"}
TIMEOUT = 60


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    marker: str  # the doc-test comment before the fence, "" when none
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^```([\w-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{page.name}:{start + 1}: unclosed code block"
        marker_match = _MARKER.match(lines[start - 1]) if start else None
        marker = marker_match.group(1) if marker_match else ""
        found.append(Block(page, start + 1, match.group(1), marker, "\n".join(lines[start + 1 : end]) + "\n"))
        index = end + 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def _of(lang: str, *, pytest_modules: bool | None = None) -> list[Block]:
    chosen = [b for b in ALL_BLOCKS if b.lang == lang and not b.marker.startswith("skip")]
    if pytest_modules is not None:
        chosen = [b for b in chosen if _is_test_module(b) == pytest_modules]
    return chosen


def _is_test_module(block: Block) -> bool:
    return block.marker == "conftest" or re.search(r"(?m)^def test_", block.code) is not None


def _ids(blocks: list[Block]) -> list[str]:
    return [b.where for b in blocks]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """``picky-mock`` as this interpreter runs it, and the ``npm`` stand-in of the CI recipe."""
    where = tmp_path / "bin"
    where.mkdir()
    scripts = {
        "picky-mock": f'#!/bin/sh\nexec "{sys.executable}" -m picky_mock "$@"\n',
        "npm": textwrap.dedent(
            """\
            #!/bin/sh
            # Stands for a project's test command: one push to $PICKY_URL (the push URL, as
            # examples/ci/with-picky-mock.sh sets it), which must be accepted.
            set -e
            answer=$(curl -sf -X POST "$PICKY_URL" \\
                -d '{"token": "t", "application": 1, "globalmessage": "Hi", "data": [{"number": "5511987654321"}]}')
            echo "npm stand-in: $answer"
            case "$answer" in *'"status":100'*) exit 0 ;; *) exit 1 ;; esac
            """
        ),
    }
    for name, text in scripts.items():
        path = where / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return where


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKY_MOCK_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _needs_tools(block: Block) -> None:
    """Skip a shell block whose commands are not on this machine (the docs show curl and jq)."""
    for tool in ("bash", "curl", "jq"):
        if (tool == "bash" or re.search(rf"\b{tool}\b", block.code)) and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _server() -> ServerThread:
    return ServerThread(Settings(log_level="warning"))


# -- the blocks ----------------------------------------------------------------------------


def test_every_block_is_checked_or_says_why_not():
    assert ALL_BLOCKS, "no code block found"
    for block in ALL_BLOCKS:
        if block.marker.startswith("skip"):
            assert re.match(r"skip:\s*\S", block.marker), f"{block.where}: say why the block is skipped"
        elif block.marker:
            known = {"json": ("request", "response", "fault"), "python": ("conftest",)}
            assert block.marker in known.get(block.lang, ()), f"{block.where}: unknown marker {block.marker!r}"

        assert block.lang in RUNNABLE or block.marker.startswith("skip"), (
            f"{block.where}: a ```{block.lang or '(no tag)'} block: give it one of {sorted(RUNNABLE)}, "
            "or mark it <!-- doc-test: skip: why -->"
        )


def _console_steps(code: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    lines = code.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        assert line.startswith("$ "), f"output before any command: {line!r}"
        command = line[2:]
        while command.endswith("\\"):  # a continued command: bash reads backslash-newline as nothing
            index += 1
            command = command[:-1].rstrip() + " " + lines[index].strip()
        index += 1
        output: list[str] = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        steps.append((command, output))
    return steps


def _matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and _matches(expected[1:], actual[1:])


@pytest.mark.parametrize("block", _of("console"), ids=_ids(_of("console")))
def test_console_block(block: Block, bin_dir: Path, tmp_path: Path):
    _needs_tools(block)
    with _server() as server:
        port = server.url.rsplit(":", 1)[1]
        for command, expected in _console_steps(block.code):
            run = subprocess.run(
                ["bash", "-c", command.replace("8080", port)],
                cwd=tmp_path,
                env=_env(bin_dir),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            actual = [line.rstrip("\r") for line in run.stdout.splitlines()]
            expected = [line.replace("8080", port) for line in expected]
            shown = "\n".join(expected)
            assert _matches(expected, actual), (
                f"{block.where}: `{command}` printed:\n{run.stdout}{run.stderr}\nthe page shows:\n{shown}"
            )


@pytest.mark.parametrize("block", _of("sh"), ids=_ids(_of("sh")))
def test_sh_block(block: Block, bin_dir: Path, tmp_path: Path):
    _needs_tools(block)
    script = "set -e\n" + block.code.replace("8080", str(free_port()))
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_env(bin_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait(timeout=TIMEOUT)
    assert process.returncode == 0, f"{block.where}: exit {process.returncode}:\n{output}"


@pytest.mark.parametrize("block", _of("python", pytest_modules=False), ids=_ids(_of("python", pytest_modules=False)))
def test_python_script_block(block: Block, tmp_path: Path):
    with _server() as server:
        port = server.url.rsplit(":", 1)[1]
        script = tmp_path / "example.py"
        script.write_text(block.code.replace("8080", port))
        run = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
        )
    assert run.returncode == 0, f"{block.where}:\n{run.stdout}{run.stderr}"


_TEST_PAGES = sorted({b.page for b in _of("python", pytest_modules=True)})


@pytest.mark.parametrize("page", _TEST_PAGES, ids=[p.name for p in _TEST_PAGES])
def test_python_test_blocks(page: Path, tmp_path: Path):
    """A page's test modules in one pytest run, as a user's project would run them."""
    modules = [b for b in _of("python", pytest_modules=True) if b.page == page]
    for block in modules:
        name = "conftest.py" if block.marker == "conftest" else f"test_doc_{block.line}.py"
        (tmp_path / name).write_text(block.code)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "0", "."],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PICKY_MOCK_", "PYTEST_"))},
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    where = ", ".join(b.where for b in modules)
    assert run.returncode == 0, f"{where}:\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
    assert re.search(r"\b\d+ passed\b", run.stdout) and " failed" not in run.stdout, run.stdout


@pytest.mark.parametrize("block", _of("toml"), ids=_ids(_of("toml")))
def test_config_block(block: Block, tmp_path: Path):
    path = tmp_path / "picky.toml"
    path.write_text(block.code)
    settings = load_settings(path, environ={})
    with ServerThread(settings) as server:
        health = httpx.get(f"{server.url}/_picky/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["mode"] == settings.mode
        # The sections the backend reads are in force: each account answers check-balance with its
        # balance, and the fault rules are loaded.
        for token, account in (settings.extra.get("accounts") or {}).items():
            answer = httpx.post(f"{server.url}/api/v2/check-balance", json={"token": token}, timeout=10).json()
            if account.get("api", True) and account.get("active", True):
                assert answer["status"] == 100, (block.where, token, answer)
                if "balance" in account:
                    assert answer["balance"] == float(account["balance"]), (block.where, token, answer)
        admin = server.admin_headers  # the token, when the sample sets one
        rules = httpx.get(f"{server.url}/_picky/faults", headers=admin, timeout=10).json()["rules"]
        assert len(rules) == len(settings.extra.get("faults") or []), block.where
        if "seed" in settings.extra:
            seed = httpx.get(f"{server.url}/_picky/faults", headers=admin, timeout=10).json()["seed"]
            assert seed == settings.extra["seed"], block.where
        if settings.admin_token:
            assert httpx.get(f"{server.url}/_picky/faults", timeout=10).status_code == 401, block.where


@pytest.mark.parametrize("block", _of("json"), ids=_ids(_of("json")))
def test_json_block(block: Block):
    document = json.loads(block.code)
    if block.marker == "request":
        assert validate_request(document) == [], block.where
    elif block.marker == "response":
        assert validate_response(document) == [], block.where
    elif block.marker == "fault":
        FaultRule.from_dict(document)  # raises ConfigError, with what is wrong, for a rule it refuses


# -- links and wording ---------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_ANCHOR_ID = re.compile(r'<a id="([^"]+)"></a>')


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    found = set(_ANCHOR_ID.findall(text))
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(_slug(line.lstrip("#")))
    return found


@pytest.mark.parametrize("page", PAGES + OTHER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    text = re.sub(r"(?ms)^```.*?^```", "", page.read_text(encoding="utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        assert dest.exists(), f"{page.relative_to(ROOT)}: link to {target}: no such file"
        assert dest == ROOT or ROOT in dest.parents, f"{page.relative_to(ROOT)}: {target} leaves the repository"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.relative_to(ROOT)}: link to {target}: no such anchor"


_HISTORY = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|this|that|previous|earlier|last|next)"
    r"\s+session\b|\bsession (found|history)\b|\.\./shared|(?-i:CONTRACT\.md)",
    re.IGNORECASE,
)


@pytest.mark.parametrize("page", PAGES + OTHER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_tells_history_or_points_outside(page: Path):
    text = page.read_text(encoding="utf-8")
    found = [m.group(0) for m in _HISTORY.finditer(text)]
    assert not found, f"{page.relative_to(ROOT)}: {found}"


def test_the_contract_is_cited_by_its_in_repo_name():
    """``docs/contract.md §N`` everywhere: not a file outside the repository, not ``CONTRACT``."""
    stale = re.compile(r"CONTRACT(\.md)?\s*(§|section|\d)|\.\./shared/CONTRACT|CONTRACT\.md")
    sections = {a.removeprefix("s") for a in _ANCHOR_ID.findall((ROOT / "docs" / "contract.md").read_text())}
    cited = re.compile(r"docs/contract\.md (?:§|section )(\d+(?:\.\d+)?)")
    files = [
        *ROOT.glob("picky_mock/**/*.py"),
        *ROOT.glob("schemas/*.json"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("examples/**/*.py"),
    ]
    problems = []
    for path in files:
        if path.name == "test_docs.py":
            continue
        text = path.read_text(encoding="utf-8")
        problems += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for m in stale.finditer(text)]
        problems += [
            f"{path.relative_to(ROOT)}: docs/contract.md §{m.group(1)} has no such section"
            for m in cited.finditer(text)
            if m.group(1) not in sections
        ]
    assert not problems, "\n".join(problems)


def test_validate_help_cites_the_contract_in_the_repository():
    run = subprocess.run(
        [sys.executable, "-m", "picky_mock", "validate", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert run.returncode == 0 and "docs/contract.md §2.3" in run.stdout, run.stdout
