"""A gateway with the LLM proxy mounted in front of the fake provider, an agent key, and an OpenAI SDK
client talking to the app in-process."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lictor.audit.payload import open_document
from lictor.config import ProxySettings, Settings, UpstreamSettings
from lictor.http import create_app
from lictor.runtime import Gateway
from tests.proxy.fake import UPSTREAM_KEY, FakeUpstream, serve_fake

POLICIES = r"""apiVersion: lictor/v1
kind: Policy
metadata: {name: requests}
spec:
  target: {kinds: [llm_request]}
  rules:
    - name: no-forbidden-topic
      when: 'content.exists(m, m.role == "user" && m.content.contains("forbidden topic"))'
      verdict: BLOCK
      message: That topic is off limits
      on_error: skip
    - name: redact-ssn
      when: 'content.exists(m, m.content.matches("[0-9]{3}-[0-9]{2}-[0-9]{4}"))'
      verdict: CONSTRAIN
      on_error: skip
      constrain:
        - redact: {paths: [content], pattern: "[0-9]{3}-[0-9]{2}-[0-9]{4}", replacement: "[SSN]"}
    - name: cap-tokens
      when: has(args.max_tokens) && args.max_tokens > 100
      verdict: CONSTRAIN
      constrain:
        - clamp: {path: args.max_tokens, max: 100}
        - remove: [args.tools]
---
apiVersion: lictor/v1
kind: Policy
metadata: {name: responses}
spec:
  target: {kinds: [llm_response]}
  rules:
    - name: no-secrets-out
      when: content.contains("TOP SECRET")
      verdict: BLOCK
      message: The answer quotes a classified document
      on_error: skip
    - name: mask-cards
      when: content.matches("[0-9]{4} [0-9]{4} [0-9]{4} [0-9]{4}")
      verdict: CONSTRAIN
      on_error: skip
      constrain:
        - redact: {paths: [content], pattern: "[0-9]{4} [0-9]{4} [0-9]{4} [0-9]{4}", replacement: "[CARD]"}
---
apiVersion: lictor/v1
kind: Policy
metadata: {name: tools}
spec:
  target: {kinds: [tool_call]}
  rules:
    - name: large-credit-needs-approval
      when: args.amount > 100000
      verdict: BLOCK
      message: Credit decisions above $100,000 need a credit officer's approval
      approval: {approvers: ["role:credit-officer"], ttl: 1h}
      on_error: skip
    - name: never-delete
      when: name == "delete_account"
      verdict: BLOCK
      message: Accounts are never deleted by the assistant
    - name: no-bcc
      when: name == "send_email" && has(args.bcc)
      verdict: CONSTRAIN
      constrain:
        - remove: [args.bcc]
"""


@dataclasses.dataclass
class Proxied:
    client: TestClient
    gateway: Gateway
    upstream: FakeUpstream
    agent_key: str
    reviewer_key: str

    def post(self, body: dict[str, Any], **headers: str) -> Any:
        return self.client.post("/v1/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {self.agent_key}", **headers})

    def openai(self, **options: Any) -> Any:
        import openai

        return openai.OpenAI(base_url="http://testserver/v1", api_key=self.agent_key, http_client=self.client,
                             max_retries=0, **options)

    def record(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The leaf at ``index`` and the action its sealed payload holds."""
        leaf = self.gateway.leaf(index)
        payload = self.gateway._store.payload(index)  # the test reads the record as an auditor would
        assert payload is not None
        fields = open_document(self.gateway.vault.open(payload.ciphertext, index=index))
        return leaf, fields["action"][0]


def build(tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch,
          **proxy: Any) -> Iterator[Proxied]:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "proxy.yaml").write_text(POLICIES)
    upstreams = proxy.pop("upstreams", None) or {
        "fake": UpstreamSettings(base_url=upstream.url + "/v1", api_key_env="FAKE_UPSTREAM_KEY", timeout=2.0)}
    settings = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=policies,
                        proxy=ProxySettings(system="assistant", upstreams=MappingProxyType(upstreams), **proxy))
    settings = dataclasses.replace(settings, audit=dataclasses.replace(
        settings.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))
    gateway = Gateway.from_settings(settings)
    agent_key = gateway.keys.create("agent", user="support-agent")[1]
    reviewer_key = gateway.keys.create("reviewer", user="carol", roles=["credit-officer"])[1]
    app = create_app(gateway, keys=gateway.keys, settings=settings)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Proxied(client, gateway, upstream, agent_key, reviewer_key)
    finally:
        gateway.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    yield from serve_fake()


@pytest.fixture
def proxied(tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxied]:
    yield from build(tmp_path, upstream, monkeypatch, stream_window=16, stream_lookbehind=24)


@pytest.fixture
def make_proxied(tmp_path: Path, upstream: FakeUpstream,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Proxied]]:
    made: list[Iterator[Proxied]] = []

    def make(**proxy: Any) -> Proxied:
        gen = build(tmp_path, upstream, monkeypatch, **proxy)
        made.append(gen)
        return next(gen)

    yield make
    for gen in made:
        gen.close()
