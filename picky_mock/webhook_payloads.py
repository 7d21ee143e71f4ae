"""What picky-mock POSTs to a project's webhooks, and how it reads the answer to an incoming message.

- :func:`event_item` / :func:`event_payload`: the event webhook (docs/contract.md §6.2): ``project_id`` a
  string, ``event_id`` 1, every ``data[]`` value a string, ``reference_number`` only when the push gave
  one, ``message_type`` a word. Checked against ``schemas/event-webhook.schema.json``.
- :func:`incoming_payload`: the incoming-message webhook (§6.4), ``schemas/incoming-webhook.schema.json``.
- :func:`parse_instant_reply`: the handler's answer (§6.5) as an :class:`InstantReply`, or a
  :class:`NoReply` that says why not (``schemas/instant-reply.schema.json``).
- :func:`check_url`: a webhook URL must be absolute http(s); the user's query string is kept as written.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .accounts import OFFICIAL_CHANNELS
from .errors import ConfigError, PickyMockError
from .lifecycle import PHONE_CHANNELS, TrackedMessage, Transition

__all__ = [
    "MAX_REPLY_DELAY",
    "PHONE_TEXT_LIMIT",
    "SHARED_CHANNELS",
    "InstantReply",
    "NoReply",
    "WebhookUrlError",
    "check_url",
    "event_item",
    "event_item_of",
    "event_payload",
    "incoming_payload",
    "message_type",
    "origin",
    "parse_instant_reply",
]

#: Shared numbers, used as channel ids (docs/contract.md §2.1); they fill ``error_message`` like Official ones.
SHARED_CHANNELS = frozenset({919737001155, 556140404433})
#: The longest instant-reply delay the service honours (docs/contract.md §6.5).
MAX_REPLY_DELAY = 3600
#: Phone automation sends only the first 2,500 characters of an incoming text (docs/contract.md §6.4).
PHONE_TEXT_LIMIT = 2500


class WebhookUrlError(PickyMockError):
    """A webhook URL that picky-mock will not POST to; ``field`` names the setting."""

    def __init__(self, detail: str, *, field: str = "url") -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


def check_url(url: object, *, field: str = "url") -> str:
    """``url`` if it is an absolute http(s) URL with a host and no spaces; else :class:`WebhookUrlError`.

    The user's own query-string variables are kept exactly as written.
    """
    if not isinstance(url, str):
        raise WebhookUrlError(f"expected a string, got {type(url).__name__}", field=field)
    if len(url) > 2048:
        raise WebhookUrlError("longer than 2,048 characters", field=field)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookUrlError(f"{url!r} contains spaces or control characters", field=field)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"{url!r} is not a URL: {exc}", field=field) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookUrlError(f"{url!r} is not an http(s) URL", field=field)
    if not parts.hostname:
        raise WebhookUrlError(f"{url!r} has no host", field=field)
    if port == 0:
        raise WebhookUrlError(f"{url!r} has port 0", field=field)
    return url


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what a destination is (its queue, its connections)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


# -- payloads -------------------------------------------------------------------------------------

_EXTENSIONS = {
    "image": ("jpg", "jpeg", "png", "gif", "webp", "bmp"),
    "video": ("mp4", "3gp", "mov", "avi", "mkv", "webm"),
    "audio": ("mp3", "ogg", "opus", "aac", "amr", "m4a", "wav"),
}


def message_type(media: str | None) -> str:
    """The event webhook's ``message_type`` word: ``text`` without media, else by the URL's extension
    (``image``, ``video``, ``audio``; anything else ``document``) [ours: the service's rule is unknown]."""
    if not media:
        return "text"
    path = urllib.parse.urlsplit(media).path if "://" in media else media
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    for word, extensions in _EXTENSIONS.items():
        if extension in extensions:
            return word
    return "document"


def event_item(message: TrackedMessage, transition: Transition, *, error_code: str = "") -> dict[str, str]:
    """One ``data[]`` item of the event webhook: every value a string; ``reference_number`` only when
    the push gave one; ``error_message`` only on Official and shared channels (docs/contract.md §6.1)."""
    return event_item_of(message, int(transition.state), transition.error_message, error_code=error_code)


def event_item_of(message: Any, status: int, error_message: str = "", *, error_code: str = "") -> dict[str, str]:
    """:func:`event_item` from the message's fields and the new state: ``message`` has ``push_id``,
    ``number``, ``msg_id``, ``reference_number``, ``channel``, ``text`` and ``media`` (a
    :class:`~picky_mock.lifecycle.TrackedMessage` or the journal's ``Message``)."""
    item = {
        "push_id": message.push_id,
        "number": message.number,
        "msg_id": message.msg_id,
        "status": str(status),
    }
    if message.reference_number is not None:
        item["reference_number"] = str(message.reference_number)
    channel = message.channel
    item["error_code"] = error_code
    item["error_message"] = error_message if channel in OFFICIAL_CHANNELS or channel in SHARED_CHANNELS else ""
    item["message"] = message.text or ""
    item["message_type"] = message_type(message.media)
    item["media"] = message.media or ""
    item["channel_id"] = str(channel)
    return item


def event_payload(project_id: str, items: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The event webhook's body: ``{"project_id": "...", "event_id": 1, "data": [...]}``."""
    return {"project_id": str(project_id), "event_id": 1, "data": [dict(item) for item in items]}


_MEDIA_TYPES = frozenset({2, 3, 4, 6})


def incoming_payload(
    *,
    number: str,
    text: str,
    application: int,
    unique_id: str,
    project_id: str,
    type: int = 1,
    name: str | None = None,
    messenger_id: str | None = None,
    media_url: str | None = None,
    payload: str | None = None,
    context_msg_id: str | None = None,
    numbers_as_strings: bool = True,
) -> dict[str, Any]:
    """The incoming-message webhook's flat body (docs/contract.md §6.4).

    ``message-in`` is the text URL-encoded with ``+`` for spaces (cut to 2,500 characters on phone
    automation), ``message_in_raw`` the raw text; ``media-url`` for media types (2 image, 3 video,
    4 audio, 6 document); ``payload`` for a button reply (type 9). ``type`` and ``application`` are
    strings by default, JSON numbers with ``numbers_as_strings=False`` (the docs' samples show both).
    """
    if type not in (1, 2, 3, 4, 5, 6, 7, 9):
        raise ConfigError(f"type: {type!r} is not an incoming message type (1-7 or 9)")
    sent = text[:PHONE_TEXT_LIMIT] if application in PHONE_CHANNELS else text
    body: dict[str, Any] = {
        "number": str(number),
        "message-in": urllib.parse.quote_plus(sent),
        "message_in_raw": text,
        "application": str(application) if numbers_as_strings else application,
        "type": str(type) if numbers_as_strings else type,
        "unique-id": str(unique_id),
        "project-id": str(project_id),
    }
    if name is not None:
        body["name"] = name
    if messenger_id is not None:
        body["messenger_id"] = messenger_id
    if type in _MEDIA_TYPES:
        if not media_url:
            raise ConfigError(f"media: type {type} needs a media URL")
        body["media-url"] = media_url
    elif media_url:
        raise ConfigError(f"media: type {type} carries no media (2 image, 3 video, 4 audio, 6 document)")
    if type == 9:
        body["payload"] = payload if payload is not None else text
    if context_msg_id is not None:
        body["context-msg-id"] = str(context_msg_id)
    return body


@dataclass(frozen=True, slots=True)
class InstantReply:
    """The handler's instant reply: ``text`` to send after ``delay`` seconds, and the extra keys it gave."""

    text: str
    delay: int
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NoReply:
    """An answer that is not an instant reply, and why (the service ignores it)."""

    reason: str


_DIGITS = re.compile(r"^\s*[0-9]{1,9}\s*$")
_REPLY_EXTRA = ("application", "type", "media-url", "reference_number")


def parse_instant_reply(body: bytes, *, status: int = 200) -> InstantReply | NoReply:
    """Read a handler's answer to an incoming message (docs/contract.md §6.5).

    ``{"message-out": "...", "delay": N}`` with a non-empty text and ``delay`` a whole number of
    seconds in 0..3600 (absent: 0; a numeric string is accepted) is a reply; anything else is "no
    reply" with the reason, as the service ignores it [ours: a delay over 3600 is no reply, not cut].
    """
    if status != 200:
        return NoReply(f"the answer was HTTP {status}, not 200")
    if not body.strip():
        return NoReply("empty answer")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return NoReply(f"not JSON: {exc}")
    if not isinstance(document, dict):
        return NoReply(f"not a JSON object but {type(document).__name__}")
    if "message-out" not in document:
        return NoReply("no 'message-out' key")
    text = document["message-out"]
    if not isinstance(text, str):
        return NoReply(f"'message-out' is {type(text).__name__}, not a string")
    if not text.strip():
        return NoReply("'message-out' is empty")
    delay = document.get("delay", 0)
    if isinstance(delay, str) and _DIGITS.match(delay):
        delay = int(delay.strip())
    if isinstance(delay, float) and delay.is_integer():
        delay = int(delay)
    if isinstance(delay, bool) or not isinstance(delay, int):
        return NoReply(f"'delay' is {delay!r}, not a whole number of seconds")
    if not 0 <= delay <= MAX_REPLY_DELAY:
        return NoReply(f"'delay' {delay} is outside 0..{MAX_REPLY_DELAY} seconds")
    extra = {key: document[key] for key in _REPLY_EXTRA if key in document}
    return InstantReply(text, delay, extra)
