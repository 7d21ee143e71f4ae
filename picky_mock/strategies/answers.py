"""The answers of the push API: success answers for a push, and the error answers of every code."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from ..errors import STATUS_MESSAGES
from ..pricing import format_credit
from .numbers import phone_numbers
from .options import check_range, check_strategy, composite
from .samples import Json

__all__ = ["error_responses", "push_responses"]

_COMMON_CREDITS = ("0.005", "0", "0.01", "0.02", "0.03", "0.015", "1")
_CREDITS = st.one_of(
    st.sampled_from(_COMMON_CREDITS),
    st.integers(0, 10**6).map(lambda n: format_credit(Decimal(n).scaleb(-4))),
)


def _echo(recipient: Any) -> str:
    if not isinstance(recipient, Mapping):
        raise InvalidArgument(f"request: a recipient {recipient!r} is not an object")
    value = recipient.get("number", recipient.get("messenger_id"))
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidArgument(f"request: recipient {dict(recipient)!r} has no number or messenger_id")
    return str(value)


@composite
def _push_response(draw: st.DrawFn, numbers: SearchStrategy[list[str]], credits: SearchStrategy[str]) -> Json:
    recipients = draw(numbers)
    push_id = draw(st.integers(1, 10**10))
    msg_id = draw(st.integers(1, 10**10))
    data = []
    for number in recipients:
        data.append({"msg_id": str(msg_id), "number": number, "credit": draw(credits)})
        msg_id += 1 + draw(st.integers(0, 3))
    return {"status": 100, "push_id": str(push_id), "message": "Success", "data": data}


def push_responses(
    *,
    request: Mapping[str, Any] | None = None,
    min_size: int = 1,
    max_size: int = 10,
    credits: SearchStrategy[str] | None = None,
) -> SearchStrategy[Json]:
    """Success answers (status 100) as the real API sends them (docs/contract.md §3), for client tests.

    ``{"status": 100, "push_id": "…", "message": "Success", "data": [{"msg_id", "number",
    "credit"}]}``: ``status`` the JSON number 100, every other value a string. ``push_id`` and
    ``msg_id`` are decimal strings; ``msg_id`` s increase through ``data[]`` but, unlike the mock's,
    may skip values (the real API gives no promise of contiguity, so a client must not rely on it).
    ``credit`` is a decimal string (``"0.005"``, ``"0"``, ``"0.0125"``...), or drawn from ``credits``.

    With ``request`` (a push body) the answer has one entry per recipient of it, in order, with the
    recipient echoed as digits (``messenger_id`` for Messenger), as the mock answers; otherwise
    ``min_size`` to ``max_size`` entries for drawn numbers.

    Shrinks toward one entry with the smallest ids and a credit of ``"0.005"``.
    """
    if request is not None:
        if not isinstance(request, Mapping) or not isinstance(request.get("data"), list) or not request["data"]:
            raise InvalidArgument("request must be a push body with a non-empty data[] list")
        numbers: SearchStrategy[list[str]] = st.just([_echo(item) for item in request["data"]])
    else:
        lo, hi = check_range("min_size", min_size, "max_size", max_size, low=0)
        numbers = st.lists(phone_numbers(json_integers=False), min_size=lo, max_size=hi)
    credits = _CREDITS if credits is None else check_strategy("credits", credits, "decimal strings")
    return _push_response(numbers, credits)


def error_responses(*, statuses: Collection[int] | None = None) -> SearchStrategy[Json]:
    """Error answers as the real API sends them: ``{"status": <code>, "message": "<text>"}``.

    Every code of docs/contract.md §4 but 100 (``errors.STATUS_MESSAGES``), each with its
    message; ``statuses`` restricts the codes. The real API sends them with HTTP 200, so a client
    that only calls ``raise_for_status()`` never sees them: feed these to a client with no server
    at all (``httpx.MockTransport``, ``responses``) to test its error handling.

    Shrinks toward 101 (Service Unavailable).
    """
    codes = sorted(c for c in STATUS_MESSAGES if c != 100)
    if statuses is not None:
        if isinstance(statuses, str) or not isinstance(statuses, Collection) or not statuses:
            raise InvalidArgument(f"statuses={statuses!r} must be a non-empty collection of status codes")
        if 100 in statuses:
            raise InvalidArgument("100 is the success code: use push_responses()")
        unknown = sorted(set(statuses) - set(codes))
        if unknown:
            raise InvalidArgument(f"unknown status code(s) {unknown}; the API's are {codes}")
        codes = [c for c in codes if c in statuses]
    return st.sampled_from(codes).map(lambda code: {"status": code, "message": STATUS_MESSAGES[code]})


