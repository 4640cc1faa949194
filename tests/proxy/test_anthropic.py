"""The Anthropic Messages adapter: chat completions requests translated to /v1/messages, and answers
(whole and streamed, text and tool_use blocks) translated back and decided like any other."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType

import pytest

from lictor.config import UpstreamSettings
from tests.proxy.conftest import Proxied
from tests.proxy.fake import UPSTREAM_KEY, FakeUpstream, Reply


@pytest.fixture
def claude(make_proxied: Callable[..., Proxied], upstream: FakeUpstream) -> Proxied:
    return make_proxied(stream_window=16, stream_lookbehind=24, upstreams=MappingProxyType({
        "claude": UpstreamSettings(base_url=upstream.url + "/v1", api_key_env="FAKE_UPSTREAM_KEY",
                                   kind="anthropic", models=("claude-*",), timeout=2.0),
        "other": UpstreamSettings(base_url="http://127.0.0.1:9/v1", timeout=2.0)}))


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
           "content": [{"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_1", "name": "delete_account", "input": {"id": "C-42"}},
                       {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "balance"}}],
           "stop_reason": "tool_use", "usage": {"input_tokens": 11, "output_tokens": 9}}


def test_a_request_is_translated_to_the_messages_api_with_the_gateways_key(claude: Proxied) -> None:
    claude.upstream.answer(MESSAGE)
    tools = [{"type": "function", "function": {"name": "lookup", "description": "Look up",
                                               "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    response = claude.post({"model": "claude-test", "temperature": 0.2, "tools": tools, "stop": "END",
                            "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hi"},
                                         {"role": "assistant", "content": None, "tool_calls": [
                                             {"id": "toolu_0", "type": "function",
                                              "function": {"name": "lookup", "arguments": '{"q": "a"}'}}]},
                                         {"role": "tool", "tool_call_id": "toolu_0", "content": "42"}]})
    assert response.status_code == 200, response.text
    received = claude.upstream.last
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == UPSTREAM_KEY and "authorization" not in received.headers
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.body == {
        "model": "claude-test", "max_tokens": 4096, "system": "Be brief.", "temperature": 0.2,
        "stop_sequences": ["END"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                     {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "lookup",
                                                        "input": {"q": "a"}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "42"}]}],
        "tools": [{"name": "lookup", "description": "Look up",
                   "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]}


def test_tool_use_blocks_come_back_as_tool_calls_and_are_decided(claude: Proxied) -> None:
    claude.upstream.answer(MESSAGE)
    answer = claude.openai().chat.completions.create(model="claude-test", messages=[{"role": "user", "content": "Hi"}])
    message = answer.choices[0].message
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("toolu_2", "lookup", {"q": "balance"})]
    assert message.content.startswith("Let me check.\n\n[Lictor] The tool call 'delete_account' was blocked")
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.usage.prompt_tokens == 11 and answer.usage.completion_tokens == 9


def test_a_streamed_answer_is_translated_and_enforced(claude: Proxied) -> None:
    def event(data: dict[str, object]) -> tuple[str, dict[str, object]]:
        return str(data["type"]), data
    claude.upstream.reply(Reply(events=[
        event({"type": "message_start", "message": {"id": "msg_2", "model": "claude-test"}}),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Card 4111 1111 "}}),
        event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "1111 1111 ok. "}}),
        event({"type": "content_block_stop", "index": 0}),
        event({"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {}}}),
        event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q": '}}),
        event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"x"}'}}),
        event({"type": "content_block_stop", "index": 1}),
        event({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        event({"type": "message_stop"})]))
    chunks = list(claude.openai().chat.completions.create(
        model="claude-test", stream=True, messages=[{"role": "user", "content": "Hi"}]))
    assert claude.upstream.last.body["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Card [CARD] ok. "
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert [(t.id, t.function.name, t.function.arguments) for t in calls] == [("toolu_9", "lookup", '{"q": "x"}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_models_route_to_the_first_upstream_that_serves_them(claude: Proxied) -> None:
    response = claude.post({"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 502  # routed to "other", which is not listening
    assert "'other'" in response.json()["error"]["message"]
    assert claude.upstream.received == []
