"""Decisions over one chat exchange: the request as an ``llm_request`` action, the answer as an
``llm_response`` action, and each tool call the model proposes as a ``tool_call`` action, with each
verdict carried out (the constrained request sent, a blocked tool call removed or the answer replaced).

Every action records in ``context.inspected`` what it covers, so that the audit record says exactly
what was checked: which part of the exchange, how many characters, and whether it was complete.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lictor.errors import InputError, LictorError
from lictor.model import Action, Decision, Verdict
from lictor.oversight import action_hash
from lictor.proxy.wire import ProxyError, blocked_error, decision_summary, why
from lictor.runtime import Gateway

__all__ = ["Exchange", "ToolOutcome", "decide", "presented_approvals"]

#: Request fields that say how to deliver the answer rather than what to ask the model.
_DELIVERY = ("messages", "model", "stream", "stream_options")


@dataclass
class Exchange:
    """One proxied request: who sent it, the approvals it presents (by action hash), and what was decided."""

    gateway: Gateway
    system: str
    agent: str
    upstream: str
    on_blocked_tool_call: str = "remove"
    approvals: Mapping[str, str] = field(default_factory=dict)
    api: str = "chat.completions"  # the route the client called: chat.completions or responses
    decisions: dict[str, Any] = field(default_factory=dict)  # what the answer's ``lictor`` member reports

    def action(self, kind: str, name: str | None, *, args: dict[str, Any] | None = None, content: Any = None,
               inspected: dict[str, Any], extra: dict[str, Any] | None = None) -> Action:
        """An action of this exchange, presenting the approval whose review holds exactly this action."""
        context: dict[str, Any] = {"proxy": {"api": self.api, "upstream": self.upstream, **(extra or {})},
                                   "inspected": inspected}
        data = {"system": self.system, "kind": kind, "agent": {"id": self.agent}, "args": args or {},
                "context": context, **({"name": name} if name is not None else {}),
                **({"content": content} if content is not None else {})}
        action = Action.from_dict(data)
        if self.approvals:
            review = self.approvals.get(action_hash(action))
            if review is not None:
                action = dataclasses.replace(action, approval=review)
        return action


async def decide(gateway: Gateway, action: Action) -> Decision:
    """The gateway's decision, or a 503 that blocks (fail closed) when none can be made."""
    try:
        return await gateway.adecide(action)
    except Exception as exc:
        raise ProxyError(503, "Lictor could not decide this action, so it is blocked (fail closed); try again",
                         type="lictor_error", code="decision_failed") from exc


async def presented_approvals(gateway: Gateway, header: str | None) -> dict[str, str]:
    """The reviews named in a ``Lictor-Approval`` header (comma-separated ids), by the hash of the
    action each one holds; an unknown id is a 400."""
    if not header:
        return {}
    found = {}
    for review_id in (part.strip() for part in header.split(",")):
        if not review_id:
            continue
        try:
            review = await asyncio.to_thread(gateway.show_review, review_id)
        except LictorError:
            raise ProxyError(400, f"there is no review {review_id!r} (header Lictor-Approval)",
                             code="unknown_review", param="Lictor-Approval") from None
        found[review.action_hash] = review.id
    return found


# --------------------------------------------------------------------------- the request


def _message_chars(messages: list[Any]) -> int:
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return total


def parse_request(body: Any) -> dict[str, Any]:
    """The chat completions request, checked for what the proxy itself needs (a 400 otherwise)."""
    if not isinstance(body, dict):
        raise ProxyError(400, "the body must be a JSON object (a chat completions request)")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ProxyError(400, "'model' is required: the name of the model to use", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ProxyError(400, "'messages' is required: a non-empty list of message objects", param="messages")
    if body.get("stream") and body.get("n", 1) != 1:
        raise ProxyError(400, "streaming with n other than 1 is not supported by the proxy", param="n")
    return body


def request_action(exchange: Exchange, body: dict[str, Any]) -> Action:
    """The ``llm_request`` action: content = the messages, args = the model parameters and tools."""
    args = {k: v for k, v in body.items() if k not in _DELIVERY}
    inspected = {"parts": ["messages", *sorted(args)], "chars": _message_chars(body["messages"]), "complete": True}
    try:
        return exchange.action("llm_request", body["model"], args=args, content=body["messages"], inspected=inspected,
                               extra={"stream": bool(body.get("stream"))})
    except InputError as exc:
        raise ProxyError(400, f"the request cannot be checked: {exc}", param=exc.path) from None


async def enforce_request(exchange: Exchange, body: dict[str, Any]) -> dict[str, Any]:
    """The request to send upstream: ``body`` as it came (ALLOW, LOG) or as constrained; raises the
    403 of a BLOCK."""
    decision = await decide(exchange.gateway, request_action(exchange, body))
    exchange.decisions["request"] = decision_summary(decision)
    if decision.verdict is Verdict.BLOCK:
        raise blocked_error(decision, "the request")
    if decision.verdict is not Verdict.CONSTRAIN or decision.action is None:
        return body
    constrained = decision.action
    messages = constrained.get("content")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ProxyError(403, "Lictor constrained the request into something that is not a list of messages, "
                         "so it is blocked", type="policy_violation", code="policy_blocked",
                         lictor=decision_summary(decision))
    args = constrained.get("args") or {}
    sent = {**args, "model": constrained.get("name") or body["model"], "messages": messages}
    for key in ("stream", "stream_options"):
        if key in body:
            sent[key] = body[key]
    return sent


# --------------------------------------------------------------------------- the answer


@dataclass
class ToolOutcome:
    """What was decided of one proposed tool call: kept (perhaps with constrained ``arguments``) or
    blocked, with the line that tells the client why."""

    call: dict[str, Any]
    decision: Decision
    blocked: bool
    notice: str = ""


def _arguments(text: Any) -> tuple[dict[str, Any], str | None]:
    """Parsed tool call arguments, or ``({}, why)`` when they are not a JSON object."""
    if text in (None, ""):
        return {}, None
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        return {}, f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(value, dict):
        return {}, f"the arguments are JSON but not an object (a {type(value).__name__})"
    return value, None


async def decide_tool_call(exchange: Exchange, call: dict[str, Any]) -> ToolOutcome:
    """Decide one complete tool call. Arguments that are not a JSON object cannot be checked, so the
    call is blocked whatever the verdict; its record says so before the decision is made."""
    function = call.get("function") or {}
    name = str(function.get("name") or "")
    raw = function.get("arguments")
    args, problem = _arguments(raw)
    # the length of the arguments as parsed (canonical JSON), so that the same call proposed again
    # with other spacing is the same action, and an approval of it applies
    chars = len(json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)) if problem is None \
        else len(raw) if isinstance(raw, str) else 0
    inspected = {"part": "tool_call.arguments", "chars": chars, "complete": True, "parsed": problem is None}
    extra = {"arguments_error": problem, "enforced": "BLOCK: unparsable arguments cannot be checked"} if problem else None
    try:
        action = exchange.action("tool_call", name or "(unnamed)", args=args, inspected=inspected, extra=extra)
    except InputError as exc:
        action = exchange.action("tool_call", name or "(unnamed)", inspected={**inspected, "parsed": False},
                                 extra={"arguments_error": str(exc), "enforced": "BLOCK: arguments cannot be checked"})
        problem = str(exc)
    decision = await decide(exchange.gateway, action)
    summary = {"id": call.get("id"), "name": name, **decision_summary(decision)}
    exchange.decisions.setdefault("tool_calls", []).append(summary)
    if problem is not None:
        summary["blocked_by_proxy"] = problem
        return ToolOutcome(call, decision, True, f"[Lictor] The tool call {name!r} was blocked: {problem}, so it "
                           f"could not be checked (decision {decision.decision_id}).")
    if decision.verdict is Verdict.BLOCK:
        review = decision.review or {}
        if review.get("id") and review.get("status") == "pending":
            notice = (f"[Lictor] The tool call {name!r} is held for approval: {why(decision)}. Review "
                      f"{review['id']} is pending; once it is approved, send the same request again with the "
                      f"header 'Lictor-Approval: {review['id']}'.")
        else:
            notice = f"[Lictor] The tool call {name!r} was blocked: {why(decision)} (decision {decision.decision_id})."
        return ToolOutcome(call, decision, True, notice)
    if decision.verdict is Verdict.CONSTRAIN and decision.action is not None:
        call = copy.deepcopy(call)
        call["function"]["arguments"] = json.dumps(decision.action.get("args") or {}, ensure_ascii=False)
    return ToolOutcome(call, decision, False)


def response_action(exchange: Exchange, model: str, text: str | None, *, finish: Any, tools: list[str],
                    inspected: dict[str, Any]) -> Action:
    """The ``llm_response`` action: content = the assistant's text."""
    return exchange.action("llm_response", model, content=text or None, inspected=inspected,
                           args={"finish_reason": finish, "tool_calls": tools})


async def enforce_completion(exchange: Exchange, completion: dict[str, Any], model: str) -> dict[str, Any]:
    """The answer the client gets for a whole (not streamed) ``chat.completion``; raises the 403 of a
    BLOCKed response. The answer (``completion``, changed in place) gains a ``lictor`` member with
    every decision made."""
    out = completion
    exchange.decisions["response"] = []
    for choice in out.get("choices") or []:
        message = choice.get("message") or {}
        text = message.get("content")
        text = text if isinstance(text, str) else None
        calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        names = [str((c.get("function") or {}).get("name")) for c in calls]
        inspected = {"part": "message", "choice": choice.get("index", 0), "chars": len(text or ""), "complete": True}
        decision = await decide(exchange.gateway, response_action(
            exchange, model, text, finish=choice.get("finish_reason"), tools=names, inspected=inspected))
        exchange.decisions["response"].append(decision_summary(decision))
        if decision.verdict is Verdict.BLOCK:
            raise blocked_error(decision, "the response")
        if decision.verdict is Verdict.CONSTRAIN and decision.action is not None:
            constrained = decision.action.get("content")
            message["content"] = constrained if isinstance(constrained, str) else None
        outcomes = [await decide_tool_call(exchange, call) for call in calls]
        if calls:
            _carry_out(exchange, choice, message, outcomes)
    out["lictor"] = exchange.decisions
    return out


def _carry_out(exchange: Exchange, choice: dict[str, Any], message: dict[str, Any],
               outcomes: list[ToolOutcome]) -> None:
    notices = [o.notice for o in outcomes if o.blocked]
    if not notices:
        message["tool_calls"] = [o.call for o in outcomes]
        return
    if exchange.on_blocked_tool_call == "replace":
        choice["message"] = {"role": "assistant", "content": "\n".join(
            [*notices, "[Lictor] The model's answer was withheld because it proposed a blocked tool call."])}
        choice["finish_reason"] = "content_filter"
        return
    kept = [o.call for o in outcomes if not o.blocked]
    text = message.get("content") or ""
    message["content"] = "\n\n".join(filter(None, [text, *notices]))
    if kept:
        message["tool_calls"] = kept
    else:
        message.pop("tool_calls", None)
        if choice.get("finish_reason") == "tool_calls":
            choice["finish_reason"] = "stop"
