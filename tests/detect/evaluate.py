"""A small evaluator for the injection corpus: a text counts as flagged when the detector reports
an ``injection.*`` hit in it or in one of its decoded segments (as the engine rescans them)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lictor.detect.base import Detector
from lictor.detect.decode import segments

CORPUS = Path(__file__).parents[2] / "eval" / "injection"


def load(name: str) -> list[dict[str, str]]:
    with open(CORPUS / f"{name}.jsonl", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def flagged(detector: Detector, text: str, prefix: str = "injection.") -> bool:
    texts = [text, *(seg.decoded for seg in segments(text))]
    return any(hit.type.startswith(prefix) for t in texts for hit in detector.scan(t))


@dataclass
class Score:
    attacks: int = 0
    caught: int = 0
    benign: int = 0
    false_positives: int = 0
    missed: list[dict[str, str]] = field(default_factory=list)
    wrong: list[dict[str, str]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.attacks if self.attacks else 1.0

    @property
    def fpr(self) -> float:
        return self.false_positives / self.benign if self.benign else 0.0


def evaluate(detector: Detector, rows: list[dict[str, str]]) -> Score:
    score = Score()
    for row in rows:
        hit = flagged(detector, row["text"])
        if row["label"] == "attack":
            score.attacks += 1
            score.caught += hit
            if not hit:
                score.missed.append(row)
        else:
            score.benign += 1
            score.false_positives += hit
            if hit:
                score.wrong.append(row)
    return score
