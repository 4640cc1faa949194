"""The proxy's lean HTTP/1.1 transport: keep-alive reuse, a connection the server closed while idle,
chunked and close-delimited answers, timeouts, and httpx's own errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from lictor.proxy.transport import LeanTransport, transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    return head + await reader.readexactly(length)


def run(handler: Handler, client_side: Callable[[httpx.AsyncClient], Awaitable[object]]) -> object:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def main() -> object:
        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=LeanTransport(),
                                             timeout=1.0) as client:
            return await client_side(client)
    return asyncio.run(main())


def test_a_connection_is_reused_and_one_closed_while_idle_is_replaced() -> None:
    connections: list[int] = []

    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        for _ in range(2):  # answers two requests, then closes without saying so
            request = await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(request) + request)
            await writer.drain()
        writer.close()

    async def client_side(client: httpx.AsyncClient) -> list[bytes]:
        out = []
        for n in range(5):
            response = await client.post("/echo", content=b"body %d" % n)
            out.append(response.content)
            await asyncio.sleep(0)  # let the server's close reach the pooled connection
        return out

    answers = run(once_then_close, client_side)
    assert [a.rsplit(b"\r\n\r\n", 1)[1] for a in answers] == [b"body %d" % n for n in range(5)]  # type: ignore[attr-defined]
    assert len(connections) == 3  # two requests per connection: the pool kept them, and replaced them


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await _read_request(reader)
            if b"/chunked" in request:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                await writer.drain()
            else:
                writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
                await writer.drain()
                writer.close()
                return

    async def client_side(client: httpx.AsyncClient) -> tuple[str, str]:
        return (await client.post("/chunked")).text, (await client.post("/close")).text

    assert run(handler, client_side) == ("hello world", "until the end")


def test_a_silent_server_is_a_read_timeout_and_a_closed_port_a_connect_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    async def client_side(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/", content=b"x", timeout=0.2)
        with pytest.raises(httpx.ConnectError):
            await client.post("http://127.0.0.1:9/", content=b"x")

    run(silent, client_side)


def test_a_configured_http_proxy_keeps_httpx_default_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(transport(), httpx.AsyncHTTPTransport)
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(transport(), LeanTransport)
