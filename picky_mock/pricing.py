"""What a message costs: SMS segment counting and the per-channel price table.

[ours] The real price list is not public. picky-mock charges every channel per message except SMS,
which is charged per segment, the way SMS gateways bill: a text in the GSM 03.38 alphabet (7-bit
septets, the extension characters ``^{}\\[~]|€`` and form feed taking two) fits 160 septets in one
segment, or 153 a part once split; any other character makes the whole text UCS-2: 70 UTF-16 code
units, or 67 a part. A two-septet character or a surrogate pair is never split across parts. Money is
:class:`decimal.Decimal`, never float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

from .errors import ConfigError

__all__ = [
    "DEFAULT_PRICES",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "PriceTable",
    "Segmentation",
    "format_credit",
    "parse_amount",
    "segment",
]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_SINGLE_GSM, _MULTI_GSM = 160, 153
_SINGLE_UCS2, _MULTI_UCS2 = 70, 67


class Segmentation(NamedTuple):
    """How an SMS text is sent: its encoding, its length in units (septets or UTF-16 code units)
    and the number of segments it takes."""

    encoding: str
    units: int
    segments: int


def _fill(sizes: list[int], single: int, multi: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:
        if used + size > multi:
            parts += 1
            used = 0
        used += size
    return parts


@lru_cache(maxsize=4096)
def segment(text: str) -> Segmentation:
    """Count the SMS segments of ``text`` (an empty text takes one segment).

    Cached: a bulk push sends one global text to many recipients.
    """
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segmentation("GSM-7", sum(sizes), _fill(sizes, _SINGLE_GSM, _MULTI_GSM))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return Segmentation("UCS-2", sum(sizes), _fill(sizes, _SINGLE_UCS2, _MULTI_UCS2))


def parse_amount(where: str, value: object) -> Decimal:
    """An amount of money from a config value (``"0.005"``, ``0.005``, ``5``): exact, finite, >= 0;
    else a :class:`ConfigError` that says ``where``. Floats are read by their shortest repr."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r} is not an amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} = {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where} = {value!r} must be a finite amount >= 0")
    if amount and not -_MAX_DIGITS <= amount.adjusted() < _MAX_DIGITS:  # before any arithmetic can overflow
        raise ConfigError(f"{where} = {value!r}: an amount has at most {_MAX_DIGITS} digits before and after the point")
    exact = amount.normalize()  # 0.0050000000000000000000 is 0.005
    if exact.adjusted() >= _MAX_DIGITS or (exact and exact.as_tuple().exponent < -_MAX_DIGITS):  # type: ignore[operator]
        raise ConfigError(f"{where} = {value!r}: an amount has at most {_MAX_DIGITS} digits before and after the point")
    return amount


_MAX_DIGITS = 18
"""No price is that large or that fine; "1e400000" would make credit strings 400,000 digits long."""


def format_credit(amount: Decimal) -> str:
    """A credit as the API writes it: a plain decimal string, no exponent, no trailing zeros (and
    no sign: a price of ``-0`` is free, and the response schema allows digits only)."""
    if amount.is_zero():
        return "0"
    text = format(amount, "f")  # exact: normalize() would round to the context's 28 digits
    return text.rstrip("0").rstrip(".") if "." in text else text


SMS_CHANNEL = 3

#: [ours] Default prices, per message (per segment for SMS): the docs' sample shows "0.005".
DEFAULT_PRICES: Mapping[str, str] = {
    "default": "0.005",
    "3": "0.01",
    "4": "0.02",
    "5": "0",
    "11": "0",
}


class PriceTable:
    """Per-channel unit prices. Keys are channel ids (as strings) and ``"default"``."""

    def __init__(self, prices: Mapping[str, object] | None = None) -> None:
        merged: dict[str, object] = dict(DEFAULT_PRICES)
        if prices:
            merged.update({str(k).strip(): v for k, v in prices.items()})
        self._prices: dict[str, Decimal] = {}
        for key, value in merged.items():
            if key != "default" and not (key.isascii() and key.isdigit()):
                raise ConfigError(f"prices: key {key!r} is neither a channel id nor 'default'")
            self._prices[key] = parse_amount(f"prices: {key}", value)
        self._memo: dict[tuple[int, str], tuple[int, Decimal, str]] = {}

    def unit_price(self, channel: int) -> Decimal:
        """The price of one message (one SMS segment) on ``channel``."""
        return self._prices.get(str(channel), self._prices["default"])

    def as_dict(self) -> dict[str, str]:
        return {key: format_credit(value) for key, value in self._prices.items()}

    def charge(self, channel: int, text: str) -> tuple[int, Decimal, str]:
        """``(segments, credit, credit as a string)`` of one message of ``text`` on ``channel``."""
        key = (channel, text) if channel == SMS_CHANNEL else (channel, "")
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        segments = segment(text).segments if channel == SMS_CHANNEL else 1
        credit = self.unit_price(channel) * segments
        result = (segments, credit, format_credit(credit))
        if len(self._memo) < 4096:
            self._memo[key] = result
        return result
