"""A lean HTTP/1.1 transport for the proxy's ``httpx.AsyncClient``: keep-alive connections over asyncio
streams, so that talking to a provider costs the gateway a fraction of httpx's default transport.

It does what the proxy needs and no more: one request per connection at a time, bodies sent whole,
answers read by ``Content-Length``, chunked encoding or to the end of the connection, TLS with the
system's trust store, and httpx's own exceptions (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``WriteTimeout``, ``RemoteProtocolError``) so that callers see the same errors.
A request on a pooled connection the server has meanwhile closed is retried once on a new one.
When an HTTP proxy is configured in the environment, :func:`transport` returns httpx's default
transport instead, which honours it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["LeanTransport", "transport"]

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def transport() -> httpx.AsyncBaseTransport:
    """The lean transport, or httpx's default one when the environment names an HTTP proxy."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return httpx.AsyncHTTPTransport()
    return LeanTransport()


class _Stale(Exception):
    """A pooled connection was closed by the server before it answered."""


class _Body(httpx.AsyncByteStream):
    """An answer's body, read from its connection; the connection returns to the pool once read whole."""

    def __init__(self, owner: LeanTransport, key: tuple[str, str, int], conn: _Conn, *, length: int | None,
                 chunked: bool, reusable: bool, read_timeout: float | None) -> None:
        self._owner, self._key, self._conn = owner, key, conn
        self._length, self._chunked = length, chunked
        self._reusable = reusable
        self._timeout = read_timeout
        self._done = False

    async def _read(self, call: Any) -> bytes:
        try:
            data: bytes = await asyncio.wait_for(call, self._timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("the server did not send the rest of its answer in time") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            raise httpx.RemoteProtocolError(f"the answer was cut short ({type(exc).__name__})") from None
        return data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn[0]
        if self._chunked:
            while True:
                line = await self._read(reader.readuntil(b"\r\n"))
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("a malformed chunk size") from None
                if size == 0:
                    while (await self._read(reader.readuntil(b"\r\n"))) != b"\r\n":  # trailers
                        pass
                    break
                data = await self._read(reader.readexactly(size + 2))
                yield data[:-2]
        elif self._length is not None:
            remaining = self._length
            while remaining:
                data = await self._read(reader.read(min(remaining, 65536)))
                if not data:
                    raise httpx.RemoteProtocolError("the connection closed before the whole answer arrived")
                remaining -= len(data)
                yield data
        else:
            self._reusable = False
            while data := await self._read(reader.read(65536)):
                yield data
        self._done = True

    async def aclose(self) -> None:
        if self._done and self._reusable:
            self._owner._release(self._key, self._conn)
        else:
            self._conn[1].close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections over asyncio streams (see the module's docstring)."""

    def __init__(self, *, max_idle: int = 64) -> None:
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._max_idle = max_idle
        self._tls: ssl.SSLContext | None = None

    def _release(self, key: tuple[str, str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < self._max_idle and not conn[1].is_closing():
            idle.append(conn)
        else:
            conn[1].close()

    async def _connect(self, request: httpx.Request | None, key: tuple[str, str, int], timeout: float | None) -> _Conn:
        scheme, host, port = key
        if scheme == "https" and self._tls is None:
            self._tls = ssl.create_default_context()
        try:
            return await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=self._tls if scheme == "https" else None,
                server_hostname=host if scheme == "https" else None), timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}", request=request) from None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        body = await request.aread()
        status, headers, stream = await self._send(request.method, url, request.headers.raw, body,
                                                   request.extensions.get("timeout", {}), request)
        return httpx.Response(status, headers=headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def fetch(self, method: str, url: httpx.URL, headers: list[tuple[bytes, bytes]], body: bytes,
                    timeouts: dict[str, float | None]) -> tuple[int, bytes]:
        """The status and whole body of the answer to one request, without building httpx's request
        and response objects (the proxy's hot path); raises httpx's exceptions as the transport does.
        ``headers`` must include ``host``; ``timeouts`` has httpx's keys (connect, read, write)."""
        status, _, stream = await self._send(method, url, headers, body, timeouts, None)
        try:
            chunks = [chunk async for chunk in stream]
        finally:
            await stream.aclose()
        return status, chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _send(self, method: str, url: httpx.URL, raw_headers: list[tuple[bytes, bytes]], body: bytes,
                    timeouts: dict[str, float | None],
                    request: httpx.Request | None) -> tuple[int, list[tuple[bytes, bytes]], _Body]:
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        head = [method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in raw_headers:
            if name.lower() not in (b"content-length", b"transfer-encoding", b"connection"):
                head += [name, b": ", value, b"\r\n"]
        head.append(b"content-length: %d\r\nconnection: keep-alive\r\n\r\n" % len(body))
        message = b"".join(head) + body
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn[1].is_closing() or conn[0].at_eof():
                conn[1].close()
                continue
            try:
                return await self._exchange(method, request, key, conn, message, timeouts)
            except _Stale:
                continue  # the server closed it while it was idle: try another, then a new one
        conn = await self._connect(request, key, timeouts.get("connect"))
        try:
            return await self._exchange(method, request, key, conn, message, timeouts)
        except _Stale:
            raise httpx.RemoteProtocolError("the server closed the connection without answering",
                                            request=request) from None

    async def _exchange(self, method: str, request: httpx.Request | None, key: tuple[str, str, int], conn: _Conn,
                        message: bytes,
                        timeouts: dict[str, float | None]) -> tuple[int, list[tuple[bytes, bytes]], _Body]:
        reader, writer = conn
        try:
            writer.write(message)
            await asyncio.wait_for(writer.drain(), timeouts.get("write"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeouts.get("read"))
        except TimeoutError:
            writer.close()
            raise httpx.ReadTimeout("the server did not answer in time", request=request) from None
        except asyncio.IncompleteReadError as exc:
            writer.close()
            if not exc.partial:
                raise _Stale from None
            raise httpx.RemoteProtocolError("the answer's head was cut short", request=request) from None
        except (ConnectionError, asyncio.LimitOverrunError) as exc:
            writer.close()
            if isinstance(exc, ConnectionError):
                raise _Stale from None
            raise httpx.RemoteProtocolError("the answer's head is too long", request=request) from None
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            writer.close()
            raise httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}", request=request)
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked, reusable = False, parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length" and value.isdigit():
                length = int(value)
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lower == b"connection" and b"close" in value.lower():
                reusable = False
        status = int(parts[1])
        if status in (204, 304) or method == "HEAD":
            length, chunked = 0, False
        return status, headers, _Body(self, key, conn, length=length, chunked=chunked, reusable=reusable,
                                      read_timeout=timeouts.get("read"))

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
