"""The committed evaluation sets meet the targets on every split (dev was tuned on; heldout's errors
were seen once; test never), and the evaluation itself counts correctly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lictor.detect import Detection, DetectionSettings
from lictor.detect.evaluation import evaluate
from lictor.errors import InputError

EVAL = Path(__file__).resolve().parents[2] / "eval" / "structured"


def _lines(*names: str) -> list[tuple[str, Any]]:
    out = []
    for name in names:
        with (EVAL / name).open(encoding="utf-8") as fh:
            out += [(f"{name}:{i}", json.loads(line)) for i, line in enumerate(fh, 1)]
    return out


@pytest.fixture(scope="module")
def scanner() -> Any:
    return Detection.from_settings(DetectionSettings()).default


@pytest.mark.parametrize("split", ["dev", "heldout", "test"])
def test_structured_pii_targets(scanner: Any, split: str) -> None:
    result = evaluate(_lines("pii.jsonl", "benign.jsonl"), scanner, types="pii.*", split=split)
    total = result.total("pii.*")
    assert total.recall is not None and total.recall >= 0.99, result.to_dict()
    assert total.precision is not None and total.precision >= 0.97, result.to_dict()
    assert result.categories["benign"].fpr is not None and result.categories["benign"].fpr <= 0.01


@pytest.mark.parametrize("split", ["dev", "heldout", "test"])
def test_secret_targets(scanner: Any, split: str) -> None:
    result = evaluate(_lines("secrets.jsonl", "benign.jsonl"), scanner, types="secret.*", split=split)
    total = result.total("secret.*")
    assert total.recall is not None and total.recall >= 0.95, result.to_dict()
    assert total.precision is not None and total.precision >= 0.95, result.to_dict()


def test_the_counts(scanner: Any) -> None:
    lines = [("a:1", {"text": "x ann@corp.example y", "spans": [{"type": "pii.email", "start": 2, "end": 18}]}),
             ("a:2", {"text": "no mail here", "spans": [{"type": "pii.email", "start": 0, "end": 2}]}),
             ("a:3", {"text": "bob@corp.example", "spans": []}),
             ("a:4", {"text": "ann@corp.example", "label": "attack", "category": "leak"}),
             ("a:5", {"text": "fine", "label": "benign", "category": "leak"})]
    result = evaluate(lines, scanner)
    email = result.types["pii.email"]
    assert (email.tp, email.fp, email.fn) == (2, 1, 1)
    assert email.negatives == 2 and email.flagged_negatives == 1  # line 3 of the span lines, and line 5
    leak = result.categories["leak"]
    assert (leak.recall, leak.fpr) == (1.0, 0.0)


def test_a_bad_line_is_named() -> None:
    with pytest.raises(InputError, match="f:3"):
        evaluate([("f:3", {"text": "x", "label": "maybe"})], Detection.from_settings(DetectionSettings()).default)
