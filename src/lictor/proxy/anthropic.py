"""The Anthropic Messages adapter: chat completions requests translated to ``/v1/messages``, and its
answers (whole or streamed, text and ``tool_use`` blocks) translated back to OpenAI's shapes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from lictor.proxy.wire import ProxyError

__all__ = ["VERSION", "chunks", "from_message", "to_messages"]

#: The Messages API version the adapter speaks.
VERSION = "2023-06-01"
_DEFAULT_MAX_TOKENS = 4096
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
           "refusal": "content_filter", "pause_turn": "stop"}


def _text(content: Any, where: str) -> str:
    """The text of an OpenAI message content: a string or a list of ``text`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for n, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ProxyError(400, f"the Anthropic adapter passes text parts only, got {kind!r} at {where}[{n}]",
                                 param=f"{where}[{n}]", code="unsupported_content")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise ProxyError(400, f"a message's content is a string or a list of parts, at {where}", param=where)


def _blocks(message: dict[str, Any], n: int) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    where = f"messages[{n}].content"
    if role == "tool":
        return "user", [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", "")),
                         "content": _text(message.get("content"), where)}]
    if role not in ("user", "assistant"):
        raise ProxyError(400, f"unknown message role {role!r} at messages[{n}]", param=f"messages[{n}].role")
    text = _text(message.get("content"), where)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for k, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function", {}) if isinstance(call, dict) else {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            raise ProxyError(400, f"tool call arguments are not JSON at messages[{n}].tool_calls[{k}]",
                             param=f"messages[{n}].tool_calls[{k}].function.arguments") from None
        blocks.append({"type": "tool_use", "id": str(call.get("id", "")), "name": str(function.get("name", "")),
                       "input": arguments})
    return str(role), blocks


def to_messages(body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """A Messages API request for the chat completions request ``body``."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for n, message in enumerate(body.get("messages") or []):
        if message.get("role") in ("system", "developer"):
            system.append(_text(message.get("content"), f"messages[{n}].content"))
            continue
        role, blocks = _blocks(message, n)
        if messages and messages[-1]["role"] == role:  # the Messages API alternates roles
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                           "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens")
                           or _DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [t.get("function", {}) for t in body.get("tools") or [] if isinstance(t, dict)]
    if tools:
        out["tools"] = [{"name": f.get("name"), "description": f.get("description", ""),
                         "input_schema": f.get("parameters") or {"type": "object", "properties": {}}} for f in tools]
    choice = body.get("tool_choice")
    if choice == "required":
        out["tool_choice"] = {"type": "any"}
    elif choice in ("auto", "none"):
        out["tool_choice"] = {"type": choice}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out["tool_choice"] = {"type": "tool", "name": choice["function"].get("name")}
    if stream:
        out["stream"] = True
    return out


def from_message(data: dict[str, Any], model: Any) -> dict[str, Any]:
    """The ``chat.completion`` for a Messages API answer."""
    text, calls = [], []
    for block in data.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input", {}))}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = data.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {"id": data.get("id", "msg"), "object": "chat.completion", "created": int(time.time()),
            "model": data.get("model", model),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _FINISH.get(str(data.get("stop_reason")), "stop")}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}


def _chunk(ident: str, model: Any, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def chunks(events: AsyncIterator[tuple[str | None, str]], model: Any) -> AsyncIterator[dict[str, Any]]:
    """``chat.completion.chunk`` objects for a streamed Messages API answer."""
    ident = "msg"
    tools: dict[int, int] = {}  # content block index -> tool call index
    async for _event, data in events:
        try:
            event = json.loads(data)
        except ValueError:
            raise ProxyError(502, "the Anthropic upstream streamed an event that is not JSON",
                             type="upstream_error", code="upstream_invalid_response") from None
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message", {})
            ident, model = message.get("id", ident), message.get("model", model)
            yield _chunk(ident, model, {"role": "assistant", "content": ""})
        elif kind == "content_block_start" and event.get("content_block", {}).get("type") == "tool_use":
            block = event["content_block"]
            tools[event.get("index", 0)] = len(tools)
            yield _chunk(ident, model, {"tool_calls": [{"index": tools[event.get("index", 0)], "id": block.get("id"),
                                                        "type": "function",
                                                        "function": {"name": block.get("name"), "arguments": ""}}]})
        elif kind == "content_block_delta":
            delta = event.get("delta", {})
            if delta.get("type") == "text_delta":
                yield _chunk(ident, model, {"content": delta.get("text", "")})
            elif delta.get("type") == "input_json_delta" and event.get("index", 0) in tools:
                yield _chunk(ident, model, {"tool_calls": [{"index": tools[event.get("index", 0)],
                                                            "function": {"arguments": delta.get("partial_json", "")}}]})
        elif kind == "message_delta":
            reason = event.get("delta", {}).get("stop_reason")
            if reason:
                yield _chunk(ident, model, {}, _FINISH.get(str(reason), "stop"))
        elif kind == "message_stop":
            return
        elif kind == "error":
            message = str(event.get("error", {}).get("message", "unknown error"))
            raise ProxyError(502, f"the Anthropic upstream failed mid-stream: {message}", type="upstream_error",
                             code="upstream_error")
