#!/usr/bin/env python3
"""What the MCP proxy adds to a tool call and to a tool listing, in process.

A small MCP server (one ``echo`` tool plus ``--tools`` listed tools) is reached by a real client
session twice: directly, and through Lictor's proxy server (``lictor.mcp.build_server``), all over
in-memory MCP streams so that no process or socket noise is measured. Through the proxy, each call
makes two durable decisions (the ``mcp_call`` and its result, as ``message``), and each listing
two per tool (the probe and the description), in a SQLite audit log in a temporary directory with
``durability: sync`` (``--max-delay`` sets ``audit.max_delay``), under a small policy set with a rule for every phase. The script reports
p50/p99 of a call and of a listing, both ways, and the difference (the proxy's added latency).

    python bench/mcp_proxy.py [--calls N] [--lists N] [--tools N] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package, which the MCP SDK needs: this
# directory goes last on the path (it still provides machine.py)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

from mcp import ClientSession, types  # noqa: E402
from mcp.server.lowlevel import Server  # noqa: E402
from mcp.shared.memory import create_connected_server_and_client_session  # noqa: E402

from lictor.mcp import DescriptionPins, McpGuard, build_server  # noqa: E402
from lictor.model import Agent  # noqa: E402
from lictor.runtime import Gateway  # noqa: E402
from machine import describe  # noqa: E402

__all__ = ["main"]

POLICIES = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: bench-mcp}
spec:
  target: {systems: [bench]}
  rules:
    - name: no-deleting
      when: kind == "mcp_call" && name.startsWith("delete_")
      verdict: BLOCK
    - name: cap
      when: kind == "mcp_call" && has(args.amount) && args.amount > 100
      verdict: CONSTRAIN
      constrain: [{clamp: {path: args.amount, max: 100}}]
    - name: poisoning
      when: kind == "message" && context.mcp.phase == "description" && content.matches("(?i)ignore previous")
      verdict: BLOCK
    - name: keys
      when: kind == "message" && context.mcp.phase == "result"
      verdict: CONSTRAIN
      constrain: [{redact: {paths: [content], pattern: "AKIA[0-9A-Z]{16}"}}]
"""


def upstream(tools: int) -> Server[Any, Any]:
    server: Server[Any, Any] = Server("bench-upstream")
    listed = [types.Tool(name="echo", description="Echoes its text.",
                         inputSchema={"type": "object", "properties": {"text": {"type": "string"}}})]
    listed += [types.Tool(name=f"tool_{i}", description=f"Tool number {i}, which does one thing well.",
                          inputSchema={"type": "object"}) for i in range(tools)]

    @server.list_tools()  # type: ignore[untyped-decorator,no-untyped-call]
    async def list_tools() -> list[types.Tool]:
        return listed

    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> list[types.ContentBlock]:
        return [types.TextContent(type="text", text=str(arguments.get("text", "")))]

    return server


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(min(20, n)):  # warm up
        await step()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await step()
        out.append(time.perf_counter() - started)
    return out


async def measure(session: ClientSession, calls: int, lists: int) -> dict[str, dict[str, float]]:
    text = "a line of text the tool echoes back, about eighty characters long, give or take."
    call = await timed(calls, lambda: session.call_tool("echo", {"text": text}))
    listing = await timed(lists, session.list_tools)
    return {"call": percentiles(call), "list": percentiles(listing)}


async def run(calls: int, lists: int, tools: int, max_delay: float) -> dict[str, Any]:
    real = upstream(tools)
    async with create_connected_server_and_client_session(real) as direct:
        plain = await measure(direct, calls, lists)

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.yaml").write_text(POLICIES)
        gateway = Gateway.open(policies=Path(tmp) / "p.yaml", database=f"sqlite:///{tmp}/lictor.db",
                               key_file=Path(tmp) / "k", payload_key_file=Path(tmp) / "pk", max_delay=max_delay)
        try:
            guard = McpGuard(gateway, system="bench", server="bench", pins=DescriptionPins(Path(tmp) / "pins.json"))
            async with create_connected_server_and_client_session(upstream(tools)) as to_real:

                @asynccontextmanager
                async def connect(_server: Server[Any, Any]) -> AsyncIterator[dict[str, Any]]:
                    yield {"upstream": to_real}

                proxy = build_server(guard, connect, lambda _ctx: Agent(id="bench-agent"))
                async with create_connected_server_and_client_session(proxy) as session:
                    proxied = await measure(session, calls, lists)
            leaves = gateway.log.state.size
        finally:
            gateway.close()
    added = {what: {k: round(proxied[what][k] - plain[what][k], 3) for k in plain[what]} for what in plain}
    return {"machine": describe(), "max_delay_s": max_delay, "calls": calls, "lists": lists, "tools_listed": tools + 1,
            "direct": plain, "proxied": proxied, "added": added, "audit_leaves": leaves}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--lists", type=int, default=50)
    parser.add_argument("--tools", type=int, default=19, help="tools listed besides echo")
    parser.add_argument("--max-delay", type=float, default=0.002,
                        help="audit.max_delay in seconds: how long a group commit waits for company")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.calls, args.lists, args.tools, args.max_delay))
    for what in ("call", "list"):
        d, p, a = report["direct"][what], report["proxied"][what], report["added"][what]
        print(f"{what:5} direct p50 {d['p50_ms']:8.3f} ms p99 {d['p99_ms']:8.3f} ms | "
              f"proxied p50 {p['p50_ms']:8.3f} ms p99 {p['p99_ms']:8.3f} ms | "
              f"added p50 {a['p50_ms']:8.3f} ms p99 {a['p99_ms']:8.3f} ms")
    print(f"tools listed: {report['tools_listed']}; audit leaves written: {report['audit_leaves']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
