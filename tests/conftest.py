"""Fixtures shared by the test modules; the helpers they use are in ``pushing.py``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pushing import TIMEOUT


@pytest.fixture
def client(picky_server: Any) -> Any:
    """An httpx client on the session's picky-mock server, redirects never followed; it sends the
    admin headers (the ``X-Picky-Admin`` marker an admin POST needs)."""
    headers = picky_server.admin_headers
    with httpx.Client(base_url=picky_server.url, timeout=TIMEOUT, follow_redirects=False, headers=headers) as session:
        yield session


