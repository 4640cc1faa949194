"""lictor audit erase, prune, rotate-key and verify --sampling-key, end to end on a SQLite deployment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from .conftest import EXAMPLES
from .conftest import run_cli as run

DB = "sqlite:///audit.db"


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("credit-large.json", "credit-small.json", "research-shell.json"):
        code, _, err = run("eval", "--policies", str(EXAMPLES / "policies"), "--db", DB, str(EXAMPLES / "actions" / name),
                           cwd=tmp_path)
        assert code == 0, err
    return tmp_path


def verify(cwd: Path, *extra: str) -> tuple[int, dict[str, object]]:
    code, out, _ = run("audit", "verify", "--db", DB, "--json", *extra, cwd=cwd)
    return code, json.loads(out)


def test_erase_keeps_the_log_valid_and_reports_the_erased_payloads(deployment: Path) -> None:
    code, before = verify(deployment)
    assert code == 0 and before["payloads"]["present"] == 3  # type: ignore[index]
    code, out, _ = run("audit", "erase", "--db", DB, "--subject", "alice", "--basis", "gdpr-art17", cwd=deployment)
    assert code == 0 and "erased the payloads of 1 leaves" in out
    code, after = verify(deployment)
    assert code == 0 and after["payloads"] == {"present": 2, "opened": 2, "erased": 1}


def test_erase_refuses_a_free_text_basis(deployment: Path) -> None:
    code, _, err = run("audit", "erase", "--db", DB, "--subject", "alice", "--basis", "asked by Alice Smith",
                       cwd=deployment)
    assert code == 2 and "short code" in err


def test_prune_keeps_the_log_valid_and_says_what_it_dropped(deployment: Path) -> None:
    code, out, _ = run("audit", "prune", "--db", DB, "--before", "2999-01-01T00:00:00Z", cwd=deployment)
    assert code == 0 and "pruned the content of leaves below index" in out
    code, report = verify(deployment)
    assert code == 0 and report["pruned"] >= 3  # type: ignore[operator]
    code, _, err = run("audit", "prune", "--db", DB, "--before", "2999-01-01", cwd=deployment)
    assert code == 2 and "time zone" in err


def test_an_auditor_recomputes_sampling_with_the_disclosed_key(deployment: Path) -> None:
    vkey = run("audit", "key", cwd=deployment)[1].strip()
    sampling = json.loads((deployment / "lictor-payload.key").read_text())["sampling"]
    code, report = verify(deployment, "--key", vkey, "--sampling-key", sampling)
    assert code == 0 and report["sampling_checked"] is True and report["payloads"] == {"present": 3}
    wrong = base64.b64encode(b"\x07" * 32).decode()
    code, failure = verify(deployment, "--key", vkey, "--sampling-key", wrong)
    assert code == 3 and failure["step"] == "6 sampling"


def test_rotate_key_then_the_first_key_still_verifies(deployment: Path) -> None:
    first = run("audit", "key", cwd=deployment)[1].strip()
    code, out, _ = run("audit", "rotate-key", "--db", DB, cwd=deployment)
    assert code == 0 and f"retired: {first}" in out
    second = run("audit", "key", cwd=deployment)[1].strip()
    assert second != first
    code, report = verify(deployment, "--key", first)
    assert code == 0 and report["keys"] == 2 and report["skipped_checkpoints"] == 0
    code, report = verify(deployment, "--key", second)
    assert code == 0 and report["skipped_checkpoints"] == 3  # signed by the first key alone
