"""Who a push is for and what it says, read the one way every part of picky-mock reads it.

The fault rules match a request before it is judged, the journal indexes requests accepted or not,
and the assertion helpers look for messages: each reads recipients, channels, numbers and texts
through these functions, so that ``number=`` and ``text=`` mean the same thing everywhere.

* a **recipient** is an item's ``number``, else its ``messenger_id``, as a string of what was sent
  (``"5511987654321"``; a JSON integer as its digits);
* a **channel** is ``application`` where the request schema reads it as a channel id;
* ``number=`` matches a recipient exactly (an ``int`` is taken as its digits);
* ``text=`` matches a message whose text *contains* it, case-sensitively (``text="code 1234"``
  matches ``"Your code 1234 expires soon"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .contract import LongInteger

__all__ = [
    "body_recipients",
    "body_texts",
    "channel_of",
    "number_matches",
    "recipient_of",
    "text_matches",
    "wanted_number",
]

_CHANNEL_STRING = re.compile(r"[1-9][0-9]{0,17}\Z")
"""A channel id as a string, the way the request schema takes it: "5", not "05" or an
Arabic-Indic digit (and not so long that it could not be an id)."""


def recipient_of(item: Any) -> str | None:
    """The recipient a ``data[]`` item names (``number``, else ``messenger_id``) as a string, or
    ``None`` when it names none a string or a whole number can say."""
    if type(item) is not dict:
        return None
    value = item.get("number")
    if value is None:
        value = item.get("messenger_id")
    if type(value) is str:
        return value
    if type(value) is int or type(value) is LongInteger:
        return str(value)
    if type(value) is float and value.is_integer():
        return str(int(value))
    return None


def body_recipients(body: Any) -> tuple[str, ...]:
    """Every recipient a request's body names, in ``data[]`` order (anything may be given: it
    need not have been judged)."""
    data = body.get("data") if type(body) is dict else None
    if type(data) is not list:
        return ()
    return tuple(number for number in map(recipient_of, data) if number is not None)


def body_texts(body: Any) -> Iterator[str]:
    """The non-empty texts a request's body holds: ``globalmessage``, then each item's ``message``."""
    if type(body) is not dict:
        return
    text = body.get("globalmessage")
    if type(text) is str and text:
        yield text
    data = body.get("data")
    for item in data if type(data) is list else ():
        if type(item) is dict:
            text = item.get("message")
            if type(text) is str and text:
                yield text


def channel_of(application: Any) -> int | None:
    """``application`` as a channel id when the schema would read it as one: a whole number
    (``5`` or ``5.0``) or a decimal string without leading zeros (``"5"``); else ``None``."""
    if type(application) is int:
        return application
    if type(application) is str and _CHANNEL_STRING.match(application):
        return int(application)
    if type(application) is float and application.is_integer() and abs(application) < 1e18:
        return int(application)
    return None


def wanted_number(number: str | int) -> str:
    """A ``number=`` criterion as the recipient string it matches (an ``int`` as its digits)."""
    if isinstance(number, bool) or not isinstance(number, (str, int)):
        raise TypeError(f"number must be a string or a whole number, not {number!r}")
    return str(number)


def number_matches(wanted: str, number: str) -> bool:
    """Whether recipient ``number`` is the one ``wanted`` (see :func:`wanted_number`): exactly."""
    return wanted == number


def text_matches(wanted: str, text: str) -> bool:
    """Whether a message's ``text`` meets a ``text=`` criterion: it contains ``wanted``,
    case-sensitively."""
    return wanted in text
