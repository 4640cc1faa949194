"""The real server's ``notifications/tools/list_changed`` reaches the client through the proxy, and the
proxy says it sends them; in process, over in-memory MCP streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.memory import create_connected_server_and_client_session

from lictor.mcp import DescriptionPins, McpGuard, build_server, relay_list_changes, relay_state
from lictor.model import Agent
from lictor.runtime import Gateway


def growing_server() -> Server[Any, Any]:
    """A server whose tool ``grow`` adds a tool and says so."""
    server: Server[Any, Any] = Server("growing")
    names = ["grow"]

    @server.list_tools()  # type: ignore[untyped-decorator,no-untyped-call]
    async def list_tools() -> list[types.Tool]:
        return [types.Tool(name=n, description=f"{n} things", inputSchema={"type": "object"}) for n in names]

    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> list[types.ContentBlock]:
        names.append(f"tool_{len(names)}")
        await server.request_context.session.send_tool_list_changed()
        return [types.TextContent(type="text", text="grown")]

    return server


def test_a_changed_tool_list_is_relayed_and_listed_again_through_the_guard(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: lictor/v1\nkind: Policy\nmetadata: {name: none}\n"
                                     "spec:\n  rules:\n    - name: never\n      when: 'false'\n      verdict: BLOCK\n")
    gateway = Gateway.open(policies=tmp_path / "p.yaml", database="memory://", key_file=tmp_path / "k",
                           payload_key_file=tmp_path / "pk")
    guard = McpGuard(gateway, system="s", server="growing", pins=DescriptionPins(None))

    async def scenario() -> tuple[bool, list[str], list[str]]:
        changed = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ServerNotification) and isinstance(message.root,
                                                                             types.ToolListChangedNotification):
                changed.set()

        state = relay_state()
        async with create_connected_server_and_client_session(growing_server(),
                                                              message_handler=relay_list_changes(state)) as real:
            state["upstream"] = real

            @asynccontextmanager
            async def connect(_server: Server[Any, Any]) -> AsyncIterator[dict[str, Any]]:
                yield state

            proxy = build_server(guard, connect, lambda _ctx: Agent(id="a"))
            async with create_connected_server_and_client_session(proxy, message_handler=on_message) as client:
                advertised = bool(client.get_server_capabilities().tools.listChanged)  # type: ignore[union-attr]
                before = [t.name for t in (await client.list_tools()).tools]
                await client.call_tool("grow", {})
                with anyio.fail_after(10):
                    await changed.wait()
                after = [t.name for t in (await client.list_tools()).tools]
                return advertised, before, after

    try:
        advertised, before, after = asyncio.run(scenario())
    finally:
        gateway.close()
    assert advertised
    assert before == ["grow"] and after == ["grow", "tool_1"]
