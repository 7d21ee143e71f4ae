"""Fault rules: when a request is hit, what happens to it, and how often.

A :class:`FaultRule` joins a :class:`When` (criteria on the request: token, channel, a recipient
number exact, by prefix or by pattern, the text, the path), an :class:`Action` (an API error, an
HTTP error, latency, a hang, a broken transport, the ``text/html`` label quirk, or an accepted push
whose answer is lost) and a frequency (the n-th matching request, the next N, after N, always, or
with a probability drawn from the seeded generator of the :class:`FaultBook`).

Patterns (``number_pattern``, ``text_pattern``) are RE2 expressions (the ``google-re2`` bindings),
which match in time linear in the text whatever the pattern: ``(a+)+$`` cannot stall the server.
RE2 has no backreferences and no lookaround; a pattern that uses them, or that compiles to more
than :data:`PATTERN_MEMORY` bytes, is refused with the reason.

Bounds: at most :data:`MAX_RULES` rules in a book, :data:`MAX_PATTERN_LENGTH` characters in a
pattern, :data:`MAX_TEXT_LENGTH` in any other string option or criterion, :data:`MAX_FAULT_BODY`
in an ``http_error`` body and :data:`MAX_HEADERS` extra headers. Adding a list of rules builds the
index once, so it takes time linear in the list.

Rules are indexed by their most selective criterion (exact number, number prefix, token, channel,
path), so a hundred rules that match nothing cost a few dictionary look-ups per request, not a
hundred predicate calls. Rules with only a pattern, a text or no criterion at all are tried in
order.

The book only decides; :mod:`picky_mock.backend` applies API errors and journals, the HTTP layer
(:mod:`picky_mock.api`) renders error pages and holds delays, and :mod:`picky_mock.transport`
carries out transport faults.
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
from .lifecycle import DEFAULT_FAIL_ERROR, MAX_ERROR_MESSAGE, DeliveryFault, Report, parse_state
from .recipients import body_recipients, body_texts, channel_of

__all__ = [
    "ACTIONS",
    "DELIVERY_ACTIONS",
    "MAX_RULES",
    "NOT_FIRED",
    "Action",
    "Facts",
    "FaultBook",
    "FaultRule",
    "Fired",
    "When",
    "facts_of",
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
    "delivery_failed",
    "report_never",
    "report_twice",
    "report_out_of_order",
)
#: Faults on what becomes of the push's messages after it is accepted (the answer is the usual one):
#: a message that fails with an ``error_message``, a delivery report never sent, sent twice, or out
#: of order (docs/faults.md, docs/lifecycle.md).
DELIVERY_ACTIONS = frozenset({"delivery_failed", "report_never", "report_twice", "report_out_of_order"})
#: Faults that let the push be judged (and journaled) as usual, then change how the answer travels
#: (or, :data:`DELIVERY_ACTIONS`, what becomes of its messages).
AFTER_JUDGING = frozenset({"truncate", "malformed", "dribble", "html_label", "answer_lost"}) | DELIVERY_ACTIONS
MAX_DELIVERY_DELAY = 366 * 86400.0
"""``delivery_failed`` ``fail_after``: clock seconds after acceptance (a year at most)."""
_STATE_WORDS = ("unknown", "delivered", "failed", "read", "submitted", "refunded")
HANG_CAP_SECONDS = 300.0
"""The longest any fault holds a request: a hang, a latency, a dribble's pause."""
BODILESS_STATUSES = frozenset({204, 304})
MAX_RULES = 10_000
"""Rules in one book: more is refused (the 10,001st rule of a test suite is a runaway loop)."""
MAX_PATTERN_LENGTH = 1_000
"""Characters in a ``number_pattern`` or ``text_pattern``."""
MAX_TEXT_LENGTH = 4_096
"""Characters in any other string of a rule (a criterion, a message, a name, a header)."""
MAX_FAULT_BODY = 1024 * 1024
"""Characters in an ``http_error`` body."""
MAX_HEADERS = 64
"""Extra headers of an ``http_error``."""
MAX_CHUNK = 1024 * 1024
"""A dribble's chunk, in bytes."""
MAX_RETRY_AFTER = 86_400
"""An ``http_error``'s ``Retry-After``, in seconds (a day)."""
MAX_COUNT = 10**12
"""``times``, ``nth`` and ``after``: more than any run makes requests."""
PATTERN_MEMORY = 1024 * 1024
"""Bytes one compiled pattern may take (RE2's ``max_mem``): beyond it the pattern is refused."""
MAX_PROGRAM_SIZE = 100
"""RE2 program size of one pattern. Matching is linear in the text (RE2's DFA, about 1 ms per
100,000 characters); a pattern whose DFA blows up (``[ab]*a[ab]{40}!``) falls back to RE2's NFA,
linear in the text times this size (measured: 70 to 90 ms per 100,000 characters at 47 to 87).
``^55119[0-9]{8}$`` is 20; ``(.*a){12}`` is 112, refused."""
MAX_PROGRAM_TOTAL = 20_000
"""The program sizes of every pattern in a book together: each push searches their union once."""

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


class Facts(NamedTuple):
    """What a rule can match on, read from a request before it is judged (:func:`facts_of`)."""

    path: str
    token: str | None = None
    channel: int | None = None
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()


def facts_of(path: str, body: Any) -> Facts:
    """What the rules can match on in a request's parsed body (anything: it is not judged yet).

    ``channel`` is ``application`` when the schema would read it as a channel id: a whole number
    (``5`` or ``5.0``) or a decimal string without leading zeros (``"5"``); anything else is no
    channel, so a ``channel`` rule never fires on it."""
    if type(body) is not dict:
        return Facts(path)
    token = body.get("token")
    channel = channel_of(body.get("application"))
    return Facts(path, token if type(token) is str else None, channel, body_recipients(body), tuple(body_texts(body)))


@lru_cache(maxsize=1)
def _re2() -> Any:
    """The RE2 bindings, imported with the first pattern: ``import picky_mock`` stays cheap."""
    import re2

    return re2


@lru_cache(maxsize=2)
def _re2_options(max_mem: int) -> Any:
    options = _re2().Options()
    options.log_errors = False  # a refused pattern is our error message, not a line on stderr
    options.max_mem = max_mem
    options.never_capture = True  # a yes or no is all a rule needs: no submatch pass over the text
    return options


_FILTER_MEMORY = 64 * 1024 * 1024  # the union of up to MAX_RULES patterns


def compile_pattern(name: str, pattern: str) -> Any:
    """``pattern`` compiled by RE2 (linear-time matching), or :class:`ConfigError` saying why not."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"fault: {name} is longer than {MAX_PATTERN_LENGTH} characters")
    re2 = _re2()
    try:
        compiled = re2.compile(pattern, _re2_options(PATTERN_MEMORY))
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(
            f"fault: {name} {pattern!r} is refused: {reason} (patterns are RE2 expressions, matched in linear "
            "time: no backreferences, no lookaround)"
        ) from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ConfigError(
            f"fault: {name} {pattern!r} is refused: too complex (RE2 program size {compiled.programsize}, at most "
            f"{MAX_PROGRAM_SIZE}); write fewer repetitions or alternatives"
        )
    return compiled


def _program_size(rule: FaultRule) -> int:
    return sum(
        _compiled(pattern).programsize
        for pattern in (rule.when.number_pattern, rule.when.text_pattern)
        if pattern is not None
    )


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return compile_pattern("pattern", pattern)


def _any_of(patterns: Iterable[str]) -> _Remembered | None:
    """One RE2 expression that matches where any of ``patterns`` does: a prefilter, so that a
    request no pattern rule matches costs one search, not one per rule."""
    alternatives = [f"(?:{p})" for p in patterns]
    if not alternatives:
        return None
    search = _re2().compile("|".join(alternatives), _re2_options(_FILTER_MEMORY)).search
    return _Remembered(lambda text: search(text) is not None)


class _Remembered:
    """A prefilter that remembers its answer for short texts: tests send the same few numbers and
    texts again and again, and a search through the RE2 wrapper costs a microsecond or two of
    every push while pattern rules are loaded, where a look-up costs a tenth of one. Bounded:
    forgotten at :data:`LIMIT` entries; texts longer than :data:`SHORT` are searched every time."""

    LIMIT = 4096
    SHORT = 256

    __slots__ = ("_answers", "_search")

    def __init__(self, search: Callable[[str], bool]) -> None:
        self._search = search
        self._answers: dict[str, bool] = {}

    def search(self, text: str) -> bool:
        answer = self._answers.get(text)
        if answer is None:
            answer = self._search(text)
            if len(text) <= self.SHORT:
                if len(self._answers) >= self.LIMIT:
                    self._answers.clear()
                self._answers[text] = answer
        return answer


#: The most plain texts tested one by one with ``in`` (linear in the text, each); past it, one RE2
#: expression for all of them reads the text once.
FEW_TEXTS = 16


def _text_filter(rules: list[FaultRule]) -> _Remembered | None:
    """The prefilter of the text rules: ``in`` for a few plain texts, else one RE2 expression
    (``None`` without text rules); either way, its answers remembered for short texts."""
    if rules and len(rules) <= FEW_TEXTS and all(r.when.text is not None for r in rules):
        texts = tuple(r.when.text for r in rules if r.when.text is not None)
        return _Remembered(lambda text: any(wanted in text for wanted in texts))
    return _any_of(
        _re2().escape(r.when.text) if r.when.text is not None else str(r.when.text_pattern) for r in rules
    )


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
            if value is not None and "pattern" not in name and len(value) > MAX_TEXT_LENGTH:
                raise ConfigError(f"fault: {name} is longer than {MAX_TEXT_LENGTH} characters")
        if self.channel is not None and (
            isinstance(self.channel, bool) or not isinstance(self.channel, int) or not 0 <= self.channel < 2**31
        ):
            raise ConfigError(f"fault: channel must be a whole number from 0 to 2^31-1, not {self.channel!r}")
        for name in ("number_pattern", "text_pattern"):
            pattern = getattr(self, name)
            if pattern is not None:
                compile_pattern(name, pattern)

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

    def names_number(self, number: str) -> bool:
        """Whether ``number`` meets the number criteria (all true when there is none): which
        messages of a push a delivery fault hits."""
        if self.number is not None and number != self.number:
            return False
        if self.number_prefix is not None and not number.startswith(self.number_prefix):
            return False
        return self.number_pattern is None or bool(_compiled(self.number_pattern).search(number))

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
    error_message: str | None = None
    """delivery_failed: the ``error_message`` the message fails with (default: a generic one)."""
    fail_after: float | None = None
    """delivery_failed: clock seconds after acceptance (default: when the policy would deliver it, else at once)."""
    states: tuple[str, ...] | None = None
    """report_*: the states whose reports it affects (``["delivered", "read"]``; default every state)."""

    def __post_init__(self) -> None:
        if isinstance(self.states, list):
            object.__setattr__(self, "states", tuple(self.states))
        if self.kind not in ACTIONS:
            raise ConfigError(f"fault: unknown action {self.kind!r} (known: {', '.join(ACTIONS)})")
        allowed = _ACTION_OPTIONS.get(self.kind, frozenset())
        given = [name for name, default in _ACTION_DEFAULTS.items() if getattr(self, name) != default]
        stray = [name for name in given if name not in allowed]
        if stray:
            takes = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"fault: {self.kind} takes no option {', '.join(stray)} (its options: {takes})")
        for name in given:  # one table says what each option accepts
            check, expected = _OPTION_CHECKS[name]
            if not check(getattr(self, name)):
                raise ConfigError(f"fault: {self.kind} {name} must be {expected}, not {getattr(self, name)!r}")
        for name in _REQUIRED.get(self.kind, ()):
            if getattr(self, name) is None:
                raise ConfigError(f"fault: {self.kind} needs a {name}")
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
        if self.kind == "delivery_failed":
            after = f" after {self.fail_after:g}s" if self.fail_after is not None else ""
            return f"delivery_failed{after}" + (f" {self.error_message!r}" if self.error_message else "")
        if self.states is not None:
            return f"{self.kind} on {', '.join(self.states)}"
        return self.kind

    def delivery_fault(self) -> DeliveryFault | None:
        """What a delivery action does to each message it hits (``None`` for the other actions)."""
        if self.kind not in DELIVERY_ACTIONS:
            return None
        if self.kind == "delivery_failed":
            return DeliveryFault(fail_with=self.error_message or DEFAULT_FAIL_ERROR, after=self.fail_after)
        report = {
            "report_never": Report.NEVER,
            "report_twice": Report.TWICE,
            "report_out_of_order": Report.OUT_OF_ORDER,
        }[self.kind]
        on = None if self.states is None else frozenset(parse_state(state) for state in self.states)
        return DeliveryFault(report=report, on=on)


_ACTION_OPTIONS = {
    "api_error": frozenset({"status", "message"}),
    "http_error": frozenset({"status", "body", "headers", "retry_after"}),
    "latency": frozenset({"seconds", "low", "high", "median", "sigma"}),
    "hang": frozenset({"seconds"}),
    "dribble": frozenset({"seconds", "chunk"}),
    "delivery_failed": frozenset({"error_message", "fail_after"}),
    "report_never": frozenset({"states"}),
    "report_twice": frozenset({"states"}),
    "report_out_of_order": frozenset({"states"}),
}
"""The options each action reads; any other is refused, not ignored (the other actions take none)."""
_ACTION_DEFAULTS = {  # every option and its default (``headers``: an empty mapping)
    name: f.default if f.default is not MISSING else {}
    for name, f in Action.__dataclass_fields__.items()
    if name != "kind"
}
_SIGMA_CAP = 10.0
"""A log-normal shape beyond this is no tail but noise (sigma 10: the 99th percentile is 10^10 times the median)."""


def _whole(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and low <= value <= high


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda value: type(value) in (int, float) and low <= value <= high


def _text(limit: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and len(value) <= limit


def _headers(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) <= MAX_HEADERS
        and all(
            isinstance(k, str)
            and isinstance(v, str)
            and _latin1(k)
            and _latin1(v)
            and k.strip()
            and len(k) + len(v) <= MAX_TEXT_LENGTH
            for k, v in value.items()
        )
    )


_SECONDS = (_number(0, HANG_CAP_SECONDS), f"a number of seconds from 0 to {HANG_CAP_SECONDS:g}")
_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (_whole(0, 999_999), "a whole number"),
    "message": (_text(MAX_TEXT_LENGTH), f"a string of at most {MAX_TEXT_LENGTH} characters"),
    "body": (_text(MAX_FAULT_BODY), f"a string of at most {MAX_FAULT_BODY} characters"),
    "headers": (_headers, f"at most {MAX_HEADERS} header names mapped to latin-1 strings"),
    "retry_after": (_whole(0, MAX_RETRY_AFTER), f"whole seconds from 0 to {MAX_RETRY_AFTER}"),
    "seconds": _SECONDS,
    "low": _SECONDS,
    "high": _SECONDS,
    "median": _SECONDS,
    "sigma": (_number(0, _SIGMA_CAP), f"a number from 0 to {_SIGMA_CAP:g}"),
    "chunk": (_whole(1, MAX_CHUNK), f"a whole number of bytes from 1 to {MAX_CHUNK}"),
    "error_message": (_text(MAX_ERROR_MESSAGE), f"a string of at most {MAX_ERROR_MESSAGE} characters"),
    "fail_after": (_number(0, MAX_DELIVERY_DELAY), f"a number of clock seconds from 0 to {MAX_DELIVERY_DELAY:,.0f}"),
    "states": (
        lambda value: isinstance(value, tuple)
        and 0 < len(value) <= len(_STATE_WORDS)
        and all(isinstance(v, str) and v in _STATE_WORDS for v in value),
        f"a list of delivery states ({', '.join(_STATE_WORDS)})",
    ),
}
"""Each option of :class:`Action`: the check its value passes, and what the error says it must be."""
_REQUIRED = {"api_error": ("status",), "http_error": ("status",)}
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
                isinstance(value, bool)
                or not isinstance(value, int)
                or not (0 if attr == "after" else 1) <= value <= MAX_COUNT
            ):
                low = 0 if attr == "after" else 1
                raise ConfigError(f"fault: {attr} must be a whole number from {low} to {MAX_COUNT}, not {value!r}")
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
        if name is not None and (not isinstance(name, str) or len(name) > MAX_TEXT_LENGTH):
            raise ConfigError(f"fault: name must be a string of at most {MAX_TEXT_LENGTH} characters, not {name!r}")
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
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not re.fullmatch(r"[0-9]{1,9}", str(value).strip())
    ):
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
        self.text_filter = _text_filter(self.texts)
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
        prefixes = tuple(self.by_prefix)
        number_search = self.number_filter
        text_search = self.text_filter
        want_numbers = bool(numbers) or bool(prefixes) or number_search is not None

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
                        if number in numbers or (prefixes and number.startswith(prefixes)):
                            return True
                        if number_search is not None and number_search.search(number):
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
        number_filter = self.number_filter
        if number_filter is not None:
            for number in numbers:
                if number_filter.search(number):
                    hits += self.number_patterns
                    break
        text_filter = self.text_filter
        if text_filter is not None:
            for text in facts.texts:
                if text_filter.search(text):
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
        if seed is not None and not 0 <= seed < 2**64:
            raise ConfigError(f"seed must be a whole number from 0 to 2^64-1, not {seed}")
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
        return self.extend([rule])[0]

    def extend(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> list[FaultRule]:
        """Add rules (or their dict forms), all or none, in time linear in their number: the index
        is built once. Past :data:`MAX_RULES` in the book, :class:`ConfigError`."""
        given = [rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule) for rule in rules]
        with self._lock:
            current = self._index.rules
            if len(current) + len(given) > MAX_RULES:
                raise ConfigError(
                    f"fault: {len(current)} rules in force, {len(given)} more would pass the limit of {MAX_RULES} "
                    "(DELETE /_picky/faults clears them)"
                )
            total = sum(_program_size(rule) for rule in (*current, *given))
            if total > MAX_PROGRAM_TOTAL:
                raise ConfigError(
                    f"fault: the patterns of the rules together are too complex (RE2 program size {total}, at most "
                    f"{MAX_PROGRAM_TOTAL}): use number or number_prefix rules, which cost nothing to match"
                )
            added = [replace(rule, id=next(self._ids), seen=0, hits=0) for rule in given]
            if added:
                self._swap(_Index([*current, *added]))
        return added

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
