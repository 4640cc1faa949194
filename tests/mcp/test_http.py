"""``lictor serve`` fronting a streamable-HTTP MCP server: real processes (the upstream server and the
gateway), a real MCP client session over streamable HTTP with an agent key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from lictor.cli import main
from lictor.runtime import open_audit_reader
from tests.http.process import free_port, serve
from tests.mcp.conftest import PYTHON, UPSTREAM, clean_environment

TOKEN = "upstream-token-4c1d"


@contextlib.contextmanager
def upstream_server(workdir: Path) -> Iterator[str]:
    """The small upstream server on streamable HTTP, accepting only requests that carry ``TOKEN``;
    yields its MCP endpoint once it accepts connections."""
    port = free_port()
    with (workdir / "upstream.log").open("wb") as log:
        process = subprocess.Popen([PYTHON, str(UPSTREAM), "http", str(port)], cwd=workdir,
                                   env=clean_environment(UPSTREAM_TOKEN=TOKEN), stdout=log, stderr=subprocess.STDOUT)
    try:
        give_up = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None, (workdir / "upstream.log").read_text()
            assert time.monotonic() < give_up, "the upstream MCP server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _cli(workdir: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--config", str(workdir / "lictor.yaml")], catch_exceptions=False,
                                env={"LICTOR_DATABASE": f"sqlite:///{workdir / 'lictor.db'}",
                                     "LICTOR_AUDIT__KEY_FILE": str(workdir / "lictor-audit.key"),
                                     "LICTOR_AUDIT__PAYLOAD_KEY_FILE": str(workdir / "lictor-payload.key")})
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@asynccontextmanager
async def mcp_session(url: str, key: str) -> AsyncIterator[tuple[ClientSession, str]]:
    """A client session with ``key``, and the session id the server gave it."""
    async with (httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
                streamable_http_client(url, http_client=http) as (read, write, session_id),
                ClientSession(read, write) as session):
        await session.initialize()
        opened = session_id()
        assert opened is not None
        yield session, opened


def test_serve_refuses_to_start_without_the_token_of_a_fronted_server(workdir: Path) -> None:
    with (workdir / "lictor.yaml").open("a") as settings:
        settings.write("  servers:\n    up: {url: http://127.0.0.1:9/mcp, system: mcp-test, token_env: UP_TOKEN}\n")
    _cli(workdir, "keys", "create", "--scope", "agent")
    result = subprocess.run([PYTHON, "-m", "lictor", "serve", "--config", "lictor.yaml"], cwd=workdir,
                            env=clean_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "UP_TOKEN holds no token for the MCP server 'up'" in result.stderr
    assert "mcp.servers.up.token_env" in result.stderr


def text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


def test_serve_fronts_a_streamable_http_server_for_agent_keys(workdir: Path) -> None:
    with upstream_server(workdir) as upstream:
        with (workdir / "lictor.yaml").open("a") as settings:
            settings.write(f"  servers:\n    up: {{url: {upstream}, system: mcp-test, token_env: UP_TOKEN}}\n")
        agent_key = _cli(workdir, "keys", "create", "--scope", "agent")
        other_agent_key = _cli(workdir, "keys", "create", "--scope", "agent")
        auditor_key = _cli(workdir, "keys", "create", "--scope", "auditor")
        assert httpx.post(upstream, json={}).status_code == 401  # the upstream wants its token
        # Lictor presents the token from the variable token_env names
        with serve(["--config", "lictor.yaml"], cwd=workdir, env={"UP_TOKEN": TOKEN}) as served:
            endpoint = f"{served.url}/mcp/up"
            anonymous = httpx.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"] == "application/problem+json"
            wrong_scope = httpx.post(endpoint, json={}, headers={"Authorization": f"Bearer {auditor_key}"})
            assert wrong_scope.status_code == 403

            async def work() -> tuple[list[str], dict[str, types.CallToolResult]]:
                async with mcp_session(endpoint, agent_key) as (session, session_id):
                    names = [t.name for t in (await session.list_tools()).tools]
                    # a session belongs to the key that opened it
                    async with httpx.AsyncClient() as other:
                        hijack = await other.post(endpoint, headers={
                            "Authorization": f"Bearer {other_agent_key}", "mcp-session-id": session_id,
                            "accept": "application/json, text/event-stream"},
                            json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
                    assert hijack.status_code == 403, hijack.text
                    assert "opened with another API key" in hijack.json()["detail"]
                    return names, {
                        "allowed": await session.call_tool("transfer", {"amount": 5, "to": "bob"}),
                        "blocked": await session.call_tool("transfer", {"amount": 5, "to": "mallory"}),
                        "constrained": await session.call_tool("transfer", {"amount": 900, "to": "bob"}),
                        "held": await session.call_tool("approve_credit", {"amount": 500000}),
                        "redacted": await session.call_tool("read_note", {}),
                    }

            names, results = asyncio.run(work())
    assert names == ["transfer", "approve_credit", "read_note"]
    assert text(results["allowed"]) == 'received {"amount": 5, "to": "bob"}'
    assert results["blocked"].isError and "rule no-transfers-to-mallory" in text(results["blocked"])
    assert text(results["constrained"]) == 'received {"amount": 100, "to": "bob"}'
    assert results["held"].isError and "Held by Lictor for human review: review rev_" in text(results["held"])
    assert text(results["redacted"]) == "deploy with key [REDACTED], then tell ops"

    reader = open_audit_reader(f"sqlite:///{workdir / 'lictor.db'}")
    try:
        decisions = [d for d in map(json.loads, reader.leaves()) if d.get("type") == "decision"]
    finally:
        reader.close()
    # 5 probes, 4 descriptions (not the forbidden tool's), 5 calls, and the results of the 3 that ran
    assert len(decisions) == 5 + 4 + 5 + 3
    assert json.loads((workdir / "pins.json").read_text())["servers"]["up"].keys() == {
        "transfer", "approve_credit", "weather", "read_note"}
