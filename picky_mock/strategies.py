"""Hypothesis strategies for the Picky Assist push API: requests, answers and webhook payloads.

::

    from hypothesis import given
    from picky_mock.strategies import invalid_push_requests, push_requests

    @given(push_requests(application=3))
    def test_my_sms_client(body): ...

Importing :mod:`picky_mock` does not import Hypothesis; importing this module does (it comes with
the ``test`` extra). Every strategy takes keyword-only options, checks them when it is built
(:class:`hypothesis.errors.InvalidArgument` for an option that cannot be met) and shrinks toward the
plainest case: one recipient, the first channel, a one-character GSM-7 text, no quirks. (Hypothesis
orders examples by size first, so a shrunk body is the one with the fewest fields and choices: a
number-filter push, with no text at all, counts as plainer than a bulk one.)

What is drawn follows ``docs/contract.md``: §2 for requests (§2.2 for the quirks of real
clients), §3 for success answers, §4 for status codes, §6 for webhooks.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, NamedTuple, overload
from urllib.parse import quote_plus

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .errors import STATUS_MESSAGES
from .pricing import GSM7_BASIC, GSM7_EXTENSION, format_credit

__all__ = [
    "BODY_STATUSES",
    "CHANNELS",
    "ENCODINGS",
    "MALFORMED_NUMBER_FORMS",
    "VARIANTS",
    "InvalidPushRequest",
    "delivery_report_events",
    "error_responses",
    "inbound_messages",
    "invalid_push_requests",
    "message_texts",
    "phone_numbers",
    "push_requests",
    "push_responses",
]

Json = dict[str, Any]
Encoding = Literal["gsm7", "gsm7_extended", "ucs2", "emoji"]
Variant = Literal["bulk", "dynamic", "media", "template", "messenger", "number_filter", "location", "contact"]
MalformedForm = Literal["plus", "00", "spaces", "dashes", "international", "leading_zero"]

#: Documented channel ids (``application``, docs/contract.md §2.1), with the two shared numbers.
CHANNELS: Mapping[int, str] = {
    1: "WhatsApp Personal",
    2: "WhatsApp Business",
    3: "SMS",
    4: "Call",
    5: "Facebook Messenger",
    8: "WhatsApp Official",
    10: "WhatsApp Web Automation",
    11: "Instagram",
    101: "WhatsApp Cloud API",
    121: "WhatsApp Business API (Official Managed)",
    919737001155: "shared number (India)",
    556140404433: "shared number (Brazil)",
}
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
#: The text classes :func:`message_texts` draws.
ENCODINGS: tuple[Encoding, ...] = ("gsm7", "gsm7_extended", "ucs2", "emoji")
#: The malformed number forms real clients send (docs/contract.md §2.3), for :func:`phone_numbers`.
MALFORMED_NUMBER_FORMS: tuple[MalformedForm, ...] = ("plus", "00", "spaces", "dashes", "international", "leading_zero")
#: The codes the emulator answers from the body alone, the ones :func:`invalid_push_requests` draws.
BODY_STATUSES: tuple[int, ...] = (401, 402, 406, 407, 410)

_BOOLEANS = st.booleans()


def _pick(draw: st.DrawFn, options: Sequence[Any]) -> Any:
    """One of ``options``, shrinking toward the first: ``sampled_from`` without building a strategy
    in the middle of a draw (``integers`` strategies are cached, ``sampled_from`` ones are not)."""
    return options[draw(st.integers(0, len(options) - 1))]


# -- option checking ---------------------------------------------------------------------------


def _check_size(name: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if value < low:
        raise InvalidArgument(f"{name}={value} must be at least {low}")
    return value


def _check_range(min_name: str, min_value: object, max_name: str, max_value: object, *, low: int) -> tuple[int, int]:
    lo = _check_size(min_name, min_value, low=low)
    hi = _check_size(max_name, max_value, low=low)
    if lo > hi:
        raise InvalidArgument(f"{min_name}={lo} is greater than {max_name}={hi}")
    return lo, hi


def _check_choices(name: str, value: object, allowed: Sequence[Any]) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidArgument(f"{name}={value!r} must be a collection of {', '.join(map(repr, allowed))}")
    chosen = list(value)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name}: unknown {unknown!r}; choose among {', '.join(map(repr, allowed))}")
    if not chosen:
        raise InvalidArgument(f"{name} must not be empty")
    return [v for v in allowed if v in chosen]  # canonical order: shrinks toward the first


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be True or False")
    return value


def _channel_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}: {value!r} is not a channel id (a positive integer, see CHANNELS)")
    return value


# -- phone numbers -----------------------------------------------------------------------------

#: (country calling code, lengths of the national number, first digits of mobile numbers), [ours]
#: from the national numbering plans; Niue's 4-digit numbers give the 7-digit minimum, Austria's
#: 13-digit ones the 15-digit E.164 maximum. India first: numbers shrink toward it.
_COUNTRIES: tuple[tuple[str, tuple[int, ...], str], ...] = (
    ("91", (10,), "6789"),  # India
    ("55", (10, 11), "123456789"),  # Brazil: area code, then 8 or 9 digits
    ("1", (10,), "23456789"),  # NANP
    ("44", (10,), "7"),  # United Kingdom
    ("234", (10,), "789"),  # Nigeria
    ("62", (9, 10, 11, 12), "8"),  # Indonesia
    ("971", (9,), "5"),  # United Arab Emirates
    ("966", (9,), "5"),  # Saudi Arabia
    ("27", (9,), "678"),  # South Africa
    ("52", (10,), "123456789"),  # Mexico
    ("49", (10, 11), "1"),  # Germany
    ("43", (10, 11, 12, 13), "6"),  # Austria
    ("33", (9,), "67"),  # France
    ("34", (9,), "67"),  # Spain
    ("39", (9, 10), "3"),  # Italy
    ("61", (9,), "4"),  # Australia
    ("65", (8,), "89"),  # Singapore
    ("852", (8,), "5679"),  # Hong Kong
    ("86", (11,), "1"),  # China
    ("7", (10,), "9"),  # Russia, Kazakhstan
    ("20", (10,), "1"),  # Egypt
    ("92", (10,), "3"),  # Pakistan
    ("880", (10,), "1"),  # Bangladesh
    ("254", (9,), "17"),  # Kenya
    ("63", (10,), "9"),  # Philippines
    ("60", (9, 10), "1"),  # Malaysia
    ("683", (4,), "4"),  # Niue
)
_COUNTRY_CODES = tuple(code for code, _, _ in _COUNTRIES)


class _Numbers:
    """Draws numbers in few choices: one for a (country, length, first digit, shape) plan, one for
    the remaining digits. ``shape`` is ``"str"``, ``"int"`` or a malformed form."""

    def __init__(self, countries: Sequence[tuple[str, tuple[int, ...], str]], shapes: Sequence[str]) -> None:
        self.plans = st.sampled_from(
            [
                (code, lead, size, shape)
                for code, sizes, leads in countries
                for size in sizes
                for lead in leads
                for shape in shapes
            ]
        )
        self.rests = {size: st.integers(0, 10 ** (size - 1) - 1) for _, sizes, _ in countries for size in sizes}

    def draw(self, draw: st.DrawFn) -> Any:
        code, lead, size, shape = draw(self.plans)
        national = lead + str(draw(self.rests[size])).zfill(size - 1)
        if shape == "str":
            return code + national
        if shape == "int":
            return int(code + national)
        return _malform(shape, code, national)

    def strategy(self) -> SearchStrategy[Any]:
        @st.composite
        def numbers(draw: st.DrawFn) -> Any:
            return self.draw(draw)

        return numbers()


def _group(digits: str, sep: str) -> str:
    """``98765 43210`` style groups of 5, 4 or 3 digits from the end, the way people write numbers."""
    size = 5 if len(digits) >= 9 else 4 if len(digits) >= 6 else 3
    head, groups = len(digits) % size, []
    if head:
        groups.append(digits[:head])
    groups += [digits[i : i + size] for i in range(head, len(digits), size)]
    return sep.join(groups)


def _malform(form: str, code: str, national: str) -> str:
    if form == "plus":
        return f"+{code}{national}"
    if form == "00":
        return f"00{code}{national}"
    if form == "spaces":
        return f"{code} {_group(national, ' ')}"
    if form == "dashes":
        return f"{code}-{_group(national, '-')}"
    if form == "international":
        return f"+{code} {_group(national, ' ')}"
    return f"0{national}"  # leading_zero: the national format, trunk prefix and no country code


@overload
def phone_numbers(
    *,
    countries: Collection[str] | None = None,
    json_integers: Literal[False],
    malformed: bool | Collection[MalformedForm] = False,
) -> SearchStrategy[str]: ...
@overload
def phone_numbers(
    *,
    countries: Collection[str] | None = None,
    json_integers: Literal[True],
    malformed: Literal[False] = False,
) -> SearchStrategy[int]: ...
@overload
def phone_numbers(
    *,
    countries: Collection[str] | None = None,
    json_integers: bool | None = None,
    malformed: bool | Collection[MalformedForm] = False,
) -> SearchStrategy[str | int]: ...
def phone_numbers(
    *,
    countries: Collection[str] | None = None,
    json_integers: bool | None = None,
    malformed: bool | Collection[MalformedForm] = False,
) -> SearchStrategy[str | int] | SearchStrategy[str] | SearchStrategy[int]:
    """Mobile numbers as ``data[].number`` carries them: country code and national number, digits only.

    Each number has a real country calling code (27 countries, see ``_COUNTRIES``) and a
    national number of a length that country uses, so numbers run from 7 digits (Niue) to 15
    (Austria) and never start with 0: the contract (``$defs/phoneNumber``) accepts every one.

    * ``countries``: calling codes to draw from (``{"91", "55"}``); all known ones by default.
    * ``json_integers``: ``None`` (default) draws digit strings and JSON integers, the mix one real
      client sends (docs/contract.md §2.2); ``False`` only strings, ``True`` only integers.
    * ``malformed``: ``True`` or some of :data:`MALFORMED_NUMBER_FORMS` draws instead numbers in the
      forms real clients send by mistake (docs/contract.md §2.3): ``"plus"`` ``+919876543210``,
      ``"00"`` ``00919876543210``, ``"spaces"`` ``91 98765 43210``, ``"dashes"``
      ``91-98765-43210``, ``"international"`` ``+91 98765 43210`` (the docs' "wrong format"),
      ``"leading_zero"`` ``09876543210`` (national format). Every one is answered 406 in strict
      mode; lenient mode repairs all but ``leading_zero``. Malformed numbers are strings.

    Shrinks toward the first country (India), its shortest length and then zeros:
    ``"916000000000"``.
    """
    if countries is None:
        table = list(_COUNTRIES)
    else:
        codes = _check_choices("countries", countries, _COUNTRY_CODES)
        table = [row for row in _COUNTRIES if row[0] in codes]
    if json_integers is not None:
        _check_bool("json_integers", json_integers)
    if malformed is False:
        shapes = ["str", "int"] if json_integers is None else ["int"] if json_integers else ["str"]
        return _Numbers(table, shapes).strategy()
    forms = (
        list(MALFORMED_NUMBER_FORMS)
        if malformed is True
        else _check_choices("malformed", malformed, MALFORMED_NUMBER_FORMS)
    )
    if json_integers:
        raise InvalidArgument("malformed numbers are strings: json_integers=True cannot be met")
    return _Numbers(table, forms).strategy()


# -- message texts -----------------------------------------------------------------------------


def _ordered(preferred: str, universe: frozenset[str]) -> str:
    """The characters of ``universe``, those of ``preferred`` first (shrinking goes toward them)."""
    head = [ch for ch in dict.fromkeys(preferred) if ch in universe]
    return "".join(head) + "".join(sorted(universe - set(head)))


_GSM_BASIC = _ordered("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()\n", GSM7_BASIC)
_GSM_EXTENSION = _ordered("€[]{}~^|\\", GSM7_EXTENSION)
_FILLER = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:"
_UCS2 = "".join(
    dict.fromkeys(
        ch
        for ch in (
            "çãõâêôáíóúÁÍÓÚœ\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022₹ıİğş"  # Latin, typography
            "नमस्तेधन्यवाद"
            "مرحباشكر"
            "приветДОБРЫЙ"
            "你好谢谢"
            "안녕"
            "ありがとう"
            "✅★☎"  # other scripts, BMP symbols
        )
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION and ord(ch) <= 0xFFFF
    )
)
#: Emoji, each with at least one character outside the BMP (two UTF-16 units): single code points
#: first, then a skin tone, flags and ZWJ sequences.
_EMOJI_SINGLE = ("😀", "😂", "👍", "🙏", "🎉", "🔥", "📦", "💰", "🧾", "🚚")
_EMOJI = (*_EMOJI_SINGLE, "👍🏽", "🇮🇳", "🇧🇷", "👨\u200d👩\u200d👧", "❤\ufe0f\u200d🔥")
_BASE_ALPHABET: Mapping[str, str] = {
    "gsm7": _GSM_BASIC,
    "gsm7_extended": _GSM_BASIC + _GSM_EXTENSION,
    "ucs2": _GSM_BASIC + _GSM_EXTENSION + _UCS2,
    "emoji": _GSM_BASIC + _UCS2,
}
#: The characters one text of each class must hold at least one of (``None``: nothing required).
_REQUIRED: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {
    "gsm7": None,
    "gsm7_extended": (tuple(_GSM_EXTENSION), tuple(_GSM_EXTENSION)),
    "ucs2": (tuple(_UCS2), (*_UCS2, "❤\ufe0f")),
    "emoji": (_EMOJI_SINGLE, _EMOJI),
}
#: WhatsApp markup each class can carry without changing its encoding: ``~`` is a GSM-7
#: extension character and the backtick is not GSM-7 at all.
_MARKUP: Mapping[str, tuple[str, ...]] = {
    "gsm7": ("*", "_"),
    "gsm7_extended": ("*", "_", "~"),
    "ucs2": ("*", "_", "~", "```"),
    "emoji": ("*", "_", "~", "```"),
}


def _boundaries(single: int, multi: int) -> tuple[int, ...]:
    edges = (single, 2 * multi, 3 * multi)
    return tuple(edge + delta for edge in edges for delta in (-1, 0, 1))


#: SMS segment edges in units (septets for GSM-7, UTF-16 code units for UCS-2) and one either side:
#: one segment (160 / 70), two (306 / 134), three (459 / 201).
_GSM_BOUNDARIES = _boundaries(160, 153)
_UCS2_BOUNDARIES = _boundaries(70, 67)
_SHORT_DEFAULT = 100


def _units(text: str, gsm: bool) -> int:
    if gsm:
        return len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    return len(text) + sum(ord(ch) > 0xFFFF for ch in text)


_POOLS: Mapping[str, tuple[SearchStrategy[str], SearchStrategy[str]] | None] = {
    encoding: None if required is None else (st.sampled_from(required[0]), st.sampled_from(required[1]))
    for encoding, required in _REQUIRED.items()
}
#: Half the texts carry no markup (``None``, first: shrinking removes it).
_MARKERS = {encoding: st.sampled_from((None,) * len(markers) + markers) for encoding, markers in _MARKUP.items()}
_PHRASES = st.text(alphabet=_FILLER, min_size=1, max_size=24)
_ONE_IN_THREE = st.integers(0, 2)


def _short_text(draw: st.DrawFn, encoding: str, min_size: int, max_size: int, markup: bool) -> str:
    pools = _POOLS[encoding]
    tokens: list[str] = []
    if pools is not None:
        count = draw(st.integers(1, min(3, max_size // 8))) if max_size >= 16 else 1
        pool = pools[1] if max_size >= 24 else pools[0]
        tokens = [draw(pool) for _ in range(count)]
    injected = sum(map(len, tokens))
    lo = max(0, min_size - injected)
    hi = max(lo, max_size - injected)
    text = draw(st.text(alphabet=_BASE_ALPHABET[encoding], min_size=lo, max_size=hi))
    for token in tokens:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + token + text[at:]
    marker = draw(_MARKERS[encoding]) if markup else None
    if marker is not None and len(text) + 2 * len(marker) <= max_size:
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, len(text)))
        text = text[:start] + marker + text[start:end] + marker + text[end:]
    return text


def _message_text(
    encodings: Sequence[str],
    min_size: int,
    max_size: int | None,
    short_max: int,
    boundaries: bool,
    markup: bool,
) -> SearchStrategy[str]:
    # One choice picks the class and whether the text sits on a segment edge (one time in three).
    plans: list[tuple[str, SearchStrategy[int] | None]] = []
    for encoding in encodings:
        edges = [
            t
            for t in (_GSM_BOUNDARIES if encoding.startswith("gsm7") else _UCS2_BOUNDARIES)
            if t >= 2 * min_size and (max_size is None or t <= max_size)
        ]
        plans += [(encoding, None), (encoding, None)]
        if boundaries and edges:
            plans.append((encoding, st.sampled_from(edges)))
    chosen = st.sampled_from(plans)

    @st.composite
    def draw_text(draw: st.DrawFn) -> str:
        encoding, edge = draw(chosen)
        if edge is None:
            return _short_text(draw, encoding, min_size, short_max, markup)
        # On or next to a segment edge: a short body of the class (its special characters, its
        # markup) placed somewhere in a filler of one-unit characters, to exactly ``target`` units.
        target = draw(edge)
        body = _short_text(draw, encoding, 0, 16, markup)
        fill = target - _units(body, encoding.startswith("gsm7"))
        phrase = draw(_PHRASES)
        filler = (phrase * (fill // len(phrase) + 1))[:fill]
        at = draw(st.integers(0, fill))
        return filler[:at] + body + filler[at:]

    return draw_text()


def message_texts(
    *,
    encodings: Collection[Encoding] = ENCODINGS,
    min_size: int = 1,
    max_size: int | None = None,
    segment_boundaries: bool = True,
    whatsapp_markup: bool = True,
) -> SearchStrategy[str]:
    """Message texts of the kinds a push carries, classed by how an SMS would encode them.

    Each text belongs to one class of ``encodings`` (all by default):

    * ``"gsm7"``: only characters of the GSM 03.38 basic alphabet (letters, digits, ``@£$¥èé``,
      Greek capitals, newline...): one septet each, 160 to a single SMS.
    * ``"gsm7_extended"``: GSM-7 with at least one extension character (``€[]{}~^|\\`` or form
      feed), which takes two septets.
    * ``"ucs2"``: at least one BMP character outside GSM-7 (``ç``, ``ã``, curly quotes, ``₹``,
      Devanagari, Arabic, Cyrillic, CJK...): the whole text goes UCS-2, 70 to a single SMS.
    * ``"emoji"``: at least one emoji outside the BMP (two UTF-16 units: single code points, skin
      tones, flags, ZWJ families).

    ``min_size`` and ``max_size`` bound ``len(text)`` (characters). Short texts run up to
    ``max_size`` (100 characters when not given). With ``segment_boundaries`` (default) about a
    third of the texts land exactly on, or one unit either side of, the edge of one, two or three
    SMS segments (GSM-7 159-161, 305-307, 458-460 septets; UCS-2 69-71, 133-135, 200-202 units),
    the place where off-by-one bugs in segment counting live; the special characters of the class
    sit anywhere in them, so a two-septet character may straddle a part boundary. With
    ``whatsapp_markup`` (default) some texts carry WhatsApp markup (``*bold*``, ``_italic_``,
    ``~strike~``, ```` ```mono``` ````), only the markers that keep the text in its class.

    Texts hold no lone surrogates and no NUL. Shrinks toward a one-character GSM-7 text (``"0"``),
    with no markup, off the segment edges.
    """
    chosen = _check_choices("encodings", encodings, ENCODINGS)
    lo = _check_size("min_size", min_size, low=0)
    if max_size is not None:
        _check_range("min_size", min_size, "max_size", max_size, low=0)
        if max_size < 1:
            raise InvalidArgument(f"max_size={max_size}: a message text needs room for one character")
    _check_bool("segment_boundaries", segment_boundaries)
    _check_bool("whatsapp_markup", whatsapp_markup)
    short_max = max_size if max_size is not None else max(_SHORT_DEFAULT, lo)
    return _message_text(chosen, lo, max_size, short_max, segment_boundaries, whatsapp_markup)


# -- push requests -----------------------------------------------------------------------------

_WHATSAPP = (1, 2, 10, 8, 101, 121)
_SHARED = (919737001155, 556140404433)
_NOT_MESSENGER = tuple(c for c in CHANNELS if c != 5)
_VARIANT_CHANNELS: Mapping[str, tuple[int, ...]] = {
    "bulk": _NOT_MESSENGER,
    "dynamic": _NOT_MESSENGER,
    "media": (1, 2, 8, 10, 11, 101, 121, *_SHARED),
    "template": (8, 101, 121, *_SHARED),
    "messenger": (5,),
    "number_filter": _WHATSAPP,
    "location": (*_WHATSAPP, *_SHARED),
    "contact": (*_WHATSAPP, *_SHARED),
}
#: Variants that a channel a project connected itself (an id not in CHANNELS) may carry.
_CUSTOM_VARIANTS = frozenset({"bulk", "dynamic", "media"})
#: Official channels and shared numbers: the only ones where ``data[].media`` is documented.
_PER_ITEM_MEDIA = frozenset({8, 101, 121, *_SHARED})
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

_TOKENS = st.one_of(
    st.just("PICKY_API_TOKEN"),
    st.integers(0, 2**128 - 1).map(lambda n: f"{n:032x}"),
    st.integers(0, 2**64 - 1).map(lambda n: f"{n:020d}-PA"),
)
_MEDIA = (
    ("https://cdn.example.com/promo/banner.jpg", "image"),
    ("https://cdn.example.com/invoices/INV-2024-0042.pdf", "document"),
    ("https://cdn.example.com/video/demo.mp4", "video"),
    ("https://cdn.example.com/audio/greeting.ogg", "audio"),
    ("https://cdn.example.com/stickers/thanks.webp", "sticker"),
    ("http://example.org/img?id=7&size=large", "image"),
)
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
_CONTACTS = st.one_of(
    st.builds(
        lambda name, number: {"name": name, "number": number},
        st.sampled_from(("Support desk", "Ravi Kumar", "Ana Souza")),
        phone_numbers(json_integers=False),
    ),
    st.just("BEGIN:VCARD\nVERSION:3.0\nFN:Support desk\nTEL:+919876543210\nEND:VCARD"),
)
_REFERENCES = st.one_of(st.integers(1, 10**9).map(lambda n: f"ORD-{n}"), st.integers(1, 10**9))
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
_MEDIA_ITEMS = st.sampled_from(_MEDIA)
_MEDIA_NAME_CHOICES = st.sampled_from(_MEDIA_NAMES)
_HEADERS = st.sampled_from((_MEDIA[0][0], "Your order", "object"))
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
        self.numbers = _Numbers(_COUNTRIES, ("str", "int") if quirks else ("str",))
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


@st.composite
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
        item["reference_number"] = draw(_REFERENCES)
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


@st.composite
def _push_request(draw: st.DrawFn, plan: _PushPlan) -> Json:
    if plan.channels is None:
        variant = draw(plan.variant)
        channel = draw(_CHANNEL_FOR[variant])
    else:
        channel = draw(plan.channels)
        fitting = [v for v in plan.variants if _fits(v, channel)]
        assume(fitting)  # only a strategy given as ``application`` can draw a channel nothing fits
        variant = _pick(draw, fitting)
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
    chosen = tuple(_check_choices("variants", variants, VARIANTS))
    lo, hi = _check_range("min_recipients", min_recipients, "max_recipients", max_recipients, low=1)
    _check_bool("quirks", quirks)
    _check_bool("unique_recipients", unique_recipients)
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
        ids = [_channel_id("application", c) for c in raw]
        if not ids:
            raise InvalidArgument("application must not be an empty collection")
        for channel in ids:
            if not any(_fits(v, channel) for v in chosen):
                fitting = [v for v in VARIANTS if _fits(v, channel)]
                raise InvalidArgument(
                    f"application {channel} fits none of the variants {list(chosen)}: it carries {fitting}"
                )
        channels = st.sampled_from(ids)
    if token is None:
        tokens = _TOKENS
    elif isinstance(token, SearchStrategy):
        tokens = token
    elif isinstance(token, str) and token.strip():
        tokens = st.just(token)
    else:
        raise InvalidArgument(f"token={token!r} must be a non-blank string or a strategy (a blank one is a 401)")
    if texts is not None and not isinstance(texts, SearchStrategy):
        raise InvalidArgument(f"texts={texts!r} must be a strategy of non-empty strings")
    texts = texts if texts is not None else message_texts()
    plan = _PushPlan(chosen, channels, lo, hi, quirks, tokens, texts, unique_recipients)
    return _push_request(plan)


# -- invalid push requests ---------------------------------------------------------------------


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
        ("number in a malformed form", phone_numbers(malformed=True)),
        ("number too short", st.integers(1, 999999).map(str)),
        ("number too long", st.integers(10**15, 10**16 - 1).map(str)),
        ("number with letters", st.sampled_from(("NUMBER 1", "91987654321O", "55 11 9xxxx-xxxx", "phone", "+"))),
        ("number empty", st.sampled_from(("", " "))),
        ("number integer out of range", st.sampled_from((0, -919876543210, 123456, 10**15, 10**20))),
        ("number not a string or integer", st.sampled_from((919876543210.5, None, True, ["919876543210"], {"n": 1}))),
    )
)
_WRONG_NUMBER_KEYS = ("phone", "mobile", "Number", "to", "msisdn")
_RULES: Mapping[int, tuple[str, ...]] = {
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


@st.composite
def _invalid(draw: st.DrawFn, statuses: Sequence[int], base: SearchStrategy[Json]) -> InvalidPushRequest:
    status = _pick(draw, statuses)
    rule = _pick(draw, _RULES[status])
    body = draw(base)
    one = _pick(draw, _items(body))  # push_requests draws at least one recipient
    if rule == "token missing":
        del body["token"]
    elif rule == "token empty":
        body["token"] = ""
    elif rule == "token blank":
        body["token"] = _pick(draw, (" ", "   ", "\t", "\n"))
    elif rule == "token not a string":
        body["token"] = draw(_BAD_TOKENS)
    elif rule == "data missing":
        del body["data"]
    elif rule == "data empty":
        body["data"] = []
    elif rule == "body not an object":
        return InvalidPushRequest(_pick(draw, ([body], None, 0, True, "push")), status, rule)
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
        body["data"] = _pick(draw, (body["data"][0], "919876543210,5511987654321", None, 919876543210))
    elif rule == "recipient not an object":
        numbers = [str(item.get("number", item.get("messenger_id"))) for item in body["data"]]
        body["data"] = _pick(draw, (numbers, [int(n) for n in numbers], [numbers]))
    elif rule == "top-level field of the wrong type":
        key = _pick(draw, tuple(_BAD_TOP))
        body[key] = _pick(draw, _BAD_TOP[key])
        if not _has_global_content(body):  # the media was the content: keep the 407 rule unbroken
            _give_content(body)
        rule = f"{key} of the wrong type"
    elif rule == "recipient field of the wrong type":
        key = _pick(draw, tuple(_BAD_ITEM))
        one[key] = _pick(draw, _BAD_ITEM[key])
        if key in _ITEM_CONTENT and not _has_global_content(body):
            body["globalmessage"] = _FALLBACK_TEXT
        rule = f"data[].{key} of the wrong type"
    elif rule == "messenger_id empty":
        one["messenger_id"] = ""
    elif rule == "globalmessage not a string":
        body["globalmessage"] = _pick(draw, (123, None, ["hi"], {"text": "hi"}, True))
        if not _has_global_content(body):
            _give_content(body)
    elif rule in _BAD_NUMBERS:
        one["number"] = draw(_BAD_NUMBERS[rule])
    elif rule == "recipient without number or messenger_id":
        value = one.pop("number", None)
        value = one.pop("messenger_id", value)
        wrong = _pick(draw, (None, *_WRONG_NUMBER_KEYS))
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
        body["action"] = _pick(draw, (0, "0", False, ""))
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
    does not depend on the precedence between rules (docs/contract.md §4.1, ``STATUS_PRECEDENCE``):

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
    _check_bool("quirks", quirks)
    return _invalid(chosen, push_requests(quirks=quirks, max_recipients=5))


# -- answers -----------------------------------------------------------------------------------

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


@st.composite
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
        lo, hi = _check_range("min_size", min_size, "max_size", max_size, low=0)
        numbers = st.lists(phone_numbers(json_integers=False), min_size=lo, max_size=hi)
    if credits is not None and not isinstance(credits, SearchStrategy):
        raise InvalidArgument(f"credits={credits!r} must be a strategy of decimal strings")
    return _push_response(numbers, credits if credits is not None else _CREDITS)


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


# -- webhooks ----------------------------------------------------------------------------------

#: Delivery report states (docs/contract.md §6.1). 3 (Read) is never reported by phone automation (1-4).
_REPORT_STATES = (1, 4, 3, 2, 5, 0)
_PHONE_AUTOMATION = frozenset({1, 2, 3, 4})
_MESSAGE_TYPES = ("Text", "Image", "Audio", "Video", "Document")
_FAILURES = (
    "Message undeliverable",
    "Recipient is not a valid WhatsApp user",
    "Re-engagement message: more than 24 hours since the customer last replied",
    "Insufficient balance, credit refunded",
)
_PROJECT_IDS = st.integers(1000, 99999).map(str)
_REPORT_TEXTS = message_texts(segment_boundaries=False, max_size=160)
_STRING_NUMBERS = phone_numbers(json_integers=False)


def _channel_strategy(
    name: str, value: Collection[int] | SearchStrategy[int] | None, default: Sequence[int]
) -> SearchStrategy[int]:
    if value is None:
        return st.sampled_from(default)
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, str) or not isinstance(value, Collection) or not value:
        raise InvalidArgument(f"{name}={value!r} must be a non-empty collection of channel ids or a strategy")
    return st.sampled_from([_channel_id(name, c) for c in value])


@st.composite
def _report_entry(
    draw: st.DrawFn,
    push_id: str,
    msg_id: str,
    number: str,
    channel: int,
    states: Sequence[int],
    reference: str | None,
) -> dict[str, str]:
    possible = [s for s in states if not (s == 3 and channel in _PHONE_AUTOMATION)] or [0]
    state = _pick(draw, possible)
    kind = _pick(draw, _MESSAGE_TYPES)
    failed = state in (2, 5)
    entry = {"push_id": push_id, "number": number, "msg_id": msg_id, "status": str(state)}
    if reference is not None:
        entry["reference_number"] = reference
    entry.update(
        error_code="",  # [doc] "future scope": always empty so far
        error_message=_pick(draw, _FAILURES) if failed and draw(st.booleans()) else "",
        message=draw(_REPORT_TEXTS) if kind == "Text" or draw(st.booleans()) else "",
        message_type=kind,
        media="" if kind == "Text" else _pick(draw, _MEDIA)[0],
        channel_id=str(channel),
    )
    return entry


@st.composite
def _delivery_event(
    draw: st.DrawFn,
    response: Mapping[str, Any] | None,
    states: Sequence[int],
    channels: SearchStrategy[int],
    min_size: int,
    max_size: int,
) -> Json:
    channel = draw(channels)
    entries = []
    if response is not None:
        data = response["data"]
        chosen = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=len(data), unique=True))
        for index in sorted(chosen):
            item = data[index]
            entries.append(
                draw(
                    _report_entry(
                        str(response["push_id"]), str(item["msg_id"]), str(item["number"]), channel, states, None
                    )
                )
            )
    else:
        count = draw(st.integers(min_size, max_size))
        push_id = draw(st.integers(1, 10**10))
        first = draw(st.integers(1, 10**10))
        for i in range(count):
            reference = draw(st.none() | _REFERENCES.map(str))
            entries.append(
                draw(_report_entry(str(push_id), str(first + i), draw(_STRING_NUMBERS), channel, states, reference))
            )
    return {"project_id": draw(_PROJECT_IDS), "event_id": 1, "data": entries}


def delivery_report_events(
    *,
    response: Mapping[str, Any] | None = None,
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
    push sent one), ``error_code`` (empty: "future scope"), ``error_message`` (maybe set when
    Failed or Refunded), ``message``, ``message_type`` (``Text``, ``Image``, ``Audio``, ``Video``,
    ``Document``), ``media`` (a URL, empty for text) and ``channel_id``. Read is never reported on
    phone-automation channels (1-4).

    * ``response``: a success answer (say from :func:`push_responses` or the mock): the event
      reports some of its messages, in order, with their ``push_id``, ``msg_id`` and ``number``.
      Otherwise ``min_size`` to ``max_size`` reports of one drawn push.
    * ``statuses``: the states to draw (0-5), all by default.
    * ``application``: channel ids (a collection or a strategy) for ``channel_id``.

    Shrinks toward one report of few fields on channel 1.
    """
    states = list(_REPORT_STATES)
    if statuses is not None:
        wanted = _check_choices("statuses", statuses, sorted(_REPORT_STATES))
        states = [s for s in _REPORT_STATES if s in wanted]
    channels = _channel_strategy("application", application, (1, 8, 101, 2, 3, 10, 5, 11, 121))
    lo, hi = _check_range("min_size", min_size, "max_size", max_size, low=1)
    if response is not None and (
        not isinstance(response, Mapping)
        or response.get("status") != 100
        or not isinstance(response.get("data"), list)
        or not response["data"]
    ):
        raise InvalidArgument("response must be a success answer (status 100) with a non-empty data[] list")
    return _delivery_event(response, states, channels, lo, hi)


#: Incoming message types (docs/contract.md §6.4): 1 text, 2 image, 3 video, 4 audio, 5 location,
#: 6 document, 7 contact, 9 button.
_INBOUND_TYPES = (1, 2, 3, 4, 5, 6, 7, 9)
_NAMES = ("Asha", "João Silva", "Mohammed", "Ravi 🙂", "", "Zoë")
_CONTACT_NAMES = ("Mum", "Ravi Kumar", "Dr. Ana (clinic)")
_ONE_IN_FIVE = st.integers(0, 4)


def _numeric(draw: st.DrawFn, value: int, mixed: bool) -> int | str:
    return str(value) if mixed and draw(st.booleans()) else value


@st.composite
def _inbound(draw: st.DrawFn, channels: SearchStrategy[int], types: Sequence[int], mixed: bool) -> Json:
    channel = draw(channels)
    kind = _pick(draw, types)
    if kind == 5:
        text = _pick(draw, ("12.971599,77.594566", "https://maps.google.com/?q=-23.55,-46.63"))
    elif kind == 7:
        text = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Souza\nTEL:+5511987654321\nEND:VCARD"
    elif kind in (2, 3, 4, 6):
        text = draw(st.just("") | message_texts(segment_boundaries=False, max_size=120))  # a caption
    else:
        text = draw(message_texts(segment_boundaries=False, max_size=300))
    payload: Json = {}
    if channel == 5:
        payload["number"] = ""
        payload["messenger_id"] = _numeric(draw, draw(st.integers(10**15, 10**17 - 1)), mixed)
    elif channel in (1, 2, 3) and draw(_ONE_IN_FIVE) == 4:
        payload["number"] = _pick(draw, _CONTACT_NAMES)  # [doc] a saved contact's name instead
    elif channel == 10 and draw(_ONE_IN_FIVE) == 4:
        payload["number"] = f"Family group @{draw(_STRING_NUMBERS)}"  # [doc] a group: name @sender
    else:
        payload["number"] = draw(_STRING_NUMBERS)
    payload["message-in"] = quote_plus(text)
    payload["message_in_raw"] = text
    payload["application"] = _numeric(draw, channel, mixed)
    payload["type"] = _numeric(draw, kind, mixed)
    payload["unique-id"] = str(draw(st.integers(10**8, 10**10)))
    payload["project-id"] = _numeric(draw, draw(st.integers(1000, 99999)), mixed)
    payload["name"] = _pick(draw, _NAMES) if channel in (5, 8, 10, 101, 121) else ""
    direction = 1 if channel == 10 and draw(_ONE_IN_FIVE) == 4 else 0  # [doc] outbound: web automation only
    payload["direction"] = _numeric(draw, direction, mixed)
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
    ``unquote_plus`` it), ``message_in_raw`` (the same text, raw), ``application`` (channel id),
    ``type`` (1 text, 2 image, 3 video, 4 audio, 5 location, 6 document, 7 contact, 9 button),
    ``unique-id``, ``project-id``, ``name`` (set on Official, Web Automation and Messenger only),
    ``direction`` (0 inbound; 1 outbound, on WhatsApp Web Automation only).

    * ``application``: channel ids (a collection or a strategy); 1, 2, 3, 5, 8, 10, 101 by default.
    * ``types``: the message types to draw.
    * ``mixed_types`` (default ``True``): the fields the docs call numeric (``application``,
      ``type``, ``direction``, ``project-id``, ``messenger_id``) come as JSON numbers or as numeric
      strings, as they differ between the docs' samples; a handler must accept both. ``False``:
      always JSON numbers.

    Shrinks toward a message from ``"916000000000"`` on channel 1, as JSON numbers, with a
    fixed text (a contact card or a one-character text).
    """
    channels = _channel_strategy("application", application, (1, 2, 3, 5, 8, 10, 101))
    kinds = list(_INBOUND_TYPES) if types is None else _check_choices("types", types, _INBOUND_TYPES)
    _check_bool("mixed_types", mixed_types)
    return _inbound(channels, kinds, mixed_types)
