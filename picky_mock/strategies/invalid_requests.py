"""Push bodies that break the contract in one known way, each with the status code the API answers."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from ..errors import STATUS_MESSAGES
from .numbers import phone_numbers
from .options import check_bool, composite, pick
from .requests import push_requests
from .samples import Json

__all__ = ["BODY_STATUSES", "INVALID_REQUEST_RULES", "InvalidPushRequest", "invalid_push_requests"]

#: The codes the emulator answers from the body alone, the ones :func:`invalid_push_requests` draws.
BODY_STATUSES: tuple[int, ...] = (401, 402, 406, 407, 410)


class InvalidPushRequest(NamedTuple):
    """A body that breaks the contract in one known way, and what the API answers it."""

    body: Any
    """The JSON value to send (usually an object; not one for some 410 cases)."""
    status: int
    """The status code the mock (and the real API) answers: one of :data:`BODY_STATUSES`."""
    rule: str
    """The rule broken, in words (``"token blank"``, ``"number too long"``...)."""


_GLOBAL_CONTENT = (
    "globalmessage",
    "globalmedia",
    "globalmedia_code",
    "template_id",
    "template_globalmessage",
    "location",
    "contact",
    "action",
)
_ITEM_CONTENT = ("message", "media", "media_code", "template_message")
_FALLBACK_TEXT = "Your order has shipped"


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _has_global_content(body: Mapping[str, Any]) -> bool:
    return (
        any(_nonempty(body.get(k)) for k in ("globalmessage", "globalmedia", "globalmedia_code"))
        or any(k in body for k in ("template_id", "template_globalmessage", "location", "contact"))
        or ("action" in body and body["action"] in (1, "1"))
    )


def _item_has_content(item: Mapping[str, Any]) -> bool:
    return any(_nonempty(item.get(k)) for k in ("message", "media", "media_code")) or "template_message" in item


def _items(body: Json) -> list[Json]:
    return [item for item in body["data"] if isinstance(item, dict)]


_BAD_TOKENS = st.sampled_from((12345, None, True, ["PICKY_API_TOKEN"], {"token": "PICKY_API_TOKEN"}))
_BAD_APPLICATIONS = st.sampled_from(
    (0, -1, "", "0", "01", "abc", "WhatsApp", "1.0", " 1", 1.5, True, None, [1], {"id": 1})
)
_BAD_PRIORITIES = st.sampled_from((2, -1, "2", "high", "true", 0.5, True, None, [1]))
#: Top-level keys that are not content, with values of the wrong type or size.
_BAD_TOP: Mapping[str, tuple[object, ...]] = {
    "media_name": ("brochure-summer-2024.pdf", 42),
    "voice": (2, "yes", None, 0.5),
    "sticker": (None, 1.5, [1]),
    "template_id": (1.5, None, ["order_update"], {"id": 1}),
    "template_globalmessage": ("Asha,Order 4521", {"1": "Asha"}, [None], [["x"]]),
    "template_header": (5, None, True),
    "language": (1, None, ["en"]),
    "location": (12.97, None, True, ["12.97", "77.59"]),
    "contact": (5, None, True),
    "globalmedia_code": (5, None, ["aGk="]),
}
#: Recipient keys that are not what decides content, with values of the wrong type.
_BAD_ITEM: Mapping[str, tuple[object, ...]] = {
    "reference_number": (1.5, None, ["ORD-1"], {"id": 1}, True),
    "template_message": ("Asha", {"1": "Asha"}, [None]),
    "language": (1, None),
    "message": (123, None, ["hi"], {"text": "hi"}, True),
    "media": (5, None, ["https://cdn.example.com/a.jpg"]),
    "media_code": (5, None),
}
_BAD_NUMBERS: Mapping[str, SearchStrategy[Any]] = dict(
    (
        ("number in a malformed form", st.deferred(lambda: phone_numbers(malformed=True))),
        ("number too short", st.integers(1, 999999).map(str)),
        ("number too long", st.integers(10**15, 10**16 - 1).map(str)),
        ("number with letters", st.sampled_from(("NUMBER 1", "91987654321O", "55 11 9xxxx-xxxx", "phone", "+"))),
        ("number empty", st.sampled_from(("", " "))),
        ("number integer out of range", st.sampled_from((0, -919876543210, 123456, 10**15, 10**20))),
        ("number not a string or integer", st.sampled_from((919876543210.5, None, True, ["919876543210"], {"n": 1}))),
    )
)
_WRONG_NUMBER_KEYS = ("phone", "mobile", "Number", "to", "msisdn")
#: The rules :func:`invalid_push_requests` breaks, by the status code each is answered with. The two
#: "of the wrong type" rules are reported under the field's name (``"voice of the wrong type"``).
INVALID_REQUEST_RULES: Mapping[int, tuple[str, ...]] = {
    401: ("token missing", "token empty", "token blank", "token not a string"),
    402: ("data missing", "data empty"),
    410: (
        "body not an object",
        "body double-encoded as a JSON string",
        "application missing",
        "application not a channel id",
        "priority not 0 or 1",
        "data not a list",
        "recipient not an object",
        "top-level field of the wrong type",
        "recipient field of the wrong type",
        "messenger_id empty",
        "globalmessage not a string",
    ),
    406: (*_BAD_NUMBERS, "recipient without number or messenger_id"),
    407: (
        "no content at all",
        "one recipient without content",
        "empty texts copied from the docs' sample",
        "globalmedia empty means no media",
        "number filter off",
    ),
}


def _strip_global(body: Json) -> None:
    for key in _GLOBAL_CONTENT:
        body.pop(key, None)


def _give_content(body: Json, *, skip: Json | None = None) -> None:
    """Make each recipient carry its own text, so that removing global content breaks nothing."""
    for item in _items(body):
        if item is not skip and not _item_has_content(item):
            item["message"] = _FALLBACK_TEXT


@composite
def _invalid(draw: st.DrawFn, statuses: Sequence[int], base: SearchStrategy[Json]) -> InvalidPushRequest:
    status = pick(draw, statuses)
    rule = pick(draw, INVALID_REQUEST_RULES[status])
    body = draw(base)
    one = pick(draw, _items(body))  # push_requests draws at least one recipient
    if rule == "token missing":
        del body["token"]
    elif rule == "token empty":
        body["token"] = ""
    elif rule == "token blank":
        body["token"] = pick(draw, (" ", "   ", "\t", "\n"))
    elif rule == "token not a string":
        body["token"] = draw(_BAD_TOKENS)
    elif rule == "data missing":
        del body["data"]
    elif rule == "data empty":
        body["data"] = []
    elif rule == "body not an object":
        return InvalidPushRequest(pick(draw, ([body], None, 0, True, "push")), status, rule)
    elif rule == "body double-encoded as a JSON string":
        return InvalidPushRequest(json.dumps(body), status, rule)
    elif rule == "application missing":
        del body["application"]
    elif rule == "application not a channel id":
        body["application"] = draw(_BAD_APPLICATIONS)
    elif rule == "priority not 0 or 1":
        key = "priority " if "priority " in body else "priority"
        body[key] = draw(_BAD_PRIORITIES)
    elif rule == "data not a list":
        body["data"] = pick(draw, (body["data"][0], "919876543210,5511987654321", None, 919876543210))
    elif rule == "recipient not an object":
        numbers = [str(item.get("number", item.get("messenger_id"))) for item in body["data"]]
        body["data"] = pick(draw, (numbers, [int(n) for n in numbers], [numbers]))
    elif rule == "top-level field of the wrong type":
        key = pick(draw, tuple(_BAD_TOP))
        body[key] = pick(draw, _BAD_TOP[key])
        if not _has_global_content(body):  # the media was the content: keep the 407 rule unbroken
            _give_content(body)
        rule = f"{key} of the wrong type"
    elif rule == "recipient field of the wrong type":
        key = pick(draw, tuple(_BAD_ITEM))
        one[key] = pick(draw, _BAD_ITEM[key])
        if key in _ITEM_CONTENT and not _has_global_content(body):
            body["globalmessage"] = _FALLBACK_TEXT
        rule = f"data[].{key} of the wrong type"
    elif rule == "messenger_id empty":
        one["messenger_id"] = ""
    elif rule == "globalmessage not a string":
        body["globalmessage"] = pick(draw, (123, None, ["hi"], {"text": "hi"}, True))
        if not _has_global_content(body):
            _give_content(body)
    elif rule in _BAD_NUMBERS:
        one["number"] = draw(_BAD_NUMBERS[rule])
    elif rule == "recipient without number or messenger_id":
        value = one.pop("number", None)
        value = one.pop("messenger_id", value)
        wrong = pick(draw, (None, *_WRONG_NUMBER_KEYS))
        if wrong is not None:
            one[wrong] = value
    elif rule in ("no content at all", "one recipient without content"):
        _strip_global(body)
        if rule == "one recipient without content":
            _give_content(body, skip=one)
            targets = [one]
        else:
            targets = _items(body)
        for item in targets:
            for key in _ITEM_CONTENT:
                item.pop(key, None)
    elif rule == "empty texts copied from the docs' sample":
        _strip_global(body)
        body["globalmessage"] = ""
        for item in _items(body):
            for key in _ITEM_CONTENT:
                item.pop(key, None)
            item["message"] = ""
    elif rule == "globalmedia empty means no media":
        _strip_global(body)
        body["globalmedia"] = ""
        _give_content(body, skip=one)
        for key in _ITEM_CONTENT:
            one.pop(key, None)
    else:  # number filter off
        _strip_global(body)
        body["action"] = pick(draw, (0, "0", False, ""))
        for item in _items(body):
            for key in _ITEM_CONTENT:
                item.pop(key, None)
    return InvalidPushRequest(copy.deepcopy(body), status, rule)  # no list or dict shared between draws


def invalid_push_requests(
    *,
    statuses: Collection[int] = BODY_STATUSES,
    quirks: bool = True,
) -> SearchStrategy[InvalidPushRequest]:
    """Push bodies that break the contract in one known way, each with the code the API answers.

    Draws :class:`InvalidPushRequest` ``(body, status, rule)``: a valid body from
    :func:`push_requests` (with its ``quirks`` option) with one rule broken, so that the status
    does not depend on the precedence between rules (docs/contract.md §4, ``STATUS_PRECEDENCE``):

    * 401: ``token`` missing, empty, blank or not a string.
    * 402: ``data`` missing or empty.
    * 410: the body not an object (a list, ``null``, a number, the body double-encoded as a JSON
      string), ``application`` missing or not a channel id, a bad ``priority``, ``data`` not a list,
      a recipient not an object, a field of the wrong type (``template_globalmessage`` as a
      comma-separated string, ``reference_number`` as a list...), an empty ``messenger_id``.
    * 406: a number malformed (:func:`phone_numbers` ``malformed=True``), too short, too long,
      with letters (the docs' ``"NUMBER 1"``), empty, an out-of-range or non-integral JSON number,
      or a recipient with neither ``number`` nor ``messenger_id`` (``phone``, ``mobile``...).
    * 407: no text, media or template for a recipient: nothing at all, one recipient without, the
      docs' sample sent with its empty ``globalmessage`` and ``message``, ``globalmedia: ""`` with
      no text, ``action`` 0.

    ``statuses`` restricts the codes drawn. Only the codes the body alone decides can be drawn
    (:data:`BODY_STATUSES`); the others (101, 403, 404, 405, 408, 409, 801, 802, 804) depend on
    the account or on injected faults, not on the body, and are an ``InvalidArgument``; use
    :func:`error_responses` to test how a client handles them. The codes are those of strict mode,
    the default: lenient mode repairs a malformed number or a missing ``application``.

    Shrinks toward a 401 (``token`` missing or empty) on the plainest valid body.
    """
    chosen: list[int] = []
    if isinstance(statuses, str) or not isinstance(statuses, Collection) or not statuses:
        raise InvalidArgument(f"statuses={statuses!r} must be a non-empty collection of status codes")
    for status in statuses:
        if status == 100:
            raise InvalidArgument("100 is the success code: use push_requests() for bodies the API accepts")
        if status not in BODY_STATUSES:
            known = status in STATUS_MESSAGES
            raise InvalidArgument(
                f"status {status} "
                + ("is decided by the account or an injected fault, not by the body" if known else "is not an API code")
                + f"; invalid_push_requests() draws {', '.join(map(str, BODY_STATUSES))}"
            )
    chosen = [s for s in BODY_STATUSES if s in statuses]
    check_bool("quirks", quirks)
    return _invalid(chosen, push_requests(quirks=quirks, max_recipients=5))


