"""What Picky Assist POSTs to a project's URLs (docs/contract.md §6), and what a handler may answer.

The event webhook's delivery reports, the incoming-message webhook's payloads and the instant reply
are drawn as ``schemas/event-webhook.schema.json``, ``schemas/incoming-webhook.schema.json`` and
``schemas/instant-reply.schema.json`` describe them: the same schemas the emulator's own webhooks are
checked against, so a handler tested on these draws is tested on what the emulator sends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote_plus

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .channels import MESSENGER, PHONE_AUTOMATION, WITH_ERROR_MESSAGES, channel_strategy
from .delivery_reports import (
    DEFAULT_REPORT_CHANNELS,
    REPORT_MESSAGE_TYPES,
    check_push_answer,
    report_states,
    states_on,
)
from .numbers import phone_numbers
from .options import check_bool, check_choices, check_range, composite, pick
from .samples import MEDIA, REFERENCES, Json
from .texts import message_texts

__all__ = ["INBOUND_TYPES", "delivery_report_events", "inbound_messages", "instant_replies"]

#: Incoming message types (docs/contract.md §6.4): 1 text, 2 image, 3 video, 4 audio, 5 location,
#: 6 document, 7 contact, 9 button or interactive reply.
INBOUND_TYPES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 9)
#: The event's ``message_type`` words, text first (shrinking goes there).
_EVENT_TYPES = tuple(REPORT_MESSAGE_TYPES.values())
#: The media URL each kind of message carries.
_MEDIA_OF: Mapping[str, str] = {kind: url for url, kind in reversed(MEDIA)}
_FAILURES = (
    "Message undeliverable",
    "Recipient is not a valid WhatsApp user",
    "Re-engagement message: more than 24 hours since the customer last replied",
    "Insufficient balance, credit refunded",
)
_PSIDS = st.integers(10**15, 10**17 - 1)
_STRING_NUMBERS = st.deferred(lambda: phone_numbers(json_integers=False))
_REPORT_TEXTS = st.deferred(lambda: message_texts(segment_boundaries=False, max_size=160))
_CAPTIONS = st.deferred(lambda: st.just("") | message_texts(segment_boundaries=False, max_size=120))
_INBOUND_TEXTS = st.deferred(lambda: message_texts(segment_boundaries=False, max_size=300))
_REPLY_TEXTS = st.deferred(lambda: message_texts(segment_boundaries=False, max_size=300).filter(str.strip))
_ONE_IN_FIVE = st.integers(0, 4)


# -- the event webhook: delivery reports ----------------------------------------------------------


class _Sent(NamedTuple):
    """What a push gave for one message, as its report echoes it (``media`` ``None``: a text)."""

    reference: str | None
    text: str
    media: str | None


def _sent(request: Mapping[str, Any], index: int) -> _Sent:
    item = request["data"][index]
    reference = item.get("reference_number")
    text = item.get("message") or request.get("globalmessage") or ""
    media = item.get("media") or request.get("globalmedia") or None
    if media is None and (item.get("media_code") or request.get("globalmedia_code")):
        media = ""  # media sent as base64: the report gives a URL of the service's own
    return _Sent(
        None if reference is None else str(reference),
        text if isinstance(text, str) else "",
        media if isinstance(media, str) else None,
    )


def _report(
    draw: st.DrawFn, push_id: str, msg_id: str, number: str, channel: int, states: Sequence[int], sent: _Sent | None
) -> dict[str, str]:
    state = pick(draw, states_on(channel, states))
    if sent is not None and sent.media is None:
        kind = "text"
    else:
        kind = pick(draw, _EVENT_TYPES[1:] if sent is not None else _EVENT_TYPES)
    entry = {"push_id": push_id, "number": number, "msg_id": msg_id, "status": str(state)}
    if sent is not None and sent.reference is not None:
        entry["reference_number"] = sent.reference
    if sent is not None:
        text = sent.text
    else:
        text = draw(_REPORT_TEXTS) if kind == "text" or draw(st.booleans()) else ""
    # [doc] error_message says why a message failed or was refunded, on Official and shared channels only.
    explained = state in (2, 5) and channel in WITH_ERROR_MESSAGES and draw(st.booleans())
    entry.update(
        error_code="",  # [doc] "future scope": always empty so far
        error_message=pick(draw, _FAILURES) if explained else "",
        message=text,
        message_type=kind,
        media="" if kind == "text" else (sent.media if sent is not None and sent.media else _MEDIA_OF[kind]),
        channel_id=str(channel),
    )
    return entry


@composite
def _delivery_event(
    draw: st.DrawFn,
    response: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None,
    states: Sequence[int],
    channels: SearchStrategy[int],
    sizes: tuple[int, int],
) -> Json:
    channel = draw(channels)
    entries = []
    if response is not None:
        data = response["data"]
        chosen = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=len(data), unique=True))
        for index in sorted(chosen):
            item = data[index]
            push_id, msg_id, number = str(response["push_id"]), str(item["msg_id"]), str(item["number"])
            sent = None if request is None else _sent(request, index)
            entries.append(_report(draw, push_id, msg_id, number, channel, states, sent))
    else:
        count = draw(st.integers(*sizes))
        push_id = str(draw(st.integers(1, 10**10)))
        first = draw(st.integers(1, 10**10))
        for i in range(count):
            reference = str(draw(REFERENCES)) if draw(st.booleans()) else None
            number = str(draw(_PSIDS)) if channel == MESSENGER else draw(_STRING_NUMBERS)
            entry = _report(draw, push_id, str(first + i), number, channel, states, None)
            if reference is not None:
                entry = {**entry, "reference_number": reference}
            entries.append(entry)
    return {"project_id": str(draw(st.integers(1000, 99999))), "event_id": 1, "data": entries}


def delivery_report_events(
    *,
    response: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
    statuses: Collection[int] | None = None,
    application: Collection[int] | SearchStrategy[int] | None = None,
    min_size: int = 1,
    max_size: int = 5,
) -> SearchStrategy[Json]:
    """Delivery-report events (``event_id`` 1) as the event webhook POSTs them (docs/contract.md §6.2).

    ``{"project_id": "12345", "event_id": 1, "data": [...]}``: ``project_id`` a string and
    ``event_id`` a JSON number, as in the samples, and every value in ``data[]`` a string:
    ``push_id``, ``number``, ``msg_id``, ``status`` (``"0"`` Unknown, ``"1"`` Delivered, ``"2"``
    Failed, ``"3"`` Read, ``"4"`` Submitted, ``"5"`` Refunded), ``reference_number`` (only when the
    push sent one), ``error_code`` (empty: "future scope"), ``error_message`` (why a message failed
    or was refunded, on Official channels and shared numbers only; else empty), ``message``,
    ``message_type`` (``text``, ``image``, ``audio``, ``video``, ``document``, lowercase as in the
    docs' sample), ``media`` (a URL, empty for text) and ``channel_id``. Read is never reported on
    phone-automation channels (1-4). Each value is what ``schemas/event-webhook.schema.json`` allows.

    * ``response``: a success answer (say from :func:`push_responses` or the mock): the event
      reports some of its messages, in order, with their ``push_id``, ``msg_id`` and ``number``.
      Otherwise ``min_size`` to ``max_size`` reports of one drawn push.
    * ``request``: with ``response``, the push body it answers: each report also echoes what the
      push gave that message (its ``reference_number``, its text, its media URL) and its channel.
    * ``statuses``: the states to draw (0-5), all by default.
    * ``application``: channel ids (a collection or a strategy) for ``channel_id``.

    Shrinks toward one report of a delivered text on channel 1.
    """
    states = report_states(statuses)
    channels = channel_strategy("application", application, DEFAULT_REPORT_CHANNELS)
    sizes = check_range("min_size", min_size, "max_size", max_size, low=1)
    if response is not None:
        check_push_answer(response)
    if request is not None:
        if response is None:
            raise InvalidArgument("request= needs response=, the answer to that push")
        if application is not None:
            raise InvalidArgument("request= gives the channel: leave out application=")
        channels = st.just(_request_channel(request, response))
    return _delivery_event(response, request, states, channels, sizes)


def _request_channel(request: object, response: Mapping[str, Any]) -> int:
    """The channel of the push ``request``, checked to be the push that ``response`` answers."""
    if not isinstance(request, Mapping) or not isinstance(request.get("data"), list):
        raise InvalidArgument("request must be a push body with a data[] list")
    if len(request["data"]) != len(response["data"]) or not all(isinstance(i, Mapping) for i in request["data"]):
        raise InvalidArgument("request and response disagree: one answer entry per recipient of the push")
    application = str(request.get("application", ""))
    if not (application.isascii() and application.isdigit() and int(application) > 0):
        raise InvalidArgument(f"request: application {request.get('application')!r} is not a channel id")
    return int(application)


# -- the incoming-message webhook ----------------------------------------------------------------

_NAMES = ("Asha", "João Silva", "Mohammed", "Ravi 🙂", "", "Zoë")
_CONTACT_NAMES = ("Mum", "Ravi Kumar", "Dr. Ana (clinic)")
#: (text, latitude, longitude) of the locations customers share.
_LOCATIONS = (
    ("12.971599,77.594566", "12.971599", "77.594566"),
    ("https://maps.google.com/?q=-23.550520,-46.633308", "-23.550520", "-46.633308"),
)
_VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Souza\nTEL:+5511987654321\nEND:VCARD"
#: (button title, its payload) of the quick replies customers tap (type 9).
_BUTTONS = (("Track my order", "TRACK_ORDER"), ("Talk to an agent", "AGENT"), ("Yes", "CONFIRM_YES"))
_MEDIA_KINDS: Mapping[int, str] = {2: "image", 3: "video", 4: "audio", 6: "document"}


def _numeric(draw: st.DrawFn, value: int, mixed: bool) -> int | str:
    return str(value) if mixed and draw(st.booleans()) else value


@composite
def _inbound(draw: st.DrawFn, channels: SearchStrategy[int], types: Sequence[int], mixed: bool) -> Json:
    channel = draw(channels)
    kind = pick(draw, types)
    extra: Json = {}
    if kind == 5:
        text, latitude, longitude = pick(draw, _LOCATIONS)
        extra["Location"] = {"latitude": latitude, "longitude": longitude}  # [doc] capital L
    elif kind == 7:
        text = _VCARD
        extra["contact"] = [{"name": "Ana Souza", "number": "5511987654321"}]
    elif kind == 9:
        text, extra["payload"] = pick(draw, _BUTTONS)
    elif kind in _MEDIA_KINDS:
        text = draw(_CAPTIONS)
        extra["media-url"] = _MEDIA_OF[_MEDIA_KINDS[kind]]
    else:
        text = draw(_INBOUND_TEXTS)
    payload: Json = {}
    if channel == MESSENGER:
        payload["number"] = ""
        payload["messenger_id"] = _numeric(draw, draw(_PSIDS), mixed)
    elif channel in PHONE_AUTOMATION and draw(_ONE_IN_FIVE) == 4:
        payload["number"] = pick(draw, _CONTACT_NAMES)  # [doc] a saved contact's name instead
    elif channel == 10 and draw(_ONE_IN_FIVE) == 4:
        payload["number"] = f"Family group @{draw(_STRING_NUMBERS)}"  # [doc] a group: name @sender
    else:
        payload["number"] = draw(_STRING_NUMBERS)
    shown = text[:2500] if channel in PHONE_AUTOMATION else text  # [doc] phone automation cuts message-in
    payload["message-in"] = quote_plus(shown)
    payload["message_in_raw"] = text
    payload["application"] = _numeric(draw, channel, mixed)
    payload["type"] = _numeric(draw, kind, mixed)
    payload["unique-id"] = str(draw(st.integers(10**8, 10**10)))
    payload["project-id"] = _numeric(draw, draw(st.integers(1000, 99999)), mixed)
    payload["name"] = pick(draw, _NAMES) if channel in (5, 8, 10, 101, 121) else ""
    direction = 1 if channel == 10 and draw(_ONE_IN_FIVE) == 4 else 0  # [doc] outbound: web automation only
    payload["direction"] = _numeric(draw, direction, mixed)
    if draw(_ONE_IN_FIVE) == 4:
        payload["context-msg-id"] = str(draw(st.integers(1, 10**10)))  # a reply to one of our messages
    payload.update(extra)
    return payload


def inbound_messages(
    *,
    application: Collection[int] | SearchStrategy[int] | None = None,
    types: Collection[int] | None = None,
    mixed_types: bool = True,
) -> SearchStrategy[Json]:
    """Incoming-message webhook payloads (docs/contract.md §6.4): the flat JSON the project's URL receives.

    Keys: ``number`` (the sender's digits, a string; as the docs warn, now and then the name the
    sender is saved under on phone automation, or ``"Group name @number"`` in a Web Automation
    group; empty for Messenger, which sends ``messenger_id``),
    ``message-in`` (the text **URL-encoded**, form-style: ``quote_plus``, so a handler must
    ``unquote_plus`` it; on phone automation only its first 2,500 characters), ``message_in_raw``
    (the same text, raw), ``application`` (channel id),
    ``type`` (1 text, 2 image, 3 video, 4 audio, 5 location, 6 document, 7 contact, 9 button),
    ``unique-id``, ``project-id``, ``name`` (set on Official, Web Automation and Messenger only),
    ``direction`` (0 inbound; 1 outbound, on WhatsApp Web Automation only), now and then
    ``context-msg-id`` (the ``msg_id`` the customer replied to), and by type: ``media-url`` (image,
    video, audio, document; the text is the caption), ``Location`` (``{"latitude", "longitude"}``),
    ``contact`` (a list of ``{"name", "number"}``; the text is the vCard), ``payload`` (a button's
    payload; the text is its title). Each value is what ``schemas/incoming-webhook.schema.json`` allows.

    * ``application``: channel ids (a collection or a strategy); 1, 2, 3, 5, 8, 10, 101 by default.
    * ``types``: the message types to draw (see :data:`INBOUND_TYPES`).
    * ``mixed_types`` (default ``True``): the fields the docs call numeric (``application``,
      ``type``, ``direction``, ``project-id``, ``messenger_id``) come as JSON numbers or as numeric
      strings, as they differ between the docs' samples; a handler must accept both. ``False``:
      always JSON numbers.

    Shrinks toward a one-character text from ``"916000000000"`` on channel 1, as JSON numbers.
    """
    channels = channel_strategy("application", application, (1, 2, 3, 5, 8, 10, 101))
    kinds = list(INBOUND_TYPES) if types is None else check_choices("types", types, INBOUND_TYPES)
    check_bool("mixed_types", mixed_types)
    return _inbound(channels, kinds, mixed_types)


# -- the instant reply ---------------------------------------------------------------------------


@composite
def _instant_reply(
    draw: st.DrawFn, delays: SearchStrategy[int], optional_delay: bool, extras: bool, mixed: bool
) -> Json:
    reply: Json = {"message-out": draw(_REPLY_TEXTS)}
    if not (optional_delay and draw(_ONE_IN_FIVE) == 4):
        reply["delay"] = _numeric(draw, draw(delays), mixed)
    if extras and draw(_ONE_IN_FIVE) == 4:
        # [seen] keys clients put in the reply, which no official page confirms.
        reply["reference_number"] = str(draw(REFERENCES))
        if draw(st.booleans()):
            reply["media-url"] = _MEDIA_OF["image"]
    return reply


def instant_replies(
    *,
    min_delay: int = 0,
    max_delay: int = 3600,
    extras: bool = True,
    mixed_types: bool = True,
) -> SearchStrategy[Json]:
    """Instant replies (docs/contract.md §6.5): what an incoming-message handler answers to write back.

    ``{"message-out": "Thanks!", "delay": 30}``: the text (not URL-encoded) and the seconds to wait
    before it is sent, ``min_delay`` to ``max_delay`` (at most 3600, the documented bound). When
    ``min_delay`` is 0, now and then ``delay`` is left out (sent at once). With ``extras`` (default),
    now and then keys clients add that no official page confirms: ``reference_number``, a
    ``media-url`` (sent through the broadcast path). With ``mixed_types`` (default), ``delay`` is
    now and then a string of digits (``"30"``), which the emulator accepts; ``False``: JSON integers
    only, the docs' form. Each value is what ``schemas/instant-reply.schema.json`` allows.

    Shrinks toward ``{"message-out": "0", "delay": 0}``.
    """
    lo, hi = check_range("min_delay", min_delay, "max_delay", max_delay, low=0)
    if hi > 3600:
        raise InvalidArgument(f"max_delay={hi}: the service sends an instant reply at most 3600 seconds later")
    check_bool("extras", extras)
    check_bool("mixed_types", mixed_types)
    delays = st.one_of(st.sampled_from(sorted({lo, hi})), st.integers(lo, hi))  # the bounds, often
    return _instant_reply(delays, lo == 0, extras, mixed_types)
