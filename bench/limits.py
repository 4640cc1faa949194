#!/usr/bin/env python3
"""Latency of one ``limit`` hit: the in-process counters against Redis, from one thread and from several.

Each hit is what a ``limit`` rule does per decision: ``hit(key, now, window=3600, cap=11)`` over
``--keys`` keys in turn, the clock advancing 1 ms a hit. Redis gets a fresh key prefix whose keys are
deleted afterwards. Times are wall clock per call (``time.perf_counter_ns``), after a warm-up.

    python bench/limits.py [--hits N] [--keys K] [--threads T] [--redis URL] [--only memory|redis]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import threading
import time
from collections.abc import Callable

from lictor.policy import InMemoryLimitStore, LimitStore
from lictor.store.redis import RedisLimitStore
from machine import describe

__all__ = ["main", "measure"]

T0 = 1_790_000_000.0


def measure(store: LimitStore, hits: int, keys: int, threads: int) -> list[int]:
    """Nanoseconds per hit, ``hits`` from each of ``threads`` threads started together."""
    times: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        mine = []
        clock = time.perf_counter_ns
        barrier.wait()
        for i in range(hits):
            key = f"bench/rule\x00agent-{(i * threads + n) % keys}"
            begin = clock()
            store.hit(key, now=T0 + i / 1000, window=3600, cap=11)
            mine.append(clock() - begin)
        with lock:
            times.extend(mine)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return times


def report(name: str, open_store: Callable[[], LimitStore], hits: int, keys: int, threads: int) -> None:
    store = open_store()
    measure(store, min(hits, 2000), keys, 1)  # warm-up: connections, script load
    begin = time.perf_counter()
    times = sorted(measure(store, hits, keys, threads))
    elapsed = time.perf_counter() - begin
    close = getattr(store, "close", None)
    if close is not None:
        close()
    p50 = statistics.median(times) / 1000
    p99 = times[int(len(times) * 0.99)] / 1000
    print(f"{name:6} threads {threads}: p50 {p50:8.1f} µs  p99 {p99:8.1f} µs  "
          f"{len(times) / elapsed:10,.0f} hits/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hits", type=int, default=20_000, help="hits per thread")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--only", choices=["memory", "redis"], default=None)
    args = parser.parse_args()
    info = describe()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}")
    prefix = f"lictor-bench-{secrets.token_hex(4)}"
    url = f"{args.redis}{'&' if '?' in args.redis else '?'}prefix={prefix}"
    for threads in (int(t) for t in args.threads.split(",")):
        if args.only in (None, "memory"):
            report("memory", InMemoryLimitStore, args.hits, args.keys, threads)
        if args.only in (None, "redis"):
            report("redis", lambda: RedisLimitStore(url), args.hits, args.keys, threads)
    if args.only in (None, "redis"):
        cleaner = RedisLimitStore(url)
        cleaner.clear()
        cleaner.close()


if __name__ == "__main__":
    main()
