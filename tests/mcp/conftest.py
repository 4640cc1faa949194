"""A working directory for the MCP proxy tests: settings, policies and the small upstream server.

The policies decide on names, arguments, content and ``context.mcp``. Tool poisoning is found by
the built-in injection detector, which the gateway runs on every description (``has_finding``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

UPSTREAM = Path(__file__).with_name("upstream.py")

POLICIES = """\
apiVersion: lictor/v1
kind: Policy
metadata:
  name: mcp-tools
spec:
  target: {systems: [mcp-test], kinds: [mcp_call]}
  rules:
    - name: no-deleting
      when: name.startsWith("delete_")
      verdict: BLOCK
      message: Agents do not delete records
    - name: cap-transfers
      when: name == "transfer" && args.amount > 100
      verdict: CONSTRAIN
      constrain:
        - clamp: {path: args.amount, max: 100}
    - name: no-transfers-to-mallory
      when: name == "transfer" && args.to == "mallory"
      verdict: BLOCK
      message: Transfers to mallory are refused
    - name: large-credit-needs-approval
      when: name == "approve_credit" && args.amount > 100000
      verdict: BLOCK
      message: Credits above 100,000 need a credit officer
      approval: {approvers: ["role:credit-officer"], ttl: 1h}
---
apiVersion: lictor/v1
kind: Policy
metadata:
  name: mcp-content
spec:
  target: {systems: [mcp-test], kinds: [message]}
  rules:
    - name: tool-poisoning
      when: context.mcp.phase == "description" && has_finding("injection.*")
      verdict: BLOCK
      message: The tool's description tells the model what to do
    - name: changed-description
      when: context.mcp.phase == "description" && context.mcp.description == "changed"
      verdict: BLOCK
      message: The tool's description changed since it was pinned
    - name: redact-access-keys
      when: context.mcp.phase == "result"
      verdict: CONSTRAIN
      constrain:
        - redact: {paths: [content, args.structuredContent], pattern: "AKIA[0-9A-Z]{16}"}
"""

SETTINGS = """\
database: sqlite:///lictor.db
policies: policies
audit:
  origin: test.local/mcp
mcp:
  pins_file: pins.json
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "mcp.yaml").write_text(POLICIES)
    (tmp_path / "lictor.yaml").write_text(SETTINGS)
    return tmp_path


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without LICTOR_* variables, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}, **extra}


PYTHON = sys.executable
