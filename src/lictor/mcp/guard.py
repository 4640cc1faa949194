"""What Lictor does to MCP traffic, whatever carries it: decide tools/list, tools/call and tool results.

Every question goes through the gateway, so every answer is in the audit log:

* ``tools/list`` — per tool, a *probe* (kind ``mcp_call``, the tool's name, no arguments,
  ``context.mcp.phase == "list"``) decided without opening a review: the tool is hidden when a BLOCK
  rule without ``approval`` matches it and did not merely fail on the missing arguments, or when the
  default verdict BLOCK applies with no rule matched or failed (see :func:`forbids`). Then its
  description (``content``) and input schema (``args.inputSchema``) are decided as kind ``message``
  (``phase == "description"``): BLOCK hides the tool (tool poisoning), CONSTRAIN rewrites what the
  client sees. ``context.mcp.description`` says ``new``, ``same`` or ``changed`` against the pin.
* ``tools/call`` — kind ``mcp_call`` with the arguments: BLOCK returns a tool error result naming the
  rules; a pending review returns an error result naming the review and how to retry (the same call
  with the argument ``_lictor_approval``); CONSTRAIN forwards the constrained arguments.
* the tool's result — kind ``message`` (``phase == "result"``), text blocks joined as ``content``,
  structured content as ``args.structuredContent``: BLOCK withholds it, CONSTRAIN replaces it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from mcp import McpError, types

from lictor.errors import InputError
from lictor.mcp.pins import DescriptionPins
from lictor.model import Action, Agent, Decision, Verdict
from lictor.runtime import Gateway

__all__ = ["APPROVAL_ARGUMENT", "McpGuard", "forbids"]

#: The argument a caller adds to a held tool call, with the review id, to present its approval.
APPROVAL_ARGUMENT = "_lictor_approval"

_log = logging.getLogger("lictor.mcp")

Forward = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]


def forbids(decision: Decision) -> bool:
    """Whether a probe's decision forbids the tool outright: BLOCK by a rule that matched without
    error and asks for no approval (rules about arguments fail on a probe's empty ``args`` and act at
    call time instead); BLOCK by the default verdict (default-deny) when no rule matched or failed,
    so no rule could allow a call; or BLOCK by an internal failure (fail closed)."""
    if decision.verdict is not Verdict.BLOCK:
        return False
    if any(not e.policy and e.applied for e in decision.errors):
        return True
    if not decision.reasons and not decision.errors:
        return True
    errored = {(e.policy, e.rule) for e in decision.errors}
    return any(r.verdict is Verdict.BLOCK and r.approval is None and (r.policy, r.rule) not in errored
               for r in decision.reasons)


def _why(decision: Decision) -> str:
    """The rules behind a verdict, as one line a person (or a model) can act on."""
    parts = [f"policy {r.policy}, rule {r.rule}" + (f": {r.message}" if r.message else "")
             for r in decision.reasons if r.verdict is decision.verdict]
    parts += [e.message for e in decision.errors if e.applied and not e.policy]
    return "; ".join(parts) or "no rule matched and the default verdict is " + decision.verdict.name


def _error(text: str, decision: Decision) -> types.CallToolResult:
    meta = {"lictor/decision": {"decision_id": decision.decision_id, "verdict": decision.verdict.name,
                                "review": decision.review}}
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=True,
                                _meta=meta)


def _refused(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=True)


class McpGuard:
    """The decisions on one MCP server's traffic, for AI ``system``; ``server`` names the server in
    records and pins."""

    def __init__(self, gateway: Gateway, *, system: str, server: str, pins: DescriptionPins) -> None:
        self.gateway = gateway
        self.system = system
        self.server = server
        self.pins = pins

    def _context(self, phase: str, **extra: Any) -> dict[str, Any]:
        return {"mcp": {"server": self.server, "phase": phase, **extra}}

    # -- tools/list -------------------------------------------------------------------

    async def list_tools(self, tools: Sequence[types.Tool], agent: Agent) -> list[types.Tool]:
        """The tools this agent may see, as it may see them. The tools are screened concurrently, so
        their decisions share the audit log's group commits."""
        screened = await asyncio.gather(*(self._screen(tool, agent) for tool in tools))
        return [tool for tool in screened if tool is not None]

    async def _screen(self, tool: types.Tool, agent: Agent) -> types.Tool | None:
        probe = Action(self.system, "mcp_call", name=tool.name, agent=agent, context=self._context("list"))
        if forbids(await self.gateway.adecide(probe, oversee=False)):
            return None
        state, digest, pinned = self.pins.check(self.server, tool.name, tool.description, tool.inputSchema)
        try:
            scan = Action.from_dict({
                "system": self.system, "kind": "message", "name": tool.name, "agent": agent.to_dict(),
                "content": tool.description or "", "args": {"inputSchema": tool.inputSchema},
                "context": self._context("description", description=state, sha256=digest, pinned_sha256=pinned)})
        except InputError:  # a schema that is not plain JSON cannot be recorded: do not show it
            return None
        decision = await self.gateway.adecide(scan, oversee=False)
        if state == "changed":  # flagged whatever the policies say: the operator decides whether to re-pin
            _log.warning("MCP server %r changed the description of tool %r since it was pinned (%s, now %s); "
                         "decision %s: %s", self.server, tool.name, pinned, digest, decision.decision_id,
                         decision.verdict.name)
        if decision.verdict is Verdict.BLOCK:
            return None
        if decision.verdict is Verdict.CONSTRAIN and decision.action is not None:
            content = decision.action.get("content")
            args = decision.action.get("args")
            schema = args.get("inputSchema") if isinstance(args, dict) else None
            return tool.model_copy(update={
                "description": content if isinstance(content, str) else tool.description,
                "inputSchema": schema if isinstance(schema, dict) else tool.inputSchema})
        return tool

    # -- tools/call -------------------------------------------------------------------

    async def call(self, name: str, arguments: Mapping[str, Any] | None, agent: Agent,
                   forward: Forward) -> types.CallToolResult:
        """Decide the call, run it through ``forward`` when allowed (with the constrained arguments
        under CONSTRAIN), then decide its result."""
        args = dict(arguments or {})
        approval = args.pop(APPROVAL_ARGUMENT, None)
        if approval is not None and not isinstance(approval, str):
            return _refused(f"Lictor: {APPROVAL_ARGUMENT} is the id of a review (a string), not {approval!r}.")
        try:
            action = Action.from_dict({"system": self.system, "kind": "mcp_call", "name": name, "args": args,
                                       "agent": agent.to_dict(), "context": self._context("call"),
                                       "approval": approval})
        except InputError as exc:
            return _refused(f"Lictor refused the call: its arguments cannot be checked ({exc}).")
        decision = await self.gateway.adecide(action)
        if decision.verdict is Verdict.BLOCK:
            return _error(self._held(decision) if decision.review else
                          f"Blocked by Lictor (decision {decision.decision_id}): {_why(decision)}.", decision)
        if decision.verdict is Verdict.CONSTRAIN and decision.action is not None:
            constrained = decision.action.get("args")
            args = dict(constrained) if isinstance(constrained, dict) else {}
        try:
            result = await forward(name, args)
        except McpError as exc:  # the server refused: its answer reaches the model, so it is decided too
            result = types.CallToolResult(content=[types.TextContent(
                type="text", text=f"The MCP server refused the call: {exc.error.message}")], isError=True)
        return await self._result(name, result, agent, decision)

    def _held(self, decision: Decision) -> str:
        review = decision.review or {}
        rid = review.get("id")
        approvers = review.get("approvers")
        who = f"; approvers: {', '.join(map(str, approvers))}" if isinstance(approvers, list) and approvers else ""
        until = f"; expires {review['expires_at']}" if review.get("expires_at") else ""
        problems = [e.message for e in decision.errors if e.applied]
        extra = f" The approval presented was not accepted: {'; '.join(problems)}." if problems else ""
        return (f"Held by Lictor for human review: review {rid} ({review.get('status', 'pending')}{who}{until}). "
                f"Why: {_why(decision)}.{extra} Once the review is approved, call this tool again with the same "
                f'arguments plus "{APPROVAL_ARGUMENT}": "{rid}".')

    # -- the result -------------------------------------------------------------------

    async def _result(self, name: str, result: types.CallToolResult, agent: Agent,
                      call: Decision) -> types.CallToolResult:
        texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
        unscanned = sorted({b.type for b in result.content if not isinstance(b, types.TextContent)})
        data: dict[str, Any] = {
            "system": self.system, "kind": "message", "name": name, "agent": agent.to_dict(),
            "content": "\n".join(texts),
            "context": self._context("result", is_error=bool(result.isError), unscanned=unscanned,
                                     call_decision=call.decision_id)}
        if result.structuredContent is not None:
            data["args"] = {"structuredContent": result.structuredContent}
        try:
            action = Action.from_dict(data)
        except InputError as exc:
            return _refused(f"Lictor withheld the result of {name}: it cannot be checked ({exc}).")
        decision = await self.gateway.adecide(action, oversee=False)
        if decision.verdict is Verdict.BLOCK:
            return _error(f"Lictor withheld the result of {name} (decision {decision.decision_id}): "
                          f"{_why(decision)}.", decision)
        if decision.verdict is not Verdict.CONSTRAIN or decision.action is None:
            return result
        content = decision.action.get("content")
        args = decision.action.get("args")
        blocks: list[types.ContentBlock] = [b for b in result.content if not isinstance(b, types.TextContent)]
        if isinstance(content, str) and content:
            blocks.insert(0, types.TextContent(type="text", text=content))
        structured = args.get("structuredContent") if isinstance(args, dict) else None
        return result.model_copy(update={
            "content": blocks, "structuredContent": structured if isinstance(structured, dict) else None})
