"""The MCP proxy: Lictor between an MCP client and MCP servers (stdio and streamable HTTP), deciding
tools/list, tools/call and tool results against policy, with every decision in the audit log."""

from lictor.mcp.guard import APPROVAL_ARGUMENT, McpGuard, forbids
from lictor.mcp.mount import KEY_SCOPE, McpMount, Refuse, check_mcp_settings, mounts_from_settings
from lictor.mcp.pins import DescriptionPins, description_digest
from lictor.mcp.server import (
    AgentOf,
    Connect,
    build_server,
    relay_list_changes,
    relay_state,
    run_stdio_proxy,
)

__all__ = [
    "APPROVAL_ARGUMENT",
    "KEY_SCOPE",
    "AgentOf",
    "Connect",
    "DescriptionPins",
    "McpGuard",
    "McpMount",
    "Refuse",
    "build_server",
    "check_mcp_settings",
    "description_digest",
    "forbids",
    "mounts_from_settings",
    "relay_list_changes",
    "relay_state",
    "run_stdio_proxy",
]
