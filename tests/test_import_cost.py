"""``import picky_mock`` stays cheap: the server (uvicorn, Starlette), the strategies (hypothesis),
the webhook sender (aiohttp), the fault patterns (RE2) and HTTP clients are imported on first use,
and each one still loads when its feature is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: What a bare ``import picky_mock`` must not import.
DEFERRED = ("uvicorn", "starlette", "hypothesis", "aiohttp", "re2", "httpx", "requests")


def _imported_after(code: str) -> set[str]:
    """The modules of :data:`DEFERRED` imported once ``code`` has run, in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {DEFERRED!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_importing_picky_mock_imports_no_server_strategy_webhook_pattern_or_client_library():
    assert _imported_after("import picky_mock") == set()


@pytest.mark.parametrize(
    ("use", "loads"),
    [
        ("picky_mock.ServerThread", "uvicorn"),
        ("picky_mock.FaultRule.from_dict({'action': 'api_error', 'status': 403, 'number_pattern': '^55'})", "re2"),
        ("import picky_mock.strategies", "hypothesis"),
    ],
    ids=["server", "fault-pattern", "strategies"],
)
def test_a_deferred_library_loads_when_its_feature_is_used(use, loads):
    assert loads in _imported_after(f"import picky_mock\n{use}")
