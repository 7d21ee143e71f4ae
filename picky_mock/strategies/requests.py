"""Push bodies (``POST /api/v2/push``) that the contract accepts, in every variant the docs describe
and with the quirks real clients send (docs/contract.md §2)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Collection, Mapping
from typing import Any, Literal

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .channels import CHANNELS, OFFICIAL, SHARED_NUMBERS, WHATSAPP, channel_id
from .numbers import COUNTRIES, NumberPlans, phone_numbers
from .options import check_bool, check_choices, check_range, check_strategy, composite, pick
from .samples import MEDIA, REFERENCES, Json
from .texts import message_texts

__all__ = ["VARIANTS", "push_requests", "token_strategy"]

Variant = Literal["bulk", "dynamic", "media", "template", "messenger", "number_filter", "location", "contact"]

#: The request variants :func:`push_requests` draws (see its docstring).
VARIANTS: tuple[Variant, ...] = (
    "bulk",
    "dynamic",
    "media",
    "template",
    "messenger",
    "number_filter",
    "location",
    "contact",
)
_ONE_IN_THREE = st.integers(0, 2)
#: Realistic non-blank tokens; shrinks toward the docs' placeholder.
_TOKENS = st.one_of(
    st.just("PICKY_API_TOKEN"),
    st.integers(0, 2**128 - 1).map(lambda n: f"{n:032x}"),
    st.integers(0, 2**64 - 1).map(lambda n: f"{n:020d}-PA"),
)


def token_strategy(token: str | SearchStrategy[str] | None) -> SearchStrategy[str]:
    """The tokens a ``token`` option asks for: realistic ones by default, one given, or a strategy."""
    if token is None:
        return _TOKENS
    if isinstance(token, SearchStrategy):
        return token
    if isinstance(token, str) and token.strip():
        return st.just(token)
    raise InvalidArgument(f"token={token!r} must be a non-blank string or a strategy (a blank one is a 401)")


_NOT_MESSENGER = tuple(c for c in CHANNELS if c != 5)
_VARIANT_CHANNELS: Mapping[str, tuple[int, ...]] = {
    "bulk": _NOT_MESSENGER,
    "dynamic": _NOT_MESSENGER,
    "media": (1, 2, 8, 10, 11, 101, 121, *SHARED_NUMBERS),
    "template": (*OFFICIAL, *SHARED_NUMBERS),
    "messenger": (5,),
    "number_filter": WHATSAPP,
    "location": (*WHATSAPP, *SHARED_NUMBERS),
    "contact": (*WHATSAPP, *SHARED_NUMBERS),
}
#: Variants that a channel a project connected itself (an id not in CHANNELS) may carry.
_CUSTOM_VARIANTS = frozenset({"bulk", "dynamic", "media"})
#: Official channels and shared numbers: the only ones where ``data[].media`` is documented.
_PER_ITEM_MEDIA = frozenset({*OFFICIAL, *SHARED_NUMBERS})
_CUSTOM = 0


def _fits(variant: str, channel: int) -> bool:
    if channel in CHANNELS:
        return channel in _VARIANT_CHANNELS[variant]
    return variant in _CUSTOM_VARIANTS


def _documented_or_custom(variant: str) -> SearchStrategy[int]:
    channels = _VARIANT_CHANNELS[variant]
    if variant not in _CUSTOM_VARIANTS:
        return st.sampled_from(channels)
    custom = st.integers(1000, 99999)
    return st.sampled_from((*channels, _CUSTOM)).flatmap(lambda c: custom if c == _CUSTOM else st.just(c))


_CHANNEL_FOR: Mapping[str, SearchStrategy[int]] = {v: _documented_or_custom(v) for v in VARIANTS}

_MEDIA_NAMES = ("invoice.pdf", "banner.jpg", "demo.mp4", "greeting.ogg", "Catalogue 2024.pdf", "x" * 20)
_MEDIA_CODE = st.binary(min_size=1, max_size=48).map(lambda b: base64.b64encode(b).decode("ascii"))
_TEMPLATE_IDS = st.one_of(
    st.sampled_from(("order_update", "otp_login", "welcome_v2", "shipping_alert", "appointment_reminder")),
    st.integers(1000, 999999),
)
_LANGUAGES = st.sampled_from(("en", "en_US", "pt_BR", "hi", "ar", "es", "id"))
_TEMPLATE_VALUES = st.lists(
    st.one_of(
        st.sampled_from(("Asha", "João", "Order #4521", "12:30", "₹1,499.00", "")),
        st.integers(0, 10**6),
        st.integers(0, 10**6).map(lambda cents: cents / 100),
    ),
    max_size=4,
)
_LOCATIONS = st.one_of(
    st.tuples(st.integers(-90 * 10**6, 90 * 10**6), st.integers(-180 * 10**6, 180 * 10**6)).map(
        lambda ll: {"latitude": f"{ll[0] / 10**6:.6f}", "longitude": f"{ll[1] / 10**6:.6f}"}
    ),
    st.sampled_from(("12.971599,77.594566", "-23.550520,-46.633308")),
)
_CONTACTS = st.deferred(
    lambda: st.one_of(
        st.builds(
            lambda name, number: {"name": name, "number": number},
            st.sampled_from(("Support desk", "Ravi Kumar", "Ana Souza")),
            phone_numbers(json_integers=False),
        ),
        st.just("BEGIN:VCARD\nVERSION:3.0\nFN:Support desk\nTEL:+919876543210\nEND:VCARD"),
    )
)
#: [seen] Unknown keys real clients send (docs/contract.md §2.2), with values of the kinds they send.
_UNKNOWN_TOP: Mapping[str, object] = {
    "sleep": 1,
    "message_type": "text",
    "interactive_type": "button",
    "type": "text",
    "quoted": "",
    "createcontact": 1,
    "media_url": "",
    "payload": {"source": "crm"},
    "options": [],
    "header": "",
    "reference_number": "batch-2024-07",
}


_PSIDS = st.integers(10**15, 10**17 - 1)
_MEDIA_ITEMS = st.sampled_from(MEDIA)
_MEDIA_NAME_CHOICES = st.sampled_from(_MEDIA_NAMES)
_HEADERS = st.sampled_from((MEDIA[0][0], "Your order", "object"))
_UNKNOWN_KEYS = st.lists(st.sampled_from(tuple(_UNKNOWN_TOP)), min_size=1, max_size=3, unique=True)
_EMPTY_OR_SAME = st.sampled_from(("", "same"))
_SAME = object()  # stands for "the global text, repeated" until the body is assembled


def _choices(quirky: tuple[Any, ...], plain: tuple[Any, ...], quirks: bool) -> SearchStrategy[Any]:
    return st.sampled_from(quirky if quirks else plain)


def _recipient_key(item: Mapping[str, Any]) -> str:
    return str(item.get("number", item.get("messenger_id")))


class _PushPlan:
    """The options of one :func:`push_requests` call and the strategies built from them once:
    building strategies inside a draw is what makes a composite slow."""

    def __init__(
        self,
        variants: tuple[str, ...],
        channels: SearchStrategy[int] | None,
        min_recipients: int,
        max_recipients: int,
        quirks: bool,
        tokens: SearchStrategy[str],
        texts: SearchStrategy[str],
        unique: bool,
    ) -> None:
        self.variants, self.channels, self.quirks, self.tokens, self.texts = variants, channels, quirks, tokens, texts
        self.variant = st.sampled_from(variants)
        self.min_recipients, self.max_recipients, self.unique = min_recipients, max_recipients, unique
        self.numbers = NumberPlans(COUNTRIES, ("str", "int") if quirks else ("str",))
        self.priority = _choices((None, 0, 1, "0", "1", ""), (None, 0, 1), quirks)
        self.dynamic_forms = _choices(("absent", "fallback", "empty"), ("absent", "fallback"), quirks)
        self.flags = _choices((1, "1", True), (1,), quirks)
        self._recipients: dict[tuple[str, str, bool], SearchStrategy[list[Json]]] = {}

    def recipients(self, variant: str, item_mode: str, has_global_text: bool) -> SearchStrategy[list[Json]]:
        key = (variant, item_mode, has_global_text)
        if key not in self._recipients:
            self._recipients[key] = st.lists(
                _recipient(self, variant, item_mode, has_global_text),
                min_size=self.min_recipients,
                max_size=self.max_recipients,
                unique_by=_recipient_key if self.unique else None,
            )
        return self._recipients[key]


def _bits(flags: int, quirks_mask: int, quirks: bool) -> int:
    return flags if quirks else flags & ~quirks_mask


# Bits of one recipient's flags (one choice instead of ten booleans; shrinking clears them all).
_I_PSID_INT, _I_MESSAGE, _I_MEDIA_CODE, _I_CAPTION, _I_ECHO, _I_ECHO_SAME = 1, 2, 4, 8, 16, 32
_I_TEMPLATE_VALUES, _I_LANGUAGE, _I_REFERENCE, _I_STRAY_TEMPLATE = 64, 128, 256, 512
_I_QUIRKS = _I_PSID_INT | _I_ECHO | _I_ECHO_SAME | _I_STRAY_TEMPLATE
_ITEM_FLAGS = st.integers(0, 1023)


@composite
def _recipient(draw: st.DrawFn, plan: _PushPlan, variant: str, item_mode: str, has_global_text: bool) -> Json:
    """One ``data[]`` item. ``item_mode``: ``own`` (must carry its own text), ``optional`` (may),
    ``media`` (its own media), ``none`` (no text: the global content serves)."""
    flags = _bits(draw(_ITEM_FLAGS), _I_QUIRKS, plan.quirks)
    item: Json = {}
    if variant == "messenger":
        psid = draw(_PSIDS)
        item["messenger_id"] = psid if flags & _I_PSID_INT else str(psid)
    else:
        item["number"] = plan.numbers.draw(draw)
    if item_mode == "own" or (item_mode == "optional" and flags & _I_MESSAGE):
        item["message"] = draw(plan.texts)
    elif item_mode == "media":
        if flags & _I_MEDIA_CODE:
            item["media_code"] = draw(_MEDIA_CODE)
        else:
            item["media"] = draw(_MEDIA_ITEMS)[0]
        if flags & _I_CAPTION:
            item["message"] = draw(plan.texts)
    elif has_global_text and flags & _I_ECHO:
        # [seen] "message": "" beside the global text, or the global text repeated in the item.
        item["message"] = _SAME if flags & _I_ECHO_SAME else ""
    if variant == "template":
        if flags & _I_TEMPLATE_VALUES:
            item["template_message"] = draw(_TEMPLATE_VALUES)
        if flags & _I_LANGUAGE:
            item["language"] = draw(_LANGUAGES)
    if flags & _I_REFERENCE:
        item["reference_number"] = draw(REFERENCES)
    if variant != "template" and flags & _I_STRAY_TEMPLATE:
        item["template_id"] = draw(_TEMPLATE_IDS)  # [seen] ignored outside templates
    return item


# Bits of a body's flags.
_B_APP_STRING, _B_SPACED_PRIORITY, _B_MESSENGER_BULK, _B_MEDIA_CODE, _B_CAPTION = 1, 2, 4, 8, 16
_B_MEDIA_NAME, _B_VOICE, _B_TEMPLATE_VALUES, _B_TEMPLATE_HEADER, _B_EMPTY_MEDIA, _B_UNKNOWN = (
    32,
    64,
    128,
    256,
    512,
    1024,
)
_B_QUIRKS = _B_APP_STRING | _B_SPACED_PRIORITY | _B_EMPTY_MEDIA | _B_UNKNOWN
_BODY_FLAGS = st.integers(0, 2047)


@composite
def _push_request(draw: st.DrawFn, plan: _PushPlan) -> Json:
    if plan.channels is None:
        variant = draw(plan.variant)
        channel = draw(_CHANNEL_FOR[variant])
    else:
        channel = draw(plan.channels)
        fitting = [v for v in plan.variants if _fits(v, channel)]
        assume(fitting)  # only a strategy given as ``application`` can draw a channel nothing fits
        variant = pick(draw, fitting)
    flags = _bits(draw(_BODY_FLAGS), _B_QUIRKS, plan.quirks)
    body: Json = {"token": draw(plan.tokens)}
    body["application"] = str(channel) if flags & _B_APP_STRING else channel
    priority = draw(plan.priority)
    if priority is not None:
        body["priority " if flags & _B_SPACED_PRIORITY else "priority"] = priority
    global_text: str | None = None
    item_mode = "none"
    if variant == "bulk" or (variant == "messenger" and flags & _B_MESSENGER_BULK):
        global_text = body["globalmessage"] = draw(plan.texts)
    elif variant in ("dynamic", "messenger"):
        form = draw(plan.dynamic_forms)
        if form == "fallback":
            global_text = body["globalmessage"] = draw(plan.texts)
            item_mode = "optional"
        else:
            if form == "empty":
                body["globalmessage"] = ""  # [seen] the docs' sample
            item_mode = "own"
    elif variant == "media":
        if channel in _PER_ITEM_MEDIA and draw(_ONE_IN_THREE) == 2:
            item_mode = "media"
        else:
            url, kind = draw(_MEDIA_ITEMS)
            if flags & _B_MEDIA_CODE:
                body["globalmedia_code"] = draw(_MEDIA_CODE)
            else:
                body["globalmedia"] = url
            if kind in ("image", "video", "document") and flags & _B_CAPTION:
                global_text = body["globalmessage"] = draw(plan.texts)  # the caption
            if flags & _B_MEDIA_NAME:
                body["media_name"] = draw(_MEDIA_NAME_CHOICES)
            if kind == "audio" and flags & _B_VOICE:
                body["voice"] = draw(plan.flags)
            if kind == "sticker":
                body["sticker"] = draw(plan.flags)
            item_mode = "optional"
    elif variant == "template":
        body["template_id"] = draw(_TEMPLATE_IDS)
        body["language"] = draw(_LANGUAGES)
        if flags & _B_TEMPLATE_VALUES:
            body["template_globalmessage"] = draw(_TEMPLATE_VALUES)
        if flags & _B_TEMPLATE_HEADER:
            header = draw(_HEADERS)
            body["template_header"] = {"type": "text", "text": "Your order"} if header == "object" else header
    elif variant == "number_filter":
        body["action"] = draw(plan.flags)
    elif variant == "location":
        body["location"] = draw(_LOCATIONS)
    else:  # contact
        body["contact"] = draw(_CONTACTS)
    if flags & _B_EMPTY_MEDIA and "globalmedia" not in body and "globalmedia_code" not in body:
        body["globalmedia"] = ""  # [seen] meaning "no media"
    if flags & _B_UNKNOWN:
        for key in draw(_UNKNOWN_KEYS):
            body[key] = copy.deepcopy(_UNKNOWN_TOP[key])
    items = draw(plan.recipients(variant, item_mode, global_text is not None))
    for item in items:
        if item.get("message") is _SAME:
            item["message"] = global_text
    body["data"] = items
    return body


def push_requests(
    *,
    application: int | Collection[int] | SearchStrategy[int] | None = None,
    variants: Collection[Variant] = VARIANTS,
    min_recipients: int = 1,
    max_recipients: int = 10,
    quirks: bool = True,
    token: str | SearchStrategy[str] | None = None,
    texts: SearchStrategy[str] | None = None,
    unique_recipients: bool = False,
) -> SearchStrategy[Json]:
    """Push bodies (``POST /api/v2/push``) that the contract accepts: the mock answers each with 100.

    (With accounts configured, the account model decides too: pass a configured ``token``, and
    channels and templates that account allows, or expect its codes: 401, 403, 801, 802, 804.)

    Each body is one of ``variants`` (all by default), as the docs' pages describe them:

    * ``"bulk"``: a ``globalmessage`` for every recipient (``data[]`` of numbers).
    * ``"dynamic"``: each recipient's own ``message``; a ``globalmessage`` may be the fallback.
    * ``"media"``: ``globalmedia`` (URL) or ``globalmedia_code`` (base64), maybe with a caption,
      ``media_name``, ``voice`` or ``sticker``; on Official channels and shared numbers also media
      per recipient (``data[].media`` / ``media_code``).
    * ``"template"``: WhatsApp Official template: ``template_id``, ``language``, variables in
      ``template_globalmessage`` and/or ``data[].template_message``, maybe ``template_header``.
    * ``"messenger"``: ``application`` 5, recipients by ``messenger_id``.
    * ``"number_filter"``: ``action`` 1, is each number on WhatsApp (no text).
    * ``"location"``, ``"contact"``: a location or a contact card sent to every recipient.

    Options:

    * ``application``: a channel id, a collection of them, or a strategy of them; by default a
      documented channel that fits the variant (now and then a custom id, 1000-99999, as a project
      that connected its own channel has). A given channel only draws the variants it fits
      (``InvalidArgument`` if none does); channels drawn from a strategy that fit no variant are
      rejected, like a filter.
    * ``min_recipients``, ``max_recipients``: the length of ``data[]`` (1 to 10 by default).
    * ``quirks`` (default ``True``): include, now and then, the real-world forms of docs/contract.md §2.2
      that the API accepts: ``"priority "`` with a trailing space, ``application`` / ``priority``
      as strings, numbers as JSON integers, unknown keys (``sleep``, ``quoted``, a
      ``template_id`` in a recipient...), ``message: ""`` beside a ``globalmessage``, the global
      text repeated per recipient, ``globalmedia: ""``, the flags ``action`` / ``voice`` /
      ``sticker`` as ``"1"`` or ``true``. ``False`` draws the documented forms only.
    * ``token``: the token, or a strategy of tokens (default: realistic non-blank tokens).
    * ``texts``: the strategy of message texts (default :func:`message_texts`).
    * ``unique_recipients``: no number (or ``messenger_id``) twice in one body.

    Shrinks toward one recipient (``"916000000000"``), channel 1, token ``"PICKY_API_TOKEN"``, no
    quirks and the fewest fields: the number filter (``"action": 1``, no text) or a bulk push of
    ``"0"``; the first example drawn is that bulk push.
    """
    chosen = tuple(check_choices("variants", variants, VARIANTS))
    lo, hi = check_range("min_recipients", min_recipients, "max_recipients", max_recipients, low=1)
    check_bool("quirks", quirks)
    check_bool("unique_recipients", unique_recipients)
    channels: SearchStrategy[int] | None
    if application is None:
        channels = None
    elif isinstance(application, SearchStrategy):
        channels = application
    else:
        if isinstance(application, int):
            raw: list[object] = [application]
        elif isinstance(application, Collection) and not isinstance(application, str):
            raw = list(application)
        else:
            raise InvalidArgument(f"application={application!r} must be a channel id, a collection or a strategy")
        ids = [channel_id("application", c) for c in raw]
        if not ids:
            raise InvalidArgument("application must not be an empty collection")
        for channel in ids:
            if not any(_fits(v, channel) for v in chosen):
                fitting = [v for v in VARIANTS if _fits(v, channel)]
                raise InvalidArgument(
                    f"application {channel} fits none of the variants {list(chosen)}: it carries {fitting}"
                )
        channels = st.sampled_from(ids)
    tokens = token_strategy(token)
    texts = message_texts() if texts is None else check_strategy("texts", texts, "non-empty strings")
    plan = _PushPlan(chosen, channels, lo, hi, quirks, tokens, texts, unique_recipients)
    return _push_request(plan)


