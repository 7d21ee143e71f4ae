"""The Delivery Report API (``POST /api/v2/delivery-report``, docs/contract.md §5): what a client asks and
what it is answered, for clients that pull the state of their messages instead of taking webhooks.

The states and the channel rules (no Read on phone automation) are those of docs/contract.md §6.1; the
event webhook (:mod:`.webhooks`) reports the same states, so both take them from here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .channels import PHONE_AUTOMATION, channel_strategy
from .numbers import phone_numbers
from .options import check_bool, check_choices, check_range, composite, pick
from .requests import token_strategy
from .samples import Json

__all__ = [
    "DEFAULT_REPORT_CHANNELS",
    "REPORT_MESSAGE_TYPES",
    "REPORT_STATES",
    "check_push_answer",
    "delivery_report_requests",
    "delivery_report_responses",
    "format_report_time",
    "report_states",
    "states_on",
]

#: Delivery states (docs/contract.md §6.1): 0 Unknown, 1 Delivered, 2 Failed, 3 Read, 4 Submitted,
#: 5 Refunded. In the order shrinking prefers: Delivered first.
REPORT_STATES: tuple[int, ...] = (1, 4, 3, 2, 5, 0)
#: The pulled report's ``message_type`` (docs/contract.md §5), with the word the event webhook uses for it.
REPORT_MESSAGE_TYPES: Mapping[int, str] = {3: "text", 1: "image", 2: "video", 4: "audio", 5: "document"}
#: Channels a report is drawn for by default: phone automation, Official, Messenger, Instagram.
DEFAULT_REPORT_CHANNELS = (1, 8, 101, 2, 3, 10, 5, 11, 121)
_MAX_PUSH_ID = 10**10
_FIRST_REPORT = datetime(2020, 1, 1)
_LAST_REPORT = datetime(2030, 12, 31, 23, 59)
_NUMBERS = st.deferred(lambda: phone_numbers(json_integers=False))


def report_states(statuses: Collection[int] | None) -> list[int]:
    """The states a ``statuses`` option asks for, in :data:`REPORT_STATES` order."""
    if statuses is None:
        return list(REPORT_STATES)
    wanted = check_choices("statuses", statuses, sorted(REPORT_STATES))
    return [s for s in REPORT_STATES if s in wanted]


def states_on(channel: int, states: Sequence[int]) -> Sequence[int]:
    """The states a message on ``channel`` can be reported in: Read never on phone automation
    (docs/contract.md §6.1); Unknown when nothing asked for is possible there."""
    if channel in PHONE_AUTOMATION:
        return [s for s in states if s != 3] or [0]
    return states


def check_push_answer(response: object) -> Mapping[str, Any]:
    """``response`` as a push success answer with messages, or an ``InvalidArgument``."""
    if (
        not isinstance(response, Mapping)
        or response.get("status") != 100
        or not isinstance(response.get("data"), list)
        or not response["data"]
        or not all(isinstance(item, Mapping) and "msg_id" in item and "number" in item for item in response["data"])
        or not (str(response.get("push_id", "")).isascii() and str(response.get("push_id", "")).isdigit())
    ):
        raise InvalidArgument("response must be a success answer (status 100) with a non-empty data[] list")
    return response


def format_report_time(moment: datetime) -> str:
    """``04-12-2026 05:16 PM``: the report's ``DD-MM-YYYY hh:mm AM`` time, whatever the locale."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.day:02d}-{moment.month:02d}-{moment.year:04d} {hour:02d}:{moment.minute:02d} {half}"


def _push_ids(push_id: int | str | SearchStrategy[int | str] | None) -> SearchStrategy[Any]:
    if push_id is None:
        return st.integers(1, _MAX_PUSH_ID)
    if isinstance(push_id, SearchStrategy):
        return push_id
    if isinstance(push_id, str) and push_id.isascii() and push_id.isdigit() and int(push_id) > 0:
        return st.just(int(push_id))
    if isinstance(push_id, int) and not isinstance(push_id, bool) and push_id > 0:
        return st.just(push_id)
    raise InvalidArgument(f"push_id={push_id!r} must be a positive integer, a numeric string or a strategy")


@composite
def _report_request(draw: st.DrawFn, tokens: SearchStrategy[str], push_ids: SearchStrategy[Any], quirks: bool) -> Json:
    push_id = draw(push_ids)
    if quirks and isinstance(push_id, int) and draw(st.booleans()):
        push_id = str(push_id)  # [doc] a JSON number in the docs; [seen] clients send ids as strings
    return {"token": draw(tokens), "push_id": push_id}


def delivery_report_requests(
    *,
    token: str | SearchStrategy[str] | None = None,
    push_id: int | str | SearchStrategy[int | str] | None = None,
    quirks: bool = True,
) -> SearchStrategy[Json]:
    """Delivery report requests (``POST /api/v2/delivery-report``, docs/contract.md §5): ``{token, push_id}``.

    * ``token``: the token, or a strategy of tokens (default: realistic non-blank tokens).
    * ``push_id``: the push to ask about, as the push answer gave it (a decimal string) or as a
      number, or a strategy of them (default: any positive id). Pass ``answer["push_id"]`` to ask
      about a push the mock accepted.
    * ``quirks`` (default ``True``): ``push_id`` comes as a JSON number (the docs' form) or as a
      numeric string (the push answer's form, which clients pass on); ``False``: JSON numbers only.

    Shrinks toward ``{"token": "PICKY_API_TOKEN", "push_id": 1}``.
    """
    tokens = token_strategy(token)
    push_ids = _push_ids(push_id)
    check_bool("quirks", quirks)
    return _report_request(tokens, push_ids, quirks)


@composite
def _report_response(
    draw: st.DrawFn,
    response: Mapping[str, Any] | None,
    states: Sequence[int],
    channels: SearchStrategy[int],
    message_types: Sequence[int],
    sizes: tuple[int, int],
) -> Json:
    channel = draw(channels)
    possible = states_on(channel, states)
    if response is not None:
        push_id = int(response["push_id"])
        messages = [(str(item["number"]), str(item["msg_id"])) for item in response["data"]]
    else:
        push_id = draw(st.integers(1, _MAX_PUSH_ID))
        first = draw(st.integers(1, _MAX_PUSH_ID))
        count = draw(st.integers(*sizes))
        messages = [(draw(_NUMBERS), str(first + i)) for i in range(count)]
    with_error_message = draw(st.booleans())  # listed among the report's variables, absent from its sample
    data = []
    for number, msg_id in messages:
        item = {"number": number, "msg_id": msg_id, "status": str(pick(draw, possible)), "error_code": ""}
        if with_error_message:
            item["error_message"] = ""  # [doc] "future scope": empty
        data.append(item)
    moment = draw(st.datetimes(min_value=_FIRST_REPORT, max_value=_LAST_REPORT))
    return {
        "project_id": str(draw(st.integers(1000, 99999))),
        "push_id": push_id,
        "application": str(channel),
        "message_type": str(pick(draw, message_types)),
        "time": format_report_time(moment),
        "data": data,
        "status": 100,
        "message": "Success",
    }


def delivery_report_responses(
    *,
    response: Mapping[str, Any] | None = None,
    statuses: Collection[int] | None = None,
    application: Collection[int] | SearchStrategy[int] | None = None,
    message_types: Collection[int] | None = None,
    min_size: int = 1,
    max_size: int = 5,
) -> SearchStrategy[Json]:
    """Delivery report answers (docs/contract.md §5) as ``schemas/delivery-report-response.schema.json`` says.

    ``{"project_id": "12345", "push_id": 7478630, "application": "1", "message_type": "3",
    "time": "04-12-2026 05:16 PM", "data": [{"number", "msg_id", "status", "error_code"}],
    "status": 100, "message": "Success"}``: ``push_id`` a JSON number, everything else in the
    docs' sample a string; ``message_type`` 1 image, 2 video, 3 text, 4 audio, 5 document (one per
    push); ``time`` as ``DD-MM-YYYY hh:mm AM``; in ``data[]`` every value a string, ``status`` one of
    the delivery states (``"0"`` Unknown to ``"5"`` Refunded), never Read (``"3"``) on phone
    automation (1-4), ``error_code`` empty ("future scope"), and in some answers an empty
    ``error_message`` too. The top-level ``status`` 100 and ``message`` are picky-mock's addition
    (the docs' sample has none; clients look for them as on the push): a client should not need them.

    * ``response``: a push success answer (say from :func:`push_responses` or the mock): the report
      covers each of its messages, in order, with its ``push_id``, ``msg_id`` and ``number``.
      Otherwise ``min_size`` to ``max_size`` messages of one drawn push.
    * ``statuses``: the states to draw (0-5), all by default.
    * ``application``: channel ids (a collection or a strategy).
    * ``message_types``: the ``message_type`` codes (1-5) to draw, all by default.

    Shrinks toward one delivered text message on channel 1.
    """
    states = report_states(statuses)
    channels = channel_strategy("application", application, DEFAULT_REPORT_CHANNELS)
    types = list(REPORT_MESSAGE_TYPES)
    if message_types is not None:
        types = [t for t in types if t in check_choices("message_types", message_types, sorted(types))]
    sizes = check_range("min_size", min_size, "max_size", max_size, low=1)
    if response is not None:
        check_push_answer(response)
    return _report_response(response, states, channels, types, sizes)
