#!/usr/bin/env python3
"""Latency the LLM proxy adds: chat completions at a fixed open-loop rate, sent directly to a local fake
provider and through ``lictor serve``'s proxy (and LiteLLM's proxy, when installed), in the same run.

The fake provider is an asyncio HTTP/1.1 server in a process of its own that answers every
``POST /v1/chat/completions`` at once with the same small ``chat.completion``. Lictor runs in its own
process (``lictor serve``, SQLite in a temporary directory, the example policies, one worker) in two
configurations: ``sync`` (the defaults: every decision's record is durable before the answer moves on)
and ``async-low`` (the proxied system is low risk and ``audit.durability: async``, so ALLOW and LOG
decisions return once queued). Each proxied request is two decisions (the request and the answer).

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened to the others, and its
latency is measured from that due time, so a stalled server is charged for the queue it causes. Each
target gets a warm-up second, then ``--seconds`` of load; targets run one after the other, in rounds
(``--rounds``), and the figures pool the rounds. "added" is the target's percentile minus the direct
call's.

    python bench/proxy.py [--rate 200] [--seconds 10] [--rounds 2] [--no-litellm] [--json FILE]

LiteLLM's proxy is measured when a ``litellm`` command with its proxy extra is found (``--litellm PATH``,
else beside this Python, else on PATH): ``pip install 'lictor[bench-litellm]'``. It runs with one
worker, a master key (it refuses to start without one), no database, its bundled model cost map and
otherwise default settings, forwarding to the same fake provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from machine import cpu_seconds, describe, free_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL = "gpt-bench"
REQUEST = json.dumps({"model": MODEL, "max_tokens": 64, "temperature": 0.2,
                      "messages": [{"role": "system", "content": "You are a helpful support assistant."},
                                   {"role": "user", "content": "What are your opening hours on Saturday?"}]}).encode()
ANSWER = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
                     "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": "We are open from 9 to 17 on Saturday."}}],
                     "usage": {"prompt_tokens": 24, "completion_tokens": 11, "total_tokens": 35}}).encode()


# --------------------------------------------------------------------------- the fake provider


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            writer.write(response)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _serve_upstream(port: int) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- the processes


@dataclass
class Target:
    name: str
    port: int
    path: str
    key: str | None = None
    process: subprocess.Popen[bytes] | None = None




def _wait_ready(port: int, path: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{log.name}: the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _spawn(command: list[str], workdir: Path, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_upstream(workdir: Path) -> Target:
    port = free_port()
    process = _spawn([sys.executable, __file__, "--serve-upstream", str(port)], workdir, "upstream", dict(os.environ))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the fake provider did not start") from None
            time.sleep(0.1)
    return Target("direct", port, "/v1/chat/completions", process=process)


def start_lictor(workdir: Path, upstream: int, mode: str) -> Target:
    home = workdir / f"lictor-{mode}"
    home.mkdir()
    extra = "systems:\n  bench-bot: {risk: low}\n" if mode == "async-low" else ""
    durability = "async" if mode == "async-low" else "sync"
    config = home / "lictor.yaml"
    config.write_text(
        f"database: sqlite:///{home / 'lictor.db'}\npolicies: {EXAMPLES / 'policies'}\n{extra}"
        f"audit:\n  key_file: {home / 'audit.key'}\n  payload_key_file: {home / 'payload.key'}\n"
        f"  durability: {durability}\n"
        "proxy:\n  system: bench-bot\n  upstreams:\n"
        f"    fake: {{base_url: 'http://127.0.0.1:{upstream}/v1', api_key_env: BENCH_UPSTREAM_KEY}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    env["BENCH_UPSTREAM_KEY"] = "sk-bench-upstream"
    lictor = [sys.executable, "-m", "lictor"]
    key = subprocess.run([*lictor, "keys", "create", "--scope", "agent", "--config", str(config)], env=env,
                         cwd=home, check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    process = _spawn([*lictor, "serve", "--config", str(config), "--port", str(port)], home, "serve", env)
    _wait_ready(port, "/readyz", process, home / "serve.log")
    return Target(f"lictor {mode}", port, "/v1/chat/completions", key=key, process=process)


def find_litellm(given: str | None) -> str | None:
    if given:
        return given
    beside = Path(sys.executable).with_name("litellm")
    return str(beside) if beside.exists() else shutil.which("litellm")


def start_litellm(workdir: Path, upstream: int, command: str) -> Target:
    home = workdir / "litellm"
    home.mkdir()
    config = home / "config.yaml"
    config.write_text(f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n"
                      f"      api_base: http://127.0.0.1:{upstream}/v1\n      api_key: sk-bench-upstream\n")
    port = free_port()
    master = "sk-bench-" + os.urandom(16).hex()  # it refuses to start without one; clients present it
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "TELEMETRY": "False",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": master}
    process = _spawn([command, "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
                      "--num_workers", "1"], home, "litellm", env)
    _wait_ready(port, "/health/liveliness", process, home / "litellm.log")
    return Target("litellm", port, "/v1/chat/completions", key=master, process=process)


def stop(target: Target) -> None:
    if target.process is None:
        return
    os.killpg(target.process.pid, 15)
    try:
        target.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(target.process.pid, 9)
        target.process.wait()


# --------------------------------------------------------------------------- the client


class Pool:
    """HTTP/1.1 keep-alive connections over asyncio streams; one request per connection at a time."""

    def __init__(self, target: Target) -> None:
        self.port = target.port
        auth = f"Authorization: Bearer {target.key}\r\n" if target.key else ""
        self.head = (f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n{auth}"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, body: bytes) -> tuple[int, bytes]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not (reader.at_eof() or writer.is_closing()):
                break
            writer.close()  # the server closed it while idle (uvicorn after 5 s): as HTTP clients do, drop it
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                data += await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            data = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status, data

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, from the due time
    errors: int = 0
    first_error: str = ""  # what the first failed request got back (status and body, or the exception)
    sent: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds the target's processes used under load

    def cpu_ms(self) -> float:
        return self.cpu / self.sent * 1000 if self.sent else float("nan")

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def _open_loop(target: Target, rate: float, seconds: float, result: Result | None) -> None:
    pool = Pool(target)
    count = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []

    async def one(due: float) -> None:
        try:
            status, data = await pool.send(REQUEST)
            ok = status == 200 and b'"choices"' in data
            failure = f"HTTP {status}: {data[:300].decode('utf-8', 'replace')}"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            ok = False
            failure = f"{type(exc).__name__}: {exc}"
        if result is not None:
            result.sent += 1
            if ok:
                result.latencies.append(time.perf_counter() - due)
            else:
                result.errors += 1
                result.first_error = result.first_error or failure

    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    if result is not None:
        result.seconds += time.perf_counter() - start
    await pool.close()


def run(target: Target, rate: float, seconds: float, result: Result) -> None:
    asyncio.run(_open_loop(target, rate, 1.0, None))  # warm-up: connections, imports, caches
    before = cpu_seconds(target.process.pid) if target.process else 0.0
    asyncio.run(_open_loop(target, rate, seconds, result))
    result.cpu += (cpu_seconds(target.process.pid) if target.process else 0.0) - before


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per target and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the targets, pooled")
    parser.add_argument("--litellm", help="the litellm command (default: beside this Python, else on PATH)")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        asyncio.run(_serve_upstream(args.serve_upstream))
        return 0

    print(describe())
    with tempfile.TemporaryDirectory(prefix="lictor-bench-proxy-") as tmp:
        workdir = Path(tmp)
        upstream = start_upstream(workdir)
        targets = [upstream]
        try:
            targets += [start_lictor(workdir, upstream.port, "sync"), start_lictor(workdir, upstream.port, "async-low")]
            command = None if args.no_litellm else find_litellm(args.litellm)
            if args.no_litellm:
                print("litellm: left out (--no-litellm)")
            elif command is None:
                print("litellm: not measured: no `litellm` command found (pip install 'lictor[bench-litellm]')")
            else:
                try:
                    targets.append(start_litellm(workdir, upstream.port, command))
                except SystemExit as exc:
                    print(f"litellm: not measured: {str(exc)[:800]}")
            results = {t.name: Result(t.name) for t in targets}
            for round_ in range(args.rounds):
                for target in targets:
                    print(f"round {round_ + 1}: {target.name} at {args.rate:g}/s for {args.seconds:g} s", flush=True)
                    run(target, args.rate, args.seconds, results[target.name])
        finally:
            for target in reversed(targets):
                stop(target)
    direct = results["direct"]
    print(f"\n{'target':<18}{'sent':>7}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'max ms':>9}"
          f"{'cpu ms/req':>11}{'added p50':>11}{'added p99':>11}")
    rows = []
    for result in results.values():
        row = {"target": result.name, "sent": result.sent, "errors": result.errors,
               "p50_ms": result.pct(0.5), "p99_ms": result.pct(0.99), "p999_ms": result.pct(0.999),
               "max_ms": result.pct(1.0), "cpu_ms_per_request": result.cpu_ms(), "added_p50_ms": result.pct(0.5) - direct.pct(0.5),
               "added_p99_ms": result.pct(0.99) - direct.pct(0.99)}
        rows.append(row)
        added = ("" if result is direct else f"{row['added_p50_ms']:>11.2f}{row['added_p99_ms']:>11.2f}")
        print(f"{result.name:<18}{result.sent:>7}{result.errors:>8}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
              f"{row['p999_ms']:>10.2f}{row['max_ms']:>9.2f}{result.cpu_ms():>11.2f}{added}")
    for result in results.values():
        if result.first_error:
            print(f"{result.name}: first error of {result.errors}: {result.first_error}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds,
                                               "rows": rows}, indent=2))
    return 1 if any(r.errors for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
