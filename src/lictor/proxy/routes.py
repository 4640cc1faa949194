"""The proxy's HTTP surface: ``POST /v1/chat/completions`` and ``POST /v1/responses``,
OpenAI-compatible, authenticated by a Lictor API key of scope ``agent``, mounted into the HTTP API
when ``proxy.system`` is set.

The route never answers with a traceback: every failure is an OpenAI-shaped error (see
:mod:`lictor.proxy.wire`), and an unexpected one is a 500 that says only that.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from lictor.access import KeyRing
from lictor.config import ProxySettings
from lictor.errors import ConfigError
from lictor.proxy import responses
from lictor.proxy.enforce import (
    Exchange,
    enforce_completion,
    enforce_request,
    parse_request,
    presented_approvals,
)
from lictor.proxy.stream import StreamGuard
from lictor.proxy.upstream import Upstreams
from lictor.proxy.wire import ProxyError, dumps, loads, sse_data
from lictor.runtime import Gateway

__all__ = ["APPROVAL_HEADER", "PROXY_ROUTES", "ChatProxy", "error_response", "mount_proxy"]

#: The routes the proxy serves, with the API each one speaks.
PROXY_ROUTES = {"/v1/chat/completions": "chat.completions", "/v1/responses": "responses"}

#: The request header naming the approved reviews a client presents (comma-separated review ids).
APPROVAL_HEADER = "Lictor-Approval"

_log = logging.getLogger("lictor.proxy")


class ChatProxy:
    """The chat completions proxy over one gateway and its upstreams."""

    def __init__(self, gateway: Gateway, keys: KeyRing, settings: ProxySettings, upstreams: Upstreams) -> None:
        if settings.system is None:
            raise ConfigError("the proxy needs the system id its traffic is attributed to", path="proxy.system")
        self.gateway = gateway
        self.keys = keys
        self.settings = settings
        self.system = settings.system
        self.upstreams = upstreams

    def agent(self, authorization: str) -> str:
        """The agent an ``Authorization`` header value names; raises the 401 or 403 ProxyError."""
        scheme, _, token = authorization.partition(" ")
        key = self.keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ProxyError(401, "a valid Lictor API key is required: 'Authorization: Bearer lictor_...' "
                             "(the provider's key stays with the gateway)", type="invalid_request_error",
                             code="invalid_api_key")
        if key.scope != "agent":
            raise ProxyError(403, f"a key with scope {key.scope!r} may not call models; it needs scope 'agent'",
                             type="permission_error", code="insufficient_scope")
        return key.user or key.id

    async def chat_completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions``: decide the request, forward it (as constrained), decide the
        answer and each tool call it proposes, and return what the decisions allow."""
        return await self._handle(request, "chat.completions")

    async def responses(self, request: Request) -> Response:
        """``POST /v1/responses``: the same, for a Responses API request (stateless, not streamed),
        translated to chat completions and back (see :mod:`lictor.proxy.responses`)."""
        return await self._handle(request, "responses")

    def authenticate(self, authorization: str) -> str | Response:
        """The agent an ``Authorization`` header value names, or the error response refusing it."""
        try:
            return self.agent(authorization)
        except ProxyError as exc:
            return error_response(exc)

    async def _handle(self, request: Request, api: str) -> Response:
        agent = self.authenticate(request.headers.get("authorization", ""))
        if isinstance(agent, Response):
            return agent
        return await self.answer(api, agent, request.headers.get(APPROVAL_HEADER), await request.body())

    async def answer(self, api: str, agent: str, approval: str | None, body: bytes) -> Response:
        """The answer to one request of ``agent`` (authenticated already) to the route of ``api``
        (``chat.completions`` or ``responses``) with the request ``body`` and the ``Lictor-Approval``
        header's value; every failure is an OpenAI-shaped error response, never an exception."""
        try:
            try:
                raw = loads(body)
            except ValueError:
                raise ProxyError(400, "the body is not valid JSON") from None
            request = parse_request(responses.to_chat(raw) if api == "responses" else raw)
            upstream = self.upstreams.route(request["model"])
            exchange = Exchange(self.gateway, self.system, agent, upstream.name,
                                on_blocked_tool_call=self.settings.on_blocked_tool_call, api=api,
                                approvals=await presented_approvals(self.gateway, approval))
            sent = await enforce_request(exchange, request)
            if request.get("stream"):
                return await self._stream(exchange, upstream.stream(sent), request["model"])
            completion = await enforce_completion(exchange, await upstream.complete(sent), request["model"])
            return Response(dumps(responses.from_chat(completion, raw) if api == "responses" else completion),
                            media_type="application/json")
        except ProxyError as exc:
            return error_response(exc)
        except Exception:
            _log.exception("the proxy failed on a request")
            return error_response(ProxyError(500, "the proxy failed on this request; nothing was sent to the "
                                             "client from the model", type="lictor_error", code="internal_error"))

    async def _stream(self, exchange: Exchange, chunks: AsyncGenerator[dict[str, Any], None], model: str) -> Response:
        """Start the upstream's stream before answering, so that its refusal is an ordinary error
        response; then stream what the decisions allow."""
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None

        async def replay() -> AsyncIterator[dict[str, Any]]:
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk

        guard = StreamGuard(exchange, model, window=self.settings.stream_window,
                            lookbehind=self.settings.stream_lookbehind)

        async def events() -> AsyncIterator[bytes]:
            try:
                async for event in guard.events(replay()):
                    yield event
            except Exception:
                _log.exception("the proxy failed while streaming")
                yield sse_data(ProxyError(500, "the proxy failed while streaming; the rest of the answer is withheld",
                                          type="lictor_error", code="internal_error").body())
            finally:
                await chunks.aclose()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def aclose(self) -> None:
        await self.upstreams.aclose()


def error_response(exc: ProxyError) -> Response:
    """The OpenAI-shaped error response of ``exc``."""
    return Response(dumps(exc.body()), status_code=exc.status, media_type="application/json")


def mount_proxy(app: FastAPI, gateway: Gateway, keys: KeyRing, settings: ProxySettings, *,
                transport: httpx.AsyncBaseTransport | None = None) -> ChatProxy:
    """Add ``POST /v1/chat/completions`` and ``POST /v1/responses`` to ``app``; the caller closes the returned proxy (its
    pooled upstream connections) when the app stops. Raises ConfigError when an upstream's key
    variable is unset."""
    proxy = ChatProxy(gateway, keys, settings, Upstreams.from_settings(settings.upstreams, transport=transport))
    app.add_api_route("/v1/chat/completions", proxy.chat_completions, methods=["POST"], tags=["LLM proxy"],
                      summary="OpenAI-compatible chat completions, decided and enforced by Lictor",
                      response_class=JSONResponse)
    app.add_api_route("/v1/responses", proxy.responses, methods=["POST"], tags=["LLM proxy"],
                      summary="The Responses API (stateless, not streamed), decided and enforced by Lictor",
                      response_class=JSONResponse)
    return proxy
