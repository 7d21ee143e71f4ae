"""``picky-mock validate`` over several files: each file's lines, then one summary line, always."""

from __future__ import annotations

import json
from pathlib import Path

from pushing import push_body
from test_cli import run


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_several_files_each_judged_then_one_summary(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.json", json.dumps(push_body()).encode())
    bad = _write(tmp_path, "bad.json", json.dumps(push_body("+1")).encode())
    broken = _write(tmp_path, "broken.json", b"{not json")
    done = run("validate", good, bad, broken)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 1, lines
    assert f"{good}: valid" in lines
    assert any(line.startswith(f"{bad}: $.data[0].number: ") for line in lines)
    assert f"{bad}: 1 violation(s); the API answers status 406" in lines
    assert any(line.startswith(f"{broken}: $: the body is not valid JSON") for line in lines)
    assert f"{broken}: 1 violation(s); the API answers status 410" in lines
    assert lines[-1] == "3 files: 1 valid, 2 invalid"


def test_every_file_valid_exits_0(tmp_path: Path) -> None:
    files = [_write(tmp_path, f"{i}.json", json.dumps(push_body()).encode()) for i in range(3)]
    done = run("validate", *files)
    assert done.returncode == 0 and done.stdout.decode().splitlines()[-1] == "3 files: 3 valid, 0 invalid"


def test_an_unreadable_file_is_reported_and_the_others_judged(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.json", json.dumps(push_body()).encode())
    missing = str(tmp_path / "missing.json")
    done = run("validate", missing, good)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == f"picky-mock: error: cannot read {missing}: No such file or directory"
    assert done.stdout.decode().splitlines() == [f"{good}: valid", "2 files: 1 valid, 0 invalid, 1 unreadable"]


def test_one_file_that_is_not_json_ends_with_the_summary_too(tmp_path: Path) -> None:
    done = run("validate", _write(tmp_path, "x.json", b"nope"))
    assert done.returncode == 1
    assert done.stdout.decode().splitlines()[-1] == "1 violation(s); the API answers status 410"


def test_several_files_as_json(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.json", json.dumps(push_body()).encode())
    bad = _write(tmp_path, "bad.json", json.dumps(push_body("+1")).encode())
    done = run("validate", "--json", good, bad)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["valid"] is False
    assert [(f["file"], f["valid"]) for f in report["files"]] == [(good, True), (bad, False)]
    assert report["files"][1]["violations"][0]["status"] == 406
