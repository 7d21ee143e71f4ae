"""A small, realistic Picky Assist client: the worked example of picky-mock (see ../README.md)."""

from .client import (
    AmbiguousSendError,
    AuthError,
    BalanceError,
    BulkResult,
    InvalidNumberError,
    PickyError,
    ProtocolError,
    RejectedError,
    SentMessage,
    UnavailableError,
    normalise_number,
    send_bulk,
)
from .webhooks import DeliveryUpdate, IncomingMessage, parse_delivery_report, parse_inbound, reply

__all__ = [
    "AmbiguousSendError",
    "AuthError",
    "BalanceError",
    "BulkResult",
    "DeliveryUpdate",
    "IncomingMessage",
    "InvalidNumberError",
    "PickyError",
    "ProtocolError",
    "RejectedError",
    "SentMessage",
    "UnavailableError",
    "normalise_number",
    "parse_delivery_report",
    "parse_inbound",
    "reply",
    "send_bulk",
]
