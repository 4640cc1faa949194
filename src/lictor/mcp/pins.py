"""Description pins: the SHA-256 of each MCP tool's description and input schema as first seen, per
server, kept in a JSON file so that a description that changes later (a "rug pull") is flagged.

Trust on first use: a tool seen for the first time is pinned; later listings compare against the pin
and never move it. An operator who accepts a new description deletes the tool's entry (or the file);
the next listing pins the new one. The file is written atomically (a temporary file renamed over it)
and re-read before each write, so proxies sharing it keep each other's pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from lictor.errors import ConfigError

__all__ = ["DescriptionPins", "description_digest"]

_VERSION = 1


def description_digest(description: str | None, input_schema: Any) -> str:
    """``sha256:HEX`` of the description and input schema, as sorted compact JSON."""
    text = json.dumps({"description": description or "", "inputSchema": input_schema},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class DescriptionPins:
    """Pins in the JSON file at ``path`` (``None`` keeps them in memory only, for one process)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._pins: dict[str, dict[str, str]] = self._read()

    def _read(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the MCP description pins in {self.path}: {exc}",
                              path="mcp.pins_file") from exc
        servers = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(servers, dict) or not all(
                isinstance(tools, dict) and all(isinstance(v, str) for v in tools.values())
                for tools in servers.values()):
            raise ConfigError(f"{self.path} is not a pins file ({{\"version\": 1, \"servers\": "
                              "{SERVER: {TOOL: \"sha256:...\"}}})", path="mcp.pins_file")
        return {str(server): dict(tools) for server, tools in servers.items()}

    def pinned(self, server: str, tool: str) -> str | None:
        """The pinned digest of ``tool`` on ``server``, if any."""
        with self._lock:
            return self._pins.get(server, {}).get(tool)

    def check(self, server: str, tool: str, description: str | None,
              input_schema: Any) -> tuple[str, str, str | None]:
        """``(state, digest, pinned)``: ``state`` is ``new`` (now pinned), ``same`` or ``changed``."""
        digest = description_digest(description, input_schema)
        with self._lock:
            pinned = self._pins.get(server, {}).get(tool)
            if pinned is None and self.path is not None:
                self._pins = self._read()  # another proxy may have pinned it since we read
                pinned = self._pins.get(server, {}).get(tool)
            if pinned is None:
                self._pins.setdefault(server, {})[tool] = digest
                self._write()
                return "new", digest, None
        return ("same" if pinned == digest else "changed"), digest, pinned

    def _write(self) -> None:
        if self.path is None:
            return
        document = {"version": _VERSION, "servers": self._pins}
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2, sort_keys=True)
                out.write("\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise ConfigError(f"cannot write the MCP description pins to {self.path}: {exc}",
                              path="mcp.pins_file") from exc
