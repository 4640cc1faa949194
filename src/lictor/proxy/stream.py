"""Honest enforcement of streamed answers: text is decided in windows before it is released, with a
bounded look-behind held back, and tool calls are assembled whole and decided before any of them is sent.

The model's text is collected until ``window`` new characters have arrived; those characters, plus
the last ``lookbehind`` characters already decided but held back, are decided as one ``llm_response``
action; then everything but the last ``lookbehind`` characters is released to the client. A finding
of up to ``lookbehind`` characters that spans two windows is therefore decided whole before any of it
is released. ``window = 0`` buffers the whole answer and decides it once. The end of the answer is
always decided (``complete: true``), so every answer has at least one ``llm_response`` record.

Tool call deltas are never forwarded as they arrive: each call's arguments are assembled, parsed and
decided once the upstream has finished, and only then sent, in one delta per call, complete.

A BLOCK in the middle of a stream ends it with an error event (the SDKs raise it as an ``APIError``);
text released before it stays released, which is why ``window = 0`` exists.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from lictor.model import Verdict
from lictor.proxy.enforce import Exchange, ToolOutcome, decide, decide_tool_call, response_action
from lictor.proxy.wire import DONE, ProxyError, blocked_error, decision_summary, sse_data

__all__ = ["StreamGuard"]


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def whole(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": "".join(self.arguments)}}


class StreamGuard:
    """Turns the upstream's chunks into the events the client gets, deciding as it goes."""

    def __init__(self, exchange: Exchange, model: str, *, window: int, lookbehind: int) -> None:
        self.exchange = exchange
        self.model = model
        self.window = window
        self.lookbehind = lookbehind
        self.meta: dict[str, Any] = {"id": "chatcmpl-lictor", "created": int(time.time()), "model": model}
        self.pending = ""   # received, not yet decided
        self.held = ""      # decided, not yet released (the look-behind)
        self.received = 0
        self.windows = 0
        self.calls: dict[int, _Call] = {}
        self.finish: Any = None
        self.usage: dict[str, Any] | None = None
        exchange.decisions["response"] = []

    def _chunk(self, delta: dict[str, Any], finish: Any = None, **extra: Any) -> bytes:
        return sse_data({**self.meta, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    async def events(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        """The client's events, ending with ``[DONE]`` or with one error event."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for chunk in chunks:
                for out in await self._take(chunk):
                    yield out
            for out in await self._finish():
                yield out
            yield DONE
        except ProxyError as exc:
            yield sse_data(exc.body())

    async def _take(self, chunk: dict[str, Any]) -> list[bytes]:
        for key in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(key) is not None:
                self.meta[key] = chunk[key]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.pending += text
                self.received += len(text)
            for part in delta.get("tool_calls") or []:
                call = self.calls.setdefault(int(part.get("index", 0)), _Call())
                call.id = part.get("id") or call.id
                function = part.get("function") or {}
                call.name += function.get("name") or ""
                call.arguments.append(function.get("arguments") or "")
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            if self.window and len(self.pending) >= self.window:
                out += await self._decide_window(complete=False)
        return out

    async def _decide_window(self, *, complete: bool) -> list[bytes]:
        """Decide the held-back text plus the new text; release all of it but the look-behind (all of
        it at the end)."""
        text = self.held + self.pending
        if not text and self.windows:
            return []
        self.windows += 1
        inspected = {"part": "message", "window": self.windows, "chars": len(text), "new_chars": len(self.pending),
                     "rescanned_chars": len(self.held), "received_chars": self.received, "complete": complete}
        names = [c.name for _, c in sorted(self.calls.items())] if complete else []
        decision = await decide(self.exchange.gateway, response_action(
            self.exchange, self.model, text, finish=self.finish if complete else None, tools=names,
            inspected=inspected))
        self.exchange.decisions["response"].append(decision_summary(decision))
        if decision.verdict is Verdict.BLOCK:
            raise blocked_error(decision, "the response")
        if decision.verdict is Verdict.CONSTRAIN and decision.action is not None:
            constrained = decision.action.get("content")
            text = constrained if isinstance(constrained, str) else ""
        cut = len(text) if complete else max(0, len(text) - self.lookbehind)
        release, self.held, self.pending = text[:cut], text[cut:], ""
        return [self._chunk({"content": release})] if release else []

    async def _finish(self) -> list[bytes]:
        out = await self._decide_window(complete=True)
        outcomes: list[ToolOutcome] = [await decide_tool_call(self.exchange, call.whole())
                                       for _, call in sorted(self.calls.items())]
        finish = self.finish or "stop"
        blocked = [o for o in outcomes if o.blocked]
        replace = bool(blocked) and self.exchange.on_blocked_tool_call == "replace"
        kept = [] if replace else [o.call for o in outcomes if not o.blocked]
        for n, call in enumerate(kept):
            out.append(self._chunk({"tool_calls": [{"index": n, **call}]}))
        if blocked:
            notices = [o.notice for o in blocked]
            if replace:
                notices.append("[Lictor] The model's tool calls were withheld because one of them is blocked.")
                finish = "content_filter"
            elif not kept and finish == "tool_calls":
                finish = "stop"
            out.append(self._chunk({"content": "\n\n" + "\n".join(notices)}))
        extra: dict[str, Any] = {"lictor": self.exchange.decisions}
        out.append(self._chunk({}, finish, **extra))
        if self.usage is not None:
            out.append(sse_data({**self.meta, "object": "chat.completion.chunk", "choices": [], "usage": self.usage}))
        return out
