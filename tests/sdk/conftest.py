"""Fixtures of the SDK tests: a real gateway on SQLite with the example policies, and the example actions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lictor.runtime import Gateway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> dict[str, Any]:
    """An action of examples/actions as JSON data."""
    data: dict[str, Any] = json.loads((EXAMPLES / "actions" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def open_gateway(root: Path, policies: Path = EXAMPLES / "policies") -> Gateway:
    return Gateway.open(policies=policies, database=f"sqlite:///{root / 'lictor.db'}",
                        key_file=root / "audit.key", payload_key_file=root / "payload.key")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = open_gateway(tmp_path)
    try:
        yield gw
    finally:
        gw.close()
