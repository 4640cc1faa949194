"""The MCP server a client talks to: tools/list and tools/call answered through the guard, forwarded to
the real server over a client session; and the stdio proxy that wraps a server given as a command.

Only tools are served. The wrapped server's resources, prompts and instructions are not passed on:
they would reach the model without being decided.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client, stdio_server, types
from mcp.server.lowlevel import Server
from mcp.shared.context import RequestContext

from lictor import __version__
from lictor.mcp.guard import McpGuard
from lictor.mcp.pins import DescriptionPins
from lictor.model import Agent
from lictor.runtime import Gateway

__all__ = ["AgentOf", "Connect", "build_server", "run_stdio_proxy"]

#: Opens the session to the real server for one client session; yields ``{"upstream": session}``.
Connect = Callable[[Server[Any, Any]], AbstractAsyncContextManager[dict[str, Any]]]
#: Who is calling, from the request being answered.
AgentOf = Callable[[RequestContext[Any, Any, Any]], Agent]


async def _all_tools(upstream: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await upstream.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def build_server(guard: McpGuard, connect: Connect, agent_of: AgentOf) -> Server[Any, Any]:
    """A low-level MCP server that answers tools/list and tools/call through ``guard``, forwarding to
    the session ``connect`` opens (once per client session)."""
    server: Server[dict[str, Any], Any] = Server("lictor", version=__version__, lifespan=connect)

    def upstream() -> ClientSession:
        session: ClientSession = server.request_context.lifespan_context["upstream"]
        return session

    @server.list_tools()  # type: ignore[untyped-decorator,no-untyped-call]
    async def list_tools() -> list[types.Tool]:
        return await guard.list_tools(await _all_tools(upstream()), agent_of(server.request_context))

    # the real server validates the arguments it receives (the approval argument is not in its schema)
    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        session = upstream()

        async def forward(tool: str, args: dict[str, Any]) -> types.CallToolResult:
            return await session.call_tool(tool, args)

        return await guard.call(name, arguments, agent_of(server.request_context), forward)

    return server


def _child_environment() -> dict[str, str]:
    """The wrapped server's environment: this process's, without Lictor's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}


async def run_stdio_proxy(gateway: Gateway, *, system: str, command: str, args: Sequence[str],
                          server_name: str | None = None, agent: str | None = None,
                          pins: DescriptionPins | None = None) -> None:
    """Serve MCP on this process's stdin and stdout, wrapping the stdio MCP server started as
    ``command args``; returns when the client closes the connection (the wrapped server is stopped)."""
    name = server_name or " ".join([command, *args])
    guard = McpGuard(gateway, system=system, server=name, pins=pins or DescriptionPins(None))
    who = Agent(id=agent)
    params = StdioServerParameters(command=command, args=list(args), env=_child_environment())
    async with stdio_client(params, errlog=sys.stderr) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        @asynccontextmanager
        async def connected(_server: Server[Any, Any]) -> AsyncIterator[dict[str, Any]]:
            yield {"upstream": session}

        server = build_server(guard, connected, lambda _ctx: who)
        async with stdio_server() as (client_read, client_write):
            await server.run(client_read, client_write, server.create_initialization_options())
