"""docs/mcp.md's client configuration and settings examples are what the command and the settings accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from lictor.cli import main
from lictor.config import load_settings

DOC = Path(__file__).parents[2] / "docs" / "mcp.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), re.M | re.S)


def test_the_client_configuration_starts_the_proxy_with_valid_options() -> None:
    (config,) = [json.loads(b) for b in blocks("json") if "mcpServers" in b]
    for entry in config["mcpServers"].values():
        assert entry["command"] == "lictor"
        group, command, *rest = entry["args"]
        proxy = main.commands[group].commands[command]  # type: ignore[attr-defined]
        ctx = proxy.make_context("proxy", list(rest), resilient_parsing=True)
        assert ctx.params["system"] and ctx.params["command"][:2] == ("npx", "-y")
        assert "--" in rest and rest.index("--") < rest.index("npx")


def test_the_fronting_settings_load(tmp_path: Path) -> None:
    (text,) = [b for b in blocks("yaml") if "servers:" in b]
    (tmp_path / "lictor.yaml").write_text(text)
    settings = load_settings(tmp_path / "lictor.yaml", env={})
    written = yaml.safe_load(text)["mcp"]["servers"]
    assert {name: (s.url, s.system) for name, s in settings.mcp.servers.items()} == {
        name: (entry["url"], entry["system"]) for name, entry in written.items()}
