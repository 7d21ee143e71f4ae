"""Message texts classed by how an SMS would encode them, with the segment edges where counting bugs live."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from ..pricing import GSM7_BASIC, GSM7_EXTENSION
from .options import check_bool, check_choices, check_range, check_size, composite

__all__ = ["ENCODINGS", "message_texts"]

Encoding = Literal["gsm7", "gsm7_extended", "ucs2", "emoji"]

#: The text classes :func:`message_texts` draws.
ENCODINGS: tuple[Encoding, ...] = ("gsm7", "gsm7_extended", "ucs2", "emoji")

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
    return _texts(st.sampled_from(plans), min_size, short_max, markup)


@composite
def _texts(
    draw: st.DrawFn,
    plans: SearchStrategy[tuple[str, SearchStrategy[int] | None]],
    min_size: int,
    short_max: int,
    markup: bool,
) -> str:
    encoding, edge = draw(plans)
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
    chosen = check_choices("encodings", encodings, ENCODINGS)
    lo = check_size("min_size", min_size, low=0)
    if max_size is not None:
        check_range("min_size", min_size, "max_size", max_size, low=0)
        if max_size < 1:
            raise InvalidArgument(f"max_size={max_size}: a message text needs room for one character")
    check_bool("segment_boundaries", segment_boundaries)
    check_bool("whatsapp_markup", whatsapp_markup)
    short_max = max_size if max_size is not None else max(_SHORT_DEFAULT, lo)
    return _message_text(chosen, lo, max_size, short_max, segment_boundaries, whatsapp_markup)

