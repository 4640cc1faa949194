"""Streamed answers: text decided in windows with a look-behind before release, tool calls assembled
and decided before any of them is sent, and records that say exactly what each decision covered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.proxy.conftest import Proxied
from tests.proxy.fake import Reply, text_chunks, tool_chunks

ASK = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


def events(text: str) -> list[Any]:
    """The data of each server-sent event, JSON decoded (``[DONE]`` kept as text)."""
    out = []
    for frame in text.split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def released_text(stream: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in stream
                   if isinstance(c, dict) and c.get("choices"))


def test_a_finding_spanning_chunks_is_redacted_before_any_of_it_is_released(proxied: Proxied) -> None:
    proxied.upstream.stream(text_chunks("Your card number is 4111 11", "11 1111 1111 and it is active. ",
                                        "Thanks for asking!"))
    pieces = [chunk.choices[0].delta.content or "" for chunk in
              proxied.openai().chat.completions.create(**ASK) if chunk.choices]
    assert "".join(pieces) == "Your card number is [CARD] and it is active. Thanks for asking!"
    assert not any(digit in piece for piece in pieces for digit in "4111")


def test_a_block_spanning_chunks_ends_the_stream_with_an_error_before_the_secret_is_released(proxied: Proxied) -> None:
    proxied.upstream.stream(text_chunks("The plan is TOP SE", "CRET: attack at dawn, and more text here"))
    seen = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in proxied.openai().chat.completions.create(**ASK):
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert "classified document" in raised.value.message
    assert "TOP" not in "".join(seen) and "attack" not in "".join(seen)
    stream = events(proxied.post(ASK).text)
    assert stream[-1]["error"]["code"] == "policy_blocked" and "[DONE]" not in stream


def test_streamed_tool_call_arguments_are_decided_whole_before_any_is_forwarded(proxied: Proxied) -> None:
    proxied.upstream.stream(tool_chunks("send_email", '{"to": "a@example.com", ', '"bcc": "leak@',
                                        'example.net"}'))
    response = proxied.post(ASK)
    stream = events(response.text)
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in stream
             if isinstance(c, dict) and c.get("choices") and c["choices"][0]["delta"].get("tool_calls")]
    assert len(calls) == 1  # one delta, with the whole call, as constrained
    assert calls[0][0]["function"] == {"name": "send_email", "arguments": '{"to": "a@example.com"}'}
    assert "leak" not in response.text
    assert stream[-2]["choices"][0]["finish_reason"] == "tool_calls" and stream[-1] == "[DONE]"
    assert stream[-2]["lictor"]["tool_calls"][0]["verdict"] == "CONSTRAIN"


def test_a_blocked_streamed_tool_call_never_reaches_the_client(proxied: Proxied) -> None:
    proxied.upstream.stream(tool_chunks("delete_account", '{"id": ', '"C-42"}'))
    stream = list(proxied.openai().chat.completions.create(**ASK))
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert not any(d.tool_calls for d in deltas)
    text = "".join(d.content or "" for d in deltas)
    assert "'delete_account' was blocked: Accounts are never deleted" in text
    assert stream[-1].choices[0].finish_reason == "stop"


def test_the_openai_sdk_reassembles_a_streamed_tool_call(proxied: Proxied) -> None:
    proxied.upstream.stream(tool_chunks("lookup", '{"q":', ' "weather"}'))
    stream = proxied.openai().chat.completions.create(**ASK)
    calls = [t for chunk in stream if chunk.choices for t in chunk.choices[0].delta.tool_calls or []]
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_1", "lookup", {"q": "weather"})]


def test_every_window_records_what_it_covered(proxied: Proxied) -> None:
    proxied.upstream.stream(text_chunks("0123456789abcdefghij", "KLMNOPQRSTUVWXYZ", "end"))
    stream = events(proxied.post(ASK).text)
    assert released_text(stream) == "0123456789abcdefghijKLMNOPQRSTUVWXYZend"
    windows = stream[-2]["lictor"]["response"]
    inspected = [proxied.record(w["audit_index"])[1]["context"]["inspected"] for w in windows]
    assert inspected == [
        {"part": "message", "window": 1, "chars": 20, "new_chars": 20, "rescanned_chars": 0, "received_chars": 20,
         "complete": False},
        {"part": "message", "window": 2, "chars": 36, "new_chars": 16, "rescanned_chars": 20, "received_chars": 36,
         "complete": False},
        {"part": "message", "window": 3, "chars": 27, "new_chars": 3, "rescanned_chars": 24, "received_chars": 39,
         "complete": True},
    ]


def test_window_zero_buffers_the_whole_answer_and_decides_it_once(make_proxied: Callable[..., Proxied]) -> None:
    proxied = make_proxied(stream_window=0)
    proxied.upstream.stream(text_chunks("The plan is ", "TOP SECRET", ": nothing leaks"))
    stream = events(proxied.post(ASK).text)
    assert released_text(stream) == ""  # only the opening role chunk came before the block
    assert stream[-1]["error"]["code"] == "policy_blocked"
    proxied.upstream.stream(text_chunks("All ", "fine ", "here"))
    stream = events(proxied.post(ASK).text)
    [window] = stream[-2]["lictor"]["response"]
    assert proxied.record(window["audit_index"])[1]["context"]["inspected"]["complete"] is True
    assert released_text(stream) == "All fine here"


def test_an_answer_with_no_text_is_still_decided_and_recorded(proxied: Proxied) -> None:
    proxied.upstream.stream(tool_chunks("lookup", '{"q": "x"}'))
    stream = events(proxied.post(ASK).text)
    [window] = stream[-2]["lictor"]["response"]
    leaf, action = proxied.record(window["audit_index"])
    assert leaf["kind"] == "llm_response" and "content" not in action
    assert action["context"]["inspected"]["complete"] is True and action["args"]["tool_calls"] == ["lookup"]


def test_a_provider_refusing_a_stream_is_an_ordinary_error(proxied: Proxied) -> None:
    proxied.upstream.reply(Reply(status=503, body={"error": {"message": "overloaded"}}))
    response = proxied.post(ASK)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


def test_a_stream_cut_short_ends_with_an_error_and_releases_nothing_undecided(proxied: Proxied) -> None:
    proxied.upstream.reply(Reply(events=[(None, c) for c in text_chunks("partial answer")[:2]] + [(None, "{not json")]))
    stream = events(proxied.post(ASK).text)
    assert stream[-1]["error"]["code"] == "upstream_invalid_response"
    assert "partial" not in released_text(stream)


def test_replace_mode_withholds_every_streamed_tool_call(make_proxied: Callable[..., Proxied]) -> None:
    proxied = make_proxied(on_blocked_tool_call="replace", stream_window=16, stream_lookbehind=24)
    chunks = tool_chunks("lookup", '{"q": "x"}', ident="call_ok")
    blocked = tool_chunks("delete_account", '{"id": "C-42"}', ident="call_del")
    for chunk in blocked[:-1]:  # the second call, as tool call index 1 of the same answer
        for part in chunk["choices"][0]["delta"].get("tool_calls", []):
            part["index"] = 1
        chunk["choices"][0]["delta"].pop("role", None)
    proxied.upstream.stream([*chunks[:-1], *blocked[:-1], chunks[-1]])
    stream = events(proxied.post(ASK).text)
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in stream if isinstance(c, dict) and c.get("choices"))
    assert "'delete_account' was blocked" in released_text(stream)
    assert stream[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert {d["name"]: d["verdict"] for d in stream[-2]["lictor"]["tool_calls"]} == {"lookup": "ALLOW",
                                                                                      "delete_account": "BLOCK"}
