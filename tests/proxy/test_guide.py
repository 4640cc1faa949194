"""docs/proxy.md is executable: its policy is the gateway's, and its ```python blocks run in order,
in one namespace, against `lictor serve`'s app served on loopback in front of a scripted model."""

from __future__ import annotations

import dataclasses
import linecache
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from lictor.config import ProxySettings, Settings, UpstreamSettings
from lictor.http import create_app
from lictor.runtime import Gateway
from tests.proxy.fake import (
    UPSTREAM_KEY,
    FakeUpstream,
    Reply,
    completion,
    streamed,
    text_chunks,
    tool_call,
)
from tests.proxy.served import served
from tests.test_docs import parse_blocks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "proxy.md"
BLOCKS = [b for b in parse_blocks(GUIDE) if b.lang == "python"]
POLICIES = [b for b in parse_blocks(GUIDE) if b.lang == "yaml" and "apiVersion: lictor/v1" in b.text]


def model(body: Any) -> Reply:
    """The scripted model the guide talks to."""
    said = body["messages"][-1]["content"].lower()
    if "delete" in said:
        return Reply(body=completion(None, tool_calls=[tool_call("delete_account", {"account": "C-42"})]))
    if "refund" in said:
        return Reply(body=completion(None, tool_calls=[tool_call("issue_refund", {"order": "A-1001", "amount": 900})]))
    if body.get("stream"):
        return streamed(text_chunks("Hello! ", "How can ", "I help?"))
    return Reply(body=completion("Hello! How can I help?"))


@pytest.fixture
def gateway_url(tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    upstream.responder = model
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    policies = tmp_path / "policies"
    policies.mkdir()
    for n, block in enumerate(POLICIES):
        (policies / f"guide-{n}.yaml").write_text(block.text)
    settings = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=policies, proxy=ProxySettings(
        system="support-bot",
        upstreams=MappingProxyType({"main": UpstreamSettings(base_url=upstream.url + "/v1", api_key_env="UPSTREAM_KEY")})))
    settings = dataclasses.replace(settings, audit=dataclasses.replace(
        settings.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))
    gateway = Gateway.from_settings(settings)
    monkeypatch.setenv("LICTOR_API_KEY", gateway.keys.create("agent", user="support-agent")[1])
    monkeypatch.setenv("LICTOR_REVIEWER_KEY", gateway.keys.create("reviewer", user="sam", roles=["supervisor"])[1])
    try:
        with served(create_app(gateway, keys=gateway.keys, settings=settings)) as url:
            monkeypatch.setenv("LICTOR_URL", url)
            yield url
    finally:
        gateway.close()


def test_the_guide_has_examples_and_is_linked_from_the_index() -> None:
    assert len(BLOCKS) >= 6 and len(POLICIES) == 1
    assert "(proxy.md)" in (GUIDE.parent / "index.md").read_text(encoding="utf-8")


def test_every_python_example_of_the_guide_runs(gateway_url: str, upstream: FakeUpstream) -> None:
    namespace: dict[str, object] = {"__name__": "guide"}
    for block in BLOCKS:
        # padded so that a traceback gives the line of the page, and shows it
        source = "\n" * block.line + block.text
        linecache.cache[str(GUIDE)] = (len(source), None, source.splitlines(True), str(GUIDE))
        exec(compile(source, str(GUIDE), "exec"), namespace)
    assert all(r.headers["authorization"] == f"Bearer {UPSTREAM_KEY}" for r in upstream.received)
    assert not any("ignore previous" in str(r.body) for r in upstream.received)
