"""The MCP server a client talks to: tools/list and tools/call answered through the guard, forwarded to
the real server over a client session; and the stdio proxy that wraps a server given as a command.

Only tools are served. The wrapped server's resources, prompts and instructions are not passed on:
they would reach the model without being decided. Of its notifications, ``tools/list_changed`` is
relayed (the client lists again, and every tool is decided again); the others are dropped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client, stdio_server, types
from mcp.client.session import MessageHandlerFnT
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.shared.context import RequestContext

from lictor import __version__
from lictor.mcp.guard import McpGuard
from lictor.mcp.pins import DescriptionPins
from lictor.model import Agent
from lictor.runtime import Gateway

__all__ = ["AgentOf", "Connect", "build_server", "relay_list_changes", "relay_state", "run_stdio_proxy"]

#: Opens the session to the real server for one client session; yields a :func:`relay_state` dict
#: holding it as ``"upstream"`` (its ``message_handler`` being :func:`relay_list_changes` of that dict).
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


def relay_state() -> dict[str, Any]:
    """What one client session's connection shares with its relay: ``upstream`` (the session to the
    real server) and, once the client has made a request, ``client`` (the session facing it)."""
    return {}


def relay_list_changes(state: dict[str, Any]) -> MessageHandlerFnT:
    """The real server's message handler: relay ``notifications/tools/list_changed`` to the client."""

    async def handle(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(message.root,
                                                                         types.ToolListChangedNotification):
            client = state.get("client")
            if isinstance(client, ServerSession):
                await client.send_tool_list_changed()

    return handle


class _Proxy(Server[dict[str, Any], Any]):
    """The served side: it says that it notifies tool list changes (it relays the real server's)."""

    def create_initialization_options(self, notification_options: NotificationOptions | None = None,
                                      experimental_capabilities: dict[str, dict[str, Any]] | None = None,
                                      ) -> InitializationOptions:
        return super().create_initialization_options(notification_options or NotificationOptions(tools_changed=True),
                                                     experimental_capabilities)


def build_server(guard: McpGuard, connect: Connect, agent_of: AgentOf) -> Server[Any, Any]:
    """A low-level MCP server that answers tools/list and tools/call through ``guard``, forwarding to
    the session ``connect`` opens (once per client session)."""
    server = _Proxy("lictor", version=__version__, lifespan=connect)

    def upstream() -> ClientSession:
        ctx = server.request_context
        ctx.lifespan_context.setdefault("client", ctx.session)  # where list changes are relayed to
        session: ClientSession = ctx.lifespan_context["upstream"]
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
    state = relay_state()
    async with (stdio_client(params, errlog=sys.stderr) as (read, write),
                ClientSession(read, write, message_handler=relay_list_changes(state)) as session):
        await session.initialize()
        state["upstream"] = session

        @asynccontextmanager
        async def connected(_server: Server[Any, Any]) -> AsyncIterator[dict[str, Any]]:
            yield state

        server = build_server(guard, connected, lambda _ctx: who)
        async with stdio_server() as (client_read, client_write):
            await server.run(client_read, client_write, server.create_initialization_options())
