"""picky-mock: a mock server and contract-testing toolkit for the Picky Assist push API.

Importing this package is cheap: it imports neither the server (uvicorn) nor Hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounts import Account, AccountBook
from .backend import Backend
from .config import Settings, load_settings
from .contract import Contract, Violation, validate_request, validate_response
from .errors import ApiError, ConfigError, PickyMockError, ServerError
from .faults import Action, FaultBook, FaultRule, When
from .journal import Entry, Journal, Message, Push
from .pricing import PriceTable, segment

if TYPE_CHECKING:
    from .server import ServerThread, serve

__all__ = [
    "Account",
    "AccountBook",
    "Action",
    "ApiError",
    "Backend",
    "ConfigError",
    "Contract",
    "Entry",
    "FaultBook",
    "FaultRule",
    "Journal",
    "Message",
    "PickyMockError",
    "PriceTable",
    "Push",
    "ServerError",
    "ServerThread",
    "Settings",
    "Violation",
    "When",
    "__version__",
    "load_settings",
    "segment",
    "serve",
    "validate_request",
    "validate_response",
]

#: The one place the version is written: the build (pyproject.toml) and ``picky-mock --version`` read it.
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The server (and uvicorn) is imported on first use, so that importing picky_mock stays cheap.
    if name in ("ServerThread", "serve"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module 'picky_mock' has no attribute {name!r}")
