#!/usr/bin/env python3
"""The audit log end to end: durable appends with group commit, durable decisions, offline verification.

Three measurements in one run, all through the project's public classes:

1. ``AuditLog.append`` (``max_batch`` 256, ``max_delay`` 2 ms) from 1, 16 and 64 threads on SQLite (a
   file in a temporary directory) and PostgreSQL (a fresh schema ``lictor_bench_<random>``, dropped
   afterwards): durable leaves per second, the time of each ``append`` call from call to return
   (p50/p99/p99.9/max) and the batches the writer thread achieved (store appends per leaf). Leaves
   are real decision leaves: ``decision_leaf`` of the example policies' decisions on the example
   actions, encoded and hashed by ``append`` on the caller's thread as in the gateway.
2. ``Gateway.decide`` (policy evaluation, decision leaf, durable append) on SQLite with the example
   policies and actions rotated: per-decision latency from one thread, decisions per second from 16.
3. ``verify_log`` over 100,000 leaves (99,999 decision leaves and the seal of one signed checkpoint)
   read back from a SQLite store: entries per second.

Each call is timed with ``time.perf_counter_ns``; nothing is subtracted and nothing is asserted.

    python bench/audit.py [--seconds S] [--threads 1,16,64] [--postgres URL]
                          [--only sqlite|postgres|verify] [--verify-runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lictor.audit.leaf import decision_leaf, encode_leaf, new_salts
from lictor.audit.log import AuditLog, AuditUnavailable
from lictor.audit.port import AppendResult, AuditStore, Payload
from lictor.audit.signer import FileSigner
from lictor.audit.verify import verify_log
from lictor.errors import LictorError
from lictor.model import Action, Finding
from lictor.policy import PolicySet, load_policies
from lictor.runtime import Gateway
from lictor.store import open_store
from machine import describe

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "examples" / "policies"
ACTIONS = REPO / "examples" / "actions"
MAX_BATCH = 256
MAX_DELAY = 0.002
VERIFY_LEAVES = 100_000
ORIGIN = "bench.lictor.local/audit"

pc = time.perf_counter_ns


# ------------------------------------------------------------------------------------ inputs


def load_actions() -> tuple[list[tuple[str, Action, tuple[Finding, ...]]], list[str]]:
    """Every valid example action (with its findings file, if any); the names of the invalid ones."""
    actions: list[tuple[str, Action, tuple[Finding, ...]]] = []
    skipped: list[str] = []
    for path in sorted(ACTIONS.glob("*.json")):
        if path.name.endswith(".findings.json"):
            continue
        try:
            action = Action.from_dict(json.loads(path.read_text()))
        except LictorError:
            skipped.append(path.name)  # typo.json is invalid on purpose
            continue
        findings: tuple[Finding, ...] = ()
        side = path.with_name(path.stem + ".findings.json")
        if side.exists():
            findings = tuple(Finding.from_dict(f) for f in json.loads(side.read_text()))
        actions.append((path.name, action, findings))
    batch = ACTIONS / "batch.jsonl"
    if batch.exists():
        for number, line in enumerate(batch.read_text().splitlines(), 1):
            if line.strip():
                actions.append((f"batch.jsonl:{number}", Action.from_dict(json.loads(line)), ()))
    return actions, skipped


def leaf_pool(policies: PolicySet, actions: Sequence[tuple[str, Action, tuple[Finding, ...]]],
              size: int) -> list[dict[str, Any]]:
    """``size`` decision leaves as a high-risk system's gateway writes them (fresh decision id,
    timestamp and salts each; a kept payload's reference), actions rotated."""
    pool = []
    for i in range(size):
        _, action, findings = actions[i % len(actions)]
        decision = policies.evaluate(action, findings=findings)
        ref = base64.b64encode(hashlib.sha256(decision.decision_id.encode()).digest()).decode()
        pool.append(decision_leaf(decision, action, risk_tier="high", salts=new_salts(), detail="full",
                                  sampling={"rate": 1, "selected": True}, payload_ref=ref))
    return pool


# ------------------------------------------------------------------------------------ helpers


def percentile(ordered: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-int(q * 10_000) * len(ordered) // 10_000))
    return float(ordered[min(rank, len(ordered)) - 1])


def summary_ms(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    ms = 1e6
    return {
        "p50_ms": percentile(ordered, 0.50) / ms,
        "p99_ms": percentile(ordered, 0.99) / ms,
        "p999_ms": percentile(ordered, 0.999) / ms,
        "max_ms": (ordered[-1] / ms) if ordered else float("nan"),
        "mean_ms": (statistics.fmean(ordered) / ms) if ordered else float("nan"),
    }


def machine() -> dict[str, Any]:
    return {
        **describe(),
        "sqlite": sqlite3.sqlite_version,
    }


class CountingStore:
    """Passes everything to a store and notes the size and end time of each ``append`` (batch)."""

    def __init__(self, store: AuditStore) -> None:
        self.inner = store
        self.batches: list[tuple[int, int]] = []  # (end ns, leaves); only the writer thread appends

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        result = self.inner.append(leaves, payloads)
        self.batches.append((pc(), len(leaves)))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run_threads(threads: int, warmup: float, seconds: float,
                work: Callable[[int], object]) -> tuple[list[int], int, int, int, float]:
    """Call ``work(i)`` in a loop from ``threads`` threads for ``warmup`` + ``seconds``; return the
    durations (ns) of the calls that ended inside the timed window, the window (start, end) in ns,
    the number of failed calls and this process's CPU share of the window."""
    stop = threading.Event()
    ready = threading.Barrier(threads + 1)
    ends: list[list[int]] = [[] for _ in range(threads)]
    took: list[list[int]] = [[] for _ in range(threads)]
    errors = [0] * threads

    def worker(k: int) -> None:
        my_ends, my_took = ends[k], took[k]
        i = k * 7919
        ready.wait()
        while not stop.is_set():
            t0 = pc()
            try:
                work(i)
            except (AuditUnavailable, LictorError):
                errors[k] += 1
                continue
            t1 = pc()
            my_ends.append(t1)
            my_took.append(t1 - t0)
            i += 1

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    ready.wait()
    time.sleep(warmup)
    start, cpu0 = pc(), time.process_time()
    time.sleep(seconds)
    end, cpu1 = pc(), time.process_time()
    stop.set()
    for t in pool:
        t.join()
    samples = [d for e, d in zip(_flat(ends), _flat(took), strict=True) if start <= e < end]
    return samples, start, end, sum(errors), (cpu1 - cpu0) / ((end - start) / 1e9)


def _flat(lists: list[list[int]]) -> list[int]:
    return [x for part in lists for x in part]


# ------------------------------------------------------------------------------------ 1. appends


def bench_appends(store_name: str, store: AuditStore, threads: int, seconds: float,
                  pool: list[dict[str, Any]]) -> dict[str, Any]:
    counting = CountingStore(store)
    log = AuditLog(store=counting, signer=None, max_batch=MAX_BATCH, max_delay=MAX_DELAY)  # type: ignore[arg-type]
    log.start()
    size_before = store.state().size
    try:
        samples, start, end, errors, cpu = run_threads(
            threads, min(1.0, seconds / 4), seconds, lambda i: log.append(pool[i % len(pool)]))
    finally:
        log.close()
    elapsed = (end - start) / 1e9
    batches = [n for e, n in counting.batches if start <= e < end]
    leaves_in_batches = sum(batches)
    return {
        "step": "append",
        "store": store_name,
        "threads": threads,
        "leaves": len(samples),
        "seconds": elapsed,
        "per_s": len(samples) / elapsed,
        **summary_ms(samples),
        "store_appends": len(batches),
        "mean_batch": leaves_in_batches / len(batches) if batches else float("nan"),
        "max_batch_seen": max(batches, default=0),
        "appends_per_leaf": len(batches) / leaves_in_batches if leaves_in_batches else float("nan"),
        "errors": errors,
        "cpu_share": cpu,
        "log_size_after": store.state().size - size_before,
    }


def run_appends(name: str, opener: Callable[[], AuditStore], thread_counts: list[int],
                seconds: float, pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for threads in thread_counts:
        store = opener()
        try:
            store.append([encode_leaf(pool[0])], [None])  # connection, schema and caches warm
            row = bench_appends(name, store, threads, seconds, pool)
        finally:
            store.close()
        rows.append(row)
        print(f"  append {name:10} {threads:3} threads: {row['per_s']:9,.0f} leaves/s  p50 "
              f"{row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  p99.9 {row['p999_ms']:.2f} ms  "
              f"mean batch {row['mean_batch']:.1f}  errors {row['errors']}", flush=True)
    return rows


# ------------------------------------------------------------------------------------ 2. decide


def bench_decide(tmp: Path, actions: list[tuple[str, Action, tuple[Finding, ...]]],
                 policies: PolicySet, seconds: float) -> list[dict[str, Any]]:
    rows = []
    # policy evaluation alone, for reference: what decide adds is the leaf and the durable append
    samples, start, end, errors, cpu = run_threads(
        1, min(1.0, seconds / 4), seconds,
        lambda i: policies.evaluate(actions[i % len(actions)][1], findings=actions[i % len(actions)][2]))
    rows.append({"step": "evaluate only", "store": "-", "threads": 1, "leaves": len(samples),
                 "seconds": (end - start) / 1e9, "per_s": len(samples) / ((end - start) / 1e9),
                 **summary_ms(samples), "errors": errors, "cpu_share": cpu})
    gateway = Gateway.open(policies=POLICIES, database=f"sqlite:///{tmp / 'decide.db'}",
                           key_file=tmp / "decide.key", payload_key_file=tmp / "decide-payload.key",
                           origin=ORIGIN)
    unaudited = [0]

    def decide(i: int) -> None:
        _, action, findings = actions[i % len(actions)]
        decision = gateway.decide(action, findings=findings)
        if decision.audit is None:  # fail closed: the log did not take the leaf
            unaudited[0] += 1

    try:
        for threads in (1, 16):
            unaudited[0] = 0
            samples, start, end, errors, cpu = run_threads(
                threads, min(1.0, seconds / 4), seconds, decide)
            elapsed = (end - start) / 1e9
            rows.append({"step": "decide", "store": "sqlite", "threads": threads,
                         "leaves": len(samples), "seconds": elapsed, "per_s": len(samples) / elapsed,
                         **summary_ms(samples), "errors": errors + unaudited[0], "cpu_share": cpu})
            r = rows[-1]
            print(f"  decide sqlite     {threads:3} threads: {r['per_s']:9,.0f} decisions/s  p50 "
                  f"{r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  not audited {unaudited[0]}",
                  flush=True)
    finally:
        gateway.close()
    return rows


# ------------------------------------------------------------------------------------ 3. verify


def bench_verify(tmp: Path, pool: list[dict[str, Any]], runs: int = 5) -> dict[str, Any]:
    data = [encode_leaf(leaf) for leaf in pool]
    store = open_store(f"sqlite:///{tmp / 'verify.db'}")
    signer = FileSigner.create(tmp / "verify.key", ORIGIN)
    try:
        written = 0
        while written < VERIFY_LEAVES - 1:
            n = min(MAX_BATCH, VERIFY_LEAVES - 1 - written)
            store.append([data[(written + k) % len(data)] for k in range(n)], [None] * n)
            written += n
        log = AuditLog(store=store, signer=signer)
        log.checkpoint()  # the seal leaf (index 99,999) and one signed checkpoint of all 100,000
        log.close()
        t0 = pc()
        leaves = store.leaves(0, store.state().size)
        notes = [c.note for c in store.checkpoints()]
        read_s = (pc() - t0) / 1e9
    finally:
        store.close()
    times = []
    for _ in range(runs):
        t0 = pc()
        report = verify_log(leaves, notes, [signer.verifier], origin=ORIGIN)
        times.append((pc() - t0) / 1e9)
    median = statistics.median(times)
    row = {"step": "verify", "store": "sqlite", "threads": 1, "leaves": report.leaves,
           "checkpoints": report.checkpoints, "leaf_types": report.leaf_types,
           "mean_leaf_bytes": statistics.fmean(len(x) for x in leaves),
           "seconds_each": times, "per_s": report.leaves / median,
           "best_per_s": report.leaves / min(times), "read_back_s": read_s,
           "read_back_per_s": len(leaves) / read_s}
    print(f"  verify {report.leaves:,} leaves, {report.checkpoints} checkpoint: "
          f"{row['per_s']:,.0f} entries/s (median of {runs}; best {row['best_per_s']:,.0f}); "
          f"read back {read_s:.2f} s", flush=True)
    return row


# ------------------------------------------------------------------------------------ main


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(f"{'step':<14} {'store':<10} {'thr':>3} {'per s':>10} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99.9 ms':>8} {'max ms':>7} {'mean batch':>10} {'appends/leaf':>12} {'errors':>6} "
          f"{'CPU':>5}")
    for r in rows:
        if r["step"] == "verify":
            print(f"{'verify':<14} {r['store']:<10} {1:>3} {r['per_s']:>10,.0f}   "
                  f"({r['leaves']:,} leaves, {r['checkpoints']} signed checkpoint, "
                  f"{r['mean_leaf_bytes']:.0f} B/leaf; median of {len(r['seconds_each'])} runs)")
            continue
        batch = f"{r['mean_batch']:>10.1f} {r['appends_per_leaf']:>12.4f}" if "mean_batch" in r \
            else f"{'':>10} {'':>12}"
        print(f"{r['step']:<14} {r['store']:<10} {r['threads']:>3} {r['per_s']:>10,.0f} "
              f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['p999_ms']:>8.2f} {r['max_ms']:>7.2f} "
              f"{batch} {r['errors']:>6} {100 * r['cpu_share']:>4.0f}%")


def print_targets(rows: list[dict[str, Any]]) -> None:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("\nproject targets (for comparison; nothing here is asserted):")
    for r in rows:
        if r["step"] == "append" and r["store"] == "sqlite":
            print(f"  SQLite append, {r['threads']:>2} threads: {r['per_s']:,.0f} durable leaves/s "
                  f"(>= 10,000: {met(r['per_s'] >= 10_000)}), p99 {r['p99_ms']:.2f} ms "
                  f"(<= 10 ms: {met(r['p99_ms'] <= 10)})")
        if r["step"] == "decide":
            print(f"  SQLite decide, {r['threads']:>2} threads: {r['per_s']:,.0f} durable decisions/s "
                  f"(>= 10,000: {met(r['per_s'] >= 10_000)}), p99 {r['p99_ms']:.2f} ms")
        if r["step"] == "verify":
            print(f"  verify_log: {r['per_s']:,.0f} entries/s (>= 100,000: {met(r['per_s'] >= 100_000)})")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="timed seconds per cell, after a warm-up of a quarter of it, at most 1 s (5)")
    ap.add_argument("--threads", default="1,16,64", help="thread counts of the append cells (1,16,64)")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="PostgreSQL URL; a fresh schema is made in it and dropped afterwards")
    ap.add_argument("--only", choices=["sqlite", "postgres", "verify"], default=None,
                    help="sqlite: skip PostgreSQL; postgres: only the PostgreSQL append cells;\n"
                         "verify: only offline verification")
    ap.add_argument("--verify-runs", type=int, default=5,
                    help="timed verify_log runs over the same leaves; the figure is their median (5)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    thread_counts = [int(x) for x in args.threads.split(",") if x.strip()]

    info = machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}, "
          f"SQLite {info['sqlite']}")
    policies = load_policies(POLICIES)
    actions, skipped = load_actions()
    pool = leaf_pool(policies, actions, 4096)
    sizes = [len(encode_leaf(leaf)) for leaf in pool]
    print(f"inputs: {len(actions)} example actions (skipped as invalid: {', '.join(skipped) or 'none'}), "
          f"{len(pool)} decision leaves of {min(sizes)}-{max(sizes)} bytes "
          f"(mean {statistics.fmean(sizes):.0f}); max_batch {MAX_BATCH}, max_delay "
          f"{MAX_DELAY * 1000:g} ms", flush=True)

    rows: list[dict[str, Any]] = []
    started, cpu_started, load_before = time.perf_counter(), time.process_time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lictor-bench-") as tmpname:
        tmp = Path(tmpname)
        if args.only in (None, "sqlite"):
            counter = iter(range(1_000_000))
            rows += run_appends("sqlite", lambda: open_store(f"sqlite:///{tmp / f'a{next(counter)}.db'}"),
                                thread_counts, args.seconds, pool)
        if args.only in (None, "postgres"):
            import psycopg
            from psycopg import sql

            schema = f"lictor_bench_{secrets.token_hex(4)}"
            sep = "&" if "?" in args.postgres else "?"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                info["postgresql"] = row[0] if row else "unknown"
            print(f"  PostgreSQL {info['postgresql']}, schema {schema}", flush=True)
            try:
                rows += run_appends("postgresql", lambda: open_store(f"{args.postgres}{sep}schema={schema}"),
                                    thread_counts, args.seconds, pool)
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        if args.only in (None, "sqlite"):
            rows += bench_decide(tmp, actions, policies, args.seconds)
        if args.only in (None, "sqlite", "verify"):
            rows.append(bench_verify(tmp, pool, args.verify_runs))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    load_after = os.getloadavg()

    print_table(rows)
    print_targets(rows)
    print(f"\ntotal {wall:.0f} s wall, {cpu:.0f} s CPU of this process ({100 * cpu / wall:.0f}%); "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if args.json:
        report = {
            "command": "python bench/audit.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": info,
            "max_batch": MAX_BATCH,
            "max_delay_s": MAX_DELAY,
            "leaf_bytes": {"min": min(sizes), "max": max(sizes), "mean": statistics.fmean(sizes)},
            "actions": [name for name, _, _ in actions],
            "results": rows,
            "wall_s": wall,
            "cpu_s": cpu,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
