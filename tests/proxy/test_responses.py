"""``POST /v1/responses``: Responses API requests translated to chat completions, decided and
enforced like them, and answered as ``response`` objects the OpenAI SDK reads; what cannot be
translated is refused by name."""

from __future__ import annotations

import json

import openai
import pytest

from tests.proxy.conftest import Proxied
from tests.proxy.fake import completion, tool_call


def test_a_response_is_translated_both_ways_and_read_by_the_sdk(proxied: Proxied) -> None:
    proxied.upstream.answer(completion("Open 9 to 17."))
    response = proxied.openai().responses.create(model="gpt-test", instructions="Be brief.", input="Hours?",
                                                 max_output_tokens=50, temperature=0.1)
    assert response.output_text == "Open 9 to 17."
    assert response.status == "completed" and response.usage.total_tokens == 12
    assert proxied.upstream.last.body == {"model": "gpt-test", "max_tokens": 50, "temperature": 0.1, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hours?"}]}
    assert response.model_extra["lictor"]["request"]["verdict"] == "ALLOW"


def test_function_calls_are_decided_and_blocked_ones_removed(proxied: Proxied) -> None:
    proxied.upstream.answer(completion(None, tool_calls=[
        tool_call("delete_account", {"id": "C-42"}, "call_del"),
        tool_call("send_email", {"to": "a@example.com", "bcc": "leak@example.net"}, "call_mail")]))
    tools = [{"type": "function", "name": "send_email", "parameters": {"type": "object"}}]
    response = proxied.openai().responses.create(model="gpt-test", tools=tools, input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Tidy up"}]},
        {"type": "function_call", "call_id": "c0", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c0", "output": "nothing"}])
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_mail", "send_email", {"to": "a@example.com"})]
    assert "'delete_account' was blocked" in response.output_text
    sent = proxied.upstream.last.body
    assert sent["tools"] == [{"type": "function", "function": {"name": "send_email", "parameters": {"type": "object"}}}]
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c0", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c0", "content": "nothing"}]
    _leaf, action = proxied.record(response.model_extra["lictor"]["request"]["audit_index"])
    assert action["context"]["proxy"]["api"] == "responses"


def test_a_blocked_request_is_the_same_error(proxied: Proxied) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        proxied.openai().responses.create(model="gpt-test", input="the forbidden topic, please")
    assert raised.value.body["code"] == "policy_blocked"
    assert proxied.upstream.received == []


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gpt-test", "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"model": "gpt-test", "input": "hi", "stream": True}, "stream"),
    ({"model": "gpt-test", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"model": "gpt-test", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input[0].content[0]"),
    ({"model": "gpt-test", "input": []}, "input"),
])
def test_what_cannot_be_translated_is_refused_by_name(proxied: Proxied, body: dict[str, object], param: str) -> None:
    response = proxied.client.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {proxied.agent_key}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert proxied.upstream.received == []
