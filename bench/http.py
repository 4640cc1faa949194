#!/usr/bin/env python3
"""Load on ``POST /v1/decide`` of a real ``lictor serve``: fixed open-loop rates and a closed-loop maximum.

The script starts the server in a process of its own (SQLite in a temporary directory, the example
policies, a fresh agent key, ``audit.durability: sync``) and drives it from this process with an
asyncio HTTP/1.1 client over a pool of keep-alive connections. Open loop: request ``i`` of a rate
``r`` is due at ``start + i / r`` whatever happened to the others, and its latency is measured from
that due time (so a stalled server is charged for the queue it causes, not hidden by it). Closed
loop: ``--concurrency`` requests in flight at all times. Every step reports the achieved rate,
p50/p99/p99.9/max latency, errors (any answer but 200 with an audit index) and the CPU the server's
processes and this client used.

    python bench/http.py [--rates 250,500,1000,2000] [--seconds S] [--concurrency C] [--workers N]
                         [--client raw|httpx] [--only open|closed] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machine import describe

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    key: str
    workdir: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and every process under it (its workers), from /proc."""
        total = 0.0
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        return total


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [d for c in children for d in (c, *_descendants(c))]


def start_server(workdir: Path, workers: int) -> Server:
    config = workdir / "lictor.yaml"
    config.write_text(
        f"database: sqlite:///{workdir / 'lictor.db'}\npolicies: {EXAMPLES / 'policies'}\n"
        f"audit:\n  key_file: {workdir / 'audit.key'}\n  payload_key_file: {workdir / 'payload.key'}\n"
        "  durability: sync\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    lictor = [sys.executable, "-m", "lictor"]
    key = subprocess.run([*lictor, "keys", "create", "--scope", "agent", "--config", str(config)], env=env,
                         cwd=workdir, check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen([*lictor, "serve", "--config", str(config), "--port", str(port),
                                "--workers", str(workers)], env=env, cwd=workdir, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{(workdir / 'serve.log').read_text()}")
        time.sleep(0.1)
    return Server(process, port, key, workdir)


def stop_server(server: Server) -> None:
    os.killpg(server.process.pid, 15)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, 9)
        server.process.wait()


# --------------------------------------------------------------------------- the clients


def bodies() -> list[bytes]:
    """The valid example actions, as request bodies (``typo.json`` is invalid on purpose)."""
    out = []
    for path in sorted((EXAMPLES / "actions").glob("*.json")):
        if path.name.endswith(".findings.json") or path.name == "typo.json":
            continue
        out.append(json.dumps(json.loads(path.read_text())).encode())
    out += [line.encode() for line in (EXAMPLES / "actions" / "batch.jsonl").read_text().splitlines() if line.strip()]
    return out


class RawPool:
    """HTTP/1.1 keep-alive connections over asyncio streams; one request per connection at a time."""

    def __init__(self, port: int, key: str, limit: int) -> None:
        self.port = port
        self.head = (f"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def decide(self, body: bytes) -> tuple[int, bytes]:
        async with self.slots:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.opened += 1
            writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            data = await reader.readexactly(length)
            self.idle.append((reader, writer))
            return status, data

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


class HttpxPool:
    """The same requests through one pooled ``httpx.AsyncClient``."""

    def __init__(self, port: int, key: str, limit: int) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))
        self.opened = 0

    async def decide(self, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post("/v1/decide", content=body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


Pool = RawPool | HttpxPool


# --------------------------------------------------------------------------- one step


@dataclass
class Step:
    name: str
    target: float | None
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    late_sends: int = 0

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def q(p: float) -> float:
            return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

        return {"step": self.name, "target_per_s": self.target, "achieved_per_s": len(lat) / self.seconds,
                "requests": len(lat), "errors": self.errors, "error_kinds": self.error_kinds,
                "p50_ms": q(0.5), "p99_ms": q(0.99), "p999_ms": q(0.999), "max_ms": lat[-1] * 1000 if lat else None,
                "server_cpu_pct": 100 * self.server_cpu / self.seconds,
                "client_cpu_pct": 100 * self.client_cpu / self.seconds, "late_sends": self.late_sends}


def _check(step: Step, status: int, data: bytes) -> None:
    if status == 0:
        kind = f"client: {data.decode()}"
    elif status != 200:
        kind = f"HTTP {status}"
    elif b'"index":null' in data.replace(b" ", b"") or b'"audit":{' not in data.replace(b" ", b""):
        kind = "no audit index"
    else:
        return
    step.errors += 1
    step.error_kinds[kind] = step.error_kinds.get(kind, 0) + 1


async def _timed(pool: Pool, body: bytes, due: float, step: Step, record: bool) -> None:
    try:
        status, data = await pool.decide(body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        status, data = 0, type(exc).__name__.encode()
    done = time.perf_counter()
    if record:
        step.latencies.append(done - due)
        _check(step, status, data)


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(server: Server, pool: Pool, step: Step, run: Callable[[Step, float, float], Awaitable[None]],
                  warmup: float, seconds: float) -> Step:
    await run(step, warmup, 0.0)  # warm-up: not recorded
    cpu0, client0, t0 = server.cpu_seconds(), _client_cpu(), time.perf_counter()
    await run(step, seconds, 1.0)
    step.seconds = time.perf_counter() - t0
    step.server_cpu, step.client_cpu = server.cpu_seconds() - cpu0, _client_cpu() - client0
    return step


def open_loop(pool: Pool, rate: float, payloads: list[bytes]) -> Callable[[Step, float, float], Awaitable[None]]:
    async def run(step: Step, seconds: float, record: float) -> None:
        total = int(rate * seconds)
        start = time.perf_counter() + 0.01
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.001 and record:
                step.late_sends += 1  # the client itself could not keep up with this send
            tasks.append(asyncio.create_task(_timed(pool, payloads[i % len(payloads)], due, step, bool(record))))
        await asyncio.gather(*tasks)
    return run


def closed_loop(pool: Pool, concurrency: int, payloads: list[bytes]) -> Callable[[Step, float, float], Awaitable[None]]:
    async def run(step: Step, seconds: float, record: float) -> None:
        stop = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < stop:
                await _timed(pool, payloads[i % len(payloads)], time.perf_counter(), step, bool(record))
                i += concurrency
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return run


# --------------------------------------------------------------------------- main


def show(row: dict[str, Any]) -> None:
    target = f"{row['target_per_s']:>6,.0f}/s" if row["target_per_s"] else "  closed"
    print(f"{row['step']:<14} {target} achieved {row['achieved_per_s']:8,.0f}/s  p50 {row['p50_ms']:7.2f} ms  "
          f"p99 {row['p99_ms']:7.2f} ms  p99.9 {row['p999_ms']:7.2f} ms  max {row['max_ms'] or 0:7.1f} ms  "
          f"errors {row['errors']}  server CPU {row['server_cpu_pct']:4.0f}%  client CPU {row['client_cpu_pct']:4.0f}%"
          + (f"  late sends {row['late_sends']}" if row["late_sends"] else "")
          + (f"  {row['error_kinds']}" if row["error_kinds"] else ""), flush=True)


async def run_all(args: argparse.Namespace, server: Server) -> list[dict[str, Any]]:
    payloads = bodies()
    pool: Pool = (RawPool if args.client == "raw" else HttpxPool)(server.port, server.key, args.connections)
    rows = []
    try:
        if args.only in (None, "open"):
            for rate in (float(r) for r in args.rates.split(",")):
                step = await measure(server, pool, Step(f"open {rate:,.0f}/s", rate), open_loop(pool, rate, payloads),
                                     args.warmup, args.seconds)
                rows.append(step.row())
                show(rows[-1])
        if args.only in (None, "closed"):
            step = await measure(server, pool, Step(f"closed c={args.concurrency}", None),
                                 closed_loop(pool, args.concurrency, payloads), args.warmup, args.seconds)
            rows.append(step.row())
            show(rows[-1])
    finally:
        await pool.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="250,500,1000,2000", help="open-loop rates, requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per step")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each step")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in the closed loop")
    parser.add_argument("--connections", type=int, default=256, help="most connections the client opens")
    parser.add_argument("--workers", type=int, default=1, help="lictor serve --workers")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--only", choices=["open", "closed"], default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    info = describe()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}; "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="lictor-bench-http-") as tmp:
        server = start_server(Path(tmp), args.workers)
        try:
            print(f"server: lictor serve --workers {args.workers}, SQLite in {tmp}, durable audit (sync); "
                  f"client: {args.client}, one asyncio loop in this process", flush=True)
            rows = asyncio.run(run_all(args, server))
        finally:
            stop_server(server)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "steps": rows}, indent=1))


if __name__ == "__main__":
    main()
