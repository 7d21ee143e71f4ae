"""picky-mock: a mock server and contract-testing toolkit for the Picky Assist push API.

Importing this package is cheap: it imports neither the server (uvicorn) nor Hypothesis.
"""

from __future__ import annotations

from .backend import Backend
from .config import Settings, load_settings
from .contract import Contract, Violation, validate_request, validate_response
from .errors import ApiError, ConfigError, PickyMockError, ServerError
from .journal import Entry, Journal, Message, Push
from .pricing import PriceTable, segment

__all__ = [
    "ApiError",
    "Backend",
    "ConfigError",
    "Contract",
    "Entry",
    "Journal",
    "Message",
    "PickyMockError",
    "PriceTable",
    "Push",
    "ServerError",
    "Settings",
    "Violation",
    "__version__",
    "load_settings",
    "segment",
    "validate_request",
    "validate_response",
]

__version__ = "0.1.0"
