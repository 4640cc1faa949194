"""``lictor detect scan`` and ``lictor detect eval``: outputs, exit codes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lictor.cli import main


def run(args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_scan_plain_text_and_exit_codes() -> None:
    code, out, _ = run(["detect", "scan", "-"], "mail ann@corp.example now")
    assert code == 1
    assert [json.loads(line) for line in out.splitlines()] == [
        {"type": "pii.email", "start": 5, "end": 21, "score": 0.99, "detector": "pii", "version": "1"}]
    assert run(["detect", "scan", "-"], "nothing here")[:2] == (0, "")
    code, out, _ = run(["detect", "scan", "--show-values", "-"], "SSN 123-45-6789")
    assert json.loads(out)["value"] == "123-45-6789"


def test_scan_json_lines_and_bad_lines() -> None:
    code, out, _ = run(["detect", "scan"], '{"text": "a"}\n\n{"text": "ann@corp.example"}\n')
    assert code == 1 and json.loads(out)["line"] == 3
    code, _, err = run(["detect", "scan"], '{"text": "a"}\n{"txt": 1}\n')
    assert code == 2 and "<stdin>:2" in err


def test_eval_tables_json_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "ann@corp.example", "spans": [{"type": "pii.email", "start": 0, "end": 16}],
                                "split": "a"}) + "\n" + json.dumps({"text": "ok", "label": "benign", "category": "c",
                                                                    "split": "b"}) + "\n", encoding="utf-8")
    code, out, _ = run(["detect", "eval", str(data)])
    assert code == 0 and "pii.email" in out and "100.0%" in out
    code, out, _ = run(["detect", "eval", "--json", "--split", "a", str(data)])
    report = json.loads(out)
    assert report["lines"] == 1 and report["types"]["pii.email"]["recall"] == 1.0
    code, out, _ = run(["detect", "eval", "--json", "--types", "secret.*", str(data)])
    assert json.loads(out)["types"] == {}
    data.write_text('{"text": "x", "label": "maybe"}\n', encoding="utf-8")
    code, _, err = run(["detect", "eval", str(data)])
    assert code == 2 and f"{data}:1" in err
    data.write_text("{not json\n", encoding="utf-8")
    assert run(["detect", "eval", str(data)])[0] == 2
