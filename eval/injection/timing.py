"""One-off timing of folding, decoding and the injection and exfiltration detectors (for a report;
the project's benchmark script measures all detectors together). Prints p50 microseconds per 1 KB
of business text, hard negatives (benign text full of cue words), non-ASCII business text and
attack text, and MB/s on 1 MB of business text and of hard negatives (median of three passes after
a first one that builds the RE2 automaton states, a one-off per process).

Run from the repository root:  .venv/bin/python eval/injection/timing.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from lictor.detect.decode import segments
from lictor.detect.exfil import ExfilDetector
from lictor.detect.injection import InjectionDetector
from lictor.detect.normalize import fold

HERE = Path(__file__).parent


HARD = ("hard_negative", "security_discussion")


def rows(label: str, hard: bool | None = None) -> list[str]:
    out = []
    for name in ("dev", "dev2", "dev3", "dev4"):
        for line in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["label"] != label or row["obfuscation"] not in ("none", "wrap_mail", "wrap_json", "typography"):
                continue
            if hard is None or (row["category"] in HARD) == hard:
                out.append(row["text"])
    return out


def kb(texts: list[str], start: int, ascii_only: bool) -> str:
    out = ""
    i = start
    while len(out) < 1024:
        t = texts[i % len(texts)]
        i += 1
        if ascii_only and not t.isascii():
            continue
        out += t + "\n"
    return out[:1024]


def p50_us(fn: Callable[[str], object], samples: list[str], repeat: int = 2000) -> float:
    times = []
    for i in range(repeat):
        text = samples[i % len(samples)]
        t0 = time.perf_counter_ns()
        fn(text)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def main() -> None:
    business, hard, attacks = rows("benign", hard=False), rows("benign", hard=True), rows("attack")
    columns = {
        "business 1KB": [kb(business, i * 7, True) for i in range(50)],
        "hard-neg 1KB": [kb(hard, i * 7, True) for i in range(50)],
        "non-ASCII 1KB": [kb(business, i * 7, False).replace("'", "\u2019") + "\u00e9" for i in range(50)],
        "attack 1KB": [kb(attacks, i * 5, False) for i in range(50)],
    }
    big = {
        "business 1MB": (("\n".join(b for b in business if b.isascii()) + "\n") * 400)[: 1 << 20],
        "hard-neg 1MB": (("\n".join(b for b in hard if b.isascii()) + "\n") * 400)[: 1 << 20],
    }
    injection, exfil = InjectionDetector(), ExfilDetector()
    subjects: list[tuple[str, Callable[[str], object]]] = [
        ("fold", fold),
        ("decode.segments", lambda t: list(segments(t))),
        ("injection", injection.scan),
        ("exfil", exfil.scan),
    ]
    print("p50 microseconds per 1 KB; MB/s on 1 MB")
    print(f"{'':16}" + "".join(f"{c:>15}" for c in [*columns, *big]))
    for name, fn in subjects:
        for sample in columns.values():  # warm caches
            for text in sample:
                fn(text)
        cells = [f"{p50_us(fn, sample):13.1f}us" for sample in columns.values()]
        for text in big.values():
            fn(text)  # the first pass over new text builds RE2's DFA states; measure the next ones
            passes = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn(text)
                passes.append(time.perf_counter() - t0)
            cells.append(f"{len(text) / statistics.median(passes) / 1e6:10.1f} MB/s")
        print(f"{name:16}" + "".join(cells))


if __name__ == "__main__":
    main()
