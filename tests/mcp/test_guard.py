"""The guard's decisions in process, with a real gateway: what a listing hides and why, what an
unscanned result block does, a malformed approval argument, the pins file and the settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import McpError, types

from lictor.config import load_settings
from lictor.errors import ConfigError
from lictor.mcp import DescriptionPins, McpGuard, description_digest
from lictor.model import Agent, Verdict
from lictor.oversight import ReviewQuery
from lictor.runtime import Gateway

POLICIES = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: listing}
spec:
  target: {systems: [s], kinds: [mcp_call]}
  rules:
    - name: never-shell
      when: name == "shell"
      verdict: BLOCK
    - name: only-small-payments
      when: name == "pay" && args.amount > 10
      verdict: BLOCK
    - name: exports-need-approval
      when: name == "export"
      verdict: BLOCK
      approval: {approvers: ["role:dpo"]}
---
apiVersion: lictor/v1
kind: Policy
metadata: {name: results}
spec:
  target: {systems: [s], kinds: [message]}
  rules:
    - name: no-urls-in-descriptions
      when: context.mcp.phase == "description" && content.contains("http")
      verdict: CONSTRAIN
      constrain:
        - redact: {paths: [content, args.inputSchema], pattern: "https?://\\\\S+", replacement: "[link removed]"}
    - name: nothing-unscanned
      when: context.mcp.phase == "result" && size(context.mcp.unscanned) > 0
      verdict: BLOCK
      message: Images cannot be scanned
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    (tmp_path / "p.yaml").write_text(POLICIES)
    gw = Gateway.open(policies=tmp_path / "p.yaml", database="memory://", key_file=tmp_path / "k",
                      payload_key_file=tmp_path / "pk")
    yield gw
    gw.close()


def tool(name: str, description: str = "does things") -> types.Tool:
    return types.Tool(name=name, description=description, inputSchema={"type": "object"})


def test_a_listing_hides_only_what_a_rule_forbids_without_arguments_or_approval(gateway: Gateway) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))
    listed = asyncio.run(guard.list_tools([tool("shell"), tool("pay"), tool("export"), tool("read")], Agent("a")))
    # shell: forbidden. pay: its rule needs arguments (it errors on the probe), so it acts at call time.
    # export: may run once approved, so it stays listed; the probe opened no review.
    assert [t.name for t in listed] == ["pay", "export", "read"]
    assert gateway.list_reviews(ReviewQuery()) == []


def test_under_default_deny_a_listing_shows_what_some_rule_may_allow(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("""\
apiVersion: lictor/v1
kind: Policy
metadata: {name: allow-list}
spec:
  target: {kinds: [mcp_call]}
  rules:
    - name: reading
      when: name in ["read", "search"]
      verdict: ALLOW
    - name: small-payments
      when: name == "pay" && args.amount <= 10
      verdict: ALLOW
---
apiVersion: lictor/v1
kind: Policy
metadata: {name: mcp-content}
spec:
  target: {kinds: [message]}
  rules:
    - name: descriptions-and-results
      when: context.mcp.phase in ["description", "result"]
      verdict: ALLOW
""")
    gw = Gateway.open(policies=tmp_path / "p.yaml", database="memory://", key_file=tmp_path / "k",
                      payload_key_file=tmp_path / "pk", default_verdict=Verdict.BLOCK)
    try:
        guard = McpGuard(gw, system="s", server="srv", pins=DescriptionPins(None))
        listed = asyncio.run(guard.list_tools([tool("read"), tool("write"), tool("pay")], Agent("a")))
    finally:
        gw.close()
    # write: no rule allows it, so every call would be blocked by the default; pay: a rule may allow
    # it, depending on the arguments
    assert [t.name for t in listed] == ["read", "pay"]


def test_a_constrained_description_is_what_the_client_sees(gateway: Gateway) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))
    fetch = types.Tool(name="fetch", description="Fetches a page; see https://evil.example/x for more.",
                       inputSchema={"type": "object", "properties": {"url": {"type": "string",
                                                                             "description": "like http://a.example"}}})
    (shown,) = asyncio.run(guard.list_tools([fetch], Agent("a")))
    assert shown.description == "Fetches a page; see [link removed] for more."
    assert shown.inputSchema["properties"]["url"]["description"] == "like [link removed]"


def test_a_result_with_blocks_no_detector_reads_can_be_withheld(gateway: Gateway) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))

    async def forward(name: str, args: dict[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="a chart"),
                                             types.ImageContent(type="image", data="iVBORw0KGgo=", mimeType="image/png")])

    result = asyncio.run(guard.call("chart", {}, Agent("a"), forward))
    assert result.isError
    assert "withheld the result of chart" in result.content[0].text  # type: ignore[union-attr]
    assert "rule nothing-unscanned: Images cannot be scanned" in result.content[0].text  # type: ignore[union-attr]


def test_an_approval_argument_must_be_a_review_id(gateway: Gateway) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))
    called: list[str] = []

    async def forward(name: str, args: dict[str, Any]) -> types.CallToolResult:
        called.append(name)
        return types.CallToolResult(content=[])

    result = asyncio.run(guard.call("read", {"_lictor_approval": 7}, Agent("a"), forward))
    assert result.isError and "_lictor_approval is the id of a review" in result.content[0].text  # type: ignore[union-attr]
    assert called == []


def test_a_server_that_refuses_a_call_answers_with_a_decided_tool_error(gateway: Gateway) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))

    async def forward(name: str, args: dict[str, Any]) -> types.CallToolResult:
        raise McpError(types.ErrorData(code=-32602, message=f"Unknown tool: {name}"))

    size = gateway.log.state.size
    result = asyncio.run(guard.call("nope", {}, Agent("a"), forward))
    assert result.isError and result.content[0].text == "The MCP server refused the call: Unknown tool: nope"  # type: ignore[union-attr]
    assert gateway.log.state.size == size + 2  # the call and the refusal the model reads


def test_a_changed_description_is_logged_whatever_the_policies_say(gateway: Gateway,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    guard = McpGuard(gateway, system="s", server="srv", pins=DescriptionPins(None))
    asyncio.run(guard.list_tools([tool("read", "Reads.")], Agent("a")))
    assert not caplog.records
    (shown,) = asyncio.run(guard.list_tools([tool("read", "Reads, then mails it.")], Agent("a")))
    assert shown.description == "Reads, then mails it."  # no policy here hides it ...
    (record,) = caplog.records  # ... but the operator is told
    assert record.name == "lictor.mcp" and record.levelname == "WARNING"
    assert "MCP server 'srv' changed the description of tool 'read' since it was pinned" in record.getMessage()


def test_pins_are_kept_on_first_use_and_shared_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    first, second = DescriptionPins(path), DescriptionPins(path)
    assert first.check("srv", "t", "reads", {"type": "object"})[0] == "new"
    # the second proxy reads the pin the first one wrote, and does not move it
    state, digest, pinned = second.check("srv", "t", "reads, then mails it away", {"type": "object"})
    assert state == "changed" and pinned == description_digest("reads", {"type": "object"}) != digest
    assert first.check("srv", "t", "reads", {"type": "object"})[0] == "same"
    # the schema is pinned too: a parameter's description can carry instructions as well
    assert first.check("srv", "t", "reads", {"type": "object", "properties": {}})[0] == "changed"
    assert json.loads(path.read_text())["servers"] == {"srv": {"t": pinned}}


def test_a_damaged_pins_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    path.write_text('{"servers": {"srv": {"t": 1}}}')
    with pytest.raises(ConfigError, match="is not a pins file") as info:
        DescriptionPins(path)
    assert info.value.path == "mcp.pins_file"


@pytest.mark.parametrize(("servers", "problem"), [
    ("{a/b: {url: http://x/mcp, system: s}}", "a server name is 1 to 64 letters"),
    ("{a: {url: http://x/mcp}}", "missing required field 'system'"),
    ("{a: {url: ftp://x/mcp, system: s}}", "expected a URL starting with http:// or https://"),
    ("{a: {url: http://x/mcp, system: s, sytem: t}}", "unknown field 'sytem'"),
    ("{a: {url: http://x/mcp, system: s, token_env: 'a token'}}", "expected the name of an environment variable"),
])
def test_fronted_servers_are_checked_at_start(servers: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"LICTOR_MCP__SERVERS": servers})
    assert problem in str(info.value) and "mcp.servers" in str(info.value)
