"""Golden cases for the CEL compiler, stored as data in ``cel_golden.yaml``.

Every case is checked against ``lictor.policy.cel``; cases the reference
runtime can run are also checked against it, so the expectations themselves
follow standard CEL.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import pytest
import yaml

from .cel_strategies import Reference, canon

GOLDEN_PATH = pathlib.Path(__file__).with_name("cel_golden.yaml")
EXPECTATIONS = ("value", "timestamp", "duration", "error", "compile_error")


def _load() -> list[dict[str, Any]]:
    cases = yaml.safe_load(GOLDEN_PATH.read_text(encoding="utf-8"))
    assert isinstance(cases, list)
    for case in cases:
        found = [k for k in EXPECTATIONS if k in case]
        assert len(found) == 1, f"case needs exactly one expectation: {case}"
    return cases


CASES = _load()


def _id(case: dict[str, Any]) -> str:
    return case["expr"].replace("\n", "\\n")[:60]


def expected_canon(case: dict[str, Any]) -> Any:
    if "timestamp" in case:
        text = case["timestamp"].replace("Z", "+00:00")
        return canon(dt.datetime.fromisoformat(text))
    if "duration" in case:
        return canon(dt.timedelta(seconds=case["duration"]))
    return canon(case["value"])


def test_golden_file_shape() -> None:
    assert len(CASES) >= 80
    assert any(c.get("custom") for c in CASES)
    assert sum("compile_error" in c for c in CASES) >= 8
    assert sum("error" in c for c in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden_against_reference(case: dict[str, Any]) -> None:
    pytest.importorskip("cel_expr_python")
    if case.get("custom") or case.get("reference") is False:
        pytest.skip("not expressible in the reference runtime")
    ref = Reference()
    src, act = case["expr"], case.get("vars") or {}
    if "compile_error" in case:
        assert ref.check_rejects(src, act), "reference compiles it"
        return
    kind, result = ref.run(src, act)
    if case.get("error"):
        assert kind == "error", f"reference gives {kind}: {result}"
    else:
        assert kind == "value", f"reference gives {kind}: {result}"
        assert result == expected_canon(case)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden(case: dict[str, Any]) -> None:
    cel = pytest.importorskip("lictor.policy.cel")
    src, act = case["expr"], case.get("vars") or {}
    if "compile_error" in case:
        with pytest.raises(cel.CelCompileError) as info:
            cel.compile_cel(src)
        err = info.value
        lines = src.split("\n")
        assert isinstance(err.line, int) and isinstance(err.column, int), err
        assert 1 <= err.line <= len(lines), (err.line, err.column, err.message)
        assert 0 <= err.column <= len(lines[err.line - 1]) + 1, (err.line, err.column, err.message)
        assert isinstance(err.message, str) and err.message
        if "line" in case:
            assert err.line == case["line"]
        return
    prog = cel.compile_cel(src)
    if case.get("error"):
        with pytest.raises(cel.CelEvalError):
            prog.evaluate(act)
        return
    assert canon(prog.evaluate(act)) == expected_canon(case)
