"""The lean path of ``POST /v1/decide`` and ``POST /v1/decide/batch`` (and of the LLM proxy's
``POST /v1/chat/completions`` and ``POST /v1/responses``, :class:`LeanProxy`): raw ASGI handlers that
serve the hot routes before FastAPI's middleware, router and dependency machinery see the request.

The contract is the FastAPI routes' own (they stay declared, so ``/openapi.json`` describes them, and
they would serve the same answers): a body over ``http.max_body_bytes`` gets 413 whether its
Content-Length says so or its streamed bytes do; a missing, unknown or revoked key 401 and a key of
another scope 403 (before the body is read); malformed JSON 400 and an invalid action 422 naming the
JSON path; errors are problem documents counted in ``lictor_http_errors_total`` under the route's
path; a repeated ``request_id`` gets its first decision back. Only the work per request differs:
the body is parsed with orjson (falling back to the standard parser, and its error messages, for
anything orjson refuses or might read differently: very long integers, NaN, surrogates, UTF-16) and
the answer is written with orjson.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from lictor.access import ApiKey
from lictor.http.metrics import Metrics
from lictor.http.problems import MEDIA_TYPE, parse_json, problem_body, problem_of, refusal_413
from lictor.http.routes import Api

if TYPE_CHECKING:  # the proxy loads only when it is configured
    from lictor.proxy import ChatProxy

__all__ = ["LEAN_ROUTES", "LeanDecide", "LeanProxy"]

#: The routes the lean path serves (POST only; other methods go on to FastAPI, which answers 405).
LEAN_ROUTES = ("/v1/decide", "/v1/decide/batch")

#: Nineteen digits in a row: a number orjson may turn into a float where Python keeps an integer
#: (beyond 64 bits), so such bodies are read by the standard parser (digits in a string do no harm).
_LONG_NUMBER = re.compile(rb"\d{19}")

_JSON = [(b"content-type", b"application/json")]
_PROBLEM = MEDIA_TYPE.encode()


class _Gone(Exception):
    """The client disconnected before its request body arrived."""


class _TooLarge(Exception):
    """The streamed body went over the limit."""


def _load(body: bytes) -> tuple[Any, bool]:
    """The body as JSON and whether orjson read it (so orjson may write the answer too); a 400 or 422
    problem from :func:`parse_json` when the body is not JSON the API takes."""
    if not _LONG_NUMBER.search(body):
        try:
            return orjson.loads(body), True
        except orjson.JSONDecodeError:
            pass  # the standard parser says what is wrong (or reads what orjson will not)
    return parse_json(body), False


def _dump(value: Any, fast: bool) -> bytes:
    """``value`` as compact JSON, as Starlette's JSONResponse would write it."""
    if fast:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
            pass
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class LeanDecide:
    """Serves the decide routes of ``api`` straight from ASGI messages."""

    def __init__(self, api: Api, *, max_body_bytes: int) -> None:
        self.api = api
        self.limit = max_body_bytes
        self._answers: dict[str, Callable[[Any, ApiKey], Awaitable[dict[str, Any]]]] = {
            "/v1/decide": api.decide_one, "/v1/decide/batch": api.decide_many}

    async def __call__(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        """Answer one request to ``route`` (one of :data:`LEAN_ROUTES`)."""
        path: str = scope["path"]
        try:
            status, headers, body = await self._answer(scope, receive, route)
        except _Gone:
            return
        except _TooLarge:
            start, end = refusal_413(self.limit, path)
            status = 413
            await send(start)
            await send(end)
        else:
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        if status >= 400:
            self.api.metrics.observe_error(status, route)

    async def _answer(self, scope: Scope, receive: Receive, route: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        authorization = _first_headers(scope, self.limit).get(b"authorization", b"")
        try:
            key = self.api.authorize(authorization.decode("latin-1"), "agent")
            data, fast = _load(await read_body(receive, self.limit))
            answer = await self._answers[route](data, key)
            return 200, list(_JSON), _dump(answer, fast)
        except (_Gone, _TooLarge):
            raise
        except Exception as exc:
            problem = problem_of(exc, scope["path"])
            headers = [(b"content-type", _PROBLEM),
                       *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in problem.headers.items())]
            document = problem_body(problem.status, problem.detail, scope["path"], problem.errors, problem.extra)
            return problem.status, headers, _dump(document, False)


def _first_headers(scope: Scope, limit: int) -> dict[bytes, bytes]:
    """The first value of each request header, by lower-case name; :class:`_TooLarge` when
    ``Content-Length`` declares more than ``limit`` bytes (an unreadable one declares nothing)."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)
    try:
        declared = int(headers.get(b"content-length", b"0"))
    except ValueError:
        declared = 0
    if declared > limit:
        raise _TooLarge
    return headers


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused (:class:`_TooLarge`) as soon as it streams past the limit."""
    message: Message = await receive()
    if message["type"] != "http.request":
        raise _Gone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _TooLarge
        return body
    chunks = [body]
    seen = len(body)
    while True:
        if seen > limit:
            raise _TooLarge
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        chunks.append(chunk)
        seen += len(chunk)
        if not message.get("more_body", False):
            if seen > limit:
                raise _TooLarge
            return b"".join(chunks)


class LeanProxy:
    """Serves the LLM proxy's routes (:data:`lictor.proxy.PROXY_ROUTES`) of ``proxy`` straight from
    ASGI messages, with the FastAPI routes' contract: 413 for a body over ``max_body_bytes`` (declared
    or streamed), the key checked before the body is read, errors counted under the route's path."""

    def __init__(self, proxy: ChatProxy, metrics: Metrics, *, max_body_bytes: int) -> None:
        self.proxy = proxy
        self.metrics = metrics
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send, route: str, api: str) -> None:
        """Answer one request to ``route``, which speaks ``api`` (``chat.completions`` or ``responses``)."""
        status = 0
        try:
            headers = _first_headers(scope, self.limit)
            approval = headers.get(b"lictor-approval")
            agent = self.proxy.authenticate(headers.get(b"authorization", b"").decode("latin-1"))
            if isinstance(agent, Response):
                response = agent
            else:
                try:
                    body = await read_body(receive, self.limit)
                except _Gone:
                    return
                response = await self.proxy.answer(api, agent, None if approval is None else approval.decode("latin-1"),
                                                   body)
            status = response.status_code
            await response(scope, receive, send)
        except _TooLarge:
            status = 413
            start, end = refusal_413(self.limit, scope["path"])
            await send(start)
            await send(end)
        except BaseException:
            self.metrics.observe_error(status if status >= 400 else 500, route)
            raise
        if status >= 400:
            self.metrics.observe_error(status, route)
