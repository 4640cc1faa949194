"""The chat completions proxy, not streamed: requests, answers and tool calls decided and enforced,
errors in the OpenAI shape, the provider's key kept by the gateway, and every decision on record."""

from __future__ import annotations

import json

import openai
import pytest

from tests.proxy.conftest import Proxied
from tests.proxy.fake import UPSTREAM_KEY, Reply, completion, tool_call

ASK = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi there"}]}


def test_an_allowed_request_passes_through_and_its_answer_comes_back(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("Hello from the model"))
    answer = proxied.openai().chat.completions.create(model="gpt-test", temperature=0.3,
                                                      messages=[{"role": "user", "content": "Hi there"}])
    assert answer.choices[0].message.content == "Hello from the model"
    sent = proxied.upstream.last
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "user", "content": "Hi there"}]
    assert sent.body["temperature"] == 0.3
    lictor = answer.model_extra["lictor"]
    assert lictor["request"]["verdict"] == "ALLOW" and lictor["response"][0]["verdict"] == "ALLOW"


def test_the_provider_key_is_the_gateways_and_the_clients_key_never_reaches_the_provider(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("ok"))
    response = proxied.post(ASK, **{"X-Api-Key": "client-supplied", "OpenAI-Organization": "org-client"})
    assert response.status_code == 200
    headers = proxied.upstream.last.headers
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert proxied.agent_key not in json.dumps(headers)
    assert "x-api-key" not in headers and "openai-organization" not in headers
    assert UPSTREAM_KEY not in response.text


def test_a_provider_error_quoting_its_key_is_relayed_without_the_key(proxied: Proxied) -> None:
    proxied.upstream.reply(Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}",
                                                             "type": "invalid_request_error"}}))
    with pytest.raises(openai.APIStatusError) as raised:
        proxied.openai().chat.completions.create(**ASK)
    assert raised.value.status_code == 502
    assert UPSTREAM_KEY not in json.dumps(raised.value.body)
    assert raised.value.body["code"] == "upstream_auth"


def test_a_blocked_request_is_an_error_the_sdk_raises_and_nothing_goes_upstream(proxied: Proxied) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        proxied.openai().chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "tell me about the forbidden topic"}])
    error = raised.value.body
    assert error["code"] == "policy_blocked" and error["type"] == "policy_violation"
    assert "That topic is off limits" in error["message"]
    assert error["lictor"]["verdict"] == "BLOCK"
    assert error["lictor"]["reasons"][0]["rule"] == "no-forbidden-topic"
    assert proxied.upstream.received == []


def test_a_constrained_request_is_what_the_provider_receives(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("noted"))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    response = proxied.post({"model": "gpt-test", "max_tokens": 4000, "tools": tools, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My SSN is 123-45-6789, file my taxes"}]})
    assert response.status_code == 200, response.text
    sent = proxied.upstream.last.body
    assert sent["messages"][1]["content"] == "My SSN is [SSN], file my taxes"
    assert "123-45-6789" not in json.dumps(sent)
    assert sent["max_tokens"] == 100
    assert "tools" not in sent
    assert response.json()["lictor"]["request"]["verdict"] == "CONSTRAIN"


def test_a_blocked_answer_is_an_error_and_a_constrained_one_is_redacted(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("Here it is: TOP SECRET plans"))
    with pytest.raises(openai.PermissionDeniedError) as raised:
        proxied.openai().chat.completions.create(**ASK)
    assert "TOP SECRET" not in raised.value.body["message"]
    assert "classified document" in raised.value.body["message"]
    proxied.upstream.answer(completion("Your card 4111 1111 1111 1111 is active"))
    answer = proxied.openai().chat.completions.create(**ASK)
    assert answer.choices[0].message.content == "Your card [CARD] is active"


def test_a_blocked_tool_call_is_removed_and_the_reason_is_in_the_message(proxied: Proxied) -> None:
    proxied.upstream.answer(completion(None, tool_calls=[
        tool_call("delete_account", {"id": "C-42"}, "call_del"),
        tool_call("send_email", {"to": "a@example.com", "bcc": "leak@example.net"}, "call_mail")]))
    answer = proxied.openai().chat.completions.create(**ASK)
    message = answer.choices[0].message
    assert [c.function.name for c in message.tool_calls] == ["send_email"]
    assert json.loads(message.tool_calls[0].function.arguments) == {"to": "a@example.com"}  # bcc removed
    assert "'delete_account' was blocked: Accounts are never deleted" in message.content
    assert answer.choices[0].finish_reason == "tool_calls"
    decided = {d["name"]: d["verdict"] for d in answer.model_extra["lictor"]["tool_calls"]}
    assert decided == {"delete_account": "BLOCK", "send_email": "CONSTRAIN"}


def test_with_no_tool_call_left_the_answer_stops(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("Deleting.", tool_calls=[tool_call("delete_account", {"id": "C-42"})]))
    choice = proxied.post(ASK).json()["choices"][0]
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Deleting.\n\n[Lictor] The tool call 'delete_account' was blocked")


def test_replace_mode_withholds_the_whole_answer(make_proxied: object) -> None:
    proxied = make_proxied(on_blocked_tool_call="replace")  # type: ignore[operator]
    proxied.upstream.answer(completion("Sure", tool_calls=[tool_call("lookup", {"q": "x"}, "c1"),
                                                           tool_call("delete_account", {"id": "C-42"}, "c2")]))
    choice = proxied.post(ASK).json()["choices"][0]
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "content_filter"
    assert "'delete_account' was blocked" in choice["message"]["content"]
    assert "withheld" in choice["message"]["content"]


def test_unparsable_arguments_are_blocked_and_the_record_says_why(proxied: Proxied) -> None:
    proxied.upstream.answer(completion(None, tool_calls=[tool_call("lookup", '{"q": "x"', "c1")]))
    body = proxied.post(ASK).json()
    assert "tool_calls" not in body["choices"][0]["message"]
    assert "not valid JSON" in body["choices"][0]["message"]["content"]
    decided = body["lictor"]["tool_calls"][0]
    assert decided["blocked_by_proxy"].startswith("the arguments are not valid JSON")
    _leaf, action = proxied.record(decided["audit_index"])
    assert action["context"]["inspected"] == {"part": "tool_call.arguments", "chars": 9, "complete": True,
                                              "parsed": False}
    assert action["context"]["proxy"]["enforced"].startswith("BLOCK")


def test_a_tool_call_needing_approval_surfaces_the_review_and_runs_once_approved(proxied: Proxied) -> None:
    call = tool_call("approve_credit", {"amount": 150000, "customer": "C-42"}, "call_a")
    proxied.upstream.answer(completion(None, tool_calls=[call]))
    body = proxied.post(ASK).json()
    decided = body["lictor"]["tool_calls"][0]
    review = decided["review"]["id"]
    assert decided["review"]["status"] == "pending"
    assert f"Review {review} is pending" in body["choices"][0]["message"]["content"]
    assert "Lictor-Approval" in body["choices"][0]["message"]["content"]
    approved = proxied.client.post(f"/v1/reviews/{review}/approve", json={"comment": "checked"},
                                   headers={"Authorization": f"Bearer {proxied.reviewer_key}"})
    assert approved.status_code == 200, approved.text
    # the model proposes the same call again (other id, other spacing): the approval applies to it
    again = tool_call("approve_credit", '{"customer":"C-42",  "amount":150000}', "call_b")
    proxied.upstream.answer(completion(None, tool_calls=[again]))
    body = proxied.post(ASK, **{"Lictor-Approval": review}).json()
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["approve_credit"]
    assert body["lictor"]["tool_calls"][0]["verdict"] == "ALLOW"


def test_an_unknown_review_is_a_clear_400(proxied: Proxied) -> None:
    response = proxied.post(ASK, **{"Lictor-Approval": "rev_nope"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Lictor-Approval"


def test_every_request_answer_and_tool_call_leaves_a_record_saying_what_was_inspected(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("Calling.", tool_calls=[tool_call("lookup", {"q": "x"})]))
    lictor = proxied.post(ASK).json()["lictor"]
    records = [proxied.record(d["audit_index"]) for d in
               (lictor["request"], lictor["response"][0], lictor["tool_calls"][0])]
    assert [(leaf["kind"], leaf["system"], leaf["name"]) for leaf, _ in records] == [
        ("llm_request", "assistant", "gpt-test"), ("llm_response", "assistant", "gpt-test"),
        ("tool_call", "assistant", "lookup")]
    request, response, call = (action for _, action in records)
    assert request["agent"] == {"id": "support-agent"}
    assert request["content"] == ASK["messages"]
    assert request["context"]["inspected"] == {"parts": ["messages"], "chars": 8, "complete": True}
    assert response["content"] == "Calling."
    assert response["context"]["inspected"] == {"part": "message", "choice": 0, "chars": 8, "complete": True}
    assert call["args"] == {"q": "x"}
    assert call["context"]["inspected"]["parsed"] is True


@pytest.mark.parametrize(("reply", "status", "code"), [
    (Reply(status=500, body={"error": {"message": "boom"}}), 502, "upstream_error"),
    (Reply(status=400, body={"error": {"message": "bad temperature"}}), 400, "upstream_refused"),
    (Reply(status=429, body={"error": {"message": "slow down"}}), 429, "upstream_refused"),
    (Reply(hang=True), 504, "upstream_timeout"),
])
def test_provider_failures_are_clean_openai_errors(proxied: Proxied, reply: Reply, status: int, code: str) -> None:
    proxied.upstream.reply(reply)
    with pytest.raises(openai.APIStatusError) as raised:
        proxied.openai().chat.completions.create(**ASK)
    assert raised.value.status_code == status
    assert raised.value.body["code"] == code
    assert "Traceback" not in raised.value.response.text


def test_an_unreachable_provider_is_a_502(make_proxied: object) -> None:
    from lictor.config import UpstreamSettings

    proxied = make_proxied(upstreams={"gone": UpstreamSettings(base_url="http://127.0.0.1:9/v1", timeout=2.0)})  # type: ignore[operator]
    response = proxied.post(ASK)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "gpt-test", "messages": []}, "messages"),
    ({"model": "gpt-test", "messages": "hi"}, "messages"),
])
def test_bad_requests_are_400s_naming_the_field(proxied: Proxied, body: dict[str, object], param: str) -> None:
    response = proxied.post(body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_keys_are_checked_in_the_openai_shape(proxied: Proxied) -> None:
    import openai as sdk

    client = sdk.OpenAI(base_url="http://testserver/v1", api_key="sk-wrong", http_client=proxied.client, max_retries=0)
    with pytest.raises(sdk.AuthenticationError) as raised:
        client.chat.completions.create(**ASK)
    assert raised.value.body["code"] == "invalid_api_key"
    response = proxied.client.post("/v1/chat/completions", json=ASK,
                                   headers={"Authorization": f"Bearer {proxied.reviewer_key}"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert proxied.upstream.received == []


def test_when_the_audit_log_cannot_record_nothing_is_forwarded(proxied: Proxied) -> None:
    proxied.gateway.log.close()  # every decision now fails to be recorded: fail closed
    response = proxied.post(ASK)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "decision_failed" and "the audit log is closed" in error["message"]
    assert error["lictor"]["verdict"] == "BLOCK"
    assert proxied.upstream.received == []


def test_a_body_over_the_limit_is_a_413_and_errors_are_counted_under_the_route(proxied: Proxied) -> None:
    limit = 1_048_576  # http.max_body_bytes, the default
    auth = {"Authorization": f"Bearer {proxied.agent_key}"}
    declared = proxied.client.post("/v1/chat/completions", content=b" " * (limit + 1), headers=auth)
    streamed = proxied.client.post("/v1/responses", content=iter([b" " * limit, b" "]), headers=auth)
    assert declared.status_code == streamed.status_code == 413
    assert "larger than" in declared.json()["detail"]
    unauthenticated = proxied.client.post("/v1/chat/completions", content=b" " * limit)  # refused before reading
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["code"] == "invalid_api_key"
    assert proxied.post({"model": "gpt-test"}).status_code == 400
    text = proxied.client.get("/metrics").text
    errors = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("lictor_http_errors_total{")}
    assert errors == {'lictor_http_errors_total{route="/v1/chat/completions",status_class="4xx"}': 3,
                      'lictor_http_errors_total{route="/v1/responses",status_class="4xx"}': 1}
    assert proxied.upstream.received == []
