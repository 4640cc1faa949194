"""An app over a real gateway (SQLite in a temporary directory, or PostgreSQL) with a key per scope."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lictor.access import SCOPES
from lictor.config import Settings
from lictor.http import create_app
from lictor.runtime import Gateway

POLICY = """apiVersion: lictor/v1
kind: Policy
metadata: {name: credit}
spec:
  target: {names: [approve_credit]}
  rules:
    - name: large
      when: args.amount > 100000
      verdict: BLOCK
      message: Large credit needs approval
    - name: cap
      when: args.amount > 50000
      verdict: CONSTRAIN
      constrain: [{clamp: {path: args.amount, max: 50000}}]
"""

LARGE = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit", "args": {"amount": 150000}}
SMALL = {**LARGE, "args": {"amount": 5}}


@dataclasses.dataclass
class Served:
    client: TestClient
    gateway: Gateway
    keys: dict[str, str]
    policies: Path

    def as_(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def serve(tmp_path: Path, database: str, **http: int) -> Iterator[Served]:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "credit.yaml").write_text(POLICY)
    settings = Settings(database=database, policies=policies)
    settings = dataclasses.replace(
        settings, audit=dataclasses.replace(settings.audit, key_file=tmp_path / "audit.key",
                                            payload_key_file=tmp_path / "payload.key"),
        http=dataclasses.replace(settings.http, **http))
    gateway = Gateway.from_settings(settings)
    keys = {scope: gateway.keys.create(scope, user=f"{scope}-user")[1] for scope in SCOPES}
    app = create_app(gateway, keys=gateway.keys, settings=settings)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Served(client, gateway, keys, policies)
    finally:
        gateway.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path, f"sqlite:///{tmp_path / 'lictor.db'}", max_body_bytes=4096, max_batch=5)


@pytest.fixture
def served_pg(tmp_path: Path, postgres_url: str) -> Iterator[Served]:
    yield from serve(tmp_path, postgres_url)
