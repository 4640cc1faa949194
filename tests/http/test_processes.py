"""Several `lictor serve` processes on one PostgreSQL schema and one Redis prefix: one log, one
policy revision, one set of `limit` counters."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from lictor.cli import main
from tests.http.conftest import LARGE, POLICY
from tests.http.process import serve

REFUNDS = """apiVersion: lictor/v1
kind: Policy
metadata: {name: refunds}
spec:
  target: {names: [issue_refund]}
  rules:
    - name: velocity
      limit: {key: agent.id, max: 3, per: 1h}
      verdict: BLOCK
      message: At most 3 refunds an hour
"""

REFUND = {"system": "support-bot", "kind": "tool_call", "name": "issue_refund", "args": {"amount": 20},
          "agent": {"id": "bot-1"}}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str) -> Path:
    """A settings file naming the test's schema, Redis prefix, policies and key files."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LICTOR_")]:
        monkeypatch.delenv(name)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "credit.yaml").write_text(POLICY)
    (policies / "refunds.yaml").write_text(REFUNDS)
    config = tmp_path / "lictor.yaml"
    config.write_text(f"database: {json.dumps(postgres_url)}\nredis: {json.dumps(redis_url)}\n"
                      f"policies: {policies}\naudit:\n  origin: lictor.test/processes\n"
                      f"  key_file: {tmp_path / 'audit.key'}\n  payload_key_file: {tmp_path / 'payload.key'}\n"
                      "  checkpoint_interval: 200ms\n")
    return config


def test_two_processes_share_one_log_one_revision_and_the_limits(deployment: Path, tmp_path: Path) -> None:
    agent = cli("keys", "create", "--scope", "agent", "--config", str(deployment)).strip()
    auth = {"Authorization": f"Bearer {agent}"}
    with serve(["--config", str(deployment)], cwd=tmp_path) as one, \
            serve(["--config", str(deployment)], cwd=tmp_path) as two:
        servers = [one.url, two.url]
        revisions = {httpx.get(f"{url}/v1/policies", headers=auth, timeout=10).json()["revision"] for url in servers}
        assert len(revisions) == 1
        indices = []
        for n in range(6):
            answer = httpx.post(f"{servers[n % 2]}/v1/decide", json=LARGE, headers=auth, timeout=10).json()
            assert answer["verdict"] == "BLOCK"
            indices.append(answer["audit"]["index"])
        assert len(set(indices)) == 6
        verdicts = [httpx.post(f"{servers[n % 2]}/v1/decide", json=REFUND, headers=auth, timeout=10).json()["verdict"]
                    for n in range(5)]
        assert verdicts == ["ALLOW", "ALLOW", "ALLOW", "BLOCK", "BLOCK"]
    cli("audit", "checkpoint", "--config", str(deployment))
    report = json.loads(cli("audit", "verify", "--config", str(deployment), "--json"))
    assert report["outcome"] == "valid"
    assert report["leaf_types"]["decision"] == 11


def test_demo_with_two_workers_serves_with_the_printed_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with serve(["--demo", "--workers", "2"], cwd=tmp_path) as served:
        agent = next(line.split()[1] for line in served.log.read_text().splitlines() if line.startswith("agent "))
        auth = {"Authorization": f"Bearer {agent}"}
        for _ in range(4):  # the connections may land on either worker
            with httpx.Client(base_url=served.url, headers=auth, timeout=10) as client:
                answer = client.post("/v1/decide", json=LARGE)
                assert answer.status_code == 200 and answer.json()["audit"]["index"] is not None
                assert client.get("/v1/policies").json()["policies"]


def test_demo_without_the_example_policies_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lictor.cli.serve._EXAMPLES", (tmp_path / "nowhere",))
    result = CliRunner().invoke(main, ["serve", "--demo"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "LICTOR_POLICIES" in result.stderr and "example policies" in result.stderr


def test_serve_refuses_a_memory_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LICTOR_DATABASE", "memory://")
    result = CliRunner().invoke(main, ["serve", "--demo"], catch_exceptions=False)
    assert result.exit_code == 2 and "memory://" in result.stderr
