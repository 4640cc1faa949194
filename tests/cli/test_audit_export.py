"""End to end: `lictor audit export` writes an auditor bundle that `lictor audit verify BUNDLE` checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lictor.audit.note import generate_key

from .conftest import EXAMPLES
from .conftest import run_cli as run


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A recorded log exported to ``bundle/``; returns the working directory and the pinned key."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run("eval", "--policies", str(EXAMPLES / "policies"), "--db", "sqlite:///audit.db",
                       str(EXAMPLES / "actions" / "batch.jsonl"), cwd=tmp_path)
    assert code == 0, err
    code, out, err = run("audit", "export", "--db", "sqlite:///audit.db", "--out", "bundle", cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("wrote ") and "bundle" in out
    _, vkey, _ = run("audit", "key", cwd=tmp_path)
    return tmp_path, vkey.strip()


def test_the_bundle_verifies_with_the_pinned_key(exported: tuple[Path, str]) -> None:
    cwd, vkey = exported
    code, out, _ = run("audit", "verify", "bundle", "--key", vkey, "--json", cwd=cwd)
    assert code == 0
    report = json.loads(out)
    _, db_out, _ = run("audit", "verify", "--db", "sqlite:///audit.db", "--json", cwd=cwd)
    own = json.loads(db_out)
    # the bundle holds the log, not the payloads: the deployment's own check also opens those
    assert report["payloads"] is None and not report["sampling_checked"]
    assert own["payloads"] == {"present": 3, "opened": 3} and own["sampling_checked"]
    structure = ("outcome", "origin", "leaves", "checkpoints", "signed_size", "leaf_types", "pruned")
    assert {k: report[k] for k in structure} == {k: own[k] for k in structure}
    assert report["outcome"] == "valid" and report["leaves"] == report["signed_size"] > 0


def test_a_tampered_chunk_is_caught(exported: tuple[Path, str]) -> None:
    cwd, vkey = exported
    chunk = cwd / "bundle" / "entries" / "0000000000.bin"
    chunk.write_bytes(chunk.read_bytes().replace(b'"verdict":"BLOCK"', b'"verdict":"ALLOW"'))
    code, out, _ = run("audit", "verify", "bundle", "--key", vkey, cwd=cwd)
    assert code == 1
    assert out.startswith("TAMPERED: step 0 bundle: entries/0000000000.bin does not match")


def test_a_missing_manifest_is_incomplete(exported: tuple[Path, str]) -> None:
    cwd, vkey = exported
    (cwd / "bundle" / "manifest.json").unlink()
    code, out, _ = run("audit", "verify", "bundle", "--key", vkey, "--json", cwd=cwd)
    assert code == 2 and json.loads(out)["outcome"] == "incomplete"


def test_a_foreign_pinned_key_is_refused(exported: tuple[Path, str]) -> None:
    cwd, _ = exported
    _, other = generate_key("lictor.local/audit")
    code, out, _ = run("audit", "verify", "bundle", "--key", other, cwd=cwd)
    assert code == 1 and "signature" in out


def test_the_key_must_be_pinned(exported: tuple[Path, str]) -> None:
    cwd, _ = exported
    code, out, err = run("audit", "verify", "bundle", cwd=cwd)
    assert code == 2 and not out
    assert "pin the log's public key with --key" in err
    code, _, err = run("audit", "verify", "bundle", "--key-file", "lictor-audit.key", cwd=cwd)
    assert code == 2 and "--key" in err


def test_trusting_the_bundle_key_must_be_explicit_and_warns(exported: tuple[Path, str]) -> None:
    cwd, _ = exported
    code, out, err = run("audit", "verify", "bundle", "--trust-bundle-key", cwd=cwd)
    assert code == 0 and out.startswith("valid: ")
    assert err.startswith("warning: trusting the bundle's own key")


def test_db_and_bundle_together_are_a_usage_error(exported: tuple[Path, str]) -> None:
    cwd, vkey = exported
    code, _, err = run("audit", "verify", "bundle", "--db", "sqlite:///audit.db", "--key", vkey, cwd=cwd)
    assert code == 2 and "not both" in err


def test_export_refuses_a_non_empty_directory(exported: tuple[Path, str]) -> None:
    cwd, _ = exported
    before = sorted(p.relative_to(cwd) for p in (cwd / "bundle").rglob("*"))
    code, out, err = run("audit", "export", "--db", "sqlite:///audit.db", "--out", "bundle", cwd=cwd)
    assert code == 2 and not out
    assert "already exists and is not an empty directory" in err
    assert sorted(p.relative_to(cwd) for p in (cwd / "bundle").rglob("*")) == before
