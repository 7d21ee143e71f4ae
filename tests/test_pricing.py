"""SMS segment counting at its boundaries, and the price table's exact decimal money
(docs/contract.md §3.2: GSM-7 160 / 153 a part, UCS-2 70 / 67 a part, SMS charged per segment)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picky_mock.errors import ConfigError
from picky_mock.pricing import DEFAULT_PRICES, GSM7_BASIC, GSM7_EXTENSION, PriceTable, format_credit, segment

CYRILLIC = "ж"  # outside GSM-7: the whole text becomes UCS-2
EMOJI = "😀"  # outside the BMP: a surrogate pair, two UTF-16 units
CREDIT = re.compile(r"^[0-9]+(\.[0-9]+)?$")  # the response schema's pattern


def test_the_gsm7_alphabet():
    assert len(GSM7_BASIC) == 127, "128 code points less the escape"
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")
    assert not GSM7_BASIC & GSM7_EXTENSION
    for char in "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r !\"#%&'()*+,-./:;<=>?":
        assert char in GSM7_BASIC, char
    for char in "`çÁáíóú€":
        assert char not in GSM7_BASIC, char


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a", "GSM-7", 1, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 459, "GSM-7", 459, 3),
        ("a" * 460, "GSM-7", 460, 4),
        (CYRILLIC * 70, "UCS-2", 70, 1),
        (CYRILLIC * 71, "UCS-2", 71, 2),
        (CYRILLIC * 134, "UCS-2", 134, 2),
        (CYRILLIC * 135, "UCS-2", 135, 3),
        (CYRILLIC * 201, "UCS-2", 201, 3),
        (CYRILLIC * 202, "UCS-2", 202, 4),
        # one character outside GSM-7 makes the whole text UCS-2
        ("a" * 69 + "ç", "UCS-2", 70, 1),
        ("a" * 70 + "ç", "UCS-2", 71, 2),
    ],
    ids=lambda v: v if isinstance(v, (int, str)) and len(str(v)) < 12 else None,
)
def test_segment_boundaries(text, encoding, units, segments):
    assert tuple(segment(text)) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("a" * 158 + "€", 160, 1),
        ("a" * 159 + "€", 161, 2),  # 159 basic + one extension character = 161 septets
        ("{" * 80, 160, 1),
        ("{" * 81, 162, 2),
        ("a" * 159 + "{", 161, 2),
        ("\f" + "a" * 158, 160, 1),
        ("[]" * 40, 160, 1),
    ],
)
def test_extension_characters_take_two_septets(text, units, segments):
    assert tuple(segment(text)) == ("GSM-7", units, segments)


def test_a_two_septet_character_is_never_split_across_parts():
    # 152 septets, then '€' (2) would straddle the 153-septet part: it moves to part 2
    assert segment("a" * 152 + "€" + "a" * 151).segments == 2  # 152 | 2 + 151 = 153
    assert segment("a" * 152 + "€" + "a" * 152).segments == 3  # 306 septets, yet 3 parts: 152 | 153 | 1
    assert segment("a" * 151 + "€" + "a" * 153).segments == 2  # 153 | 153: fits exactly
    assert segment("€" * 153).segments == 3  # 306 septets: 76 a part (152) -> 76 + 76 + 1


def test_a_surrogate_pair_is_never_split_across_parts():
    assert segment(EMOJI).units == 2
    assert segment(CYRILLIC * 68 + EMOJI) == ("UCS-2", 70, 1)
    assert segment(CYRILLIC * 69 + EMOJI) == ("UCS-2", 71, 2)
    assert segment(CYRILLIC * 66 + EMOJI + CYRILLIC * 65).segments == 2  # 66 | 2 + 65 = 67
    assert segment(CYRILLIC * 66 + EMOJI + CYRILLIC * 66).segments == 3  # 134 units, yet 3 parts
    assert segment("a" * 68 + EMOJI) == ("UCS-2", 70, 1)
    family = "👨\u200d👩\u200d👧"  # three emoji joined by two zero-width joiners
    assert segment(family).units == 8


def _reference_parts(sizes: list[int], single: int, multi: int) -> int:
    """An independent count: cut the text into parts of at most ``multi`` units, never inside a
    character (units of one character stay together)."""
    if sum(sizes) <= single:
        return 1
    parts, room = 0, 0
    for size in sizes:
        if size > room:
            parts, room = parts + 1, multi
        room -= size
    return parts


ALPHABET = st.sampled_from(sorted(GSM7_BASIC) + sorted(GSM7_EXTENSION) + [CYRILLIC, EMOJI, "ç", "ü"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=400).map("".join))
def test_segments_match_an_independent_count(text):
    seg = segment(text)
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    if gsm:
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        expected = _reference_parts(sizes, 160, 153)
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
        expected = _reference_parts(sizes, 70, 67)
    assert seg.encoding == ("GSM-7" if gsm else "UCS-2")
    assert seg.units == sum(sizes)
    assert seg.segments == expected
    multi = 153 if gsm else 67
    if seg.segments > 1:
        assert math.ceil(seg.units / multi) <= seg.segments <= math.ceil(seg.units / (multi - 1))


# -- prices and money ------------------------------------------------------------------------


def test_default_prices():
    table = PriceTable()
    assert table.as_dict() == {k: format_credit(Decimal(v)) for k, v in DEFAULT_PRICES.items()}
    assert table.unit_price(1) == Decimal("0.005"), "the docs' sample credit"
    assert table.unit_price(3) == Decimal("0.01")
    assert table.unit_price(999) == table.unit_price(1), "unknown channels cost the default"


def test_sms_is_charged_per_segment_and_other_channels_per_message():
    table = PriceTable({"3": "0.07", "default": "0.25"})
    assert table.charge(3, "a" * 160) == (1, Decimal("0.07"), "0.07")
    assert table.charge(3, "a" * 161) == (2, Decimal("0.14"), "0.14")
    assert table.charge(3, CYRILLIC * 135) == (3, Decimal("0.21"), "0.21")
    assert table.charge(1, "a" * 5000) == (1, Decimal("0.25"), "0.25")
    assert table.charge(3, "a" * 161) == table.charge(3, "a" * 161), "memoised, same answer"


def test_money_is_exact_decimal():
    table = PriceTable({"3": "0.1", "1": 0.1})  # a float price is read through its decimal text
    assert table.unit_price(1) == Decimal("0.1")
    credits = [table.charge(3, "x")[1] for _ in range(3)]
    assert all(isinstance(c, Decimal) for c in credits)
    assert sum(credits) == Decimal("0.3")  # 0.1 + 0.1 + 0.1 != 0.3 in float
    assert sum([0.1, 0.1, 0.1]) != 0.3
    tiny = PriceTable({"default": "0.001"})
    assert sum(tiny.charge(1, "x")[1] for _ in range(1000)) == Decimal(1)
    assert format_credit(sum(tiny.charge(1, "x")[1] for _ in range(1000))) == "1"


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0.005", "0.005"),
        ("0.0050", "0.005"),
        ("0", "0"),
        ("0.000", "0"),
        ("0E-10", "0"),
        ("-0", "0"),
        ("1E-7", "0.0000001"),
        ("5E-30", "0." + "0" * 29 + "5"),
        ("1E+3", "1000"),
        ("1E+30", "1" + "0" * 30),
        ("2.50", "2.5"),
        ("123456789.123456789", "123456789.123456789"),
    ],
)
def test_format_credit_has_no_exponent(amount, text):
    assert format_credit(Decimal(amount)) == text
    assert CREDIT.match(text)


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False, places=None))
def test_format_credit_is_always_plain_digits(amount):
    text = format_credit(amount)
    assert CREDIT.match(text), text
    assert "e" not in text.lower()
    assert Decimal(text) == amount


def test_a_free_channel_with_negative_zero_still_answers_a_valid_credit():
    assert PriceTable({"5": "-0"}).charge(5, "x")[2] == "0"


@pytest.mark.parametrize(
    "prices",
    [{"3": "abc"}, {"3": "-0.01"}, {"3": "NaN"}, {"3": "Infinity"}, {"3": "sNaN"}, {"sms": "0.1"}, {"3": None},
     {"3": "1e400000"}, {"3": "1e-30"}, {"3": "1" * 19}],
)
def test_bad_prices_are_config_errors(prices):
    with pytest.raises(ConfigError, match="prices"):
        PriceTable(prices)
