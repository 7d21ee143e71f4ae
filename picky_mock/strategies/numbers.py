"""Phone numbers as push bodies carry them, and the malformed forms real clients send by mistake."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal, overload

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .options import check_bool, check_choices, composite

__all__ = ["COUNTRIES", "MALFORMED_NUMBER_FORMS", "NumberPlans", "phone_numbers"]

MalformedForm = Literal["plus", "00", "spaces", "dashes", "international", "leading_zero"]

#: The malformed number forms real clients send (docs/contract.md §2.3), for :func:`phone_numbers`.
MALFORMED_NUMBER_FORMS: tuple[MalformedForm, ...] = ("plus", "00", "spaces", "dashes", "international", "leading_zero")


#: (country calling code, lengths of the national number, first digits of mobile numbers), [ours]
#: from the national numbering plans; Niue's 4-digit numbers give the 7-digit minimum, Austria's
#: 13-digit ones the 15-digit E.164 maximum. India first: numbers shrink toward it.
COUNTRIES: tuple[tuple[str, tuple[int, ...], str], ...] = (
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
_COUNTRY_CODES = tuple(code for code, _, _ in COUNTRIES)


class NumberPlans:
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
        """The numbers of these plans as a strategy of their own."""
        return _numbers(self)


@composite
def _numbers(draw: st.DrawFn, plans: NumberPlans) -> Any:
    return plans.draw(draw)


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

    Each number has a real country calling code (27 countries, see ``COUNTRIES``) and a
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
        table = list(COUNTRIES)
    else:
        codes = check_choices("countries", countries, _COUNTRY_CODES)
        table = [row for row in COUNTRIES if row[0] in codes]
    if json_integers is not None:
        check_bool("json_integers", json_integers)
    if malformed is False:
        shapes = ["str", "int"] if json_integers is None else ["int"] if json_integers else ["str"]
        return NumberPlans(table, shapes).strategy()
    forms = (
        list(MALFORMED_NUMBER_FORMS)
        if malformed is True
        else check_choices("malformed", malformed, MALFORMED_NUMBER_FORMS)
    )
    if json_integers:
        raise InvalidArgument("malformed numbers are strings: json_integers=True cannot be met")
    return NumberPlans(table, forms).strategy()

