"""Schemathesis against the app's own OpenAPI document: every operation, with data that fits the
schema and data that does not, sent with a key of the scope the route needs; no answer is a 5xx,
every error is a problem document of the one shape, and every answer is one the schema documents.

Bounded so that it stays a unit test: a few dozen examples per operation and mode (derandomized
under CI by the Hypothesis "ci" profile), a few seconds in all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lictor.access import SCOPES
from lictor.config import Settings
from lictor.http import create_app
from lictor.http.problems import MEDIA_TYPE
from lictor.model import Action
from lictor.runtime import Gateway
from tests.http.test_api import PROBLEM_KEYS
from tests.sdk.conftest import EXAMPLES, example

EXAMPLES_PER_OPERATION = 20

#: The scope each route needs (by path prefix, first match); every other /v1 route is the auditor's.
ROUTE_SCOPES = (("/v1/decide", "agent"), ("/v1/admin", "admin"), ("/v1/policies", "agent"),
                ("/v1/reviews/stats", "auditor"), ("/v1/reviews", "reviewer"),
                ("/v1", "auditor"))


@dataclasses.dataclass
class Fuzzed:
    app: FastAPI
    gateway: Gateway
    keys: dict[str, str]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    base = Settings(database=f"sqlite:///{root / 'lictor.db'}", policies=EXAMPLES / "policies")
    settings_ = dataclasses.replace(base, audit=dataclasses.replace(
        base.audit, key_file=root / "audit.key", payload_key_file=root / "payload.key"))
    gateway = Gateway.from_settings(settings_)
    try:
        keys = {scope: gateway.keys.create(scope, user=f"{scope}-user")[1] for scope in SCOPES}
        app = create_app(gateway, keys=gateway.keys, settings=settings_)
        for name in ("credit-small", "credit-large", "refund-large"):  # something to list and prove
            gateway.decide(Action.from_dict(example(name)))
        gateway.checkpoint()
        yield Fuzzed(app, gateway, keys)
    finally:
        gateway.close()


def scope_of(path: str) -> str | None:
    return next((scope for prefix, scope in ROUTE_SCOPES if path.startswith(prefix)), None)


def check_answer(status: int, content_type: str, body: Any, *, where: str) -> None:
    assert status < 500, f"{where}: {status} {body!r}"
    assert status not in (401, 403), f"{where}: a key of the right scope was refused: {body!r}"
    if status < 400:
        return
    assert content_type.startswith(MEDIA_TYPE), f"{where}: {status} answered as {content_type}"
    assert isinstance(body, dict) and set(body) >= PROBLEM_KEYS, f"{where}: {body!r}"
    assert body["status"] == status and all(isinstance(body[k], str) for k in PROBLEM_KEYS - {"status"})
    assert isinstance(body.get("errors", []), list)
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"} and all(isinstance(v, str) for v in error.values()), where


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str], where: str) -> None:
    """Send ``operation`` the examples Hypothesis draws in ``mode`` and check every answer."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def probe(case: Any) -> None:
        response = case.call(headers=headers)
        content_type = (response.headers.get("content-type") or [""])[0]
        body = response.json() if "json" in content_type else response.content
        check_answer(response.status_code, content_type, body, where=where)
        case.validate_response(response, checks=checks, headers=headers)

    probe()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_a_5xx_or_an_error_of_another_shape(fuzzed: Fuzzed, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (operation.body or operation.query or operation.path_parameters):
            continue  # nothing to get wrong
        scope = scope_of(operation.path)
        headers = {"Authorization": f"Bearer {fuzzed.keys[scope]}"} if scope else {}
        fuzz(operation, mode, headers, f"{mode.value} {operation.method.upper()} {operation.path}")
