"""The Responses API (``POST /v1/responses``), stateless and not streamed, served by translation: a
request becomes a chat completions request (decided and enforced exactly like one), and the answer
is translated back into a ``response`` object with ``message`` and ``function_call`` output items.

What cannot be translated is refused with a 400 naming the field rather than dropped: stored
conversations (``previous_response_id``, ``conversation``), prompt templates, background runs,
streaming, built-in tools (web search, file search, computer use) and non-text input parts.
"""

from __future__ import annotations

import time
from typing import Any

from lictor.proxy.wire import ProxyError

__all__ = ["from_chat", "to_chat"]

_REFUSED = {"previous_response_id": "stored conversations are not kept by the proxy; send the whole input",
            "conversation": "stored conversations are not kept by the proxy; send the whole input",
            "prompt": "prompt templates are not offered by the proxy",
            "background": "background runs are not offered by the proxy",
            "stream": "streaming is not offered on /v1/responses; use /v1/chat/completions with stream: true"}
_ROLES = ("user", "assistant", "system", "developer")


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for n, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ProxyError(400, f"only text parts are passed, got {kind!r} at {where}[{n}]",
                                 param=f"{where}[{n}]", code="unsupported_content")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise ProxyError(400, f"content is a string or a list of text parts, at {where}", param=where)


def _messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise ProxyError(400, "'input' is required: a string or a non-empty list of items", param="input")
    messages: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        where = f"input[{n}]"
        if not isinstance(item, dict):
            raise ProxyError(400, f"an input item is an object, at {where}", param=where)
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in _ROLES:
            messages.append({"role": item["role"], "content": _text(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call = {"id": str(item.get("call_id", "")), "type": "function",
                    "function": {"name": str(item.get("name", "")), "arguments": str(item.get("arguments", ""))}}
            if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id", "")),
                             "content": output if isinstance(output, str) else _text(output, f"{where}.output")})
        else:
            raise ProxyError(400, f"input items of type {kind!r} are not offered by the proxy", param=where,
                             code="unsupported_content")
    return messages


def to_chat(body: Any) -> dict[str, Any]:
    """The chat completions request for a Responses API request ``body``."""
    if not isinstance(body, dict):
        raise ProxyError(400, "the body must be a JSON object (a Responses API request)")
    for field, why in _REFUSED.items():
        if body.get(field):
            raise ProxyError(400, f"'{field}': {why}", param=field, code="unsupported_parameter")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ProxyError(400, "'model' is required: the name of the model to use", param="model")
    messages = _messages(body.get("input"))
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": str(body["instructions"])})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for ours, theirs in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"),
                         ("parallel_tool_calls", "parallel_tool_calls")):
        if body.get(ours) is not None:
            chat[theirs] = body[ours]
    tools = []
    for n, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise ProxyError(400, f"only function tools are offered by the proxy, got {kind!r} at tools[{n}]",
                             param=f"tools[{n}]", code="unsupported_parameter")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
        tools.append({"type": "function", "function": function})
    if tools:
        chat["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    return chat


def from_chat(completion: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The ``response`` object for an (enforced) chat completion answering ``body``."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    ident = str(completion.get("id", "lictor"))
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append({"type": "message", "id": f"msg_{ident}", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": message["content"], "annotations": []}]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append({"type": "function_call", "id": f"fc_{call.get('id')}", "call_id": call.get("id"),
                       "name": function.get("name"), "arguments": function.get("arguments", ""),
                       "status": "completed"})
    usage = completion.get("usage") or {}
    incomplete = choice.get("finish_reason") == "length"
    out: dict[str, Any] = {
        "id": f"resp_{ident}", "object": "response", "created_at": completion.get("created", int(time.time())),
        "status": "incomplete" if incomplete else "completed", "model": completion.get("model", body.get("model")),
        "output": output, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"), "store": False,
        "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0),
                  "total_tokens": usage.get("total_tokens", 0),
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }
    if "lictor" in completion:
        out["lictor"] = completion["lictor"]
    return out
