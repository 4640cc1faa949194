"""End to end: `lictor eval --db` records decisions; `lictor audit` verifies, proves and detects tampering."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from lictor import Action, Verdict, load_policies
from lictor.audit.log import AuditLog
from lictor.audit.merkle import verify_inclusion
from lictor.audit.payload import PayloadKeys, PayloadVault
from lictor.audit.port import AppendResult, Payload
from lictor.runtime import Gateway
from lictor.store import open_store

from .conftest import EXAMPLES
from .conftest import run_cli as run


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("eval", "--policies", str(EXAMPLES / "policies"), "--db", "sqlite:///audit.db",
                         str(EXAMPLES / "actions" / "batch.jsonl"), cwd=tmp_path)
    assert code == 0, err
    decisions = [json.loads(line) for line in out.splitlines()]
    assert [d["audit"]["index"] for d in decisions] == list(range(1, len(decisions) + 1))  # 0: config
    assert all(len(d["audit"]["leaf_hash"]) == 64 for d in decisions)
    return tmp_path


def test_recorded_log_verifies(recorded: Path) -> None:
    code, out, _ = run("audit", "verify", "--db", "sqlite:///audit.db", "--json", cwd=recorded)
    assert code == 0
    report = json.loads(out)
    assert report["outcome"] == "valid" and report["signed_size"] == report["leaves"]
    assert report["leaf_types"]["seal"] == 1 and report["leaf_types"]["config"] == 1


def test_a_config_leaf_records_each_change_of_policies(recorded: Path) -> None:
    batch = str(EXAMPLES / "actions" / "batch.jsonl")
    run("eval", "--policies", str(EXAMPLES / "policies"), "--db", "sqlite:///audit.db", batch, cwd=recorded)
    one = recorded / "one"
    one.mkdir()
    (one / "p.yaml").write_text((EXAMPLES / "policies" / "credit-decisions.yaml").read_text())
    run("eval", "--policies", str(one), "--db", "sqlite:///audit.db", batch, cwd=recorded)
    db = sqlite3.connect(recorded / "audit.db")
    configs = [json.loads(d) for (d,) in db.execute("SELECT data FROM leaf ORDER BY idx") if b'"type":"config"' in d]
    db.close()
    assert len(configs) == 2  # the same policies again added none; other policies added one
    assert configs[0]["policy_revision"] != configs[1]["policy_revision"]
    assert configs[1]["policies"] == ["credit-decisions"]
    assert configs[1]["vkey"].startswith("lictor.local/audit+")
    code, _, _ = run("audit", "verify", "--db", "sqlite:///audit.db", cwd=recorded)
    assert code == 0


def test_pinned_key_and_proof(recorded: Path) -> None:
    _, vkey, _ = run("audit", "key", cwd=recorded)
    assert vkey.startswith("lictor.local/audit+")
    code, out, _ = run("audit", "proof", "1", "--db", "sqlite:///audit.db", "--key", vkey.strip(), "--json",
                       cwd=recorded)
    assert code == 0
    proof = json.loads(out)
    _, note, _ = run("audit", "checkpoint", "--db", "sqlite:///audit.db", cwd=recorded)
    assert proof["checkpoint"] == note
    import base64

    root = base64.b64decode(note.splitlines()[2])
    verify_inclusion(bytes.fromhex(proof["leaf_hash"]), proof["index"], proof["tree_size"],
                     [bytes.fromhex(h) for h in proof["proof"]], root)


def test_tampering_is_detected_with_its_index(recorded: Path) -> None:
    db = sqlite3.connect(recorded / "audit.db")
    (data,) = db.execute("SELECT data FROM leaf WHERE idx = 2").fetchone()
    assert b'"verdict":"BLOCK"' in data  # the support bot's blocked tool call
    db.execute("UPDATE leaf SET data = ? WHERE idx = 2", (data.replace(b'"verdict":"BLOCK"', b'"verdict":"ALLOW"'),))
    db.commit()
    db.close()
    code, out, _ = run("audit", "verify", "--db", "sqlite:///audit.db", cwd=recorded)
    assert code == 1
    assert out.startswith("TAMPERED: step 4 root at index 0")


def test_a_foreign_key_is_refused(recorded: Path) -> None:
    from lictor.audit.note import generate_key

    _, other = generate_key("lictor.local/audit")
    code, out, _ = run("audit", "verify", "--db", "sqlite:///audit.db", "--key", other, cwd=recorded)
    assert code == 1 and "signature" in out


def test_no_checkpoint_yet_is_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///empty.db")
    store.close()
    run("audit", "key", cwd=tmp_path)  # no key file yet: a usage error, not a traceback
    code, _, err = run("audit", "checkpoint", "--db", "sqlite:///empty.db", cwd=tmp_path)
    assert code == 2 and "no checkpoint" in err


class BrokenStore:
    """A store whose appends fail, as a full disk or a lost database would."""

    def __init__(self) -> None:
        self.inner = open_store("memory://")

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        raise OSError("disk full")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_unwritable_log_blocks_unless_unsafe_fail_open(tmp_path: Path, fail_open: bool) -> None:
    store = BrokenStore()
    log = AuditLog(store=store, signer=None)  # type: ignore[arg-type]
    vault = PayloadVault(PayloadKeys.generate(), store)  # type: ignore[arg-type]
    gateway = Gateway(policies=load_policies(EXAMPLES / "policies"), log=log, store=store,  # type: ignore[arg-type]
                      vault=vault, unsafe_fail_open=fail_open)
    try:
        action = Action.from_dict({"system": "chat", "kind": "message", "content": "hello"})
        decision = gateway.decide(action)
    finally:
        gateway.close()
    assert decision.audit is None
    assert decision.verdict is (Verdict.ALLOW if fail_open else Verdict.BLOCK)
    assert "audit log unavailable" in decision.errors[-1].message
