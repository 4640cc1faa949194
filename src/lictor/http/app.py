"""The app factory: a FastAPI app over one gateway, built on call and never at import time.

``create_app(gateway, keys=..., settings=...)`` is for a process that already holds a gateway
(``lictor serve``, tests); ``app_from_env()`` builds the gateway from the settings file named by
``LICTOR_CONFIG`` (or ``./lictor.yaml``) and the ``LICTOR_*`` variables, for ASGI servers that start
several worker processes (``uvicorn --factory lictor.http:app_from_env``); ``LICTOR_SERVE_DEMO=1``
(set by ``lictor serve --demo``) accepts placeholder secrets as demo mode does. The MCP servers
listed under ``mcp.servers`` are fronted at ``/mcp/NAME`` (:mod:`lictor.mcp`, loaded only then).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from lictor import __version__
from lictor.access import KeyRing
from lictor.config import Settings, load_settings
from lictor.http.lean import LEAN_ROUTES, LeanDecide, LeanProxy
from lictor.http.metrics import ErrorCounter, Metrics
from lictor.http.problems import BodyLimit, install_handlers, problem_response
from lictor.http.routes import Api
from lictor.runtime import Gateway

if TYPE_CHECKING:  # the MCP SDK loads only when MCP servers are configured
    from lictor.mcp import McpMount

__all__ = ["CONFIG_ENV", "DEMO_ENV", "app_from_env", "create_app"]

#: The environment variable naming the settings file for :func:`app_from_env`.
CONFIG_ENV = "LICTOR_CONFIG"
#: The environment variable that puts :func:`app_from_env` in demo mode (placeholder secrets accepted).
DEMO_ENV = "LICTOR_SERVE_DEMO"


class LictorApp(FastAPI):
    """FastAPI with the decide routes (and the LLM proxy's, when it is mounted) served by the lean path
    first (:mod:`lictor.http.lean`); every other request, and the OpenAPI document, go through FastAPI
    as usual."""

    lean: LeanDecide | None = None
    lean_proxy: LeanProxy | None = None
    proxy_routes: Mapping[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lean is not None and scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if path in LEAN_ROUTES:
                await self.lean(scope, receive, send, path)
                return
            api = self.proxy_routes.get(path)
            if api is not None and self.lean_proxy is not None:
                await self.lean_proxy(scope, receive, send, path, api)
                return
        await super().__call__(scope, receive, send)


def create_app(gateway: Gateway, *, keys: KeyRing, settings: Settings,
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The HTTP API over ``gateway``; ``on_shutdown`` runs when the server stops (e.g. closing the
    gateway the caller opened for this app)."""

    mounts = _mcp_mounts(gateway, keys, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for mount in mounts:  # each fronted MCP server's session manager runs while the app does
                await stack.enter_async_context(mount.run())
            yield
        if proxy is not None:
            await proxy.aclose()
        if on_shutdown is not None:
            on_shutdown()

    app = LictorApp(title="Lictor", version=__version__, lifespan=lifespan,
                  description="Decides every AI action against policy and keeps the proof.")
    metrics = Metrics()
    gateway.log.on_batch = metrics.observe_batch
    metrics.watch_queue(gateway.log.queue_depth)
    api = Api(gateway, keys, policies_path=str(settings.policies), max_batch=settings.http.max_batch,
              metrics=metrics)
    router = api.router()
    app.include_router(router)
    install_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.http.max_body_bytes)
    app.add_middleware(ErrorCounter, metrics=metrics, routes=router.routes)  # outermost: it sees the 413s too
    for mount in mounts:
        app.router.routes.append(Route(mount.path, mount, methods=["GET", "POST", "DELETE"]))
    app.state.api = api
    proxy = None
    if settings.proxy.system is not None:  # the LLM proxy, when configured (see lictor.proxy)
        from lictor.proxy import PROXY_ROUTES, mount_proxy

        proxy = mount_proxy(app, gateway, keys, settings.proxy)
        app.lean_proxy = LeanProxy(proxy, metrics, max_body_bytes=settings.http.max_body_bytes)
        app.proxy_routes = PROXY_ROUTES
    app.state.proxy = proxy
    app.lean = LeanDecide(api, max_body_bytes=settings.http.max_body_bytes)
    return app


def _mcp_mounts(gateway: Gateway, keys: KeyRing, settings: Settings) -> list[McpMount]:
    """The fronted MCP servers (``mcp.servers``); the MCP SDK loads only when some are configured."""
    if not settings.mcp.servers:
        return []
    from lictor.mcp import DescriptionPins, mounts_from_settings

    def refuse(status: int, detail: str, instance: str, headers: dict[str, str]) -> Response:
        return problem_response(status, detail, instance, headers=headers or None)

    return mounts_from_settings(gateway, keys, settings.mcp.servers, DescriptionPins(settings.mcp.pins_file),
                                refuse)


def app_from_env() -> FastAPI:
    """An app with its own gateway, from the settings file in ``LICTOR_CONFIG`` (when set) and the
    environment; the gateway closes when the server stops."""
    settings = load_settings(os.environ.get(CONFIG_ENV) or None, demo=os.environ.get(DEMO_ENV) == "1")
    gateway = Gateway.from_settings(settings, publish=True)
    return create_app(gateway, keys=gateway.keys, settings=settings, on_shutdown=gateway.close)
