"""The model providers behind the proxy: pooled HTTP clients, model routing, and upstream failures
translated into clean OpenAI-shaped errors.

Each upstream holds its own API key, read once from the environment variable its settings name; the
requests it sends carry that key and nothing of the client's (no header is copied), and any error
text it relays has the key scrubbed out.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from lictor.config import ProxySettings, UpstreamSettings
from lictor.proxy import anthropic
from lictor.proxy.transport import LeanTransport
from lictor.proxy.transport import transport as lean_transport
from lictor.proxy.wire import ProxyError, dumps, loads, sse

__all__ = ["Upstream", "Upstreams"]

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


class Upstream:
    """One provider: ``complete`` a chat request or ``stream`` its chunks, in OpenAI's shapes
    whatever the provider's own API (``kind``)."""

    def __init__(self, name: str, settings: UpstreamSettings, *, key: str | None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.kind = settings.kind
        self.models = settings.models
        self._key = key
        chosen = transport if transport is not None else lean_transport()
        self._client = httpx.AsyncClient(base_url=settings.base_url, timeout=httpx.Timeout(settings.timeout),
                                         limits=_LIMITS, follow_redirects=False, transport=chosen)
        # whole answers over the lean transport skip httpx's request and response objects (the hot path)
        self._lean = chosen if isinstance(chosen, LeanTransport) else None
        self._url = self._client.base_url.join(self._path.lstrip("/"))
        self._timeouts: dict[str, float | None] = {"connect": settings.timeout, "read": settings.timeout,
                                                    "write": settings.timeout, "pool": settings.timeout}
        self._raw_headers = [(b"host", self._url.netloc), *((k.encode(), v.encode("latin-1"))
                                                             for k, v in self._headers().items())]

    def serves(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, glob) for glob in self.models)

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.kind == "anthropic":
            headers["anthropic-version"] = anthropic.VERSION
            if self._key:
                headers["x-api-key"] = self._key
        elif self._key:
            headers["authorization"] = f"Bearer {self._key}"
        return headers

    def scrub(self, text: str) -> str:
        """``text`` without the upstream's key in it (providers sometimes quote a refused key)."""
        return text.replace(self._key, "[upstream key]") if self._key else text

    @property
    def _path(self) -> str:
        return "/messages" if self.kind == "anthropic" else "/chat/completions"

    def _request(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        if self.kind == "anthropic":
            return anthropic.to_messages(body, stream=stream)
        return {**body, "stream": True} if stream else {k: v for k, v in body.items() if k != "stream"}

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The provider's answer to a chat completions request ``body``, as a ``chat.completion``."""
        try:
            if self._lean is not None:
                status, content = await self._lean.fetch("POST", self._url, self._raw_headers,
                                                         dumps(self._request(body, stream=False)), self._timeouts)
            else:
                response = await self._client.post(self._path, content=dumps(self._request(body, stream=False)),
                                                   headers=self._headers())
                status, content = response.status_code, response.content
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        if status >= 400:
            raise self._refused(status, content)
        try:
            data = loads(content)
        except ValueError:
            raise ProxyError(502, f"the upstream {self.name!r} answered with something other than JSON",
                             type="upstream_error", code="upstream_invalid_response") from None
        if not isinstance(data, dict):
            raise ProxyError(502, f"the upstream {self.name!r} answered with JSON that is not an object",
                             type="upstream_error", code="upstream_invalid_response")
        return anthropic.from_message(data, body.get("model")) if self.kind == "anthropic" else data

    async def stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The provider's streamed answer as ``chat.completion.chunk`` objects."""
        try:
            async with self._client.stream("POST", self._path, json=self._request(body, stream=True),
                                           headers=self._headers()) as response:
                if response.status_code >= 400:
                    raise self._refused(response.status_code, await response.aread())
                events = sse(response.aiter_lines())
                if self.kind == "anthropic":
                    async for chunk in anthropic.chunks(events, body.get("model")):
                        yield chunk
                    return
                async for _event, data in events:
                    if data.strip() == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise ProxyError(502, f"the upstream {self.name!r} streamed an event that is not JSON",
                                         type="upstream_error", code="upstream_invalid_response") from None
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise self._refused(502, data.encode())
                    if isinstance(chunk, dict):
                        yield chunk
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: httpx.HTTPError) -> ProxyError:
        if isinstance(exc, httpx.TimeoutException):
            return ProxyError(504, f"the upstream {self.name!r} did not answer in time",
                              type="upstream_error", code="upstream_timeout")
        return ProxyError(502, f"the upstream {self.name!r} could not be reached ({type(exc).__name__})",
                          type="upstream_error", code="upstream_unavailable")

    def _refused(self, status: int, content: bytes) -> ProxyError:
        """An upstream error status, relayed without the upstream's key: its own 4xx stays (the client
        sent something it refuses) except 401/403, which concern the gateway's key; 5xx becomes 502."""
        try:
            data = json.loads(content)
            error = data.get("error", data) if isinstance(data, dict) else {}
            detail = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        except ValueError:
            detail = content.decode("utf-8", "replace")[:500]
        detail = self.scrub(detail)
        if status in (401, 403):
            return ProxyError(502, f"the upstream {self.name!r} refused the gateway's credentials "
                              f"(HTTP {status}): {detail}", type="upstream_error", code="upstream_auth")
        if status >= 500 or status < 400:
            return ProxyError(502, f"the upstream {self.name!r} failed (HTTP {status}): {detail}",
                              type="upstream_error", code="upstream_error")
        kind = "rate_limit_error" if status == 429 else "invalid_request_error"
        return ProxyError(status, f"the upstream {self.name!r} refused the request: {detail}", type=kind,
                          code="upstream_refused")

    async def aclose(self) -> None:
        await self._client.aclose()


class Upstreams:
    """Every upstream, in the order of the settings; a model goes to the first that serves it."""

    def __init__(self, upstreams: list[Upstream]) -> None:
        self.all = upstreams

    @classmethod
    def from_settings(cls, settings: Mapping[str, UpstreamSettings], *, environ: Mapping[str, str] | None = None,
                      transport: httpx.AsyncBaseTransport | None = None) -> Upstreams:
        """Upstreams with their keys read from the environment; a named variable that is unset or
        empty is a ConfigError (fail at start, not on the first request)."""
        keys = ProxySettings(system="", upstreams=settings).upstream_keys(os.environ if environ is None else environ)
        built = [Upstream(name, entry, key=keys[name], transport=transport) for name, entry in settings.items()]
        return cls(built)

    def route(self, model: str) -> Upstream:
        for upstream in self.all:
            if upstream.serves(model):
                return upstream
        raise ProxyError(404, f"no upstream serves the model {model!r}", code="model_not_found", param="model")

    def scrub(self, text: str) -> str:
        for upstream in self.all:
            text = upstream.scrub(text)
        return text

    async def aclose(self) -> None:
        for upstream in self.all:
            await upstream.aclose()
