"""The channel ids (``application``) of docs/contract.md §2.1 and the groups of them that rules depend on.

Requests, delivery reports and webhooks all draw channels; the groups live here once so that, say,
"Read is never reported on phone automation" means the same channels everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

__all__ = [
    "CHANNELS",
    "MESSENGER",
    "OFFICIAL",
    "PHONE_AUTOMATION",
    "SHARED_NUMBERS",
    "WHATSAPP",
    "WITH_ERROR_MESSAGES",
    "channel_id",
    "channel_strategy",
]

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
#: Channels sent through a phone ("Phone Automation"): no Read state, names instead of numbers.
PHONE_AUTOMATION = frozenset({1, 2, 3, 4})
MESSENGER = 5
WHATSAPP = (1, 2, 10, 8, 101, 121)
SHARED_NUMBERS = (919737001155, 556140404433)
#: WhatsApp Official channels: templates, the 24-hour window, media per recipient.
OFFICIAL = (8, 101, 121)
#: Where a failed or refunded message carries an ``error_message`` (docs/contract.md §6.1).
WITH_ERROR_MESSAGES = frozenset({*OFFICIAL, *SHARED_NUMBERS})


def channel_id(name: str, value: object) -> int:
    """``value`` as a channel id: a positive integer (a documented one or a project's own)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}: {value!r} is not a channel id (a positive integer, see CHANNELS)")
    return value


def channel_strategy(
    name: str, value: Collection[int] | st.SearchStrategy[int] | None, default: Sequence[int]
) -> st.SearchStrategy[int]:
    """The channels an ``application`` option asks for: a collection, a strategy, or ``default``."""
    if value is None:
        return st.sampled_from(default)
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, str) or not isinstance(value, Collection) or not value:
        raise InvalidArgument(f"{name}={value!r} must be a non-empty collection of channel ids or a strategy")
    return st.sampled_from([channel_id(name, c) for c in value])
