"""Fixtures shared by the test modules; the helpers they use are in ``pushing.py``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pushing import TIMEOUT


@pytest.fixture
def client(picky_server: Any) -> Any:
    """An httpx client on the session's picky-mock server, redirects never followed."""
    with httpx.Client(base_url=picky_server.url, timeout=TIMEOUT, follow_redirects=False) as session:
        yield session


