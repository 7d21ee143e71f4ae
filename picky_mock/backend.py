"""The backend: the rules and the state of one emulated Picky Assist API.

The HTTP layer (:mod:`picky_mock.app`) only parses requests and shapes answers; everything that
decides, counts or remembers lives here, on one object per server: the contract, the mode, the id
sequences, the price table and the journal. One lock guards the step that takes ids and writes the
journal, so ids stay unique, contiguous per push and increasing across concurrent requests.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from .config import Settings
from .contract import Contract, Violation, default_contract
from .errors import ApiError, InvalidRequest, error_for_status
from .journal import Entry, Journal, Message, Push
from .pricing import PriceTable, format_credit

__all__ = ["Backend", "Incoming", "Outcome", "Sequences", "parse_document"]

log = logging.getLogger("picky_mock")

_BOM = b"\xef\xbb\xbf"
_KNOWN_TOP = frozenset(
    "token application globalmessage globalmedia globalmedia_code media_name priority template_id "
    "language template_globalmessage template_header voice sticker action location contact data".split()
)
_KNOWN_ITEM = frozenset(
    "number messenger_id message template_message language media media_code reference_number".split()
)
_REPAIRABLE_NUMBER = re.compile(r"^\s*(\+|00)?[0-9][0-9\s\-().]*$")
_HEADER_LIMIT = 1000


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


@dataclass(frozen=True)
class Incoming:
    """A request as the HTTP layer hands it over."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    raw_body: bytes
    document: bytes | None
    """The JSON document: the body, or the ``data`` form field or query parameter."""
    source: str = "body"
    """Where ``document`` came from: ``body``, ``form`` or ``query``."""


@dataclass
class Outcome:
    """What the HTTP layer sends back."""

    http_status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    entry: Entry | None = None


def parse_document(document: bytes | None) -> Any:
    """The JSON value of ``document``, or :class:`InvalidRequest` saying why it is not JSON."""
    if document is None or not document.strip():
        raise InvalidRequest("the body is empty: send the push as a JSON object")
    if document.startswith(_BOM):
        document = document[len(_BOM) :]
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        first_error = str(exc)
    # orjson refuses integers beyond 64 bits, which the stdlib parses (and the contract then
    # judges); NaN and Infinity are not JSON and stay refused.
    try:
        return json.loads(document.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError):
        raise InvalidRequest(f"the body is not valid JSON: {first_error}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def header_safe(text: str) -> str:
    """``text`` made fit for an HTTP header: one line, ASCII, at most 1,000 characters."""
    flat = " ".join(text.split())
    flat = flat.encode("ascii", "backslashreplace").decode("ascii")
    return flat if len(flat) <= _HEADER_LIMIT else flat[: _HEADER_LIMIT - 1] + "~"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class Backend:
    """One emulated API: settings, contract, sequences, prices and journal."""

    def __init__(self, settings: Settings | None = None, *, contract: Contract | None = None) -> None:
        self.settings = settings or Settings()
        self.contract = contract or default_contract()
        self.mode = self.settings.mode
        self.pricing = PriceTable(self.settings.prices)
        self.sequences = Sequences(self.settings.push_id_start, self.settings.msg_id_start)
        self.journal = Journal(self.settings.retention)
        self.server_errors: list[BaseException] = []
        self._errors_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh start: empty journal, sequences at their start values, mode as set."""
        self.journal.clear()
        self.sequences.reset()
        self.mode = self.settings.mode
        with self._errors_lock:
            self.server_errors.clear()

    def record_server_error(self, exc: BaseException) -> None:
        with self._errors_lock:
            self.server_errors.append(exc)

    def take_server_errors(self) -> list[BaseException]:
        with self._errors_lock:
            errors, self.server_errors = self.server_errors, []
            return errors

    # -- the push --------------------------------------------------------------------------

    def push(self, incoming: Incoming) -> Outcome:
        """Judge one push request, answer it as the real API would, and journal it."""
        seq = self.journal.next_seq()
        notes: list[str] = []
        body: Any = None
        violations: Sequence[Violation] = ()
        try:
            body = parse_document(incoming.document)
            if incoming.source != "body":
                notes.append(f"quirk: the JSON document came in the '{incoming.source}' data field")
            body = self._deviations(body, notes)
            violations = self.contract.request_violations(body)
            if violations:
                first = violations[0]
                more = f" (+{len(violations) - 1} more, see the journal)" if len(violations) > 1 else ""
                raise error_for_status(
                    first.status, f"expected {first.expected}, found {first.found}{more}", path=first.path
                )
            push, items = self._normalise(body, notes)
            return self._accept(seq, incoming, body, push, items, notes)
        except ApiError as error:
            return self._reject(seq, incoming, body, error, tuple(violations), notes)

    def _deviations(self, body: Any, notes: list[str]) -> Any:
        """Note (strict) or repair (lenient) the deviations of CONTRACT.md 2.3."""
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
                if type(number) is str and not number.isdigit() and _REPAIRABLE_NUMBER.match(number):
                    digits = re.sub(r"\D", "", number)
                    if number.lstrip().startswith("00"):
                        digits = digits[2:]
                    notes.append(f"deviation: data[{index}].number {number!r} is not bare digits: {verdict}")
                    repaired[index] = digits
            if lenient and repaired:
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
        unknown = tuple(sorted(k for k in body if k not in _KNOWN_TOP and k != "priority "))
        if unknown:
            notes.append("quirk: unknown keys ignored: " + ", ".join(unknown))
        items: list[dict[str, Any]] = body["data"]
        unknown_items: set[str] = set()
        integer_numbers = 0
        for item in items:
            if not item.keys() <= _KNOWN_ITEM:
                unknown_items.update(item.keys() - _KNOWN_ITEM)
            if type(item.get("number")) is not str and "number" in item:
                integer_numbers += 1
        if unknown_items:
            notes.append("quirk: unknown keys in data[] ignored: " + ", ".join(sorted(unknown_items)))
        if integer_numbers:
            notes.append(f"quirk: {integer_numbers} number(s) sent as JSON integers")
        template_id = body.get("template_id")
        push = Push(
            token=body["token"],
            application=int(application),
            priority=int(priority or 0),
            globalmessage=body.get("globalmessage") or "",
            globalmedia=body.get("globalmedia") or None,
            template_id=None if template_id is None else str(template_id),
            recipients=len(items),
            unknown_keys=unknown,
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
    ) -> Outcome:
        channel = push.application
        global_text = push.globalmessage
        global_media = push.globalmedia
        charge = self.pricing.charge
        resolved = []
        total = Decimal(0)
        for item in items:
            raw = item.get("number")
            if raw is None:
                raw = item.get("messenger_id")
            number = raw if type(raw) is str else str(int(raw))
            text = item.get("message") or global_text
            segments, credit, credit_text = charge(channel, text)
            total += credit
            reference = item.get("reference_number")
            resolved.append(
                (number, text, item.get("media") or global_media, segments, credit_text,
                 None if reference is None else str(reference))
            )
        push_id_int, first = self.sequences.take(len(resolved))
        push_id = str(push_id_int)
        messages = tuple(
            Message(str(first + i), push_id, i, number, text, media, channel, segments, credit, ref)
            for i, (number, text, media, segments, credit, ref) in enumerate(resolved)
        )
        answer = {
            "status": 100,
            "push_id": push_id,
            "message": "Success",
            "data": [{"msg_id": m.msg_id, "number": m.number, "credit": m.credit} for m in messages],
        }
        entry = Entry(
            seq=seq,
            time=time.time(),
            method=incoming.method,
            path=incoming.path,
            headers=incoming.headers,
            raw_body=incoming.raw_body,
            body=body,
            http_status=200,
            answer=answer,
            push=push,
            messages=messages,
            notes=tuple(notes),
        )
        self.journal.append(entry)
        log.info(
            "push %s channel=%s recipients=%d status=100 credit=%s",
            push_id, channel, len(messages), format_credit(total),
        )
        headers = {"x-picky-request-id": str(seq)}
        deviations = [n for n in notes if n.startswith("deviation")]
        if deviations:
            headers["x-picky-deviation"] = header_safe("; ".join(deviations))
        return Outcome(200, _dumps(answer), headers, entry)

    def _reject(
        self,
        seq: int,
        incoming: Incoming,
        body: Any,
        error: ApiError,
        violations: tuple[Violation, ...],
        notes: list[str],
    ) -> Outcome:
        answer = error.body()
        where = f"{error.path}: {error.detail}" if error.detail else error.path
        entry = Entry(
            seq=seq,
            time=time.time(),
            method=incoming.method,
            path=incoming.path,
            headers=incoming.headers,
            raw_body=incoming.raw_body,
            body=body,
            http_status=200,
            answer=answer,
            violations=violations,
            notes=tuple(notes),
            error=where,
        )
        self.journal.append(entry)
        log.warning("push rejected: status=%d %s (request %d on %s)", error.status, where, seq, incoming.path)
        headers = {"x-picky-error": header_safe(f"{error.status} {where}"), "x-picky-request-id": str(seq)}
        return Outcome(200, _dumps(answer), headers, entry)

    # -- requests that are not pushes ------------------------------------------------------

    def transport_error(self, incoming: Incoming, http_status: int, api_status: int, detail: str) -> Outcome:
        """A request refused before it reached the contract (too large, wrong method): journaled
        like any other, answered with ``http_status`` and the API's JSON error shape."""
        error = error_for_status(api_status, detail)
        seq = self.journal.next_seq()
        entry = Entry(
            seq=seq,
            time=time.time(),
            method=incoming.method,
            path=incoming.path,
            headers=incoming.headers,
            raw_body=incoming.raw_body,
            body=None,
            http_status=http_status,
            answer=error.body(),
            error=detail,
        )
        self.journal.append(entry)
        log.warning("%s %s refused: HTTP %d, %s (request %d)", incoming.method, incoming.path, http_status, detail, seq)
        return Outcome(
            http_status,
            _dumps(error.body()),
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
        }
