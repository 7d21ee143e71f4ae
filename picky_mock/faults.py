"""Fault rules: when a request is hit, what happens to it, and how often.

A :class:`FaultRule` joins a :class:`When` (criteria on the request: token, channel, a recipient
number exact, by prefix or by pattern, the text, the path), an :class:`Action` (an API error, an
HTTP error, latency, a hang, a broken transport, the ``text/html`` label quirk, or an accepted push
whose answer is lost) and a frequency (the n-th matching request, the next N, after N, always, or
with a probability drawn from the seeded generator of the :class:`FaultBook`).

Rules are indexed by their most selective criterion (exact number, number prefix, token, channel,
path), so a hundred rules that match nothing cost a few dictionary look-ups per request, not a
hundred predicate calls. Rules with only a pattern, a text or no criterion at all are tried in
order.

The book only decides; :mod:`picky_mock.backend` applies API errors and journals, and the HTTP layer
(:mod:`picky_mock.app`) carries out delays and transport faults.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, replace
from functools import lru_cache
from typing import Any, NamedTuple

from .errors import STATUS_MESSAGES, ConfigError

__all__ = [
    "ACTIONS",
    "NOT_FIRED",
    "Action",
    "Facts",
    "FaultBook",
    "FaultRule",
    "Fired",
    "When",
    "facts_of",
    "proxy_html",
]

#: Every kind of fault, for the coverage report.
ACTIONS = (
    "api_error",
    "http_error",
    "latency",
    "hang",
    "reset",
    "close",
    "garbage",
    "truncate",
    "malformed",
    "dribble",
    "html_label",
    "answer_lost",
)
#: Faults that let the push be judged (and journaled) as usual, then change how the answer travels.
AFTER_JUDGING = frozenset({"truncate", "malformed", "dribble", "html_label", "answer_lost"})
HANG_CAP_SECONDS = 300.0
"""The longest any fault holds a request: a hang, a latency, a dribble's pause."""
BODILESS_STATUSES = frozenset({204, 304})

_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


class Fired(NamedTuple):
    """The rules that fired on one request, and the latency they drew."""

    rules: tuple[FaultRule, ...]
    delay: float
    notes: tuple[str, ...]
    """Each rule described, with the delay it drew for a latency rule."""


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text


def proxy_html(status: int) -> str:
    """The kind of page an nginx proxy in front of the real API sends with a 5xx or 429."""
    reason = _REASONS.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


class Facts(NamedTuple):
    """What a rule can match on, read from a request before it is judged (:func:`facts_of`)."""

    path: str
    token: str | None = None
    channel: int | None = None
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()


def _recipient(item: Mapping[str, Any]) -> str | None:
    number = item.get("number")
    if number is None:
        number = item.get("messenger_id")
    if type(number) is str:
        return number
    return str(number) if type(number) is int else None


_CHANNEL_STRING = re.compile(r"[1-9][0-9]*\Z")
"""A channel id as a string, the way the request schema takes it: "5", not "05" or an Arabic-Indic digit."""


def facts_of(path: str, body: Any) -> Facts:
    """What the rules can match on in a request's parsed body (anything: it is not judged yet).

    ``channel`` is ``application`` when the schema would read it as a channel id: a whole number
    (``5`` or ``5.0``) or a decimal string without leading zeros (``"5"``); anything else is no
    channel, so a ``channel`` rule never fires on it."""
    if type(body) is not dict:
        return Facts(path)
    token = body.get("token")
    application = body.get("application")
    channel = None
    if type(application) is int:
        channel = application
    elif type(application) is str and _CHANNEL_STRING.match(application):
        channel = int(application)
    elif type(application) is float and application.is_integer():
        channel = int(application)
    numbers: list[str] = []
    texts: list[str] = []
    text = body.get("globalmessage")
    if type(text) is str and text:
        texts.append(text)
    data = body.get("data")
    for item in data if type(data) is list else ():
        if type(item) is dict:
            number = _recipient(item)
            if number is not None:
                numbers.append(number)
            text = item.get("message")
            if type(text) is str and text:
                texts.append(text)
    return Facts(path, token if type(token) is str else None, channel, tuple(numbers), tuple(texts))


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex that matches where any of ``patterns`` does: a prefilter, so that a request no
    pattern rule matches costs one search, not one per rule."""
    alternatives = [f"(?:{p})" for p in patterns]
    return re.compile("|".join(alternatives)) if alternatives else None


@dataclass(frozen=True)
class When:
    """Criteria; every one given must hold. No criterion: every push request."""

    token: str | None = None
    channel: int | None = None
    number: str | None = None
    number_prefix: str | None = None
    number_pattern: str | None = None
    text: str | None = None
    """A substring of the global text or of any recipient's text."""
    text_pattern: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        for name in ("token", "number", "number_prefix", "number_pattern", "text", "text_pattern", "path"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"fault: {name} must be a non-empty string, not {value!r}")
        if self.channel is not None and (isinstance(self.channel, bool) or not isinstance(self.channel, int)):
            raise ConfigError(f"fault: channel must be a whole number, not {self.channel!r}")
        for name in ("number_pattern", "text_pattern"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(f"fault: {name} {pattern!r} is not a regular expression: {exc}") from None

    def holds(self, facts: Facts) -> bool:
        if self.path is not None and facts.path.rstrip("/") != self.path.rstrip("/"):
            return False
        if self.token is not None and facts.token != self.token:
            return False
        if self.channel is not None and facts.channel != self.channel:
            return False
        if self.number is not None and self.number not in facts.numbers:
            return False
        if self.number_prefix is not None and not any(n.startswith(self.number_prefix) for n in facts.numbers):
            return False
        if self.number_pattern is not None:
            pattern = _compiled(self.number_pattern)
            if not any(pattern.search(n) for n in facts.numbers):
                return False
        if self.text is not None and not any(self.text in t for t in facts.texts):
            return False
        if self.text_pattern is not None:
            pattern = _compiled(self.text_pattern)
            if not any(pattern.search(t) for t in facts.texts):
                return False
        return True

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None]
        return " ".join(parts) or "any push"


@dataclass(frozen=True)
class Action:
    """What a fault does. ``kind`` is one of :data:`ACTIONS`; the other fields are its options."""

    kind: str
    status: int | None = None
    """api_error: the API status code; http_error: the HTTP status."""
    message: str | None = None
    """api_error: the message (default: the documented one)."""
    body: str | None = None
    """http_error: the body (default: a proxy's HTML page for 429 and 5xx, else empty)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    """http_error: the Retry-After header, in seconds (sent when given, and on a 429 with 60 by default)."""
    seconds: float | None = None
    """latency: fixed delay; hang: how long before the connection is closed (default: until the
    client gives up, at most 300 s); dribble: delay between chunks."""
    low: float | None = None
    high: float | None = None
    """latency: uniform between ``low`` and ``high`` seconds."""
    median: float | None = None
    sigma: float | None = None
    """latency: long-tailed (log-normal) with this median and shape (default sigma 1.0)."""
    chunk: int = 16
    """dribble: bytes per chunk."""

    def __post_init__(self) -> None:
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise ConfigError(f"fault: chunk must be a whole number of bytes >= 1, not {self.chunk!r}")
        if self.kind not in ACTIONS:
            raise ConfigError(f"fault: unknown action {self.kind!r} (known: {', '.join(ACTIONS)})")
        allowed = _ACTION_OPTIONS.get(self.kind, frozenset())
        given = [name for name, default in _ACTION_DEFAULTS.items() if getattr(self, name) != default]
        stray = [name for name in given if name not in allowed]
        if stray:
            takes = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"fault: {self.kind} takes no option {', '.join(stray)} (its options: {takes})")
        status = self.status
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise ConfigError(f"fault: status must be a whole number, not {status!r}")
        for name in ("seconds", "low", "high", "median", "sigma"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"fault: {self.kind} {name} must be a number, not {value!r}")
            limit = _SIGMA_CAP if name == "sigma" else HANG_CAP_SECONDS
            if value is not None and not 0 <= value <= limit:
                raise ConfigError(f"fault: {self.kind} {name} must be 0 to {limit:g}, not {value!r}")
        if self.body is not None and not isinstance(self.body, str):
            raise ConfigError(f"fault: body must be a string, not {self.body!r}")
        if not isinstance(self.headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and _latin1(k) and _latin1(v) and k.strip()
            for k, v in self.headers.items()
        ):
            raise ConfigError(f"fault: headers must map header names to latin-1 strings, not {self.headers!r}")
        if self.message is not None and not isinstance(self.message, str):
            raise ConfigError(f"fault: message must be a string, not {self.message!r}")
        retry_after = self.retry_after
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ConfigError(f"fault: retry_after must be whole seconds >= 0, not {self.retry_after!r}")
        if self.kind in ("api_error", "http_error") and self.status is None:
            raise ConfigError(f"fault: {self.kind} needs a status")
        if self.kind == "http_error" and self.status is not None:
            if not 200 <= self.status <= 599:  # 1xx are not answers: the client would wait for the real one
                raise ConfigError(f"fault: HTTP status {self.status} is not a final answer (200 to 599)")
            if self.status in BODILESS_STATUSES and self.body:
                raise ConfigError(f"fault: an HTTP {self.status} answer has no body")
        if (
            self.kind == "latency"
            and self.seconds is None
            and self.median is None
            and (self.low is None or self.high is None)
        ):
            raise ConfigError("fault: latency needs seconds, low and high, or median (and sigma)")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ConfigError("fault: latency low must not exceed high")

    def delay(self, rng: random.Random) -> float:
        """latency: the delay of one request, drawn from ``rng``."""
        if self.median is not None:  # the long tail is cut at the cap, as a hang is
            exponent = (self.sigma if self.sigma is not None else 1.0) * rng.gauss(0, 1)
            return min(HANG_CAP_SECONDS, float(self.median * math.exp(min(exponent, _EXP_CAP))))
        if self.low is not None and self.high is not None:
            return rng.uniform(self.low, self.high)
        return float(self.seconds or 0.0)

    def api_message(self) -> str:
        assert self.status is not None
        return self.message or STATUS_MESSAGES.get(self.status, "Error")

    def describe(self) -> str:
        if self.kind == "api_error":
            return f"api_error {self.status} {self.api_message()!r}"
        if self.kind == "http_error":
            return f"http_error {self.status}"
        if self.kind == "latency":
            if self.median is not None:
                return f"latency lognormal median={self.median}s sigma={self.sigma or 1.0}"
            if self.low is not None:
                return f"latency uniform {self.low}-{self.high}s"
            return f"latency {self.seconds}s"
        if self.kind == "hang":
            return f"hang {self.seconds}s" if self.seconds is not None else "hang until the client gives up"
        return self.kind


_ACTION_OPTIONS = {
    "api_error": frozenset({"status", "message"}),
    "http_error": frozenset({"status", "body", "headers", "retry_after"}),
    "latency": frozenset({"seconds", "low", "high", "median", "sigma"}),
    "hang": frozenset({"seconds"}),
    "dribble": frozenset({"seconds", "chunk"}),
}
"""The options each action reads; any other is refused, not ignored (the other actions take none)."""
_ACTION_DEFAULTS = {  # every option and its default (``headers``: an empty mapping)
    name: f.default if f.default is not MISSING else {}
    for name, f in Action.__dataclass_fields__.items()
    if name != "kind"
}
_SIGMA_CAP = 10.0
"""A log-normal shape beyond this is no tail but noise (sigma 10: the 99th percentile is 10^10 times the median)."""
_EXP_CAP = 50.0
"""``math.exp`` of more overflows soon after; e^50 times any median is past the cap anyway."""

_WHEN_FIELDS = frozenset(When.__dataclass_fields__)
_ACTION_FIELDS = frozenset(Action.__dataclass_fields__) - {"kind"}
_RULE_FIELDS = frozenset({"action", "when", "times", "nth", "after", "probability", "name"})
#: Keys of a rule's JSON form (``GET /_picky/faults``) that describe it and are not read back:
#: a listed rule can be POSTed again as it is.
_READ_ONLY_FIELDS = frozenset({"id", "seen", "hits", "description"})


@dataclass
class FaultRule:
    """A rule and its counters. ``seen`` counts the requests it was tried on that met ``when`` (a
    rule behind one that already decided a request's answer is not tried on it: see
    :meth:`FaultBook.fire`); ``hits`` those it fired on."""

    action: Action
    when: When = field(default_factory=When)
    times: int | None = None
    """Fire at most this many times (``None``: always)."""
    nth: int | None = None
    """Fire only on the n-th matching request it is tried on (1-based; counted by ``seen``)."""
    after: int | None = None
    """Fire only once this many matching requests have passed (counted by ``seen``)."""
    probability: float | None = None
    """Fire with this probability, drawn from the book's seeded generator."""
    id: int = 0
    name: str | None = None
    seen: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        for attr in ("times", "nth", "after"):
            value = getattr(self, attr)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < (0 if attr == "after" else 1)
            ):
                raise ConfigError(f"fault: {attr} must be a whole number >= {0 if attr == 'after' else 1}")
        if self.probability is not None and (
            isinstance(self.probability, bool)
            or not isinstance(self.probability, (int, float))
            or not 0.0 <= self.probability <= 1.0
        ):
            raise ConfigError("fault: probability must be between 0 and 1")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> FaultRule:
        """A rule from its JSON/TOML form, flat or nested::

        {"action": "api_error", "status": 403, "number": "5511987654321", "times": 1}
        {"action": "latency", "median": 0.2, "when": {"channel": 3}, "probability": 0.5}
        """
        if not isinstance(spec, Mapping):
            raise ConfigError(f"fault: expected a table/object, got {spec!r}")
        spec = {k: v for k, v in spec.items() if k not in _READ_ONLY_FIELDS}
        unknown = set(spec) - _RULE_FIELDS - _WHEN_FIELDS - _ACTION_FIELDS
        if unknown:
            raise ConfigError(
                f"fault: unknown key(s) {', '.join(sorted(unknown))}; rule keys: {', '.join(sorted(_RULE_FIELDS))}, "
                f"criteria: {', '.join(sorted(_WHEN_FIELDS))}, options: {', '.join(sorted(_ACTION_FIELDS))}"
            )
        kind = spec.get("action")
        if not isinstance(kind, str):
            raise ConfigError(f"fault: 'action' must be one of {', '.join(ACTIONS)}")
        when_given = spec.get("when") or {}
        if not isinstance(when_given, Mapping):
            raise ConfigError(f"fault: 'when' must be a table/object of criteria, not {when_given!r}")
        when_spec = dict(when_given)
        when_spec.update({k: v for k, v in spec.items() if k in _WHEN_FIELDS})
        unknown_when = set(when_spec) - _WHEN_FIELDS
        if unknown_when:
            raise ConfigError(f"fault: unknown criteria {', '.join(sorted(unknown_when))}")
        for key in ("number", "number_prefix", "token"):  # 5511987654321 written as a number is the same
            value = when_spec.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise ConfigError(f"fault: {key} must be a string, not {value!r}")
                when_spec[key] = str(value)
        name = spec.get("name")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"fault: name must be a string, not {name!r}")
        if "channel" in when_spec and when_spec["channel"] is not None:
            when_spec["channel"] = _int("channel", when_spec["channel"])
        options = {k: v for k, v in spec.items() if k in _ACTION_FIELDS}
        if "status" in options:
            options["status"] = _int("status", options["status"])
        try:
            action = Action(kind, **options)
            when = When(**when_spec)
            return cls(
                action=action,
                when=when,
                times=spec.get("times"),
                nth=spec.get("nth"),
                after=spec.get("after"),
                probability=spec.get("probability"),
                name=spec.get("name"),
            )
        except TypeError as exc:
            raise ConfigError(f"fault: {exc}") from None

    def describe(self) -> str:
        how = []
        if self.nth is not None:
            how.append(f"on match #{self.nth}")
        if self.after is not None:
            how.append(f"after {self.after} matches")
        if self.times is not None:
            how.append(f"{self.times} time(s)")
        if self.probability is not None:
            how.append(f"p={self.probability}")
        label = f"rule {self.id}" + (f" {self.name!r}" if self.name else "")
        return f"{label}: {self.action.describe()} when {self.when.describe()}" + (
            f" ({', '.join(how)})" if how else ""
        )

    def to_json(self) -> dict[str, Any]:
        action = {k: v for k, v in self.action.__dict__.items() if v not in (None, {}) and k != "kind"}
        if action.get("chunk") == 16:
            action.pop("chunk")
        return {
            "id": self.id,
            "name": self.name,
            "action": self.action.kind,
            **action,
            "when": {k: v for k, v in self.when.__dict__.items() if v is not None},
            "times": self.times,
            "nth": self.nth,
            "after": self.after,
            "probability": self.probability,
            "seen": self.seen,
            "hits": self.hits,
            "description": self.describe(),
        }


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"[0-9]+", str(value).strip()):
        raise ConfigError(f"fault: {name} must be a whole number, not {value!r}")
    return int(value)


def _rule_id(rule: FaultRule) -> int:
    return rule.id


class _Index:
    """The rules of a book, arranged for look-up by their most selective criterion. Immutable once
    built: the book swaps a whole new index in with one assignment, so a request on another thread
    reads either the old index or the new one, never half of each."""

    def __init__(self, rules: list[FaultRule]) -> None:
        self.rules = tuple(rules)
        self.by_number: dict[str, list[FaultRule]] = {}
        self.by_prefix: dict[str, list[FaultRule]] = {}
        self.by_token: dict[str, list[FaultRule]] = {}
        self.by_channel: dict[int, list[FaultRule]] = {}
        self.by_path: dict[str, list[FaultRule]] = {}
        self.number_patterns: list[FaultRule] = []
        self.texts: list[FaultRule] = []
        self.scan: list[FaultRule] = []
        for rule in rules:
            when = rule.when
            if when.number is not None:
                self.by_number.setdefault(when.number, []).append(rule)
            elif when.number_prefix is not None:
                self.by_prefix.setdefault(when.number_prefix, []).append(rule)
            elif when.token is not None:
                self.by_token.setdefault(when.token, []).append(rule)
            elif when.channel is not None:
                self.by_channel.setdefault(when.channel, []).append(rule)
            elif when.path is not None:
                self.by_path.setdefault(when.path.rstrip("/"), []).append(rule)
            elif when.number_pattern is not None:
                self.number_patterns.append(rule)
            elif when.text is not None or when.text_pattern is not None:
                self.texts.append(rule)
            else:
                self.scan.append(rule)
        self.prefix_lengths = tuple(sorted({len(p) for p in self.by_prefix}))
        self.number_filter = _any_of(str(r.when.number_pattern) for r in self.number_patterns)
        self.text_filter = _any_of(
            re.escape(r.when.text) if r.when.text is not None else str(r.when.text_pattern) for r in self.texts
        )
        self.may_fire = self._quick_check()
        """``may_fire(path, body)``: False when no rule can hold for the request (its facts need not
        be read), True when some may, None when the quick check cannot tell."""

    def _quick_check(self) -> Callable[[str, Any], bool | None]:
        """The check every request pays while rules are loaded, built once per index.

        It reads the parsed body as a well-formed push has it (``token``, ``application``, and a
        ``number`` in each of ``data``) with plain subscripts and ``in`` tests, and gives up (None)
        on anything else: the caller then reads the full :class:`Facts`. A True may be a false alarm
        (the rules are then tried one by one); a False never misses a rule that holds, which
        ``tests/test_faults.py`` checks against every rule tried by brute force."""
        if self.scan:
            return lambda path, body: True
        paths = {**self.by_path, **{p + "/": rules for p, rules in self.by_path.items()}}
        tokens = self.by_token
        channels: dict[int | str, list[FaultRule]] = {}
        for channel, rules in self.by_channel.items():
            channels[channel] = channels[str(channel)] = rules
        numbers = self.by_number
        number_search = _any_of(
            [f"^{re.escape(prefix)}" for prefix in self.by_prefix]
            + [str(r.when.number_pattern) for r in self.number_patterns]
        )
        text_search = self.text_filter
        want_numbers = bool(numbers) or number_search is not None

        def may_fire(path: str, body: Any) -> bool | None:
            try:
                if path in paths or body["token"] in tokens or body["application"] in channels:
                    return True
                if text_search is not None and "globalmessage" in body and text_search.search(body["globalmessage"]):
                    return True
                for item in body["data"]:
                    if want_numbers:
                        number = item["number"]
                        if type(number) is not str:
                            return None
                        if number in numbers or (number_search is not None and number_search.search(number)):
                            return True
                    if text_search is not None and "message" in item and text_search.search(item["message"]):
                        return True
                return False
            except (KeyError, TypeError):
                return None

        return may_fire

    def candidates(self, facts: Facts) -> list[FaultRule]:
        """The rules that may hold for ``facts``, in the order they were added. Written flat: with
        a hundred rules that match nothing, this is the cost of each request."""
        hits: list[FaultRule] = []
        numbers = facts.numbers
        by_number, by_prefix = self.by_number, self.by_prefix
        if by_number or by_prefix:
            for number in numbers:
                rules = by_number.get(number)
                if rules:
                    hits += rules
                for length in self.prefix_lengths:
                    rules = by_prefix.get(number[:length])
                    if rules:
                        hits += rules
        if facts.token is not None:
            rules = self.by_token.get(facts.token)
            if rules:
                hits += rules
        if facts.channel is not None:
            rules = self.by_channel.get(facts.channel)
            if rules:
                hits += rules
        if self.by_path:
            rules = self.by_path.get(facts.path[:-1] if facts.path.endswith("/") else facts.path)
            if rules:
                hits += rules
        prefilter = self.number_filter
        if prefilter is not None:
            for number in numbers:
                if prefilter.search(number):
                    hits += self.number_patterns
                    break
        prefilter = self.text_filter
        if prefilter is not None:
            for text in facts.texts:
                if prefilter.search(text):
                    hits += self.texts
                    break
        if self.scan:
            hits += self.scan
        if len(hits) > 1:
            hits = sorted({rule.id: rule for rule in hits}.values(), key=_rule_id)
        return hits


_EMPTY_INDEX = _Index([])


class FaultBook:
    """The rules of one server and the seeded generator they draw from. Thread-safe."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._index = _EMPTY_INDEX
        self.active = False
        """Whether any rule is loaded (a plain attribute: the hot path reads it per request)."""

    def _swap(self, index: _Index) -> None:
        self._index = index
        self.active = bool(index.rules)

    def __len__(self) -> int:
        return len(self._index.rules)

    @property
    def rules(self) -> list[FaultRule]:
        """The rules in force, oldest first (the objects themselves: their counters are live)."""
        return list(self._index.rules)

    def reseed(self, seed: int) -> None:
        """Restart the generator: the same seed and the same requests repeat the same faults."""
        with self._lock:
            self.seed = seed
            self._rng = random.Random(seed)

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Add a rule (or its dict form); it gets the next id."""
        if not isinstance(rule, FaultRule):
            rule = FaultRule.from_dict(rule)
        with self._lock:
            rule = replace(rule, id=next(self._ids), seen=0, hits=0)
            self._swap(_Index([*self._index.rules, rule]))
        return rule

    def extend(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> list[FaultRule]:
        return [self.add(rule) for rule in rules]

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [r for r in self._index.rules if r.id != rule_id]
            found = len(kept) != len(self._index.rules)
            self._swap(_Index(kept))
            return found

    def discard(self, rule: FaultRule) -> None:
        """Remove this very rule, if it is still in the book (a handle kept past a reset does not
        remove a newer rule that reuses its id)."""
        with self._lock:
            self._swap(_Index([r for r in self._index.rules if r is not rule]))

    def clear(self) -> None:
        """Remove every rule; ids start again at 1, so that the same test gives the same journal."""
        with self._lock:
            self._swap(_EMPTY_INDEX)
            self._ids = itertools.count(1)

    def fire_on(self, path: str, body: Any, *, push: bool = True) -> list[FaultRule]:
        """:meth:`fire` for a request's path and parsed body: the facts are read only when some rule
        may hold, so rules that match nothing cost little."""
        index = self._index
        if not index.rules or index.may_fire(path, body) is False:
            return []
        return self.fire(facts_of(path, body), push=push)

    def fire(self, facts: Facts, *, push: bool = True) -> list[FaultRule]:
        """The rules that fire on a request with ``facts``, in the order they were added; their
        counters are updated.

        * Every latency rule that holds fires (their delays add up), and at most one other rule:
          the oldest that holds and passes its frequency. The rules after it that would change the
          answer are not tried at all (no ``seen``, no draw, no ``times`` used), so that two faults
          queued one after the other (``fail_next`` twice) answer one request each, in order.
        * A request that is not a push (``push=False``: ``check-balance``) is tried only against
          rules that name a ``path``: a rule with none is about pushes (docs/faults.md).
        * Probabilities are drawn only for rules whose other conditions hold, so a run of the same
          requests against the same seed fires the same faults."""
        index = self._index
        if not index.rules:
            return []
        candidates = index.candidates(facts)  # the index is replaced whole, never changed: no lock
        if not candidates:
            return []
        fired = []
        decided = False
        with self._lock:
            for rule in candidates:
                latency = rule.action.kind == "latency"
                if (decided and not latency) or (not push and rule.when.path is None):
                    continue
                if not rule.when.holds(facts):
                    continue
                rule.seen += 1
                if rule.nth is not None and rule.seen != rule.nth:
                    continue
                if rule.after is not None and rule.seen <= rule.after:
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                fired.append(rule)
                decided = decided or not latency
        return fired

    def draw_delay(self, action: Action) -> float:
        with self._lock:
            return action.delay(self._rng)


NOT_FIRED = Fired((), 0.0, ())
