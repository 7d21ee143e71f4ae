"""The API contract in machine form: the JSON Schemas in ``schemas/`` and what a failure means.

jsonschema is the reference validator and writes the detailed report (JSON path, what was expected,
what was found, which status code the API answers). The accept path first asks a validator compiled
by jsonschema-rs from the same schema files, which is two orders of magnitude faster; the test suite
proves the two agree. Each schema says, with the annotations ``x-picky-status``,
``x-picky-status-<keyword>`` and ``x-picky-status-missing``, which status code a failure of that
subschema is answered with; ``x-picky-expected`` says in words what a developer must send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import orjson

__all__ = [
    "STATUS_PRECEDENCE",
    "Contract",
    "LongInteger",
    "Violation",
    "assert_valid_request",
    "assert_valid_response",
    "default_contract",
    "json_int",
    "json_path",
    "schemas_dir",
    "validate_request",
    "validate_response",
]

SCHEMA_FILES = {
    "request": "push-request.schema.json",
    "response": "push-response.schema.json",
    "error": "error-response.schema.json",
    "report_request": "delivery-report-request.schema.json",
    "report_response": "delivery-report-response.schema.json",
    "event_webhook": "event-webhook.schema.json",
    "incoming_webhook": "incoming-webhook.schema.json",
    "instant_reply": "instant-reply.schema.json",
}

#: When a body breaks several rules, the code the API answers is the first of these that applies:
#: authentication, then the recipient list, then the shape of the request, then each recipient.
STATUS_PRECEDENCE = (401, 402, 410, 406, 407)


def schemas_dir() -> Path:
    """Where the schema files are: inside the installed package (wheels and sdists put them in
    ``picky_mock/schemas``), or at the top of a source checkout (editable installs)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / SCHEMA_FILES["request"]).is_file():
            return candidate
    raise FileNotFoundError(f"picky-mock schemas not found next to {here}")


def json_path(parts: Iterable[object]) -> str:
    """``$.data[3].number`` from ``["data", 3, "number"]``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


class LongInteger:
    """A JSON integer with more digits than Python converts to an ``int`` (``sys.get_int_max_str_digits()``,
    4,300 by default: CPython's guard against quadratic-time conversion).

    The document is JSON all the same, so picky-mock's parsers keep such an integer as this (see
    :func:`json_int`) rather than refuse the whole body. No schema type matches it: the contract
    rejects it wherever the value is judged (406 as a ``number``, 401 as the token, 410 in another
    typed field) and shows it shortened (:meth:`shown`); where any value goes (an unknown key) it
    passes. ``str()`` gives the digits as sent."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"LongInteger({self.shown()!r})"

    def __eq__(self, other: object) -> bool:
        return self.text == other.text if isinstance(other, LongInteger) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)

    def shown(self) -> str:
        """``11111111111111111111… (an integer of 5000 digits, too long to read)``: a found value."""
        digits = len(self.text) - self.text.startswith("-")
        return f"{self.text[:20]}… (an integer of {digits} digits, too long to read)"


def json_int(text: str) -> int | LongInteger:
    """``parse_int`` for :func:`json.loads`: the integer, or a :class:`LongInteger` when it has
    more digits than ``int()`` converts (``json.loads`` would raise ``ValueError``)."""
    try:
        return int(text)
    except ValueError:
        return LongInteger(text)


_INFINITY = float("inf")


def _shown(value: object) -> str:
    """How :func:`_show` writes a value that is not JSON: a long integer shortened, else its repr."""
    return value.shown() if isinstance(value, LongInteger) else repr(value)


def _show(value: object, limit: int = 60) -> str:
    if isinstance(value, LongInteger):
        return value.shown()
    if type(value) is float and value in (_INFINITY, -_INFINITY):  # JSON's 1e400: no double holds it
        return f"a number beyond the range of a double (read as {value})"
    try:
        text = json.dumps(value, ensure_ascii=False, default=_shown)
    except (ValueError, RecursionError):
        try:
            text = repr(value)
        except RecursionError:
            text = "(nested too deeply to show)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Violation:
    """One way a body breaks the contract."""

    path: str
    """JSON path of the offending value, ``$`` for the whole body."""
    expected: str
    """What the contract wants there, in words."""
    found: str
    """What was sent (abridged), or ``nothing`` for a missing key."""
    status: int
    """The status code the API answers for this violation of a request (docs/contract.md §4);
    0 for a violation of a response, which no status code answers."""

    def __str__(self) -> str:
        answered = f" (status {self.status})" if self.status else ""
        return f"{self.path}: expected {self.expected}, found {self.found}{answered}"


def _expected(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    words = schema.get(f"x-picky-expected-{error.validator}", schema.get("x-picky-expected"))
    if isinstance(words, str):
        return words
    keyword: Any = error.validator
    value: Any = error.validator_value
    if keyword == "type":
        kinds = value if isinstance(value, list) else [value]
        return "a JSON " + " or ".join(str(k) for k in kinds)
    if keyword == "pattern":
        return f"a string matching {value}"
    if keyword == "minLength":
        return "a non-empty string" if value == 1 else f"at least {value} characters"
    if keyword == "maxLength":
        return f"at most {value} characters"
    if keyword == "minItems":
        return "a non-empty list" if value == 1 else f"at least {value} items"
    if keyword in ("enum", "const"):
        return "one of " + ", ".join(_show(v) for v in (value if keyword == "enum" else [value]))
    if keyword in ("minimum", "maximum"):
        return f"a value {'>=' if keyword == 'minimum' else '<='} {value}"
    text = str(error.message)
    return text if len(text) <= 200 else text[:199] + "…"


def _status(error: jsonschema.ValidationError, missing: str | None) -> int:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if missing is not None:
        by_key = schema.get("x-picky-status-missing", {})
        if missing in by_key:
            return int(by_key[missing])
    specific = schema.get(f"x-picky-status-{error.validator}")
    if specific is not None:
        return int(specific)
    return int(schema.get("x-picky-status", 410))


def _violations(error: jsonschema.ValidationError, items: Mapping[int, list[int]] | None = None) -> list[Violation]:
    """The violations ``error`` stands for; with ``items`` (see :meth:`Contract._reduced`), an error
    in ``data[k]`` of the reduced body stands for one in each ``data[i]``, ``i`` in ``items[k]``."""
    path = list(error.absolute_path)
    if items is not None and len(path) > 1 and path[0] == "data" and isinstance(path[1], int):
        return [
            violation for index in items[path[1]] for violation in _violations_at(error, ["data", index, *path[2:]])
        ]
    return _violations_at(error, path)


def _violations_at(error: jsonschema.ValidationError, path: list[Any]) -> list[Violation]:
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        required: Any = error.validator_value
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        words = schema.get("x-picky-expected-required")
        expected = words if isinstance(words, str) else "a value (required)"
        return [
            Violation(json_path([*path, key]), expected, "nothing", _status(error, key))
            for key in required
            if key not in instance
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(schema.get("properties", {}))
        extra = [key for key in error.instance if key not in allowed]
        return [
            Violation(
                json_path([*path, key]),
                "no such key (allowed: " + ", ".join(allowed) + ")",
                _show(error.instance[key]),
                _status(error, None),
            )
            for key in extra
        ]
    return [Violation(json_path(path), _expected(error), _show(error.instance), _status(error, None))]


#: Keywords that relate the items of an array to each other (or count them): with none of them in
#: a schema, each item of ``data[]`` is judged on its own, which :meth:`Contract._reduced` relies on.
_ACROSS_ITEMS = frozenset(
    {"uniqueItems", "contains", "minContains", "maxContains", "maxItems", "prefixItems", "unevaluatedItems"}
)
#: A body with more recipients than this is reduced to its failing recipients before the reference
#: validator reports on it (it takes some 50 microseconds a recipient).
_MANY_ITEMS = 64
_REPORTED_ITEMS = 1000
"""A push with more distinct failing recipients than this is reported on the first of them and on one
recipient of each other way to fail (so the status answered is the one the whole push earns): the
reference validator takes ~0.1 ms a failing recipient, and 100,000 wrong numbers would take 10 s."""


def _items_independent(schema: object) -> bool:
    if isinstance(schema, list):
        return all(_items_independent(value) for value in schema)
    if not isinstance(schema, Mapping):
        return True
    if _ACROSS_ITEMS & schema.keys():
        return False
    min_items = schema.get("minItems", 0)
    if not isinstance(min_items, int) or min_items > 1:
        return False
    return all(_items_independent(value) for value in schema.values())


def _item_key(item: object) -> bytes:
    """A key equal for equal items (``data[]`` items are grouped by it)."""
    try:
        return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits, lone surrogates, more than 255 levels of nesting
        try:
            return json.dumps(item, sort_keys=True, default=_long_key).encode()
        except RecursionError:  # deeper still: a key of its own
            return b"\0deep %d" % id(item)


def _long_key(value: object) -> object:
    if isinstance(value, LongInteger):  # not equal to the string of its digits
        return {"\0long integer": value.text}
    raise TypeError(f"{type(value).__name__} is not JSON")


@lru_cache(maxsize=256)
def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled with ECMA-262's ``$`` (JSON Schema's regex dialect, and jsonschema-rs's):
    the end of the text. Python's ``$`` also matches before a final newline, so that the reference
    validator would pass ``"5511987654321\n"`` that the compiled validator fails."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not _ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: The reference validator: Draft 2020-12 with ECMA-262's ``$`` in ``pattern``.
_extend: Any = jsonschema.validators.extend  # untyped in the stubs
_Reference: Any = _extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


#: Arrays and objects nested deeper than this (from the body's top) are cut by
#: :meth:`Contract._report_cut`; the reference validator follows some hundreds.
_CUT_DEPTH = 100


def _deep_values(body: object) -> list[tuple[Any, ...]]:
    """The places (a top-level key, ``data[i]``, or a key of ``data[i]``) holding arrays and
    objects nested more than :data:`_CUT_DEPTH` levels below the body's top, in document order.
    One walk without recursion that goes no deeper than that: linear in the size of the body."""
    found: dict[tuple[Any, ...], None] = {}
    stack: list[tuple[object, int, tuple[Any, ...]]] = [(body, 0, ())]
    while stack:
        value, depth, top = stack.pop()
        if depth > _CUT_DEPTH:
            found[top] = None
            continue
        if isinstance(value, dict):
            children: list[tuple[Any, object]] = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        for key, child in reversed(children):  # reversed: the stack pops them in document order
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, _top_below(body, top, key)))
    return list(found)


def _top_below(body: object, top: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
    """The place a child at ``key`` under ``top`` belongs to (see :func:`_deep_values`)."""
    if not isinstance(body, dict) or (top and top[0] != "data") or len(top) == 3:
        return top
    if len(top) == 2 and not isinstance(key, str):  # inside data[i] itself, an array
        return top
    return (*top, key)


def _cut(body: Any, places: list[tuple[Any, ...]]) -> Any:
    """A copy of ``body`` with the arrays and objects at ``places`` emptied, copied along the way
    to them only (one pass, however many places)."""
    tree: dict[Any, Any] = {}
    for place in places:
        if not place:
            return [] if isinstance(body, list) else {}
        node = tree
        for key in place[:-1]:
            node = node.setdefault(key, {})
        node[place[-1]] = None

    def apply(value: Any, node: dict[Any, Any] | None) -> Any:
        if node is None:
            return [] if isinstance(value, list) else {}
        copy = list(value) if isinstance(value, list) else dict(value)
        for key, below in node.items():
            copy[key] = apply(value[key], below)
        return copy

    return apply(body, tree)


_INDEX = re.compile(r"\[(\d+)\]")


def _rank(violation: Violation) -> tuple[int, str]:
    """Status precedence first, then document order: ``$.data[2]`` before ``$.data[10]`` (array
    indices compared as numbers, zero-padded here; a capped report leads with the same recipient
    as the full one)."""
    path = _INDEX.sub(lambda m: f"[{int(m.group(1)):020d}]", violation.path)
    try:
        return STATUS_PRECEDENCE.index(violation.status), path
    except ValueError:
        return len(STATUS_PRECEDENCE), path


class Contract:
    """The loaded schemas with their reference and compiled validators."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schemas_dir()
        self.schemas: dict[str, dict[str, Any]] = {}
        for name, filename in SCHEMA_FILES.items():
            with open(self.directory / filename, encoding="utf-8") as handle:
                self.schemas[name] = json.load(handle)
        self._reference = {name: _Reference(schema) for name, schema in self.schemas.items()}
        self._compiled = {name: jsonschema_rs.validator_for(schema) for name, schema in self.schemas.items()}
        self._independent = {name: _items_independent(schema) for name, schema in self.schemas.items()}

    def is_valid(self, name: str, body: object) -> bool:
        """The fast check, by the compiled validator: ``True`` when ``body`` meets schema ``name``."""
        try:
            return bool(self._compiled[name].is_valid(body))
        except ValueError:  # a string jsonschema-rs cannot take (a lone surrogate): ask the reference
            return self.is_valid_reference(name, body)

    def is_valid_reference(self, name: str, body: object) -> bool:
        """The same check by the reference validator (jsonschema), for tests and tools."""
        return bool(self._reference[name].is_valid(body))

    def violations(self, name: str, body: object) -> list[Violation]:
        """Every violation of schema ``name`` by ``body``, the one that decides the answer first."""
        found: list[Violation] = []
        reduced = self._reduced(name, body)
        judged, items = (body, None) if reduced is None else reduced
        if _deep_values(judged):  # judged cut, whether or not this Python's recursion would reach the end
            found = self._report_cut(name, judged, items)
        else:
            try:
                self._report(name, judged, items, found)
            except RecursionError:  # jsonschema recurses, into the value and into repr() of it
                found = self._report_cut(name, judged, items)
        found.sort(key=_rank)
        return found

    def _report(self, name: str, body: object, items: dict[int, list[int]] | None, found: list[Violation]) -> None:
        seen: set[tuple[str, int]] = set()
        for error in self._reference[name].iter_errors(body):
            for violation in _violations(error, items):
                if (violation.path, violation.status) not in seen:
                    seen.add((violation.path, violation.status))
                    found.append(violation)

    def _report_cut(self, name: str, body: object, items: dict[int, list[int]] | None) -> list[Violation]:
        """The report on a body nested too deeply for the reference validator, which recurses (how
        deep it gets depends on the Python version: a body nested past :data:`_CUT_DEPTH` levels is
        judged here on every version, so that its report is the same everywhere).

        Each value with arrays and objects nested more than :data:`_CUT_DEPTH` levels below the
        body's top is replaced by an empty one, and the body so cut is judged: a deep value where a
        string or number is due gets the status a shallow wrong value there gets, and is shown as
        "nested more than 100 levels deep". When the cut body passes, what is wrong is inside a
        deep value, where the checker cannot follow: 410 at the first of them."""
        deep = _deep_values(body)
        cut = _cut(body, deep)
        too_deep = f"arrays and objects nested more than {_CUT_DEPTH} levels deep"
        shown: dict[str, str] = {}
        for top in deep:
            places = [list(top)]
            if items is not None and len(top) > 1 and top[0] == "data":  # data[k] stands for data[i]s
                places = [["data", index, *top[2:]] for index in items.get(top[1], [top[1]])]
            for place in places:
                shown[json_path(place)] = too_deep
        found: list[Violation] = []
        try:
            self._report(name, cut, items, found)
        except RecursionError:  # a schema that descends 100 levels may still run out: 410 below
            found = []
        found = [replace(v, found=shown[v.path]) if v.path in shown else v for v in found]
        if not found and shown:
            path, what = next(iter(shown.items()))
            expected = "JSON nested less deeply (the checker follows some hundreds of levels)"
            found = [Violation(path, expected, what, 410)]
        return found

    def _reduced(self, name: str, body: object) -> tuple[dict[str, Any], dict[int, list[int]]] | None:
        """For a body with many ``data[]`` items: the same body with only its failing items, each
        distinct one once, and for each of them the indices it stands for in ``data[]``; ``None``
        when the body must be judged as it is. The compiled validator finds the failing items, so
        that the reference validator, a hundred times slower, reports on a few items rather than on
        100,000 (at most :data:`_REPORTED_ITEMS`, and one of each other way to fail)."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(data, list) or len(data) <= _MANY_ITEMS:
            return None
        if not self._independent[name]:
            return None
        compiled = self._compiled[name]
        top = {key: value for key, value in body.items() if key != "data"}

        def failures_in_data(items: list[object]) -> frozenset[tuple[object, ...]]:
            """How ``items`` fail beside the body's top level: each error's place below its item and
            the schema rule it broke (empty when they pass). One item at a time: jsonschema-rs makes
            each error it reports slowly (~50 us), and a push of 100,000 wrong numbers has as many."""
            errors = compiled.iter_errors({**top, "data": items})
            return frozenset(
                (*error.instance_path[2:], "|", *error.schema_path)
                for error in errors
                if error.instance_path[:1] == ["data"]
            )

        failing: dict[bytes, list[int]] = {}
        representative: dict[bytes, object] = {}
        passing: list[object] = []
        verdicts: dict[bytes, frozenset[tuple[object, ...]]] = {}
        try:
            for index, item in enumerate(data):
                key = _item_key(item)
                failures = verdicts.get(key)
                if failures is None:
                    failures = verdicts[key] = failures_in_data([item])
                if failures:
                    failing.setdefault(key, []).append(index)
                    representative.setdefault(key, item)
                else:
                    passing.append(item)
            if len(failing) == len(data) <= _REPORTED_ITEMS:
                return None  # every item fails, each in its own way, and not too many: nothing to gain
            if passing and failures_in_data(passing):
                return None  # the passing items fail together: a rule across items, judge the whole
        except ValueError:  # a string jsonschema-rs cannot take (a lone surrogate)
            return None
        keys = list(failing)
        if len(keys) > _REPORTED_ITEMS:  # the first ones, then one of each other way to fail
            kinds = {verdicts[key] for key in keys[:_REPORTED_ITEMS]}
            rest = keys[_REPORTED_ITEMS:]
            keys = keys[:_REPORTED_ITEMS]
            for key in rest:
                if verdicts[key] not in kinds:
                    kinds.add(verdicts[key])
                    keys.append(key)
        reduced = {**top, "data": [representative[key] for key in keys] or data[:1]}
        return reduced, {k: failing[key] for k, key in enumerate(keys)}

    def request_violations(self, body: object) -> list[Violation]:
        """Violations of the push request contract; empty when ``body`` is valid."""
        if self.is_valid("request", body):
            return []
        return self.violations("request", body)

    def response_violations(self, body: object) -> list[Violation]:
        """Violations of the response contract: a success answer, or an error answer."""
        name = "response" if isinstance(body, Mapping) and body.get("status") == 100 else "error"
        if self.is_valid(name, body):  # the fast check first, as for requests: answers can be 100,000 long
            return []
        return [replace(violation, status=0) for violation in self.violations(name, body)]


@lru_cache(maxsize=1)
def default_contract() -> Contract:
    """The contract of the installed package (loaded once: the schema files do not change)."""
    return Contract()


def validate_request(body: object) -> list[Violation]:
    """Every way ``body`` breaks the push request contract (an empty list when it is valid)."""
    return default_contract().request_violations(body)


def validate_response(body: object) -> list[Violation]:
    """Every way ``body`` breaks the response contract (success or error answer)."""
    return default_contract().response_violations(body)


def _assert_valid(kind: str, body: object, violations: list[Violation]) -> None:
    if violations:
        lines = [f"{kind} breaks the Picky Assist contract in {len(violations)} place(s):"]
        for v in violations:
            answered = f" (the API answers {v.status})" if v.status else ""
            lines.append(f"  {v.path}: expected {v.expected}, found {v.found}{answered}")
        lines.append(f"the {kind}: {_show(body, 500)}")
        raise AssertionError("\n".join(lines))


def assert_valid_request(body: object) -> None:
    """Fail (``AssertionError``, one line per violation with its JSON path) unless ``body`` is a
    push request the API accepts."""
    __tracebackhide__ = True
    _assert_valid("request", body, validate_request(body))


def assert_valid_response(body: object) -> None:
    """Fail unless ``body`` is an answer the API can give (success or error)."""
    __tracebackhide__ = True
    _assert_valid("response", body, validate_response(body))
