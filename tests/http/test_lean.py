"""The decide routes are served by the lean path, never by FastAPI's stack, with the same answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.types import Receive, Scope, Send

from lictor.http.app import LictorApp
from lictor.http.lean import _dump, _load
from tests.http.conftest import LARGE, SMALL, Served
from tests.http.test_api import assert_problem, metric


@pytest.fixture
def watched(served: Served) -> Iterator[list[str]]:
    """The paths of the requests that went through FastAPI's middleware stack and router."""
    app = served.client.app
    assert isinstance(app, LictorApp)
    stack = app.middleware_stack
    assert stack is not None  # built when the client started
    seen: list[str] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await stack(scope, receive, send)

    app.middleware_stack = recording
    yield seen
    app.middleware_stack = stack


def test_decisions_and_their_errors_never_enter_fastapi(served: Served, watched: list[str]) -> None:
    agent = served.as_("agent")
    assert served.client.post("/v1/decide", json=LARGE, headers=agent).json()["verdict"] == "BLOCK"
    batch = served.client.post("/v1/decide/batch", json=[SMALL, LARGE], headers=agent).json()
    assert [d["verdict"] for d in batch["decisions"]] == ["ALLOW", "BLOCK"]
    assert_problem(served.client.post("/v1/decide", json=SMALL), 401)
    assert_problem(served.client.post("/v1/decide", json=SMALL, headers=served.as_("auditor")), 403)
    assert_problem(served.client.post("/v1/decide", content=b"{", headers=agent), 400)
    body = assert_problem(served.client.post("/v1/decide", json={**SMALL, "argz": {}}, headers=agent), 422)
    assert body["errors"] == [{"path": "$.argz", "message": body["errors"][0]["message"]}]
    assert_problem(served.client.post("/v1/decide", content=b" " * 5000, headers=agent), 413)
    assert_problem(served.client.post("/v1/decide/batch", json=[], headers=agent), 422)
    assert watched == []
    served.client.get("/healthz")
    assert watched == ["GET /healthz"]  # the recorder sees what FastAPI serves


def test_other_methods_on_the_decide_routes_go_to_fastapi(served: Served, watched: list[str]) -> None:
    assert_problem(served.client.get("/v1/decide"), 405)
    assert watched == ["GET /v1/decide"]


def test_the_lean_answers_are_counted_like_the_others(served: Served) -> None:
    agent = served.as_("agent")
    served.client.post("/v1/decide", json=LARGE, headers=agent)
    served.client.post("/v1/decide/batch", json=[SMALL], headers=agent)
    served.client.post("/v1/decide/batch", json={}, headers=agent)
    text = served.client.get("/metrics").text
    assert metric(text, 'lictor_decisions_total{system="credit-scoring",verdict="BLOCK"}') == 1
    assert metric(text, 'lictor_decisions_total{system="credit-scoring",verdict="ALLOW"}') == 1
    assert metric(text, 'lictor_http_errors_total{route="/v1/decide/batch",status_class="4xx"}') == 1


@pytest.mark.parametrize("text", [
    '{"n": 12345678901234567890123}', '{"n": -9223372036854775809}', '{"n": 18446744073709551615}',
    '{"s": "\\ud83d\\ude00", "f": 1.5e300, "z": -0, "e": 1E2}', '{"a": NaN}', '\ufeff{"bom": 1}',
    '{"a": 1, "a": 2}',
])
def test_bodies_read_as_the_standard_parser_reads_them(text: str) -> None:
    body = text.encode("utf-8")
    data, _ = _load(body)
    expected = json.loads(body)
    assert repr(data) == repr(expected)  # repr: an int stays an int, nan compares as text


def test_answers_are_written_as_starlette_writes_them() -> None:
    value = {"a": [1, 2.5, "é", None, True], "big": 2**70, "nested": {"x": {}}}
    expected = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert _dump(value, True) == _dump(value, False) == expected


def test_the_fastapi_routes_they_bypass_give_the_same_answers(served: Served) -> None:
    app = served.client.app
    assert isinstance(app, LictorApp)
    agent = served.as_("agent")
    requests = [("/v1/decide", {"json": LARGE, "headers": agent}),
                ("/v1/decide", {"json": {**SMALL, "argz": 1}, "headers": agent}),
                ("/v1/decide", {"content": b"[1,", "headers": agent}),
                ("/v1/decide", {"json": SMALL, "headers": served.as_("auditor")}),
                ("/v1/decide", {"content": b" " * 5000, "headers": agent}),
                ("/v1/decide/batch", {"json": [SMALL] * 6, "headers": agent}),
                ("/v1/decide/batch", {"json": [SMALL, LARGE], "headers": agent})]

    def answers() -> list[tuple[int, str, object]]:
        out = []
        for path, kwargs in requests:
            response = served.client.post(path, **kwargs)  # type: ignore[arg-type]
            body = response.json()
            for decision in [body, *body.get("decisions", [])]:
                for varying in ("decision_id", "audit", "timestamp", "duration_us", "review"):
                    decision.pop(varying, None)
            out.append((response.status_code, response.headers["content-type"], body))
        return out

    lean = answers()
    lean_app, app.lean = app.lean, None
    try:
        assert answers() == lean
    finally:
        app.lean = lean_app
