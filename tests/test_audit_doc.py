"""docs/audit.md: its standalone proof checker accepts real proofs and rejects altered ones."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lictor.cli import main

ROOT = Path(__file__).parents[1]


def script() -> str:
    text = (ROOT / "docs" / "audit.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    return block


def run_checker(tmp_path: Path, proof: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check_proof.py"
    path.write_text(script())
    return subprocess.run([sys.executable, str(path)], input=json.dumps(proof), capture_output=True, text=True,
                          check=False)


def test_the_documented_checker_verifies_real_proofs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--policies", str(ROOT / "examples" / "policies"), "--db",
                                  "sqlite:///audit.db", str(ROOT / "examples" / "actions" / "batch.jsonl")])
    assert result.exit_code == 0, result.stderr
    size = len(result.stdout.splitlines()) + 2  # the config leaf, the decisions and the seal
    for index in range(size):
        result = runner.invoke(main, ["audit", "proof", str(index), "--db", "sqlite:///audit.db", "--json"])
        proof = json.loads(result.stdout)
        ok = run_checker(tmp_path, proof)
        assert ok.returncode == 0 and ok.stdout.strip() == "included"
        altered = {**proof, "index": (index + 1) % size}
        if altered["index"] != index:
            bad = run_checker(tmp_path, altered)
            assert bad.returncode == 1 and bad.stdout.strip() == "NOT included"
        flipped = {**proof, "leaf_hash": ("0" if proof["leaf_hash"][0] != "0" else "1") + proof["leaf_hash"][1:]}
        assert run_checker(tmp_path, flipped).returncode == 1
