#!/usr/bin/env python3
"""Durable appends per second of the audit stores (SQLite WAL + FULL, PostgreSQL synchronous_commit=on).

Each ``append`` call is one batch and one durable transaction, from one thread; leaves are 442-byte
JSON-like entries, one in eight with a payload and a subject. The
SQLite file goes to a temporary directory (``--dir`` to choose the disk); PostgreSQL gets a fresh
schema that is dropped afterwards.

    python bench/audit_store.py [--batches 1,16,256] [--seconds S] [--postgres URL] [--dir DIR]
                                [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lictor.audit.port import AuditStore, Payload
from lictor.store import open_store


def entry(n: int) -> bytes:
    body = f'{{"decision_id":"{n:032x}","kind":"tool_call","system":"payments","verdict":"ALLOW",'
    return (body + '"pad":"' + "x" * (442 - len(body) - 10) + '"}').encode()[:442]


def measure(store: AuditStore, batch: int, seconds: float) -> tuple[int, float]:
    """Append batches of ``batch`` leaves for about ``seconds``; return (appends, elapsed)."""
    n = 0
    appends = 0
    begin = time.perf_counter()
    while True:
        leaves = [entry(n + i) for i in range(batch)]
        payloads = [Payload(b"c" * 64, "k1", (secrets.token_bytes(32),)) if (n + i) % 8 == 0 else None
                    for i in range(batch)]
        store.append(leaves, payloads)
        n += batch
        appends += 1
        elapsed = time.perf_counter() - begin
        if elapsed >= seconds and appends >= 3:
            return appends, elapsed


def run(name: str, opener: Callable[[], AuditStore], batches: list[int], seconds: float) -> None:
    for batch in batches:
        store = opener()
        try:
            store.append([entry(-1)], [None])  # warm-up: connection, schema, caches
            appends, elapsed = measure(store, batch, seconds)
        finally:
            store.close()
        print(f"{name:10} batch {batch:4}: {appends / elapsed:9,.0f} appends/s"
              f" {appends * batch / elapsed:10,.0f} leaves/s  ({appends} appends in {elapsed:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", default="1,16,256")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--dir", default=None)
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            counter = iter(range(1_000_000))
            run("sqlite", lambda: open_store(f"sqlite:///{Path(tmp) / f'a{next(counter)}.db'}"),
                batches, args.seconds)
    if args.only in (None, "postgres"):
        import psycopg
        from psycopg import sql

        schema = f"lictor_bench_{secrets.token_hex(4)}"
        sep = "&" if "?" in args.postgres else "?"
        try:
            run("postgresql", lambda: open_store(f"{args.postgres}{sep}schema={schema}"), batches,
                args.seconds)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
