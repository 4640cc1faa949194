"""Measuring detectors against labelled data: lines with ground-truth spans (``{"text", "spans":
[{"type", "start", "end"}]}``) give precision, recall and false-positive rate per finding type;
lines labelled ``attack`` or ``benign`` (with a ``category``) give recall and false-positive rate
per category, and precision per type."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from lictor.detect.engine import Scanner
from lictor.errors import InputError

__all__ = ["Evaluation", "Score", "evaluate"]


@dataclass(slots=True)
class Score:
    """Counts for one type or category: true and false positives, misses, and the lines that held
    none of it (``negatives``) and of those how many were flagged anyway."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    negatives: int = 0
    flagged_negatives: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def fpr(self) -> float | None:
        return self.flagged_negatives / self.negatives if self.negatives else None

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "negatives": self.negatives,
                "flagged_negatives": self.flagged_negatives, "precision": self.precision,
                "recall": self.recall, "fpr": self.fpr}


@dataclass(slots=True)
class Evaluation:
    """Scores by finding type and by category, and the lines read."""

    types: dict[str, Score] = field(default_factory=dict)
    categories: dict[str, Score] = field(default_factory=dict)
    lines: int = 0
    labelled_benign: int = 0

    def total(self, glob: str = "*") -> Score:
        """The sum over the types matching ``glob`` (false-positive rate: over lines, any such type)."""
        total = Score()
        for name, score in self.types.items():
            if fnmatchcase(name, glob):
                total.tp += score.tp
                total.fp += score.fp
                total.fn += score.fn
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines,
                "types": {k: v.to_dict() for k, v in sorted(self.types.items())},
                "categories": {k: v.to_dict() for k, v in sorted(self.categories.items())}}


def _gold(line: Mapping[str, Any], where: str) -> list[tuple[str, int, int]]:
    spans = line.get("spans")
    if not isinstance(spans, list):
        raise InputError("expected spans: a list of {type, start, end}", path=f"{where}.spans")
    out = []
    for i, span in enumerate(spans):
        if (not isinstance(span, Mapping) or not isinstance(span.get("type"), str)
                or not isinstance(span.get("start"), int) or not isinstance(span.get("end"), int)):
            raise InputError("expected {type, start, end}", path=f"{where}.spans[{i}]")
        out.append((span["type"], span["start"], span["end"]))
    return out


def evaluate(lines: Iterable[tuple[str, Any]], scanner: Scanner, *, types: str = "*",
             split: str | None = None) -> Evaluation:
    """Scan every line's ``text`` and score the findings whose type matches ``types``; ``split``
    keeps only the lines whose ``split`` field has that value. Raises InputError for a bad line."""
    result = Evaluation()
    span_lines: list[tuple[set[str], set[str]]] = []
    for where, line in lines:
        if not isinstance(line, Mapping) or not isinstance(line.get("text"), str):
            raise InputError('expected an object with "text"', path=where)
        if split is not None and line.get("split") != split:
            continue
        result.lines += 1
        found = [(f.type, f.start, f.end) for f in scanner.scan(line["text"])
                 if fnmatchcase(f.type, types)]
        if "label" in line:
            _labelled(result, line, found, where)
            continue
        gold = [g for g in _gold(line, where) if fnmatchcase(g[0], types)]
        matched: set[int] = set()
        for kind, start, end in found:
            score = result.types.setdefault(kind, Score())
            hit = next((i for i, g in enumerate(gold)
                        if i not in matched and g[0] == kind and start < g[2] and g[1] < end), None)
            if hit is None:
                score.fp += 1
            else:
                matched.add(hit)
                score.tp += 1
        for i, (kind, _s, _e) in enumerate(gold):
            if i not in matched:
                result.types.setdefault(kind, Score()).fn += 1
        span_lines.append(({g[0] for g in gold}, {f[0] for f in found}))
        category = line.get("category")
        if isinstance(category, str):
            cat = result.categories.setdefault(category, Score())
            cat.tp += len(matched)
            cat.fn += len(gold) - len(matched)
            cat.fp += len(found) - len(matched)
            if not gold:
                cat.negatives += 1
                cat.flagged_negatives += bool(found)
    for kind, score in result.types.items():  # false-positive rate over the lines without that type
        score.negatives += result.labelled_benign
        for gold_types, found_types in span_lines:
            if kind not in gold_types:
                score.negatives += 1
                score.flagged_negatives += kind in found_types
    return result


def _labelled(result: Evaluation, line: Mapping[str, Any], found: list[tuple[str, int, int]], where: str) -> None:
    label = line["label"]
    if label not in ("attack", "benign"):
        raise InputError(f'label must be "attack" or "benign", got {label!r}', path=f"{where}.label")
    category = line.get("category") if isinstance(line.get("category"), str) else "(none)"
    attack = label == "attack"
    for cat in (str(category), "*"):
        score = result.categories.setdefault(cat, Score())
        if attack:
            score.tp += bool(found)
            score.fn += not found
        else:
            score.negatives += 1
            score.flagged_negatives += bool(found)
            score.fp += bool(found)
    for kind in {f[0] for f in found}:
        score = result.types.setdefault(kind, Score())
        if attack:
            score.tp += 1
        else:
            score.fp += 1
            score.flagged_negatives += 1
    result.labelled_benign += not attack
