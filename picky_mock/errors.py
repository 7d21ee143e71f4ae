"""Typed errors, one root class.

Two families: :class:`ApiError` is an answer of the Picky Assist API (a status code and its message,
sent back as HTTP 200 like the real API does); :class:`ConfigError` and :class:`ServerError` are
problems of picky-mock itself, raised to the developer who runs it.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "STATUS_MESSAGES",
    "ApiError",
    "AuthenticationFailed",
    "ConfigError",
    "EmptyNumberList",
    "InsufficientBalance",
    "InvalidMobileNumber",
    "InvalidRequest",
    "InvalidTemplateId",
    "MessageCannotBeEmpty",
    "NotContactable",
    "OfficialAccountNotActive",
    "PickyMockError",
    "PlanWithoutApi",
    "ProjectNotActive",
    "ServerError",
    "error_for_status",
]

#: Status codes of docs/contract.md §4 and the message the API sends with each.
STATUS_MESSAGES: dict[int, str] = {
    100: "Success",
    101: "Service Unavailable",
    401: "Authentication Failed",
    402: "Empty Number List",
    403: "Insufficient Balance",
    404: "Unable to Communicate with Your Phone",
    405: "API Is Not Active For This Plan",
    406: "Invalid Mobile Number",
    407: "Message cannot be empty",
    408: "Project is not Active",
    409: "Invalid User",
    410: "Invalid Request",
    801: "Official WhatsApp Account Not Active",
    802: "Not Contactable 24 Hours Session Expired",
    804: "Invalid Template ID",
}


class PickyMockError(Exception):
    """Root of every error picky-mock raises."""


class ConfigError(PickyMockError):
    """A configuration file, option or environment variable that cannot be used."""


class ServerError(PickyMockError):
    """An unexpected exception inside the mock server, re-raised in the test that caused it."""


class ApiError(PickyMockError):
    """An error answer of the push API: a status code, its message, and what the developer must fix.

    ``detail`` and ``path`` never reach the JSON body (the real API has no such fields); they go to
    the log, the journal and the ``X-Picky-Error`` response header.
    """

    status: ClassVar[int] = 410

    def __init__(self, detail: str = "", *, path: str = "$", message: str | None = None) -> None:
        self.detail = detail
        self.path = path
        self.message = message if message is not None else STATUS_MESSAGES.get(self.status, "Error")
        super().__init__(f"{self.status} {self.message}: {path}: {detail}" if detail else self.message)

    def body(self) -> dict[str, object]:
        """The JSON body the real API sends for this error."""
        return {"status": self.status, "message": self.message}


class InvalidRequest(ApiError):
    status = 410


class AuthenticationFailed(ApiError):
    status = 401


class EmptyNumberList(ApiError):
    status = 402


class InsufficientBalance(ApiError):
    status = 403


class PlanWithoutApi(ApiError):
    status = 405


class InvalidMobileNumber(ApiError):
    status = 406


class MessageCannotBeEmpty(ApiError):
    status = 407


class ProjectNotActive(ApiError):
    status = 408


class OfficialAccountNotActive(ApiError):
    status = 801


class NotContactable(ApiError):
    status = 802


class InvalidTemplateId(ApiError):
    status = 804


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        AuthenticationFailed,
        EmptyNumberList,
        InsufficientBalance,
        PlanWithoutApi,
        InvalidMobileNumber,
        MessageCannotBeEmpty,
        ProjectNotActive,
        OfficialAccountNotActive,
        NotContactable,
        InvalidTemplateId,
    )
}


def error_for_status(status: int, detail: str = "", *, path: str = "$", message: str | None = None) -> ApiError:
    """An :class:`ApiError` for any status code, documented or custom."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = type(f"ApiError{status}", (ApiError,), {"status": status})
    return cls(detail, path=path, message=message)
