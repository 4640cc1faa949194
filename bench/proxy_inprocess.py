#!/usr/bin/env python3
"""The LLM proxy's own cost per request, without an HTTP server or client sockets in the way: the ASGI
app called directly, in this process, for chat completions forwarded to the fake provider of
``bench/proxy.py`` (in a process of its own), one request after the other.

It prints the wall time and the CPU time of this whole process (the audit writer thread included)
per request; ``--profile N`` prints cProfile's N costliest functions of the event loop's thread
(cumulative and own time), which is how the proxied request path was profiled. The settings are
those of ``bench/proxy.py``: ``sync`` (every record durable before the answer moves on) or
``async-low`` (a low-risk system with ``audit.durability: async``).

    python bench/proxy_inprocess.py [--mode sync|async-low] [--requests 2000] [--profile 40]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package, which Starlette needs: this
# directory goes last on the path (it still provides proxy.py and machine.py)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import proxy as bench  # noqa: E402
from machine import describe  # noqa: E402

__all__ = ["main"]


def _app(home: Path, upstream: int, mode: str) -> tuple[Any, str]:
    """The app ``lictor serve`` would run with ``bench/proxy.py``'s settings, and an agent key."""
    extra = "systems:\n  bench-bot: {risk: low}\n" if mode == "async-low" else ""
    durability = "async" if mode == "async-low" else "sync"
    config = home / "lictor.yaml"
    config.write_text(
        f"database: sqlite:///{home / 'lictor.db'}\npolicies: {bench.EXAMPLES / 'policies'}\n{extra}"
        f"audit:\n  key_file: {home / 'audit.key'}\n  payload_key_file: {home / 'payload.key'}\n"
        f"  durability: {durability}\n"
        "proxy:\n  system: bench-bot\n  upstreams:\n"
        f"    fake: {{base_url: 'http://127.0.0.1:{upstream}/v1', api_key_env: BENCH_UPSTREAM_KEY}}\n")
    for name in [name for name in os.environ if name.startswith("LICTOR_")]:
        del os.environ[name]
    os.environ["BENCH_UPSTREAM_KEY"] = "sk-bench-upstream"
    key = subprocess.run([sys.executable, "-m", "lictor", "keys", "create", "--scope", "agent", "--config",
                          str(config)], cwd=home, check=True, capture_output=True, text=True).stdout.strip()
    os.environ["LICTOR_CONFIG"] = str(config)
    from lictor.http import app_from_env

    return app_from_env(), key


async def _drive(app: Any, key: str, requests: int, profile: int) -> None:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode()),
               (b"content-type", b"application/json"), (b"content-length", str(len(bench.REQUEST)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "root_path": "",
             "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}

    async def one() -> None:
        delivered = False
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bench.REQUEST, "more_body": False}
            await asyncio.Event().wait()  # no disconnect: wait until cancelled
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(dict(scope, state={}), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"the proxy answered {sent[0]['status']}: {sent[1].get('body', b'')[:300]!r}")

    for _ in range(200):  # warm-up: connections, caches
        await one()
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    for _ in range(requests):
        await one()
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{requests} requests: wall {wall / requests * 1000:.3f} ms, CPU (whole process) "
          f"{cpu / requests * 1000:.3f} ms per request{' (under cProfile)' if profiler else ''}")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(profile)
        stats.sort_stats("tottime").print_stats(profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["sync", "async-low"], default="sync", help="bench/proxy.py's settings")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests, one after the other")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's N costliest functions")
    args = parser.parse_args(argv)
    print(describe())
    try:
        import uvloop
    except ImportError:  # the `fast` extra is not installed: the standard event loop
        uvloop = None
    with tempfile.TemporaryDirectory(prefix="lictor-bench-proxy-") as tmp:
        workdir = Path(tmp)
        upstream = bench.start_upstream(workdir)
        try:
            home = workdir / f"lictor-{args.mode}"
            home.mkdir()
            app, key = _app(home, upstream.port, args.mode)
            runner = uvloop.run if uvloop is not None else asyncio.run
            runner(_drive(app, key, args.requests, args.profile))
        finally:
            bench.stop(upstream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
