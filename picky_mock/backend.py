"""The backend: the rules and the state of one emulated Picky Assist API.

The HTTP layer (:mod:`picky_mock.app`) only parses requests and shapes answers; everything that
decides, counts or remembers lives here, on one object per server: the contract, the mode, the id
sequences, the price table, the accounts, the fault rules and the journal. Requests are judged on the
event loop's thread, except bodies over 256 KiB, judged in a worker thread; the id sequences, the
journal, the accounts and the fault book each lock their own state, so ids stay unique, contiguous per
push and increasing across concurrent requests. (Journal order is the order pushes finish in: a large
push judged in a worker thread may land after a small one that came later.)
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from .accounts import OFFICIAL_CHANNELS, AccountBook, RateLimit
from .config import MODES, Settings
from .contract import Contract, LongInteger, Violation, _show, default_contract, json_int
from .errors import (
    ApiError,
    AuthenticationFailed,
    ConfigError,
    InsufficientBalance,
    InvalidRequest,
    InvalidTemplateId,
    NotContactable,
    OfficialAccountNotActive,
    PlanWithoutApi,
    ProjectNotActive,
    error_for_status,
)
from .faults import AFTER_JUDGING, HANG_CAP_SECONDS, NOT_FIRED, Action, FaultBook, FaultRule, Fired, proxy_html
from .journal import Entry, Journal, Push, pack_messages
from .pricing import PriceTable, format_credit

__all__ = ["Backend", "Coverage", "Incoming", "Outcome", "Sequences", "parse_document"]

log = logging.getLogger("picky_mock")

#: How an endpoint judges a request: ``(seq, incoming, body, parse_error, fired) -> Outcome``.
Judge = Callable[[int, "Incoming", Any, "ApiError | None", Fired], "Outcome"]

_BOM = b"\xef\xbb\xbf"
_KNOWN_TOP = frozenset(
    "token application globalmessage globalmedia globalmedia_code media_name priority template_id "
    "language template_globalmessage template_header voice sticker action location contact data".split()
) | {"priority "}
_KNOWN_ITEM = frozenset(
    "number messenger_id message template_message language media media_code reference_number".split()
)
_REPAIRABLE_NUMBER = re.compile(r"^\s*(\+|00)?[0-9][0-9\s\-().]*$")
_HEADER_LIMIT = 1000
_ZERO = Decimal(0)
_NO_FAULT: tuple[Fired, FaultRule | None] = (NOT_FIRED, None)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Sequences:
    """The two id sequences: one ``push_id`` a push, a contiguous block of ``msg_id`` s."""

    def __init__(self, push_id_start: int, msg_id_start: int) -> None:
        self.push_id_start, self.msg_id_start = push_id_start, msg_id_start
        self._lock = threading.Lock()
        self._next_push, self._next_msg = push_id_start, msg_id_start

    def take(self, messages: int) -> tuple[int, int]:
        """``(push_id, first msg_id)``; the push owns ``first .. first + messages - 1``."""
        with self._lock:
            push_id, first = self._next_push, self._next_msg
            self._next_push += 1
            self._next_msg += messages
            return push_id, first

    def reset(self) -> None:
        with self._lock:
            self._next_push, self._next_msg = self.push_id_start, self.msg_id_start


class Incoming(NamedTuple):
    """A request as the HTTP layer hands it over."""

    method: str
    path: str
    header_block: bytes
    """The headers, packed by :func:`~picky_mock.journal.pack_headers`."""
    raw_body: bytes
    document: bytes | None
    """The JSON document: the body, or the ``data`` form field or query parameter."""
    source: str = "body"
    """Where ``document`` came from: ``body``, ``form`` or ``query``."""


@dataclass(slots=True)
class Outcome:
    """What the HTTP layer sends back, and how."""

    http_status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    entry: Entry | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering (latency faults)."""
    effect: Action | None = None
    """A fault the HTTP layer carries out on the connection instead of a plain answer."""


class Coverage:
    """Which API status codes and HTTP statuses a server answered and which fault kinds fired:
    kept across resets, for the end-of-session report of the pytest plugin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[int | None, int], int] = {}
        self.faults: Counter[str] = Counter()

    def count(self, entry: Entry, fired: Sequence[FaultRule] = (), kind: str | None = None) -> None:
        """Count one journaled request, the rules that fired on it, and ``kind``, a failure that
        is no rule's (the rate limit's)."""
        key = (entry.status, entry.http_status)
        with self._lock:
            self._answers[key] = self._answers.get(key, 0) + 1
            for rule in fired:
                self.faults[rule.action.kind] += 1
            if kind is not None:
                self.faults[kind] += 1

    @property
    def api_statuses(self) -> Counter[int]:
        with self._lock:
            return _sum(self._answers, 0)

    @property
    def http_statuses(self) -> Counter[int]:
        with self._lock:
            return _sum(self._answers, 1)

    def to_json(self) -> dict[str, dict[str, int]]:
        with self._lock:
            api = _sum(self._answers, 0)
            http = _sum(self._answers, 1)
            return {
                "api_statuses": {str(k): v for k, v in sorted(api.items())},
                "http_statuses": {str(k): v for k, v in sorted(http.items())},
                "faults": dict(sorted(self.faults.items())),
            }


def _sum(answers: Mapping[tuple[int | None, int], int], part: int) -> Counter[int]:
    totals: Counter[int] = Counter()
    for key, count in answers.items():
        if key[part] is not None:
            totals[key[part]] += count  # type: ignore[index]
    return totals


def parse_document(document: bytes | None) -> Any:
    """The JSON value of ``document``, or :class:`InvalidRequest` saying why it is not JSON."""
    if document is None:
        raise InvalidRequest("the body is empty: send the push as a JSON object")
    if document.startswith(_BOM):
        document = document[len(_BOM) :]
    try:
        return orjson.loads(document)  # first: the body is JSON, almost always
    except orjson.JSONDecodeError as exc:
        first_error = str(exc)
    if not document.strip():
        raise InvalidRequest("the body is empty: send the push as a JSON object")
    # orjson refuses integers beyond 64 bits, which the stdlib parses (and the contract then
    # judges; one of more than 4,300 digits as a LongInteger, which int() refuses to convert);
    # NaN and Infinity are not JSON and stay refused, and so do lone surrogates (which no answer
    # or journal could carry).
    try:
        value = json.loads(document.decode("utf-8"), parse_constant=_refuse_constant, parse_int=json_int)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError):
        raise InvalidRequest(f"the body is not valid JSON: {first_error}") from None
    if _has_lone_surrogate(value):
        raise InvalidRequest("the body is not valid JSON: a \\u escape names a lone UTF-16 surrogate") from None
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def header_safe(text: str) -> str:
    """``text`` made fit for an HTTP header: one line, ASCII, at most 1,000 characters."""
    flat = " ".join(text.split())
    flat = flat.encode("ascii", "backslashreplace").decode("ascii")
    flat = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", flat)
    return flat if len(flat) <= _HEADER_LIMIT else flat[: _HEADER_LIMIT - 1] + "~"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class Backend:
    """One emulated API: settings, contract, sequences, prices, accounts, faults and journal."""

    def __init__(self, settings: Settings | None = None, *, contract: Contract | None = None) -> None:
        self.settings = settings or Settings()
        self.contract = contract or default_contract()
        self.mode = self.settings.mode
        self.pricing = PriceTable(self.settings.prices)
        self.sequences = Sequences(self.settings.push_id_start, self.settings.msg_id_start)
        self.journal = Journal(self.settings.retention)
        extra = self.settings.extra
        seed = extra.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed must be a whole number, not {seed!r}")
        self.faults = FaultBook(seed)
        self._configured_faults = [FaultRule.from_dict(spec) for spec in _fault_specs(extra.get("faults"))]
        self.accounts = AccountBook(extra.get("accounts"), extra.get("rate_limit"), extra.get("sessions"))
        self.coverage = Coverage()
        self.push_line: Callable[[str, str], None] | None = None
        """A fast way to log the per-push line (``picky-mock serve`` sets it): ``(level, text)``."""
        self.server_errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self.faults.extend(self._configured_faults)
        self._seed = self.faults.seed
        log.info("fault generator seed %d (set 'seed' to repeat a run)", self._seed)

    @property
    def seed(self) -> int:
        """The fault generator's seed as configured (or drawn at start): :meth:`reset` goes back to it."""
        return self._seed

    # -- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh start: empty journal, sequences at their start values, mode, faults,
        accounts and sessions as configured, the fault generator re-seeded with its seed."""
        self.journal.clear()
        self.sequences.reset()
        self.mode = self.settings.mode
        self.faults.clear()
        self.faults.extend(self._configured_faults)
        self.faults.reseed(self._seed)
        self.accounts.reset()
        with self._errors_lock:
            self.server_errors.clear()

    def set_mode(self, mode: str) -> None:
        """``strict`` or ``lenient`` (docs/contract.md §2.3) until the next reset."""
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode  # type: ignore[assignment]

    def record_server_error(self, exc: BaseException) -> None:
        with self._errors_lock:
            self.server_errors.append(exc)

    def take_server_errors(self) -> list[BaseException]:
        with self._errors_lock:
            errors, self.server_errors = self.server_errors, []
            return errors

    def _record(self, entry: Entry, fired: Fired = NOT_FIRED, kind: str | None = None) -> None:
        self.journal.append(entry)
        self.coverage.count(entry, fired.rules, kind)

    # -- faults ----------------------------------------------------------------------------

    def _plan(self, rules: list[FaultRule]) -> tuple[Fired, FaultRule | None]:
        """What the fired rules do: their total latency, and the one rule that changes the answer
        (:meth:`FaultBook.fire` lets at most one fire)."""
        if not rules:
            return NOT_FIRED, None
        delay = 0.0
        terminal = None
        notes = []
        for rule in rules:
            if rule.action.kind == "latency":
                drawn = self.faults.draw_delay(rule.action)
                delay += drawn
                notes.append(f"{rule.describe()}: delayed {drawn:.3f} s")
            else:
                terminal = terminal or rule
                notes.append(rule.describe())
        return Fired(tuple(rules), min(delay, HANG_CAP_SECONDS), tuple(notes)), terminal  # several add up: capped too

    # -- the push --------------------------------------------------------------------------

    def push(self, incoming: Incoming) -> Outcome:
        """Judge one push request, answer it as the real API would (or as a fault says), journal it."""
        return self._handle(incoming, self._judge, push=True)

    def check_balance(self, incoming: Incoming) -> Outcome:
        """``POST /api/v2/check-balance`` ``{token}``: the balance of the account, as
        ``{"balance": 59.108, "status": 100, "message": "Success"}`` (docs/contract.md §5.1)."""
        return self._handle(incoming, self._judge_balance, push=False)

    def _handle(self, incoming: Incoming, judge: Judge, *, push: bool) -> Outcome:
        """What every API request goes through: parse, let the fault rules speak, judge, journal."""
        seq = self.journal.next_seq()
        body: Any = None
        parse_error: ApiError | None = None
        try:
            body = parse_document(incoming.document)
        except ApiError as error:
            parse_error = error
        rules = self.faults.fire_on(incoming.path, body, push=push) if self.faults.active else None
        fired, terminal = self._plan(rules) if rules else _NO_FAULT
        if terminal is not None and terminal.action.kind not in AFTER_JUDGING:
            outcome = self._faulted(seq, incoming, body, terminal, fired)
        else:
            outcome = judge(seq, incoming, body, parse_error, fired)
            if terminal is not None:
                outcome.effect = terminal.action
                if terminal.action.kind == "html_label":
                    outcome.content_type = "text/html; charset=UTF-8"
        outcome.delay = fired.delay
        return outcome

    def _judge(self, seq: int, incoming: Incoming, body: Any, parse_error: ApiError | None, fired: Fired) -> Outcome:
        notes: list[str] = []
        violations: Sequence[Violation] = ()
        try:
            if parse_error is not None:
                raise parse_error
            if incoming.source != "body":
                notes.append(f"quirk: the JSON document came in the '{incoming.source}' data field")
            if not self.contract.is_valid("request", body):
                body, violations = self._judge_invalid(body, notes)
            accounts = self.accounts
            limited = None if accounts.open and accounts.rate_limit is None else self._authenticate(body)
            if limited is not None:
                return self._rate_limited(seq, incoming, body, *limited, fired)
            if violations:
                first = violations[0]
                more = f" (+{len(violations) - 1} more, see the journal)" if len(violations) > 1 else ""
                raise error_for_status(
                    first.status, f"expected {first.expected}, found {first.found}{more}", path=first.path
                )
            push, items = self._normalise(body, notes)
            return self._accept(seq, incoming, body, push, items, notes, fired)
        except ApiError as error:
            return self._reject(seq, incoming, body, error, tuple(violations), notes, fired)

    def check_request(self, body: Any) -> tuple[list[Violation], list[str]]:
        """What this backend's contract and mode make of a parsed push body, before any account,
        fault or rate limit: the violations left (none: the body is accepted) and the contract
        notes of the deviations of docs/contract.md §2.3 (noted in strict mode, repaired in lenient).
        Nothing is journaled or counted. ``picky-mock validate`` asks this."""
        notes: list[str] = []
        if self.contract.is_valid("request", body):
            return [], notes
        _, violations = self._judge_invalid(body, notes)
        return violations, notes

    def _judge_invalid(self, body: Any, notes: list[str]) -> tuple[Any, list[Violation]]:
        """The body as judged (repaired in lenient mode) and its violations, for a body the fast
        check found invalid. Only an invalid body can hold a deviation of docs/contract.md §2.3 (the
        schema refuses each): note it, or in lenient mode repair it, then report what is still
        wrong."""
        repaired: dict[str, str] = {}
        body = self._deviations(body, notes, repaired)
        violations = self.contract.request_violations(body)
        if repaired:  # a repaired number still wrong: show what the client sent, and what it became
            violations = [
                replace(v, found=f"{repaired[v.path]}, read as {v.found} (lenient mode)") if v.path in repaired else v
                for v in violations
            ]
        return body, violations

    def _authenticate(self, body: Any, *, push: bool = True) -> tuple[float, RateLimit] | None:
        """The checks of the account model that come before the contract (as the real API
        authenticates first): 401, 405, 408 and, for a push, the rate limit. Returns the seconds
        to wait, and the limit, when the rate limit is hit."""
        accounts = self.accounts
        if accounts.open and accounts.rate_limit is None:
            return None  # open mode: every token passes, and the contract judges a blank one
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            return None  # the contract answers 401 for a missing or blank token
        account = self.accounts.get(token)
        if account is None:
            raise AuthenticationFailed("token is not one of the configured accounts", path="$.token")
        if not account.api:
            raise PlanWithoutApi(f"account {token!r} is configured without API access (api = false)", path="$.token")
        if not account.active:
            raise ProjectNotActive(f"account {token!r} is configured inactive (active = false)", path="$.token")
        return self.accounts.admit(token) if push else None

    def _account_rules(self, push: Push, items: list[dict[str, Any]], numbers: Sequence[str]) -> None:
        """The checks of the account model on a push that meets the contract: 801, 804, 802."""
        account = self.accounts.get(push.token)
        if account is None:  # removed meanwhile
            raise AuthenticationFailed("token is not one of the configured accounts", path="$.token")
        official = push.application in OFFICIAL_CHANNELS
        if official and not account.official:
            raise OfficialAccountNotActive(
                f"channel {push.application} is an official channel and account {push.token!r} has no official "
                "WhatsApp account (official = false)",
                path="$.application",
            )
        if push.template_id is not None and account.templates is not None and push.template_id not in account.templates:
            approved = ", ".join(sorted(account.templates)) or "none"
            raise InvalidTemplateId(
                f"template {push.template_id!r} is not approved for this account (approved: {approved})",
                path="$.template_id",
            )
        if official and account.window and push.template_id is None:
            for index, (item, number) in enumerate(zip(items, numbers, strict=True)):
                if "template_message" not in item and not self.accounts.session_open(number):
                    raise NotContactable(
                        f"free text to {number} outside the 24-hour window: send a template, or open a session "
                        "(picky_server.open_session / POST /_picky/sessions)",
                        path=f"$.data[{index}]",
                    )

    def _rate_limited(
        self, seq: int, incoming: Incoming, body: Any, wait: float, limit: RateLimit, fired: Fired
    ) -> Outcome:
        token = body.get("token")
        detail = f"rate limit: more than {limit.per_minute} push requests a minute from token {token!r}"
        retry_after = str(max(1, int(wait + 0.999)))
        if limit.action == "drop":
            data = body.get("data") if isinstance(body.get("data"), list) else []
            push_id, first = self.sequences.take(len(data))
            answer = {
                "status": 100,
                "push_id": str(push_id),
                "message": "Success",
                "data": [
                    {"msg_id": str(first + i), "number": _number_text(item), "credit": self._quoted_credit(body, item)}
                    for i, item in enumerate(data)
                ],
            }
            entry = self._entry(
                seq, incoming, body, 200, answer, error=f"{detail}: dropped, not processed", fired=fired, dropped=True
            )
            self._record(entry, fired, "rate_limit_drop")
            log.warning("push dropped by the rate limit (request %d): %s", seq, detail)
            headers = {"x-picky-error": header_safe(f"dropped: {detail}"), "x-picky-request-id": str(seq)}
            return Outcome(200, entry.answer_bytes or b"", headers, entry)
        answer = {"status": 429, "message": "Too Many Requests"}
        entry = self._entry(seq, incoming, body, 429, answer, error=detail, fired=fired)
        self._record(entry, fired, "rate_limit_429")
        log.warning("push refused by the rate limit: HTTP 429 (request %d): %s", seq, detail)
        headers = {"retry-after": retry_after, "x-picky-error": header_safe(detail), "x-picky-request-id": str(seq)}
        return Outcome(429, entry.answer_bytes or b"", headers, entry)

    def _quoted_credit(self, body: dict[str, Any], item: Any) -> str:
        """The credit a success would show for ``item``: a dropped push is answered exactly like
        one (nothing tells the client), though nothing is charged. Best effort on a body that was
        never judged: "0" where there is no channel or text to price."""
        application = body.get("application")
        if type(application) is str and application.isdecimal() and len(application) < 10:
            channel = int(application)
        elif type(application) is int:
            channel = application
        else:
            return "0"
        text = item.get("message") if isinstance(item, dict) else None
        text = text or body.get("globalmessage")
        return self.pricing.charge(channel, text if isinstance(text, str) else "")[2]

    def _faulted(self, seq: int, incoming: Incoming, body: Any, rule: FaultRule, fired: Fired) -> Outcome:
        """A request a fault answers in place of the API: an injected API error, an HTTP error, or a
        transport fault (hang, reset, close, garbage)."""
        action = rule.action
        described = rule.describe()
        headers = {"x-picky-fault": header_safe(described), "x-picky-request-id": str(seq)}
        if action.kind == "api_error":
            assert action.status is not None
            error = error_for_status(action.status, f"injected by {described}", message=action.api_message())
            answer = error.body()
            entry = self._entry(seq, incoming, body, 200, answer, error=error.detail, fired=fired)
            self._record(entry, fired)
            log.info("push answered status %d by fault %s (request %d)", action.status, described, seq)
            return Outcome(200, entry.answer_bytes or b"", headers, entry)
        if action.kind == "http_error":
            assert action.status is not None
            status = action.status
            text = action.body
            content_type = "text/plain; charset=utf-8"
            if text is None:
                text = proxy_html(status) if status == 429 or status >= 500 else ""
                content_type = "text/html"
            for name, value in action.headers.items():  # the rule's headers replace ours, never doubled
                lowered = name.lower()
                if lowered == "content-type":
                    content_type = value
                elif lowered != "content-length":  # the length is the body's
                    headers[lowered] = value
            if status == 429 or action.retry_after is not None:
                headers.setdefault("retry-after", str(action.retry_after if action.retry_after is not None else 60))
            entry = self._entry(
                seq,
                incoming,
                body,
                status,
                None,
                answer_bytes=text.encode("utf-8"),
                error=f"HTTP {status} injected by {described}",
                fired=fired,
            )
            self._record(entry, fired)
            log.info("push answered HTTP %d by fault %s (request %d)", status, described, seq)
            return Outcome(status, entry.answer_bytes or b"", headers, entry, content_type=content_type)
        entry = self._entry(seq, incoming, body, 0, None, error=f"{action.kind} injected by {described}", fired=fired)
        self._record(entry, fired)
        log.info("push hit by fault %s (request %d)", described, seq)
        return Outcome(0, b"", headers, entry, effect=action)

    def _entry(
        self,
        seq: int,
        incoming: Incoming,
        body: Any,
        http_status: int,
        answer: Mapping[str, Any] | None,
        *,
        answer_bytes: bytes | None = None,
        error: str | None = None,
        fired: Fired = NOT_FIRED,
        dropped: bool = False,
        notes: Sequence[str] = (),
        violations: tuple[Violation, ...] = (),
    ) -> Entry:
        """The journal record of a request; ``answer_bytes`` is the body sent (made from
        ``answer`` when not given). ``body`` is not stored: the entry parses its document on read."""
        status = push_id = None
        if answer is not None:
            status = answer.get("status")
            push_id = answer.get("push_id")
            if answer_bytes is None:
                answer_bytes = _dumps(answer)
        return Entry(
            seq,
            time.time(),
            incoming.method,
            incoming.path,
            incoming.header_block,
            incoming.raw_body,
            incoming.document,
            http_status,
            status if isinstance(status, int) else None,
            push_id if isinstance(push_id, str) else None,
            answer_bytes,
            None,
            None,
            violations,
            tuple(notes),
            error,
            fired.notes,
            dropped,
            fired.delay,
        )

    def _deviations(self, body: Any, notes: list[str], repaired_from: dict[str, str] | None = None) -> Any:
        """Note (strict) or repair (lenient) the deviations of docs/contract.md §2.3; ``repaired_from``
        gets, for each number repaired, its JSON path and the value as sent (shown)."""
        if not isinstance(body, dict):
            return body
        lenient = self.mode == "lenient"
        verdict = "repaired (lenient mode)" if lenient else "rejected (strict mode)"
        if "data" not in body and ("number" in body or "messenger_id" in body):
            notes.append(f"deviation: top-level number/message without data[]: {verdict}")
            if lenient:
                body = dict(body)
                item = {k: body.pop(k) for k in ("number", "messenger_id", "message", "media") if k in body}
                body["data"] = [item]
        if "application" not in body:
            notes.append(
                "deviation: application missing: "
                + ("defaulted to 1 (lenient mode)" if lenient else "rejected (strict mode)")
            )
            if lenient:
                body = dict(body)
                body["application"] = 1
        data = body.get("data")
        if isinstance(data, list):
            repaired: dict[int, str] = {}
            for index, item in enumerate(data):
                number = item.get("number") if isinstance(item, dict) else None
                if (
                    type(number) is str
                    and (not number.isdigit() or number.startswith("00"))
                    and _REPAIRABLE_NUMBER.match(number)
                ):
                    digits = re.sub(r"\D", "", number)
                    if number.lstrip().startswith("00"):
                        digits = digits[2:]
                    sent = repr(number) if len(number) <= 60 else f"{number[:60]!r}… ({len(number)} characters)"
                    notes.append(f"deviation: data[{index}].number {sent} is not bare digits: {verdict}")
                    repaired[index] = digits
            if lenient and repaired:
                if repaired_from is not None:
                    for index in repaired:
                        repaired_from[f"$.data[{index}].number"] = _show(data[index]["number"])
                data = [
                    {**item, "number": repaired[index]} if index in repaired else item
                    for index, item in enumerate(data)
                ]
                body = {**body, "data": data}
        return body

    def _normalise(self, body: dict[str, Any], notes: list[str]) -> tuple[Push, list[dict[str, Any]]]:
        if "priority " in body:
            notes.append("quirk: key 'priority ' with a trailing space, read as 'priority'")
        priority = body.get("priority", body.get("priority ", 0))
        application = body["application"]
        if type(application) is str:
            notes.append("quirk: application sent as a string")
        unknown: tuple[str, ...] = ()
        if not body.keys() <= _KNOWN_TOP:
            unknown = tuple(sorted(body.keys() - _KNOWN_TOP))
            notes.append("quirk: unknown keys ignored: " + ", ".join(unknown))
        items: list[dict[str, Any]] = body["data"]
        template_id = body.get("template_id")
        push = Push(
            body["token"],
            int(application),
            int(priority or 0),
            body.get("globalmessage") or "",
            body.get("globalmedia") or None,
            None if template_id is None else str(template_id),
            len(items),
            unknown,
        )
        return push, items

    def _accept(
        self,
        seq: int,
        incoming: Incoming,
        body: dict[str, Any],
        push: Push,
        items: list[dict[str, Any]],
        notes: list[str],
        fired: Fired,
    ) -> Outcome:
        channel = push.application
        global_text = push.globalmessage
        global_media = push.globalmedia
        charge = self.pricing.charge
        rows = []
        total = _ZERO
        plain = True  # every recipient is a number of digits: the answer can be written directly
        unknown_keys: set[str] = set()
        integer_numbers = 0
        for item in items:
            if not item.keys() <= _KNOWN_ITEM:
                unknown_keys.update(item.keys() - _KNOWN_ITEM)
            raw = item.get("number")
            if type(raw) is str:
                number = raw
            elif raw is None:
                number = _number_text(item)
                plain = False
            else:
                number = str(int(raw))
                integer_numbers += 1
            text = item.get("message") or global_text
            count, credit, credit_text = charge(channel, text)
            total += credit
            reference = item.get("reference_number")
            rows.append(
                (
                    number,
                    text,
                    item.get("media") or global_media,
                    count,
                    credit_text,
                    None if reference is None else str(reference),
                )
            )
        if unknown_keys:
            notes.append("quirk: unknown keys in data[] ignored: " + ", ".join(sorted(unknown_keys)))
        if integer_numbers:
            notes.append(f"quirk: {integer_numbers} number(s) sent as JSON integers")
        numbers, texts, media, segments, credits, references = zip(*rows, strict=True)
        accounts = self.accounts
        if not accounts.open:
            self._account_rules(push, items, numbers)
            if not accounts.debit(push.token, total):
                balance = format_credit(accounts.balance(push.token))
                raise InsufficientBalance(
                    f"the push costs {format_credit(total)} and the balance of {push.token!r} is {balance}",
                    path="$.data",
                )
        push_id_int, first = self.sequences.take(len(rows))
        push_id = str(push_id_int)
        packed = pack_messages(first, channel, numbers, texts, media, segments, credits, references)
        push_fields = tuple(push)  # a plain tuple, which the journal can marshal
        answer_bytes = _success_bytes(push_id, first, numbers, credits, plain)
        # Built in place rather than by _entry(): this is the hot path, and keyword calls cost.
        entry = Entry(
            seq,
            time.time(),
            incoming.method,
            incoming.path,
            incoming.header_block,
            incoming.raw_body,
            incoming.document,
            200,
            100,
            push_id,
            answer_bytes,
            push_fields,
            packed,
            (),
            tuple(notes),
            None,
            fired.notes,
            False,
            fired.delay,
        )
        self.journal.append(entry)
        self.coverage.count(entry, fired.rules)
        if self.push_line is not None:
            total_text = credits[0] if len(rows) == 1 else format_credit(total)
            self.push_line(
                "INFO", f"push {push_id} channel={channel} recipients={len(rows)} status=100 credit={total_text}"
            )
        elif log.isEnabledFor(logging.INFO):
            log.info(
                "push %s channel=%s recipients=%d status=100 credit=%s",
                push_id,
                channel,
                len(rows),
                format_credit(total),
            )
        headers = {"x-picky-request-id": str(seq)}
        if notes:
            deviations = [n for n in notes if n.startswith("deviation")]
            if deviations:
                headers["x-picky-deviation"] = header_safe("; ".join(deviations))
        return Outcome(200, answer_bytes, headers, entry)

    def _reject(
        self,
        seq: int,
        incoming: Incoming,
        body: Any,
        error: ApiError,
        violations: tuple[Violation, ...],
        notes: list[str],
        fired: Fired = NOT_FIRED,
    ) -> Outcome:
        answer = error.body()
        where = f"{error.path}: {error.detail}" if error.detail else error.path
        entry = self._entry(
            seq, incoming, body, 200, answer, error=where, fired=fired, notes=notes, violations=violations
        )
        self._record(entry, fired)
        facts = _push_facts(body)
        log.warning("push rejected: status=%d %s%s (request %d on %s)", error.status, facts, where, seq, incoming.path)
        headers = {"x-picky-error": header_safe(f"{error.status} {where}"), "x-picky-request-id": str(seq)}
        return Outcome(200, entry.answer_bytes or b"", headers, entry)

    # -- other endpoints -------------------------------------------------------------------

    def _judge_balance(
        self, seq: int, incoming: Incoming, body: Any, parse_error: ApiError | None, fired: Fired
    ) -> Outcome:
        try:
            if parse_error is not None:
                raise parse_error
            if not isinstance(body, dict):
                raise InvalidRequest(f"expected a JSON object, found {type(body).__name__}")
            token = body.get("token")
            if not isinstance(token, str) or not token.strip():
                raise AuthenticationFailed("expected a non-blank string: your API token", path="$.token")
            self._authenticate(body, push=False)
        except ApiError as error:
            return self._reject(seq, incoming, body, error, (), [], fired)
        answer = {"balance": float(self.accounts.balance(token)), "status": 100, "message": "Success"}
        entry = self._entry(seq, incoming, body, 200, answer, fired=fired)
        self._record(entry, fired)
        return Outcome(200, entry.answer_bytes or b"", {"x-picky-request-id": str(seq)}, entry)

    def transport_error(
        self,
        incoming: Incoming,
        http_status: int,
        api_status: int,
        detail: str,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """A request refused before it reached the contract (too large, wrong method, unknown
        path): journaled like any other, answered with ``http_status`` and the API's error shape
        (or ``body``, when given: what is sent is what is journaled)."""
        error = error_for_status(api_status, detail)
        seq = self.journal.next_seq()
        entry = self._entry(seq, incoming, None, http_status, body if body is not None else error.body(), error=detail)
        self._record(entry)
        log.warning("%s %s refused: HTTP %d, %s (request %d)", incoming.method, incoming.path, http_status, detail, seq)
        return Outcome(
            http_status,
            entry.answer_bytes or b"",
            {"x-picky-error": header_safe(f"{api_status} {detail}"), "x-picky-request-id": str(seq)},
            entry,
        )

    def describe(self) -> Mapping[str, Any]:
        """The state an admin client may read."""
        return {
            "mode": self.mode,
            "push_id_start": self.sequences.push_id_start,
            "msg_id_start": self.sequences.msg_id_start,
            "prices": self.pricing.as_dict(),
            "retention": self.journal.retention,
            "journal_entries": len(self.journal),
            "journal_dropped": self.journal.dropped,
            "max_body_bytes": self.settings.max_body_bytes,
            "seed": self.faults.seed,
            "faults": len(self.faults),
            **self.accounts.describe(),
        }


def _success_bytes(push_id: str, first: int, numbers: Sequence[str], credits: Sequence[str], plain: bool) -> bytes:
    """The success answer of docs/contract.md §3, in the real API's key order. When every number is
    digits (the contract's pattern) the entries are written directly, without one dict each."""
    if plain and len(numbers) == 1:  # the common push: no generator, no join
        return (
            f'{{"status":100,"push_id":"{push_id}","message":"Success","data":[{{"msg_id":"{first}",'
            f'"number":"{numbers[0]}","credit":"{credits[0]}"}}]}}'
        ).encode()
    if plain:
        entries = ",".join(
            f'{{"msg_id":"{first + i}","number":"{number}","credit":"{credit}"}}'
            for i, (number, credit) in enumerate(zip(numbers, credits, strict=True))
        )
        return f'{{"status":100,"push_id":"{push_id}","message":"Success","data":[{entries}]}}'.encode()
    data = [
        {"msg_id": str(first + i), "number": number, "credit": credit}
        for i, (number, credit) in enumerate(zip(numbers, credits, strict=True))
    ]
    return _dumps({"status": 100, "push_id": push_id, "message": "Success", "data": data})


def _push_facts(body: Any) -> str:
    """``channel=1 recipients=3 `` for the log line of a rejected push, as far as the body says."""
    if not isinstance(body, Mapping):
        return ""
    facts = ""
    if "application" in body:
        channel = body["application"]
        if isinstance(channel, (int, str)):
            shown = repr(channel)[:22]  # one line
        else:
            shown = str(channel)[:22] if isinstance(channel, LongInteger) else type(channel).__name__
        facts += f"channel={shown} "
    data = body.get("data")
    if isinstance(data, list):
        facts += f"recipients={len(data)} "
    return facts


def _number_text(item: Any) -> str:
    """The recipient of a ``data[]`` item as digits (the ``messenger_id`` for Messenger); ``""``
    for an item that names none (only a request the contract was not asked about has one)."""
    if not isinstance(item, Mapping):
        return ""
    raw = item.get("number")
    if raw is None:
        raw = item.get("messenger_id")
    if type(raw) is str:
        return raw
    if type(raw) is int:
        return str(raw)
    if type(raw) is float and raw.is_integer():
        return str(int(raw))
    return "" if raw is None else str(raw)


def _fault_specs(value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError("faults must be an array of tables ([[faults]] in TOML)")
    return value
