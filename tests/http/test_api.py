"""The HTTP API over a real gateway: decisions, the record, auth, idempotency, limits and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lictor.http.problems import MEDIA_TYPE
from tests.http.conftest import LARGE, SMALL, Served, serve

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert "Traceback" not in response.text
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}
    return body  # type: ignore[no-any-return]


def test_decide_returns_the_decision_with_its_record(served: Served) -> None:
    response = served.client.post("/v1/decide", json=LARGE, headers=served.as_("agent"))
    assert response.status_code == 200
    decision = response.json()
    assert decision["verdict"] == "BLOCK"
    assert [r["rule"] for r in decision["reasons"]] == ["large", "cap"]
    assert decision["audit"]["index"] >= 0 and len(decision["audit"]["leaf_hash"]) == 64


def test_a_batch_decides_each_action_and_is_bounded(served: Served) -> None:
    response = served.client.post("/v1/decide/batch", json=[LARGE, SMALL], headers=served.as_("agent"))
    assert [d["verdict"] for d in response.json()["decisions"]] == ["BLOCK", "ALLOW"]
    body = assert_problem(served.client.post("/v1/decide/batch", json=[SMALL] * 6, headers=served.as_("agent")), 422)
    assert "at most 5" in body["detail"]
    body = assert_problem(served.client.post("/v1/decide/batch", json=[SMALL, {**SMALL, "args": 3}],
                                             headers=served.as_("agent")), 422)
    assert body["errors"][0]["path"] == "$[1].args"


def test_a_repeated_request_id_gets_the_first_decision(served: Served) -> None:
    action = {**SMALL, "request_id": "req-1"}
    first = served.client.post("/v1/decide", json=action, headers=served.as_("agent")).json()
    size = served.gateway.log.state.size
    again = served.client.post("/v1/decide", json=action, headers=served.as_("agent")).json()
    assert again["decision_id"] == first["decision_id"]
    assert again["audit"] == first["audit"]
    assert again["replayed"] is True
    assert served.gateway.log.state.size == size  # no second record
    other = served.client.post("/v1/decide", json={**action, "request_id": "req-2"}, headers=served.as_("agent")).json()
    assert other["decision_id"] != first["decision_id"]


def test_decisions_are_listed_filtered_paged_and_proved(served: Served) -> None:
    for action in (LARGE, SMALL, SMALL, {**SMALL, "system": "other"}):
        served.client.post("/v1/decide", json=action, headers=served.as_("agent"))
    auditor = served.as_("auditor")
    listed = served.client.get("/v1/decisions", params={"system": "credit-scoring"}, headers=auditor).json()
    assert [d["verdict"] for d in listed["decisions"]] == ["BLOCK", "ALLOW", "ALLOW"]
    assert served.client.get("/v1/decisions", params={"policy": "credit"}, headers=auditor).json()["decisions"][0][
        "verdict"] == "BLOCK"
    assert len(served.client.get("/v1/decisions", params={"verdict": "ALLOW"}, headers=auditor).json()["decisions"]) == 3
    page = served.client.get("/v1/decisions", params={"limit": 2}, headers=auditor).json()
    rest = served.client.get("/v1/decisions", params={"limit": 2, "cursor": page["next_cursor"]}, headers=auditor).json()
    assert len(page["decisions"]) == 2 and len(rest["decisions"]) == 2
    assert served.client.get("/v1/decisions", params={"since": "2999-01-01T00:00:00Z"}, headers=auditor).json()[
        "decisions"] == []
    served.gateway.checkpoint()
    one = served.client.get(f"/v1/decisions/{page['decisions'][0]['decision_id']}", headers=auditor).json()
    assert one["leaf"]["verdict"] == "BLOCK" and one["proof"]["index"] == one["audit"]["index"]
    proof = served.client.get(f"/v1/audit/proof/{one['audit']['index']}", headers=auditor).json()
    assert proof == one["proof"]
    note = served.client.get("/v1/audit/checkpoint", headers=auditor)
    assert note.headers["content-type"].startswith("text/plain") and note.text == proof["checkpoint"]
    assert_problem(served.client.get("/v1/decisions/dec_nope", headers=auditor), 404)
    assert_problem(served.client.get("/v1/audit/proof/999999", headers=auditor), 422)


@pytest.mark.parametrize(("scope", "route", "method"), [
    ("auditor", "/v1/decide", "post"), ("agent", "/v1/decisions", "get"), ("agent", "/v1/audit/checkpoint", "get"),
    ("reviewer", "/v1/audit/proof/0", "get"), ("auditor", "/v1/admin/reload", "post"), ("agent", "/v1/admin/keys", "get"),
])
def test_scopes_are_checked(served: Served, scope: str, route: str, method: str) -> None:
    assert_problem(getattr(served.client, method)(route, headers=served.as_(scope)), 403)
    response = assert_problem(getattr(served.client, method)(route), 401)
    assert response["title"] == "Unauthorized"
    assert_problem(getattr(served.client, method)(route, headers={"Authorization": "Bearer lictor_nope"}), 401)


def test_admins_reload_and_manage_keys_and_the_log_records_it(served: Served) -> None:
    admin = served.as_("admin")
    (served.policies / "more.yaml").write_text(
        "apiVersion: lictor/v1\nkind: Policy\nmetadata: {name: more}\nspec:\n  rules:\n"
        "    - {name: all, when: 'true', verdict: LOG}\n")
    reloaded = served.client.post("/v1/admin/reload", headers=admin).json()
    assert reloaded["changed"] is True and reloaded["policies"] == ["credit", "more"]
    assert served.client.get("/v1/policies", headers=served.as_("agent")).json()["revision"] == reloaded["revision"]
    created = served.client.post("/v1/admin/keys", json={"scope": "reviewer", "user": "bob", "roles": ["credit-officer"]},
                                 headers=admin)
    assert created.status_code == 201
    secret = created.json()["key"]
    listed = served.client.get("/v1/admin/keys", headers=admin).text
    assert secret not in listed and created.json()["id"] in listed
    served.client.delete(f"/v1/admin/keys/{created.json()['id']}", headers=admin)
    assert_problem(served.client.get("/v1/policies", headers={"Authorization": f"Bearer {secret}"}), 401)
    leaves = [served.gateway.leaf(i) for i in range(served.gateway.log.state.size)]
    changes = [leaf.get("change") for leaf in leaves if leaf.get("type") == "config"]
    assert {"policies-reloaded", "key-created", "key-revoked"} <= set(changes)
    assert all(secret not in str(leaf) for leaf in leaves)
    again = served.client.post("/v1/admin/reload", headers=admin).json()  # after admin changes, nothing new
    assert again["changed"] is False and again["revision"] == reloaded["revision"]
    (served.policies / "broken.yaml").write_text("apiVersion: lictor/v1\nkind: Policy\n")
    body = assert_problem(served.client.post("/v1/admin/reload", headers=admin), 422)
    assert body["errors"] and "broken.yaml" in body["errors"][0]["path"]
    assert served.client.get("/v1/policies", headers=admin).json()["revision"] == reloaded["revision"]


def test_bad_input_gets_a_problem_naming_the_path(served: Served) -> None:
    agent = served.as_("agent")
    assert_problem(served.client.post("/v1/decide", content=b"{", headers=agent), 400)
    assert_problem(served.client.post("/v1/decide", content=b"", headers=agent), 400)
    assert_problem(served.client.post("/v1/decide", content=b"\xff\xfe", headers=agent), 400)
    body = assert_problem(served.client.post("/v1/decide", json={**SMALL, "argz": {}}, headers=agent), 422)
    assert body["errors"][0]["path"] == "$.argz"
    body = assert_problem(served.client.post("/v1/decide", json={**SMALL, "principal": {"roles": [1]}}, headers=agent), 422)
    assert body["errors"][0]["path"] == "$.principal.roles[0]"
    assert_problem(served.client.get("/v1/decisions", params={"limit": "x"}, headers=served.as_("auditor")), 422)


def test_oversize_bodies_are_refused_as_they_stream(served: Served) -> None:
    agent = served.as_("agent")
    assert_problem(served.client.post("/v1/decide", content=b" " * 5000, headers=agent), 413)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 1000

    # no Content-Length: sent chunked, counted as it arrives
    assert_problem(served.client.post("/v1/decide", content=chunks(), headers=agent), 413)


def test_every_route_answers_errors_in_one_shape(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        concrete = path.replace("{index}", "0").replace("{decision_id}", "dec_x").replace("{key_id}", "k").replace("{review_id}", "rev_x")
        for method in operations:
            response = served.client.request(method.upper(), concrete)
            if path in ("/healthz", "/readyz", "/metrics"):
                assert response.status_code == 200
                continue
            assert_problem(response, 401)
            wrong = served.client.request(method.upper(), concrete, headers={"Authorization": "Bearer x"})
            assert_problem(wrong, 401)
        assert_problem(served.client.request("PATCH", concrete), 405)
    assert_problem(served.client.get("/v2/nothing"), 404)


def test_an_unexpected_failure_is_a_500_that_blocks(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    async def abroken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served.gateway, "decide", broken)
    monkeypatch.setattr(served.gateway, "adecide", abroken)
    response = served.client.post("/v1/decide", json=SMALL, headers=served.as_("agent"))
    body = assert_problem(response, 500)
    assert body["verdict"] == "BLOCK" and "secret internals" not in response.text
    monkeypatch.setattr(served.gateway, "policies", None)
    assert_problem(served.client.get("/v1/policies", headers=served.as_("agent")), 500)


def metric(text: str, name: str) -> float:
    """The value of one sample of the Prometheus text ``text`` (0 when it is absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health_readiness_and_metrics(served: Served) -> None:
    before = served.client.get("/metrics").text
    served.client.post("/v1/decide", json=LARGE, headers=served.as_("agent"))
    assert served.client.get("/healthz").json() == {"status": "ok"}
    assert served.client.get("/readyz").json()["checks"] == {"store": True, "policies": True, "signer": True}
    text = served.client.get("/metrics").text
    assert metric(text, 'lictor_decisions_total{system="credit-scoring",verdict="BLOCK"}') == 1
    assert metric(text, 'lictor_policy_decisions_total{policy="credit",verdict="BLOCK"}') == 1  # once, two rules
    assert metric(text, 'lictor_rule_matches_total{policy="credit",verdict="CONSTRAIN"}') == 1
    assert metric(text, "lictor_decision_seconds_count") == 1
    batches = metric(text, "lictor_audit_batch_size_count") - metric(before, "lictor_audit_batch_size_count")
    assert batches == 1 and metric(text, "lictor_audit_batch_size_sum") >= 1
    assert metric(text, "lictor_audit_flush_seconds_count") == metric(text, "lictor_audit_batch_size_count")
    assert metric(text, "lictor_audit_queue_depth") == 0
    assert metric(text, "lictor_audit_log_size") == served.gateway.log.state.size


def test_errors_are_counted_by_status_class_and_route(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    served.client.post("/v1/decide", json=SMALL)
    served.client.get("/v1/decisions/dec_nope", headers=served.as_("auditor"))
    served.client.get("/v1/decisions/dec_other", headers=served.as_("auditor"))
    served.client.get("/no/such/path")
    served.client.post("/v1/decide", content=b" " * 5000, headers=served.as_("agent"))
    monkeypatch.setattr(served.gateway, "policies", None)
    served.client.get("/v1/policies", headers=served.as_("agent"))
    text = served.client.get("/metrics").text
    errors = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("lictor_http_errors_total{")}
    assert errors == {
        'lictor_http_errors_total{route="/v1/decide",status_class="4xx"}': 2,
        'lictor_http_errors_total{route="/v1/decisions/{decision_id}",status_class="4xx"}': 2,
        'lictor_http_errors_total{route="unmatched",status_class="4xx"}': 1,
        'lictor_http_errors_total{route="/v1/policies",status_class="5xx"}': 1,
    }


def test_on_postgres(served_pg: Served) -> None:
    first = served_pg.client.post("/v1/decide", json={**LARGE, "request_id": "r"}, headers=served_pg.as_("agent")).json()
    again = served_pg.client.post("/v1/decide", json={**LARGE, "request_id": "r"}, headers=served_pg.as_("agent")).json()
    assert again["decision_id"] == first["decision_id"]
    listed = served_pg.client.get("/v1/decisions", params={"verdict": "BLOCK"}, headers=served_pg.as_("auditor")).json()
    assert [d["decision_id"] for d in listed["decisions"]] == [first["decision_id"]]


@pytest.mark.parametrize(("body", "status", "path"), [
    # unpaired surrogates are not text: nothing downstream can encode them
    (b'{"system": "s", "kind": "tool_call", "name": "t", "request_id": "\\ud800"}', 422, "$.request_id"),
    (b'{"system": "\\udc00x", "kind": "tool_call", "name": "t"}', 422, "$.system"),
    (b'{"system": "s", "kind": "tool_call", "name": "t", "args": {"a": ["ok", "\\ud83d"]}}', 422, "$.args.a[1]"),
])
def test_json_that_python_reads_but_cannot_use_is_refused(served: Served, body: bytes, status: int, path: str) -> None:
    response = served.client.post("/v1/decide", content=body, headers=served.as_("agent"))
    assert assert_problem(response, status)["errors"][0]["path"] == path
    paired = b'{"system": "s", "kind": "tool_call", "name": "t", "args": {"a": "\\ud83d\\ude00"}}'
    assert served.client.post("/v1/decide", content=paired, headers=served.as_("agent")).status_code == 200
    created = served.client.post("/v1/admin/keys", content=b'{"scope": "agent", "user": "\\ud800"}',
                                 headers=served.as_("admin"))
    assert assert_problem(created, 422)["errors"][0]["path"] == "$.user"


def test_an_integer_of_more_digits_than_python_converts_is_a_400(tmp_path: Path) -> None:
    for served in serve(tmp_path, f"sqlite:///{tmp_path / 'lictor.db'}"):
        body = b'{"system": "s", "kind": "tool_call", "name": "t", "args": {"n": 1' + b"0" * 5000 + b"}}"
        response = served.client.post("/v1/decide", content=body, headers=served.as_("agent"))
        assert "digits" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize("params", [
    {"since": "0001-01-01T00:00:00+23:00"}, {"until": "9999-12-31T23:59:59-23:59"}, {"cursor": str(2**64)},
])
def test_query_values_out_of_range_are_refused(served: Served, params: dict[str, str]) -> None:
    body = assert_problem(served.client.get("/v1/decisions", params=params, headers=served.as_("auditor")), 422)
    assert body["errors"][0]["path"] == f"query.{next(iter(params))}"
    assert_problem(served.client.get(f"/v1/audit/proof/{2**64}", headers=served.as_("auditor")), 422)


def test_revoking_an_unknown_key_is_a_404(served: Served) -> None:
    assert_problem(served.client.delete("/v1/admin/keys/000000000000", headers=served.as_("admin")), 404)
