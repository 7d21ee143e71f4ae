"""The OpenAPI document: valid OpenAPI 3.1, exactly the operations the app serves, served by the
server without a token, printed by the command, and checked by schemathesis against a running
server (real socket) on every operation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from picky_mock.api import BALANCE_PATHS, PUSH_PATHS
from picky_mock.app import PickyApp
from picky_mock.backend import Backend
from picky_mock.cli import main
from picky_mock.config import Settings
from picky_mock.openapi import (
    ADMIN_OPERATIONS,
    API_OPERATIONS,
    AdminOperation,
    build_document,
    served_operations,
    undocumented,
)
from picky_mock.server import ServerThread
from picky_mock.transport import CONNECTION_PATH

#: Described operations that another part of the product serves once merged in (the delivery
#: report): a description for them is ready; the test below checks them as soon as they are served.
NOT_YET_SERVED = {"delivery-report"}


@pytest.fixture(scope="module")
def app() -> PickyApp:
    return PickyApp(Backend(Settings()))


@pytest.fixture(scope="module")
def document(app: PickyApp) -> dict[str, Any]:
    return build_document(app.api.judges, app.starlette.routes)


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def _served(app: PickyApp) -> set[tuple[str, str]]:
    """What the app serves, read from the app itself, independently of the generator: POST on
    each API path (the trailing-slash spelling aside), every method of every admin route but the
    catch-alls (HEAD goes with GET), and the connection check answered before the routing table."""
    served = {("POST", path) for path in app.api.judges if not path.endswith("/")}
    for route in app.starlette.routes:
        assert isinstance(route, Route)
        if route.path.startswith("/_picky/") and not route.path.endswith(":path}"):
            path = route.path.replace("{rule_id:int}", "{rule_id}")
            served |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return served | {("GET", CONNECTION_PATH)}


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any error


def test_every_served_operation_is_documented_and_nothing_else(app: PickyApp, document: dict[str, Any]) -> None:
    served = _served(app)
    assert _documented(document) == served
    assert undocumented(app.api.judges, app.starlette.routes) == []
    # the three push spellings and the two balance spellings, each with its trailing-slash twin served
    for path in PUSH_PATHS + BALANCE_PATHS:
        assert ("POST", path) in served
        assert path + "/" in app.api.judges


def test_a_route_without_a_description_is_reported_and_left_out(app: PickyApp) -> None:
    async def endpoint(request: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError

    routes = [*app.starlette.routes, Route("/_picky/something-new", endpoint, methods=["GET", "POST"])]
    assert undocumented(app.api.judges, routes) == [("GET", "/_picky/something-new"), ("POST", "/_picky/something-new")]
    assert "/_picky/something-new" not in build_document(app.api.judges, routes)["paths"]
    judges = [*app.api.judges, "/api/v2/something-new"]
    assert undocumented(judges, app.starlette.routes) == [("POST", "/api/v2/something-new")]


@pytest.mark.parametrize("operation", ADMIN_OPERATIONS, ids=lambda op: f"{'/'.join(op.methods)} {op.path}")
def test_every_admin_description_names_a_served_operation(app: PickyApp, operation: AdminOperation) -> None:
    served = served_operations(app.api.judges, app.starlette.routes)
    for method in operation.methods:
        assert (method, operation.path) in served, "a description of a route the app does not serve"


@pytest.mark.parametrize("name", sorted(API_OPERATIONS))
def test_every_api_description_names_a_served_operation(app: PickyApp, name: str) -> None:
    served = {path.rsplit("/", 1)[1] for path in app.api.judges if not path.endswith("/")}
    if name in NOT_YET_SERVED and name not in served:
        pytest.skip(f"/api/v2/{name} is not served by this build")
    assert name in served
    for prefix in ("", "/app") if name == "check-balance" else ("", "/app", "/beta"):
        assert f"{prefix}/api/v2/{name}" in app.api.judges


def test_the_schemas_are_embedded_from_schemas_dir(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    push = schemas["PushRequest"]
    assert "$id" not in push and push["title"].startswith("Picky Assist push request")
    # the schema file's own references now point into the component
    text = json.dumps(push)
    assert '"#/$defs/' not in text and '"#/components/schemas/PushRequest/$defs/recipient"' in text
    body = document["paths"]["/app/api/v2/push"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PushRequest"}


def test_admin_operations_that_need_the_token_say_so(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "security" not in paths["/_picky/health"]["get"]
    assert "security" not in paths["/_picky/openapi.json"]["get"]
    assert "security" not in paths["/api/v2/push"]["post"]
    assert {"bearer": []} in paths["/_picky/journal"]["get"]["security"]
    assert "401" in paths["/_picky/faults"]["post"]["responses"]


def test_the_server_serves_it_without_a_token_and_the_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with ServerThread(Settings(admin_token="s3cret-token")) as server:
        answer = httpx.get(server.url + "/_picky/openapi.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        refused = httpx.get(server.url + "/_picky/state")
        assert refused.status_code == 401  # the rest of the admin API still needs it
        wrong = httpx.post(server.url + "/_picky/openapi.json", headers={"X-Picky-Admin": "1"})
        assert wrong.status_code == 405
    assert main(["openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == answer.json()
    validate(answer.json())


# -- schemathesis against the running server -----------------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(running: ServerThread) -> Any:
    return schemathesis.openapi.from_url(running.url + "/_picky/openapi.json")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""Not the data-acceptance checks: the emulated API answers a body it refuses with HTTP 200 and
the error's status code in the body, as the real one does (docs/contract.md §4)."""

_APP = PickyApp(Backend(Settings()))
_OPERATIONS = sorted(_documented(build_document(_APP.api.judges, _APP.starlette.routes)))


@pytest.mark.parametrize(("method", "path"), _OPERATIONS, ids=[f"{m} {p}" for m, p in _OPERATIONS])
def test_schemathesis_stateless(api_schema: Any, running: ServerThread, method: str, path: str) -> None:
    """Valid and invalid requests generated from the document, on one operation: no 5xx, and every
    answer as the document states it (status, content type, headers, body schema)."""
    operation = api_schema[path][method]
    cases = strategies.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(cases)
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        running.backend.reset()  # each case on the configured state: a rate limit or a fault would mask the rest
        case.call_and_validate(base_url=running.url, headers={"X-Picky-Admin": "1"}, checks=CHECKS)

    check()


@pytest.mark.parametrize("path", ["/_picky/faults/a%0Ab", "/_picky%0A", "/x%0Ay", "/api/v2/push%0A"])
def test_a_path_with_a_newline_gets_the_json_404(running: ServerThread, path: str) -> None:
    """Found by schemathesis: the catch-all routes' patterns stop at a newline, and such a path got
    Starlette's plain-text 404 instead of the JSON one the document states."""
    answer = httpx.delete(running.url + path, headers={"X-Picky-Admin": "1"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "error" in answer.json()
