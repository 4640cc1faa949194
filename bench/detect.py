#!/usr/bin/env python3
"""Speed of the content detectors: Lictor's built-ins against Presidio's pattern recognizers.

Texts of about 1 KB are made from the evaluation sets in ``eval/structured/`` (seeded), in two
corpora that both engines scan: *typical* (business prose and hard negatives such as order numbers,
dates and versions, one line in ten holding PII or a secret: about one finding per KB) and *dense*
(every line holds PII or a secret: about 14 findings per KB). For each engine and corpus the script
prints:

* the time to scan one 1 KB text (p50, p99, in microseconds), each scan timed on its own;
* throughput in MB/s (UTF-8 bytes scanned per second) on 1 KB texts, and on one 100 KB and one
  1 MB text made by joining them: equal figures at every size show that scanning is linear.

Before timing, each engine scans ``--warm`` texts made with another seed: RE2 builds
the states of its automata on first use and keeps them for the life of the process, so a running
gateway pays that cost once, not on every text; warming on other texts than the timed ones keeps
the figure honest for text it has not seen.

Lictor runs every registered detector (``exfil``, ``injection``, ``national_id``, ``pii``,
``secrets``) through its scanning engine with the default settings, as the gateway does (raw text,
folded text, decoded runs; findings deduplicated). A second table splits Lictor's time on 1 KB
texts by part (p50 of each part timed on its own, in the engine's order on the same text): the
shared prefilter (one RE2 set pass for the detectors' triggers, and the runs of digits that
``pii`` and ``national_id`` share), each detector's ``scan`` of the raw text, and the engine's
folding and decoding. Presidio
runs in its regex-only configuration: every predefined ``PatternRecognizer`` of its English
registry, called directly with no NLP artefacts (so no spaCy model is loaded or needed); its
context words and NER recognizers play no part. Its e-mail validation uses tldextract's bundled
suffix list (no network). Install it with the ``bench`` extra; without it the Presidio rows say
"not installed".

    python bench/detect.py [--texts N] [--seed N] [--warm N] [--json out.json] [--no-peer]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lictor.detect import Detection, DetectionSettings, Detector
from machine import describe

EVAL = Path(__file__).resolve().parents[1] / "eval" / "structured"


PROSE = (
    "Thanks for the update on the quarterly report; the team went through the draft on Tuesday.",
    "We agreed to move the launch to next month, pending the legal review of the new terms.",
    "Please send the revised figures to finance by Friday and copy the project lead.",
    "The customer asked whether the refund covers the shipping costs as well as the item itself.",
    "Can you summarise the main risks in the vendor assessment before the steering meeting?",
    "The model's answers were reviewed by two analysts, who flagged three of them for follow-up.",
    "Our support hours are Monday to Friday, 9:00 to 17:30, except on public holidays.",
    "The agent drafted a reply, but it needs a human to check the tone before it goes out.",
)


def _lines(names: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for name in names:
        with (EVAL / name).open(encoding="utf-8") as fh:
            lines += [json.loads(line)["text"] for line in fh]
    return lines


def corpus(n: int, seed: int, size: int = 1024, *, dense: bool = True) -> list[str]:
    """``n`` texts of about ``size`` characters. Dense: lines from every evaluation file (about 14
    findings per KB). Typical: business prose and the hard negatives (order numbers, dates,
    versions...), with one line in ten from the PII and secrets sets (about one finding per KB)."""
    sensitive = _lines(("pii.jsonl", "secrets.jsonl"))
    benign = _lines(("benign.jsonl",))
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            if dense:
                parts.append(rng.choice(sensitive + benign))
            else:
                roll = rng.random()
                parts.append(rng.choice(sensitive) if roll < 0.1 else rng.choice(benign) if roll < 0.4
                             else rng.choice(PROSE))
        texts.append("\n".join(parts)[:size])
    return texts


def lictor_scan() -> Callable[[str], int]:
    scanner = Detection.from_settings(DetectionSettings()).default

    def scan(text: str) -> int:
        return len(scanner.scan(text))

    return scan


def parts(texts: list[str], warm: list[str]) -> dict[str, float]:
    """p50 in microseconds of each part of a scan, each timed on its own in the engine's order on
    the same text (so the shared prefilter is paid once, in its own row)."""
    from lictor.detect.decode import segments
    from lictor.detect.normalize import fold
    from lictor.detect.pii import number_runs
    from lictor.detect.triggers import found

    scanner = Detection.from_settings(DetectionSettings()).default

    def prefilter(text: str) -> object:
        return found(text), number_runs(text)

    def detector(d: Detector) -> Callable[[str], object]:
        return lambda text: list(d.scan(text))

    steps: list[tuple[str, Callable[[str], object]]] = [("prefilter", prefilter)]
    steps += [(d.name, detector(d)) for d in scanner.detectors]
    steps += [("engine: fold", fold), ("engine: decode", lambda t: list(segments(t, scanner.decode_budget)))]
    for text in warm:
        scanner.scan(text)
    times: dict[str, list[float]] = {name: [] for name, _ in steps}
    gc.disable()
    try:
        for text in texts:
            for name, step in steps:
                t0 = time.perf_counter_ns()
                step(text)
                times[name].append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in times.items()}


def presidio_scan() -> tuple[Callable[[str], int], str] | None:
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    # bench/http.py would shadow the standard library's http package that Presidio's imports need
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        import tldextract

        tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())  # the bundled list, no network
        from presidio_analyzer import PatternRecognizer, RecognizerRegistry
    except ImportError:
        return None
    finally:
        sys.path[:] = saved
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    recognizers = [r for r in registry.recognizers if isinstance(r, PatternRecognizer)]

    def scan(text: str) -> int:
        found = 0
        for recognizer in recognizers:
            found += len(recognizer.analyze(text, recognizer.supported_entities, None))
        return found

    names = ", ".join(sorted(type(r).__name__ for r in recognizers))
    return scan, f"presidio-analyzer {importlib.metadata.version('presidio-analyzer')}: {len(recognizers)} " \
                 f"pattern recognizers ({names})"


def per_text(scan: Callable[[str], int], texts: list[str], warm: list[str]) -> list[float]:
    for text in warm:
        scan(text)  # warm-up on other texts: compiled patterns, phone metadata, automaton states
    times = []
    gc.disable()
    try:
        for text in texts:
            t0 = time.perf_counter_ns()
            scan(text)
            times.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return times


def throughput(scan: Callable[[str], int], text: str, repeat: int) -> float:
    size = len(text.encode("utf-8"))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        scan(text)
        best = min(best, time.perf_counter() - t0)
    return size / best / 1e6


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, scan: Callable[[str], int], texts: list[str], warm: list[str]) -> dict[str, Any]:
    times = per_text(scan, texts, warm)
    kb = "\n".join(texts)
    row: dict[str, Any] = {
        "engine": name, "p50_us": statistics.median(times), "p99_us": quantile(times, 0.99),
        "mean_us": statistics.fmean(times),
        "mbps_1kb": sum(len(t.encode("utf-8")) for t in texts) / (sum(times) / 1e6) / 1e6,
        "mbps_100kb": throughput(scan, (kb * (102400 // len(kb) + 1))[:102400], 3),
        "mbps_1mb": throughput(scan, (kb * (1048576 // len(kb) + 1))[:1048576], 1),
        "findings": sum(scan(t) for t in texts),
    }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=500, help="number of 1 KB texts (default 500)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warm", type=int, default=1000,
                        help="texts of another seed scanned first (default 1000): a gateway's steady state")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures to this file")
    parser.add_argument("--no-peer", action="store_true", help="measure Lictor only")
    args = parser.parse_args()

    info = describe()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    peer = None if args.no_peer else presidio_scan()
    if peer is not None:
        print(peer[1])
    elif not args.no_peer:
        print("presidio-analyzer: not installed (pip install -e '.[bench]')")
    rows = []
    split: dict[str, dict[str, float]] = {}
    ours = lictor_scan()
    for dense in (False, True):
        texts = corpus(args.texts, args.seed, dense=dense)
        label = "dense" if dense else "typical"
        print(f"corpus {label}: {len(texts)} texts of {len(texts[0])} characters")
        warm = corpus(args.warm, args.seed + 1, dense=dense)
        rows.append({"corpus": label, **measure("lictor", ours, texts, warm)})
        split[label] = parts(texts, warm)
        if peer is not None:
            rows.append({"corpus": label, **measure("presidio regex-only", peer[0], texts, warm)})
    wall = time.perf_counter() - wall0
    share = (time.process_time() - cpu0) / wall if wall else 0.0
    print(f"run: {wall:.1f} s wall, this process on a CPU {100 * share:.0f}% of it; "
          f"1-minute load average before: {load:.2f}")
    print()
    header = f"{'corpus':<8} {'engine':<20} {'p50 µs/KB':>10} {'p99 µs/KB':>10} {'MB/s 1KB':>9} {'MB/s 100KB':>10} " \
             f"{'MB/s 1MB':>9} {'findings':>8} {'p50 / lictor':>12}"
    print(header)
    for row in rows:
        base = next(r["p50_us"] for r in rows if r["corpus"] == row["corpus"] and r["engine"] == "lictor")
        row["p50_ratio"] = row["p50_us"] / base
        print(f"{row['corpus']:<8} {row['engine']:<20} {row['p50_us']:>10.1f} {row['p99_us']:>10.1f} {row['mbps_1kb']:>9.2f} "
              f"{row['mbps_100kb']:>10.2f} {row['mbps_1mb']:>9.2f} {row['findings']:>8} {row['p50_ratio']:>11.1f}x")
    print()
    print("Lictor by part, p50 µs per 1 KB text (each part timed on its own):")
    print(f"{'part':<16} {'typical':>9} {'dense':>9}")
    for name in split["typical"]:
        print(f"{name:<16} {split['typical'][name]:>9.1f} {split['dense'][name]:>9.1f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": info, "rows": rows, "parts": split,
                                                   "texts": args.texts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
