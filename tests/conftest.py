"""Fixtures shared by the test modules; the helpers they use are in ``pushing.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pushing import TIMEOUT
from receiving import Receiver


@pytest.fixture
def client(picky_server: Any) -> Any:
    """An httpx client on the session's picky-mock server, redirects never followed; its admin
    calls (``/_picky/...``) carry the admin headers (the ``X-Picky-Admin`` marker an admin POST
    needs), its API calls only what the test sends."""
    admin = picky_server.admin_headers

    def admin_headers(request: httpx.Request) -> None:
        if request.url.path.startswith("/_picky"):
            request.headers.update({k: v for k, v in admin.items() if k not in request.headers})

    with httpx.Client(
        base_url=picky_server.url, timeout=TIMEOUT, follow_redirects=False, event_hooks={"request": [admin_headers]}
    ) as session:
        yield session




@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on a loopback socket (``receiving.Receiver``), answering 200."""
    server = Receiver()
    yield server
    server.close()
