"""RFC 9457 problem details: the one error shape of the HTTP API, and the body size limit.

Every error response is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``instance`` (the request path); validation errors add ``errors``, a list of
``{path, message}`` where ``path`` is a JSON path into the request (``$.args.amount``) or names the
query or path parameter (``query.limit``). A 500 never carries internals.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lictor.errors import InputError, LictorError, PolicyError

__all__ = ["MEDIA_TYPE", "BodyLimit", "Problem", "install_handlers", "problem_body", "problem_of", "problem_response",
           "refusal_413"]

MEDIA_TYPE = "application/problem+json"
_BASE = "https://lictor.dev/problems/"
_log = logging.getLogger("lictor.http")

_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Request body too large",
           415: "Unsupported media type", 422: "Invalid input", 500: "Internal error",
           503: "Service unavailable"}
_TYPES = {400: "malformed-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 409: "conflict", 413: "body-too-large", 415: "unsupported-media-type",
          422: "invalid-input", 500: "internal-error", 503: "unavailable"}


class Problem(Exception):
    """An error to answer with a problem document; raised by routes and dependencies."""

    def __init__(self, status: int, detail: str, *, errors: Sequence[dict[str, str]] = (),
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        self.extra = extra or {}


def problem_body(status: int, detail: str, instance: str, errors: Sequence[dict[str, str]] = (),
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": _BASE + _TYPES.get(status, "error"), "title": _TITLES.get(status, "Error"),
                            "status": status, "detail": detail, "instance": instance}
    if errors:
        body["errors"] = list(errors)
    body.update(extra or {})
    return body


def problem_response(status: int, detail: str, instance: str, *, errors: Sequence[dict[str, str]] = (),
                     headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    return JSONResponse(problem_body(status, detail, instance, errors, extra), status_code=status,
                        headers=headers, media_type=MEDIA_TYPE)


def _location(loc: Sequence[Any]) -> str:
    """A FastAPI error location as a JSON path (body) or ``query.NAME`` / ``path.NAME``."""
    if not loc:
        return "$"
    where, *rest = loc
    if where == "body":
        path = "$"
        for part in rest:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        return path
    return ".".join(str(part) for part in loc)


def problem_of(exc: Exception, path: str) -> Problem:
    """The problem that answers ``exc``, raised while serving ``path``: the one mapping of errors to
    statuses, shared by the FastAPI handlers and the lean decide path. Unexpected errors are logged."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, InputError):
        return Problem(422, str(exc), errors=[{"path": exc.path, "message": exc.message}])
    if isinstance(exc, PolicyError):
        errors = [{"path": f"{d.file}:{d.line}:{d.column}", "message": d.message} for d in exc.diagnostics]
        return Problem(422, "the policies do not load; the ones in force stay", errors=errors)
    if isinstance(exc, LictorError):
        _log.error("request %s failed: %s", path, exc)
        return Problem(503, "the gateway cannot serve this request now")
    _log.error("unexpected error on %s", path, exc_info=exc)
    return Problem(500, "an unexpected error occurred; it has been logged")


def install_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, with a problem document."""

    async def _answer(request: Request, exc: Exception) -> Response:
        problem = problem_of(exc, request.url.path)
        return problem_response(problem.status, problem.detail, request.url.path, errors=problem.errors,
                                headers=problem.headers, extra=problem.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = {404: f"no route {request.url.path}",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return problem_response(exc.status_code, detail, request.url.path, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"path": _location(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
                  for e in exc.errors()]
        return problem_response(422, "the request is invalid: " + "; ".join(
            f"{e['path']}: {e['message']}" for e in errors), request.url.path, errors=errors)

    for kind in (Problem, InputError, PolicyError, LictorError, Exception):
        app.add_exception_handler(kind, _answer)


#: A ``\uD800``-``\uDFFF`` escape: the only way a JSON text can smuggle in a string that is not
#: Unicode (a surrogate without its pair), which nothing downstream can encode.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(body: bytes) -> Any:
    """The request body as JSON, or a 400 problem saying where it breaks."""
    if not body.strip():
        raise Problem(400, "the request body is empty; send a JSON document")
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the request body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise Problem(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                      errors=[{"path": "$", "message": exc.msg}]) from None
    except RecursionError:
        raise Problem(400, "the request body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise Problem(400, f"the request body is not usable JSON: {exc}",
                      errors=[{"path": "$", "message": str(exc)}]) from None
    if _SURROGATE_ESCAPE.search(body):
        path = _lone_surrogate(data, "$")
        if path is not None:
            raise Problem(422, f"{path}: a string holds an unpaired UTF-16 surrogate escape, which is not text",
                          errors=[{"path": path, "message": "an unpaired surrogate is not text"}])
    return data


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or object key) that cannot be encoded as UTF-8, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, list):
        for n, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{n}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            if _lone_surrogate(key, path) is not None:
                return f"{path}.{key.encode('utf-8', 'backslashreplace').decode('ascii')}"
            found = _lone_surrogate(item, f"{path}.{key}")
            if found is not None:
                return found
    return None


class _TooLarge(Exception):
    pass


class BodyLimit:
    """A raw ASGI middleware that refuses request bodies over ``limit`` bytes with 413, counting
    the bytes as they stream in (a missing or false Content-Length does not get past it)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._refuse(path, send)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refuse(path, send)

    async def _refuse(self, path: str, send: Send) -> None:
        start, body = refusal_413(self.limit, path)
        await send(start)
        await send(body)


def refusal_413(limit: int, path: str) -> tuple[Message, Message]:
    """The two ASGI messages of the 413 answer to a body over ``limit`` bytes (closing the connection:
    the rest of the body is not read)."""
    body = json.dumps(problem_body(413, f"the request body is larger than {limit} bytes", path)).encode()
    return ({"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]},
            {"type": "http.response.body", "body": body})
