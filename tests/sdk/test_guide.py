"""docs/sdk.md is executable: its ```python blocks run in order, in one namespace, in a directory holding
``examples/``, with a gateway of the HTTP contract served on loopback at ``GATEWAY_URL``."""

from __future__ import annotations

import linecache
from pathlib import Path

import pytest

from lictor import Guard
from tests.sdk.conftest import EXAMPLES, open_gateway
from tests.sdk.contract import AGENT_KEY, Contract, serve
from tests.test_docs import parse_blocks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCKS = [b for b in parse_blocks(GUIDE) if b.lang == "python"]


def test_the_guide_has_examples_and_is_linked_from_the_index() -> None:
    assert len(BLOCKS) >= 8
    assert "(sdk.md)" in (GUIDE.parent / "index.md").read_text(encoding="utf-8")


def test_every_python_example_of_the_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    (tmp_path / "server").mkdir()
    gateway = open_gateway(tmp_path / "server")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "guide"}
    try:
        with serve(Contract(gateway)) as url:
            monkeypatch.setenv("GATEWAY_URL", url)
            monkeypatch.setenv("GATEWAY_API_KEY", AGENT_KEY)
            for block in BLOCKS:
                # padded so that a traceback gives the line of the page, and shows it
                source = "\n" * block.line + block.text
                linecache.cache[str(GUIDE)] = (len(source), None, source.splitlines(True), str(GUIDE))
                exec(compile(source, str(GUIDE), "exec"), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, Guard):
                value.close()
        gateway.close()
