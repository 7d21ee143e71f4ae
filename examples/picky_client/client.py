"""``send_bulk``: send one text to many numbers through the Picky Assist push API.

What a production client has to get right, and what its tests (``examples/test_example_*.py``) check
against picky-mock:

* **Business errors come back as HTTP 200** with ``{"status": <code>, "message": ...}``: checking
  the HTTP status is not enough. Each code becomes a typed exception.
* **Retry only what is safe to retry.** A connection that never opened, HTTP 429/502/503/504 and
  the API's 101 (Service Unavailable) mean the push was not taken: retried with backoff. An answer
  lost after the request was sent (read timeout, connection dropped) may hide an accepted push:
  retrying would send every message twice, so it is reported as :class:`AmbiguousSendError`.
* **Numbers** go out as the API wants them: digits with the country code, no ``+``, ``00``,
  spaces or dashes. A national number with a leading 0 cannot be repaired without knowing the
  country, so it is sent as it is and the API answers 406.
* **Big lists** go in batches, one push each.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

__all__ = [
    "AmbiguousSendError",
    "AuthError",
    "BalanceError",
    "BulkResult",
    "InvalidNumberError",
    "PickyError",
    "ProtocolError",
    "RejectedError",
    "SentMessage",
    "UnavailableError",
    "normalise_number",
    "send_bulk",
]

PUSH_PATH = "/api/v2/push"
DEFAULT_BASE_URL = "https://app.pickyassist.com"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
RETRY_HTTP = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


# -- results and errors ------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    msg_id: str
    number: str
    credit: Decimal


@dataclass
class BulkResult:
    push_ids: list[str] = field(default_factory=list)
    messages: list[SentMessage] = field(default_factory=list)

    @property
    def total_credit(self) -> Decimal:
        return sum((m.credit for m in self.messages), Decimal(0))


class PickyError(Exception):
    """An answer of the API other than success. ``partial``: the batches sent before it."""

    def __init__(self, status: int, message: str, partial: BulkResult | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message, self.partial = status, message, partial


class AuthError(PickyError):
    """401, 405, 408, 409: the token, the plan or the project; fix the configuration."""


class BalanceError(PickyError):
    """403: top up the account."""


class InvalidNumberError(PickyError):
    """406: a number the API cannot use."""


class RejectedError(PickyError):
    """402, 407, 410, 801, 802, 804 (and unknown codes): the push, as built, cannot succeed."""


class UnavailableError(PickyError):
    """101, 404, or HTTP 429/5xx still failing after every retry."""


class ProtocolError(PickyError):
    """An answer that is not the API's JSON (a proxy's error page, a truncated body...). Not
    retried: on HTTP 200 the push may have been accepted."""


class AmbiguousSendError(Exception):
    """The request went out but its answer was lost: the push may have been accepted. Not retried
    (that would double-send); reconcile with the delivery reports before sending again."""

    def __init__(self, cause: BaseException, partial: BulkResult) -> None:
        super().__init__(f"answer lost after sending ({cause!r}); the push may have been accepted")
        self.partial = partial


_ERRORS: dict[int, type[PickyError]] = {
    101: UnavailableError, 404: UnavailableError,
    401: AuthError, 405: AuthError, 408: AuthError, 409: AuthError,
    403: BalanceError,
    406: InvalidNumberError,
}
_RETRY_STATUSES = frozenset({101, 404})


def normalise_number(raw: str | int) -> str:
    """``"+55 (11) 98765-4321"`` and ``"0055 11 98765 4321"`` -> ``"5511987654321"``."""
    text = str(raw).strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    return digits


# -- the client --------------------------------------------------------------------------------


class _Retry(Exception):
    def __init__(self, error: PickyError, wait: float | None = None) -> None:
        self.error, self.wait = error, wait


def _parse(response: httpx.Response, partial: BulkResult) -> dict[str, Any]:
    """The answer's JSON, whatever the content type says (the API labels JSON ``text/html`` at times)."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        raise ProtocolError(response.status_code, f"answer is not JSON: {response.text[:80]!r}", partial) from None
    if not isinstance(answer, dict) or type(answer.get("status")) is not int:
        raise ProtocolError(
            response.status_code, f"answer without a numeric status: {str(answer)[:80]!r}", partial
        )
    return answer


def _push_once(client: httpx.Client, url: str, body: dict[str, Any], partial: BulkResult) -> dict[str, Any]:
    try:
        response = client.post(url, json=body)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the API: safe to retry
        raise _Retry(UnavailableError(0, f"cannot connect: {exc}")) from exc
    except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise AmbiguousSendError(exc, partial) from exc
    if response.status_code in RETRY_HTTP:
        wait = response.headers.get("retry-after")
        seconds = float(wait) if wait and wait.isdigit() else None
        raise _Retry(UnavailableError(response.status_code, f"HTTP {response.status_code}"), seconds)
    if response.status_code >= 500:
        raise AmbiguousSendError(httpx.HTTPStatusError("server error", request=response.request, response=response),
                                 partial)
    answer = _parse(response, partial)
    status = answer["status"]
    if status == 100:
        return answer
    error = _ERRORS.get(status, RejectedError)(status, str(answer.get("message", "")), partial)
    if status in _RETRY_STATUSES:
        raise _Retry(error)
    raise error


def _sent(answer: dict[str, Any], partial: BulkResult) -> tuple[str, list[SentMessage]]:
    """The ``push_id`` and the messages of a success answer."""
    try:
        push_id = str(answer["push_id"])
        messages = [
            SentMessage(str(item["msg_id"]), str(item["number"]), Decimal(str(item["credit"])))
            for item in answer.get("data") or []
        ]
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise ProtocolError(100, f"unexpected success answer: {exc!r}", partial) from None
    return push_id, messages


def send_bulk(
    numbers: Iterable[str | int],
    text: str,
    *,
    token: str,
    application: int = 1,
    base_url: str = DEFAULT_BASE_URL,
    client: httpx.Client | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retries: int = 3,
    backoff: float = 0.5,
    batch_size: int = 500,
    priority: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkResult:
    """Send ``text`` to every number (one push per ``batch_size`` numbers); raise a
    :class:`PickyError` subclass for an error answer, :class:`AmbiguousSendError` for a lost one."""
    recipients = [normalise_number(n) for n in numbers]
    if not recipients:
        raise ValueError("no numbers to send to")
    if not text:
        raise ValueError("an empty text would be answered 407 Message cannot be empty")
    url = base_url.rstrip("/") + PUSH_PATH
    own_client = client is None
    http = client if client is not None else httpx.Client(timeout=timeout)
    result = BulkResult()
    try:
        for start in range(0, len(recipients), batch_size):
            batch: Sequence[str] = recipients[start : start + batch_size]
            body = {
                "token": token,
                "application": application,
                "priority": priority,
                "globalmessage": text,
                "data": [{"number": number} for number in batch],
            }
            answer = _with_retries(http, url, body, result, retries, backoff, sleep)
            push_id, messages = _sent(answer, result)
            result.push_ids.append(push_id)
            result.messages.extend(messages)
        return result
    finally:
        if own_client:
            http.close()


def _with_retries(
    http: httpx.Client,
    url: str,
    body: dict[str, Any],
    partial: BulkResult,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    for attempt in range(retries + 1):
        try:
            return _push_once(http, url, body, partial)
        except _Retry as retry:
            if attempt == retries:
                retry.error.partial = partial
                raise retry.error from None
            wait = retry.wait if retry.wait is not None else backoff * 2**attempt
            sleep(min(wait, MAX_RETRY_AFTER))
    raise AssertionError("unreachable")  # pragma: no cover
