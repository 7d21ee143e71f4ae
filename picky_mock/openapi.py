"""The OpenAPI 3.1 document of what a picky-mock app serves: the emulated API and the admin API.

The document is generated from the app's own routes, so that it cannot describe a path the app does
not serve; each route's description comes from a table in this module (:data:`API_OPERATIONS` for
the emulated API, keyed by the operation's last path segment; :data:`ADMIN_OPERATIONS` for the
admin API, one entry per operation). A route with no entry is left out and reported by
:func:`undocumented`, which the test suite keeps empty. The request and answer bodies of the
emulated API are the JSON Schemas of ``schemas/``, embedded as they are (OpenAPI 3.1 speaks JSON
Schema 2020-12).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.routing import BaseRoute, Route

from . import __version__
from .contract import schemas_dir
from .faults import ACTIONS
from .guard import ADMIN_CSRF_HEADER, ADMIN_TOKEN_HEADER, OPEN_PATHS, OPENAPI_PATH
from .journal import DEFAULT_PAGE, MAX_PAGE
from .transport import CONNECTION_PATH

__all__ = [
    "ADMIN_OPERATIONS",
    "API_OPERATIONS",
    "OPENAPI_PATH",
    "AdminOperation",
    "ApiOperation",
    "Parameter",
    "build_document",
    "document_bytes",
    "served_operations",
    "undocumented",
]

Schema = Mapping[str, Any]

#: The spellings of an emulated API path: the prefix before ``/api/v2/``, and what the docs call it.
SPELLINGS = {"": "V4", "/app": "V3", "/beta": "legacy"}
_API_PATH = re.compile(r"^(?P<prefix>(?:/[a-z]+)?)/api/v2/(?P<name>[a-z-]+)$")
_CONVERTER = re.compile(r"\{(\w+)(?::\w+)?\}")
_METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")


@dataclass(frozen=True)
class ApiOperation:
    """An operation of the emulated API (``POST`` on each of its spellings)."""

    summary: str
    description: str
    request: str
    """The file in ``schemas/`` of its request body, or a schema name of :data:`_INLINE`."""
    answer: str
    """The file in ``schemas/`` (or the :data:`_INLINE` name) of its success answer."""


@dataclass(frozen=True)
class Parameter:
    """A query or path parameter of an admin operation."""

    name: str
    description: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})
    where: str = "query"


@dataclass(frozen=True)
class AdminOperation:
    """One operation of the admin API: a path (as in :data:`picky_mock.admin.ROUTES`), the methods
    that do it (the first is the one to use; the others are accepted for clients that send only
    one method), what it does, and the schemas of its body and of its success answer."""

    path: str
    methods: tuple[str, ...]
    summary: str
    answer: Schema
    status: int = 200
    body: Schema | None = None
    parameters: tuple[Parameter, ...] = ()
    description: str = ""
    errors: tuple[int, ...] = (400,)
    """Statuses other than the guard's that the operation answers (each with ``{"error": ...}``)."""


# -- the emulated API ---------------------------------------------------------------------------

_INLINE: dict[str, Schema] = {
    "check-balance-request": {
        "title": "Picky Assist check-balance request (POST /api/v2/check-balance)",
        "description": "[doc] The API token, in the body as for the push. Unknown keys are ignored.",
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "pattern": "\\S", "x-picky-status": 401}},
    },
    "check-balance-response": {
        "title": "Picky Assist check-balance success response",
        "description": "[doc] The account's balance as a JSON number, with status 100.",
        "type": "object",
        "required": ["balance", "status", "message"],
        "properties": {
            "balance": {"type": "number"},
            "status": {"const": 100},
            "message": {"const": "Success"},
        },
    },
}

API_OPERATIONS: dict[str, ApiOperation] = {
    "push": ApiOperation(
        "Send messages (a push)",
        "Sends a text, media or template to each recipient of `data[]` on one channel (`application`). "
        "A business error (authentication, balance, a malformed body) is answered HTTP 200 with the "
        "error body and its `status` code (docs/contract.md §4); the `X-Picky-Error` header says what "
        "was wrong. The JSON document may also come as a `data` form field or query parameter.",
        "push-request.schema.json",
        "push-response.schema.json",
    ),
    "check-balance": ApiOperation(
        "Read the account's balance",
        "The balance of the token's account (docs/contract.md §5); errors as for the push.",
        "check-balance-request",
        "check-balance-response",
    ),
    "delivery-report": ApiOperation(
        "Read the delivery report of a push",
        "The state of every message of one push, by its `push_id` (docs/contract.md §5.2); errors as for the push.",
        "delivery-report-request.schema.json",
        "delivery-report-response.schema.json",
    ),
}
"""The emulated API's operations by the last segment of their path (``/api/v2/<name>``)."""


# -- the admin API ------------------------------------------------------------------------------

_ERROR: Schema = {"$ref": "#/components/schemas/AdminError"}
_ANY_OBJECT: Schema = {"type": "object"}
_NUMBER: Schema = {"type": "string", "pattern": "^[0-9]+$"}
_PAGE_LIMIT = Parameter("limit", f"entries per page (default {DEFAULT_PAGE}, at most {MAX_PAGE})", _NUMBER)


def _object(required: Sequence[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": properties}


_RULE: Schema = _object(("id", "action", "when", "seen", "hits", "description"), id={"type": "integer"})
_FLAG: Schema = {"type": "boolean"}
_ACCOUNT: Schema = _object(
    ("token", "balance", "api", "active", "official", "window", "templates"),
    token={"type": "string"},
    balance={"description": "a decimal string; null: no limit", "type": ["string", "null"]},
    api=_FLAG,
    active=_FLAG,
    official=_FLAG,
    window=_FLAG,
    templates={"type": ["array", "null"], "items": {"type": "string"}},
)
_COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer"}}
_RATE_LIMIT: Schema = {
    "oneOf": [
        {"type": "null"},
        _object(("per_minute", "action"), per_minute={"type": "integer"}, action={"enum": ["429", "drop"]}),
    ]
}
_ACCOUNTS: Schema = _object(
    ("open", "accounts", "sessions", "rate_limit"),
    open={"type": "boolean"},
    accounts={"type": "array", "items": _ACCOUNT},
    sessions={"type": "array", "items": {"type": "string"}},
    rate_limit=_RATE_LIMIT,
)
_STRING: Schema = {"type": "string"}
_SECONDS: Schema = {"type": "number", "minimum": 0}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_CRITERIA: dict[str, Schema] = {
    "token": {"type": ["string", "integer"]},
    "channel": {"type": ["integer", "string"]},
    "number": {"type": ["string", "integer"]},
    "number_prefix": {"type": ["string", "integer"]},
    "number_pattern": _STRING,
    "text": _STRING,
    "text_pattern": _STRING,
    "path": _STRING,
}
_NEW_RULE: Schema = {
    "description": "A fault rule (docs/faults.md): the action and its options, the criteria (at the top or "
    "under `when`) and how often it fires. A rule read from `GET /_picky/faults` may be sent back as it is.",
    "type": "object",
    "required": ["action"],
    "properties": {
        "action": {"enum": list(ACTIONS)},
        "name": _STRING,
        "status": {"type": ["integer", "string"]},
        "message": _STRING,
        "body": _STRING,
        "headers": {"type": "object", "additionalProperties": _STRING},
        "retry_after": _COUNT,
        "seconds": _SECONDS,
        "low": _SECONDS,
        "high": _SECONDS,
        "median": _SECONDS,
        "sigma": _SECONDS,
        "chunk": {"type": "integer", "minimum": 1},
        "times": _COUNT,
        "nth": _COUNT,
        "after": _COUNT,
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "when": {"type": "object", "properties": _CRITERIA},
        **_CRITERIA,
    },
}
_STATE: Schema = {
    **_object(
        ("mode", "push_id_start", "msg_id_start", "retention", "journal_entries", "seed", "faults", "open"),
        mode={"enum": ["strict", "lenient"]},
        push_id_start={"type": "integer"},
        msg_id_start={"type": "integer"},
        retention={"type": "integer"},
        journal_entries={"type": "integer"},
        seed={"type": ["integer", "null"]},
        faults={"type": "integer"},
        open={"type": "boolean"},
    )
}
_JOURNAL_FILTERS = (
    Parameter("path", "only requests to this path"),
    Parameter("status", "only answers with this API status code (a whole number)", _NUMBER),
    Parameter("push_id", "only this push"),
    Parameter("number", "only requests naming this number, as sent"),
    Parameter("text", "only requests whose text contains this"),
    Parameter("accepted", "only accepted (true) or refused (false) requests", {"enum": ["true", "false"]}),
    _PAGE_LIMIT,
    Parameter("after", "the page after this `seq` (the previous page's `next`)", _NUMBER),
)
_MESSAGE_FILTERS = (
    Parameter("number", "only messages to this number"),
    Parameter("push_id", "only this push"),
    Parameter("text", "only messages whose text contains this"),
    Parameter("channel", "only this channel (a whole number)", _NUMBER),
    _PAGE_LIMIT,
    Parameter("offset", "messages to skip", _NUMBER),
)

ADMIN_OPERATIONS: tuple[AdminOperation, ...] = (
    AdminOperation(
        "/_picky/health",
        ("GET",),
        "Whether the server is up, and its mode (no token needed)",
        _object(("status", "mode"), status={"const": "ok"}, mode={"enum": ["strict", "lenient"]}),
        errors=(),
    ),
    AdminOperation(
        CONNECTION_PATH,
        ("GET",),
        "Whether transport faults can reach this request's connection (no token needed)",
        _object(("connection",), connection={"const": True}),
        errors=(500,),
        description="500 with `connection: false` when the server in use exposes no connection.",
    ),
    AdminOperation(
        OPENAPI_PATH,
        ("GET",),
        "This document (no token needed)",
        _object(("openapi", "info", "paths"), openapi={"type": "string"}),
        errors=(),
    ),
    AdminOperation(
        "/_picky/journal",
        ("GET",),
        "The journaled requests, oldest first, a page at a time",
        _object(
            ("total", "next", "more", "dropped", "entries"),
            total={"type": "integer"},
            next={"type": ["integer", "null"]},
            more={"type": "boolean"},
            dropped={"type": "integer"},
            entries={"type": "array", "items": _object(("seq", "method", "path", "http_status"))},
        ),
        parameters=_JOURNAL_FILTERS,
    ),
    AdminOperation(
        "/_picky/journal", ("DELETE",), "Empty the journal", _object(("cleared",), cleared={"const": True}), errors=()
    ),
    AdminOperation(
        "/_picky/messages",
        ("GET",),
        "The messages sent (of accepted pushes and instant replies), a page at a time",
        _object(
            ("messages", "total", "next", "dropped"),
            messages={"type": "array", "items": _object(("msg_id", "push_id", "number"))},
            total={"type": "integer"},
            next={"type": ["integer", "null"]},
            dropped={"type": "integer"},
        ),
        parameters=_MESSAGE_FILTERS,
    ),
    AdminOperation(
        "/_picky/reset",
        ("POST",),
        "Back to the configured state (journal, ids, faults, accounts, sessions, rate limit, mode, seed)",
        _object(("reset",), reset={"const": True}),
        errors=(),
    ),
    AdminOperation("/_picky/state", ("GET",), "Settings and state", _STATE, errors=()),
    AdminOperation(
        "/_picky/state",
        ("PUT", "POST", "PATCH"),
        "Change the mode until the next reset (only the mode changes while serving)",
        _STATE,
        body=_object(("mode",), mode={"enum": ["strict", "lenient"]}),
    ),
    AdminOperation(
        "/_picky/faults",
        ("GET",),
        "The fault rules, with their counters",
        _object(("seed", "rules"), seed={"type": ["integer", "null"]}, rules={"type": "array", "items": _RULE}),
        errors=(),
    ),
    AdminOperation(
        "/_picky/faults",
        ("POST",),
        "Add a fault rule, or a list of them (docs/faults.md)",
        _object(("added",), added={"type": "array", "items": _RULE}),
        status=201,
        body={"oneOf": [_NEW_RULE, {"type": "array", "items": _NEW_RULE, "maxItems": 20}]},
    ),
    AdminOperation(
        "/_picky/faults",
        ("DELETE",),
        "Remove every fault rule",
        _object(("cleared",), cleared={"const": True}),
        errors=(),
    ),
    AdminOperation(
        "/_picky/faults/{rule_id:int}",
        ("DELETE",),
        "Remove one fault rule",
        _object(("removed",), removed={"type": "integer"}),
        parameters=(Parameter("rule_id", "the rule's id", {"type": "integer", "minimum": 0}, "path"),),
        errors=(404,),
    ),
    AdminOperation("/_picky/accounts", ("GET",), "The accounts, sessions and rate limit", _ACCOUNTS, errors=()),
    AdminOperation(
        "/_picky/accounts",
        ("DELETE",),
        "Remove every account: back to open mode",
        _object(("open",), open={"const": True}),
        errors=(),
    ),
    AdminOperation(
        "/_picky/accounts/{token}",
        ("PUT", "POST", "PATCH"),
        "Create or change an account (keys as in the config file's [accounts.TOKEN])",
        _ACCOUNT,
        body=_ANY_OBJECT,
        parameters=(Parameter("token", "the account's API token", where="path"),),
    ),
    AdminOperation(
        "/_picky/sessions",
        ("GET",),
        "The open 24-hour windows: each number and the Unix time it closes (null: open for good)",
        _object(("sessions",), sessions={"type": "object", "additionalProperties": {"type": ["number", "null"]}}),
        errors=(),
    ),
    AdminOperation(
        "/_picky/sessions",
        ("POST",),
        "Open a number's 24-hour window",
        _object(("opened", "hours"), opened={"type": "string"}, hours={"type": "number"}),
        status=201,
        body=_object(("number",), number={"type": ["string", "integer"]}, hours={"type": "number"}),
    ),
    AdminOperation(
        "/_picky/sessions/{number}",
        ("DELETE",),
        "Close a number's window",
        _object(("closed",), closed={"type": "string"}),
        parameters=(Parameter("number", "the number", where="path"),),
        errors=(),
    ),
    AdminOperation(
        "/_picky/seed",
        ("PUT", "POST"),
        "Re-seed the fault generator",
        _object(("seed",), seed={"type": "integer"}),
        body=_object(("seed",), seed={"type": "integer"}),
    ),
    AdminOperation(
        "/_picky/rate-limit",
        ("PUT", "POST"),
        "Turn the rate limit on (`{}` or no body: off)",
        _object(("rate_limit",), rate_limit=_RATE_LIMIT),
        body=_object((), per_minute={"type": "integer"}, action={"enum": ["429", "drop"]}),
    ),
    AdminOperation(
        "/_picky/deliver",
        ("POST",),
        "Move messages to a delivery state now (one selector: msg_id, push_id or number)",
        {"type": "object"},
        body=_object(
            ("status",),
            status={"type": ["string", "integer"]},
            msg_id={"type": ["string", "integer"]},
            push_id={"type": ["string", "integer"]},
            number={"type": ["string", "integer"]},
            error_message=_STRING,
        ),
        errors=(400, 404),
    ),
    AdminOperation(
        "/_picky/deliveries",
        ("GET",),
        "The messages' delivery states and timelines, a page at a time",
        {"type": "object"},
        parameters=(
            Parameter("msg_id", "only this message"),
            Parameter("push_id", "only this push's messages"),
            Parameter("number", "only messages to this number"),
            _PAGE_LIMIT,
            Parameter("offset", "messages to skip", _NUMBER),
        ),
        errors=(400, 404),
    ),
    AdminOperation(
        "/_picky/clock",
        ("GET", "POST"),
        "The clock (its kind and the time now); POST advances it (seconds, or a duration such as \"15m\")",
        {"type": "object"},
        body=_object(("advance",), advance={"type": ["number", "string"]}),
    ),
    AdminOperation(
        "/_picky/webhooks",
        ("GET", "PUT", "POST", "PATCH"),
        "The event and incoming-message webhook URLs; PUT sets them until the next reset (null: none)",
        {"type": "object"},
        body=_object((), event_url={"type": ["string", "null"]}, incoming_url={"type": ["string", "null"]}),
    ),
    AdminOperation(
        "/_picky/webhooks/attempts",
        ("GET",),
        "The webhook deliveries attempted, with their answers",
        {"type": "object"},
        parameters=(
            Parameter("kind", "only this kind (event or incoming)"),
            Parameter("url", "only to this URL"),
            _PAGE_LIMIT,
            Parameter("after", "the page after this one (the previous page's `next`)", _NUMBER),
        ),
    ),
    AdminOperation(
        "/_picky/inbound",
        ("POST",),
        "A customer's message coming in (opens the number's 24-hour window, calls the incoming webhook)",
        {"type": "object"},
        status=201,
        body=_object(
            ("number",),
            number={"type": ["string", "integer"]},
            text=_STRING,
            type={"type": ["integer", "string"]},
            media=_STRING,
            name=_STRING,
        ),
    ),
    AdminOperation(
        "/_picky/inbound",
        ("GET",),
        "The customers' messages received so far",
        {"type": "object"},
        parameters=(Parameter("number", "only this number's"),),
    ),
    AdminOperation(
        "/_picky/lifecycle",
        ("GET", "PUT", "POST", "PATCH"),
        "The delivery policy (null: off); PUT sets it until the next reset",
        {"type": "object"},
        body={"type": ["object", "null"]},
    ),
    AdminOperation(
        "/_picky/thread",
        ("GET",),
        "A number's conversation, both directions, in order",
        {"type": "object"},
        parameters=(Parameter("number", "the number"),),
        errors=(400, 404),
    ),
    AdminOperation(
        "/_picky/coverage",
        ("GET",),
        "The API statuses and HTTP statuses answered, and the faults fired, so far",
        _object(
            ("api_statuses", "http_statuses", "faults"),
            api_statuses=_COUNTS,
            http_statuses=_COUNTS,
            faults=_COUNTS,
        ),
        errors=(),
    ),
)
"""The admin API's operations: one entry per path and method group, as the routes are declared."""


# -- the document --------------------------------------------------------------------------------


def _openapi_path(path: str) -> str:
    """``/_picky/faults/{rule_id}`` from Starlette's ``/_picky/faults/{rule_id:int}``."""
    return _CONVERTER.sub(r"{\1}", path)


def served_operations(api_paths: Iterable[str], routes: Sequence[BaseRoute]) -> set[tuple[str, str]]:
    """``(method, path)`` of every operation the app serves: ``POST`` on each API path (a trailing
    slash spelling is the same operation, not listed), and each method of each admin route (HEAD
    goes with GET; the catch-all routes that answer 404 and 405 are not operations)."""
    served = {("POST", path) for path in api_paths if not path.endswith("/")}
    for route in routes:
        if isinstance(route, Route) and route.path.startswith("/_picky/") and ":path}" not in route.path:
            served |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    served.add(("GET", CONNECTION_PATH))  # answered before the routing table: it needs the connection
    return served


def _load(name: str) -> dict[str, Any]:
    if name in _INLINE:
        return copy.deepcopy(dict(_INLINE[name]))
    with open(schemas_dir() / name, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def _component_name(name: str) -> str:
    stem = name.removesuffix(".schema.json")
    return "".join(part.capitalize() for part in stem.split("-"))


def _embedded(schema: dict[str, Any], component: str) -> dict[str, Any]:
    """A schema file as a component: without ``$id`` and ``$schema`` (the document's dialect is
    2020-12 already), its ``#/$defs/...`` references pointed at the component."""
    text = json.dumps({k: v for k, v in schema.items() if k not in ("$id", "$schema")})
    text = text.replace('"#/$defs/', f'"#/components/schemas/{component}/$defs/')
    embedded: dict[str, Any] = json.loads(text)
    return embedded


def _api_operation(name: str, spelling: str, operation: ApiOperation) -> dict[str, Any]:
    request, answer = _component_name(operation.request), _component_name(operation.answer)
    suffix = "" if spelling == "V4" else f"_{spelling.lower()}"
    return {
        "operationId": f"{name.replace('-', '_')}{suffix}",
        "tags": ["emulated API"],
        "summary": f"{operation.summary} ({spelling} path)",
        "description": operation.description
        + " Served with or without a trailing slash (never a redirect). An error of the HTTP layer (a body over "
        "the size limit, a wrong method) is answered with its HTTP status and the error body.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}},
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"data": {"type": "string"}}}
                },
            },
        },
        "responses": {
            "200": {
                "description": "The answer (status 100), or a business error with its status code",
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": f"#/components/schemas/{answer}"},
                                {"$ref": "#/components/schemas/ErrorResponse"},
                            ]
                        }
                    }
                },
            },
            "413": _api_error("The body is larger than the server's limit"),
        },
    }


def _api_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


def _admin_operation(operation: AdminOperation, method: str, token: bool) -> dict[str, Any]:
    slug = _openapi_path(operation.path).removeprefix("/_picky/").replace("/", "_").replace(".", "_")
    slug = re.sub(r"[{}-]", "", slug.replace("-", "_")) or "root"
    alias = method != operation.methods[0]
    answer: dict[str, Any] = {"description": "Done", "content": {"application/json": {"schema": operation.answer}}}
    responses: dict[str, Any] = {str(operation.status): answer}
    errors = {*operation.errors, 403, 414}  # 403: the guard's cross-site refusal; 414: a path too long
    if method != "GET":
        errors.add(413)  # the guard reads the body of any other method, up to its limit
    if method == "POST":
        errors.add(400)  # the guard's rule for an admin POST without a JSON content type or marker
    if token:
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/Admin{status}"}
    result: dict[str, Any] = {
        "operationId": f"admin_{method.lower()}_{slug}",
        "tags": ["admin API"],
        "summary": operation.summary + (f" (as {operation.methods[0]})" if alias else ""),
        "responses": dict(sorted(responses.items(), key=lambda item: item[0])),
    }
    if operation.description:
        result["description"] = operation.description
    if operation.parameters:
        result["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in operation.parameters
        ]
    if operation.body is not None:
        result["requestBody"] = {"content": {"application/json": {"schema": operation.body}}}
    if token:  # the token when the server has one; nothing when it has none
        result["security"] = [{"bearer": []}, {"tokenHeader": []}, {}]
    return result


_GUARD_ERRORS = {
    400: "A request the endpoint cannot read (or an admin POST with neither a JSON content type nor "
    "`X-Picky-Admin`)",
    401: "No admin token, or a wrong one, on a server started with --admin-token",
    403: "A cross-site request, or the admin API locked (bound beyond loopback without a token)",
    404: "No such item",
    413: "A body over 8 MiB",
    414: "A path over 2,048 characters",
    500: "The server cannot do it (the description says why)",
}


def build_document(api_paths: Iterable[str], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an app serving ``api_paths`` (the emulated API) and ``routes``
    (its Starlette routes): every operation that has an entry in the tables."""
    served = served_operations(api_paths, routes)
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"ErrorResponse": _embedded(_load("error-response.schema.json"), "ErrorResponse")}
    for method, path in sorted(served):
        match = _API_PATH.match(path)
        if match is None or match["prefix"] not in SPELLINGS or match["name"] not in API_OPERATIONS:
            continue
        api = API_OPERATIONS[match["name"]]
        for name in (api.request, api.answer):
            components.setdefault(_component_name(name), _embedded(_load(name), _component_name(name)))
        spelling = SPELLINGS[match["prefix"]]
        paths.setdefault(path, {})[method.lower()] = _api_operation(match["name"], spelling, api)
    for admin in ADMIN_OPERATIONS:
        for method in admin.methods:
            if (method, admin.path) in served:
                token = admin.path not in OPEN_PATHS
                paths.setdefault(_openapi_path(admin.path), {})[method.lower()] = _admin_operation(admin, method, token)
    components["AdminError"] = _object(("error",), error={"type": "string"})
    responses = {
        f"Admin{status}": {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for status, text in _GUARD_ERRORS.items()
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "picky-mock: the emulated Picky Assist API and the admin API",
            "version": __version__,
            "description": "The emulated API answers as the real one does (docs/contract.md): business errors "
            "are HTTP 200 with a status code in the body. The admin API, under /_picky, drives and "
            "inspects the mock (docs/admin-api.md); it needs the admin token when the server has one.",
        },
        "tags": [
            {"name": "emulated API", "description": "The Picky Assist API as picky-mock emulates it"},
            {"name": "admin API", "description": "picky-mock's own API, under /_picky"},
        ],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": responses,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the admin token (--admin-token)"},
                "tokenHeader": {"type": "apiKey", "in": "header", "name": ADMIN_TOKEN_HEADER.title()},
                "adminMarker": {
                    "type": "apiKey",
                    "in": "header",
                    "name": ADMIN_CSRF_HEADER.title(),
                    "description": "`X-Picky-Admin: 1`: lets an admin POST through without a JSON content type",
                },
            },
        },
    }


def undocumented(api_paths: Iterable[str], routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """The served ``(method, path)`` operations the document leaves out for want of a table entry."""
    documented = build_document(api_paths, routes)["paths"]
    return sorted(
        (method, path)
        for method, path in served_operations(api_paths, routes)
        if method.lower() not in documented.get(_openapi_path(path), {})
    )


def document_bytes(api_paths: Iterable[str], routes: Sequence[BaseRoute]) -> bytes:
    """The document as JSON bytes, as the server sends it."""
    return orjson.dumps(build_document(api_paths, routes), option=orjson.OPT_INDENT_2)
