"""Streamable-HTTP MCP servers fronted by ``lictor serve``: one ASGI endpoint per configured server,
at ``/mcp/NAME``, that authenticates the caller's API key and then speaks MCP for it.

Each client session gets its own session to the real server (opened when the client initializes,
closed when its session ends). The agent of every decision is the id of the API key that made the
request; a key must have the ``agent`` scope, and a session belongs to the key that opened it (a
request presenting another key's session id is refused).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.context import RequestContext
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lictor.access import ApiKey, KeyRing
from lictor.config import McpServerSettings, Settings
from lictor.errors import ConfigError
from lictor.mcp.guard import McpGuard
from lictor.mcp.pins import DescriptionPins
from lictor.mcp.server import build_server, relay_list_changes, relay_state
from lictor.model import Agent
from lictor.runtime import Gateway

__all__ = ["KEY_SCOPE", "MAX_SESSIONS", "McpMount", "Refuse", "check_mcp_settings", "mounts_from_settings",
           "upstream_headers"]

#: Where the authenticated key travels in the ASGI scope, from the endpoint to the MCP handlers.
KEY_SCOPE = "lictor.api_key"
#: Sessions remembered per mount with the key that opened them (the oldest are forgotten first).
MAX_SESSIONS = 10_000
_SESSION_HEADER = b"mcp-session-id"
#: Builds the error response (status, detail, the request path, headers) in the app's one error shape.
Refuse = Callable[[int, str, str, dict[str, str]], ASGIApp]


def _agent(ctx: RequestContext[Any, Any, Any]) -> Agent:
    request = ctx.request
    key = request.scope.get(KEY_SCOPE) if isinstance(request, Request) else None
    # the endpoint authenticates every request before MCP sees it; no key means no identity, not a default one
    return Agent(id=key.id) if isinstance(key, ApiKey) else Agent()


def upstream_headers(name: str, server: McpServerSettings) -> dict[str, str]:
    """The headers Lictor sends to the fronted server: its bearer token, read from the environment
    variable ``token_env`` names (a ConfigError when that variable is unset or empty)."""
    if server.token_env is None:
        return {}
    token = os.environ.get(server.token_env, "").strip()
    if not token:
        raise ConfigError(f"the environment variable {server.token_env} holds no token for the MCP server "
                          f"{name!r}", path=f"mcp.servers.{name}.token_env")
    return {"Authorization": f"Bearer {token}"}


def check_mcp_settings(settings: Settings) -> None:
    """Raise ConfigError when the fronted servers cannot be mounted: an unreadable pins file, a token
    variable that is not set. ``lictor serve`` runs it before it starts."""
    if settings.mcp.servers:
        DescriptionPins(settings.mcp.pins_file)
        for name, server in settings.mcp.servers.items():
            upstream_headers(name, server)


class McpMount:
    """The ASGI endpoint for one fronted server; :meth:`run` must be entered in the app's lifespan."""

    def __init__(self, gateway: Gateway, keys: KeyRing, *, name: str, server: McpServerSettings,
                 pins: DescriptionPins, refuse: Refuse) -> None:
        self.name = name
        self.path = f"/mcp/{name}"
        self._keys = keys
        self._refuse = refuse
        url = server.url
        headers = upstream_headers(name, server)
        guard = McpGuard(gateway, system=server.system, server=name, pins=pins)

        @contextlib.asynccontextmanager
        async def connect(_server: Server[Any, Any]) -> AsyncIterator[dict[str, Any]]:
            state = relay_state()
            async with (create_mcp_http_client(headers=headers) as http,
                        streamable_http_client(url, http_client=http) as (read, write, _session_id),
                        ClientSession(read, write, message_handler=relay_list_changes(state)) as session):
                await session.initialize()
                state["upstream"] = session
                yield state

        self.server = build_server(guard, connect, _agent)
        self.manager = StreamableHTTPSessionManager(app=self.server, max_sessions=MAX_SESSIONS)
        self._owners: dict[bytes, str] = {}

    def run(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The session manager's lifetime (its task group); enter it once, in the app's lifespan."""
        return self.manager.run()

    def _caller(self, scope: Scope) -> ApiKey | tuple[int, str, dict[str, str]]:
        headers = dict(scope.get("headers") or [])
        kind, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="lictor"'}
        if kind.lower() != "bearer" or not token.strip():
            return 401, "send an API key as `Authorization: Bearer KEY`", challenge
        key = self._keys.authenticate(token.strip())
        if key is None:
            return 401, "the API key is unknown or revoked", challenge
        if key.scope != "agent":
            return 403, f"a key with scope {key.scope!r} may not call MCP tools; it needs agent", {}
        return key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        caller = self._caller(scope)
        session = dict(scope.get("headers") or []).get(_SESSION_HEADER)
        if isinstance(caller, ApiKey) and session is not None and self._owners.get(session, caller.id) != caller.id:
            caller = 403, "this MCP session was opened with another API key", {}
        if not isinstance(caller, ApiKey):
            status, detail, headers = caller
            await self._refuse(status, detail, scope.get("path", self.path), headers)(scope, receive, send)
            return
        owner = caller.id

        async def remember_session(message: Message) -> None:
            if message["type"] == "http.response.start" and session is None:
                opened = dict(message.get("headers") or []).get(_SESSION_HEADER)
                if opened is not None:
                    self._owners[opened] = owner
                    while len(self._owners) > MAX_SESSIONS:
                        del self._owners[next(iter(self._owners))]
            await send(message)

        await self.manager.handle_request({**scope, KEY_SCOPE: caller}, receive, remember_session)


def mounts_from_settings(gateway: Gateway, keys: KeyRing, servers: Mapping[str, McpServerSettings],
                         pins: DescriptionPins, refuse: Refuse) -> list[McpMount]:
    """One mount per configured server, sharing one pins file."""
    return [McpMount(gateway, keys, name=name, server=entry, pins=pins, refuse=refuse)
            for name, entry in servers.items()]
