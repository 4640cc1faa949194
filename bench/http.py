#!/usr/bin/env python3
"""Load on ``POST /v1/decide`` of a real ``lictor serve``: fixed open-loop rates and a closed-loop maximum.

The script starts the server in a process group of its own (SQLite in a temporary directory, or a
fresh schema in PostgreSQL with ``--database``; the example policies; a fresh agent key;
``audit.durability: sync``) and drives it from load generators in processes of their own, so the
server is measured, not the client sharing its interpreter:

- **Open loop** (``--rates``): a separate asyncio client process (uvloop when installed) where
  request ``i`` of a rate ``r`` is due at ``start + i / r`` whatever happened to the others, and its
  latency is counted from that due time, so a stalled server is charged for the queue it causes
  (corrected for coordinated omission, as wrk2 does).
- **Closed loop**: ``wrk`` with a Lua script for the POST bodies, ``--concurrency`` connections each
  with one request in flight (the maximum throughput); without ``wrk`` on the PATH, or with
  ``--closed-client python``, the same asyncio client keeps ``--concurrency`` requests in flight.

Every step reports the achieved rate, p50/p99/p99.9/max latency, errors (any answer but 200 with an
audit index, or a connection failure) and the CPU the server's processes and the client used.

    python bench/http.py [--rates 250,500,1000,2000] [--seconds S] [--concurrency C] [--workers N]
                         [--database sqlite|postgresql://...] [--http auto|h11|httptools]
                         [--loop auto|asyncio|uvloop] [--closed-client wrk|python] [--only open|closed]
                         [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import cpu_seconds, describe, free_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    key: str
    workdir: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and every process under it (its workers), from /proc."""
        return cpu_seconds(self.process.pid)


@contextmanager
def database(choice: str, workdir: Path) -> Iterator[str]:
    """The database URL for ``choice``: SQLite in ``workdir``, or a fresh schema (dropped afterwards)
    in the PostgreSQL database ``choice`` names."""
    if choice == "sqlite":
        yield f"sqlite:///{workdir / 'lictor.db'}"
        return
    import psycopg
    from psycopg import sql

    schema = f"lictor_bench_{secrets.token_hex(4)}"
    with psycopg.connect(choice, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{choice}{'&' if '?' in choice else '?'}schema={schema}"
    finally:
        with psycopg.connect(choice, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def start_server(workdir: Path, url: str, args: argparse.Namespace) -> Server:
    config = workdir / "lictor.yaml"
    config.write_text(
        f"database: {json.dumps(url)}\npolicies: {EXAMPLES / 'policies'}\n"
        f"audit:\n  key_file: {workdir / 'audit.key'}\n  payload_key_file: {workdir / 'payload.key'}\n"
        "  durability: sync\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    lictor = [sys.executable, "-m", "lictor"]
    key = subprocess.run([*lictor, "keys", "create", "--scope", "agent", "--config", str(config)], env=env,
                         cwd=workdir, check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    if args.http == "auto" and args.loop == "auto":
        command = [*lictor, "serve", "--config", str(config), "--port", str(port), "--workers", str(args.workers)]
    else:  # uvicorn's own command line, to choose its HTTP parser and event loop
        env["LICTOR_CONFIG"] = str(config)
        command = [sys.executable, "-m", "uvicorn", "--factory", "lictor.http:app_from_env", "--port", str(port),
                   "--http", args.http, "--loop", args.loop, "--no-access-log", "--workers", str(args.workers)]
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
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


def audit_batches(server: Server) -> tuple[float, float, float]:
    """(batches, leaves, flush seconds) so far, from the server's /metrics (one worker's, with several)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    values = {}
    for line in b"".join(chunks).decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("lictor_audit_batch_size_count", "lictor_audit_batch_size_sum", "lictor_audit_flush_seconds_sum"):
            values[name] = float(value)
    return (values.get("lictor_audit_batch_size_count", 0.0), values.get("lictor_audit_batch_size_sum", 0.0),
            values.get("lictor_audit_flush_seconds_sum", 0.0))


def stop_server(server: Server) -> None:
    os.killpg(server.process.pid, 15)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, 9)
        server.process.wait()


def bodies() -> list[bytes]:
    """The valid example actions, as request bodies (``typo.json`` is invalid on purpose)."""
    out = []
    for path in sorted((EXAMPLES / "actions").glob("*.json")):
        if path.name.endswith(".findings.json") or path.name == "typo.json":
            continue
        out.append(json.dumps(json.loads(path.read_text())).encode())
    out += [line.encode() for line in (EXAMPLES / "actions" / "batch.jsonl").read_text().splitlines() if line.strip()]
    return out


# --------------------------------------------------------------------------- the asyncio client (its own process)


def _ok(status: int, data: bytes) -> str | None:
    """None for a 200 that carries an audit index, else what went wrong."""
    if status != 200:
        return f"HTTP {status}"
    compact = data.replace(b" ", b"")
    if b'"audit":{"index":' not in compact or b'"index":null' in compact:
        return "no audit index"
    return None


#: Idle connections older than this are not reused: uvicorn closes them after 5 s (its keep-alive
#: timeout), and a request sent on a connection the server just closed fails.
KEEP_IDLE = 4.0


class Pool:
    """HTTP/1.1 keep-alive connections over asyncio streams; one request per connection at a time."""

    def __init__(self, port: int, key: str, limit: int) -> None:
        self.port = port
        self.head = (f"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(limit)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < KEEP_IDLE:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def decide(self, body: bytes) -> tuple[int, bytes]:
        async with self.slots:
            reader, writer = await self._connection()
            writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            data = await reader.readexactly(length)
            if close:
                writer.close()
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return status, data

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.late = 0

    async def send(self, pool: Pool, body: bytes, due: float) -> None:
        try:
            status, data = await pool.decide(body)
            problem = _ok(status, data)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            problem = f"client: {type(exc).__name__}"
        self.latencies.append(time.perf_counter() - due)
        if problem is not None:
            self.errors[problem] = self.errors.get(problem, 0) + 1


async def _open_loop(pool: Pool, tally: Tally, rate: float, seconds: float, payloads: list[bytes]) -> None:
    total = int(rate * seconds)
    start = time.perf_counter() + 0.01
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.001:
            tally.late += 1  # the client itself could not keep up with this send
        tasks.append(asyncio.ensure_future(tally.send(pool, payloads[i % len(payloads)], due)))
    await asyncio.gather(*tasks)


async def _closed_loop(pool: Pool, tally: Tally, concurrency: int, seconds: float, payloads: list[bytes]) -> None:
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            await tally.send(pool, payloads[i % len(payloads)], time.perf_counter())
            i += concurrency

    await asyncio.gather(*(worker(n) for n in range(concurrency)))


def client_main(spec: dict[str, Any]) -> None:
    """The load generator process: warm up, print ``timed``, run the step, print its figures as JSON."""
    payloads = bodies()

    async def run() -> dict[str, Any]:
        pool = Pool(spec["port"], spec["key"], spec["connections"])

        async def step(seconds: float, tally: Tally) -> None:
            if spec["mode"] == "open":
                await _open_loop(pool, tally, spec["rate"], seconds, payloads)
            else:
                await _closed_loop(pool, tally, spec["concurrency"], seconds, payloads)

        await step(spec["warmup"], Tally())
        print("timed", flush=True)
        tally = Tally()
        cpu0, t0 = _own_cpu(), time.perf_counter()
        await step(spec["seconds"], tally)
        elapsed, cpu = time.perf_counter() - t0, _own_cpu() - cpu0
        pool.close()
        return {"seconds": elapsed, "client_cpu": cpu, "late_sends": tally.late, "error_kinds": tally.errors,
                "errors": sum(tally.errors.values()), **quantiles(tally.latencies)}

    try:
        import uvloop  # an optional speed-up of the client's own loop

        result = uvloop.run(run())
    except ImportError:
        result = asyncio.run(run())
    print(json.dumps(result), flush=True)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quantiles(latencies: list[float]) -> dict[str, Any]:
    lat = sorted(latencies)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    return {"requests": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": lat[-1] * 1000 if lat else float("nan")}


# --------------------------------------------------------------------------- wrk (closed loop)

WRK_SCRIPT = """
local bodies = {%(bodies)s}
local n = 0
local threads = {}
bad = 0  -- per thread: answers other than 200 with an audit index (read by done through thread:get)
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Content-Type"] = "application/json"

setup = function(thread)
  table.insert(threads, thread)
end

request = function()
  n = n + 1
  return wrk.format(nil, "/v1/decide", nil, bodies[(n %% #bodies) + 1])
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"audit":{"index":%%d') then
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local answers = 0
  for _, thread in ipairs(threads) do
    answers = answers + thread:get("bad")
  end
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "bad_answers": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d, "p999_us": %%d, "max_us": %%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, answers, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def wrk_step(server: Server, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """One closed-loop step with wrk; the server's CPU is measured over the timed run only."""
    script = server.workdir / "decide.lua"
    script.write_text(WRK_SCRIPT % {"key": server.key,
                                    "bodies": ", ".join(json.dumps(b.decode()) for b in bodies())})
    url = f"http://127.0.0.1:{server.port}"
    base = ["wrk", "-t1", f"-c{args.concurrency}", "-s", str(script), url]
    subprocess.run([*base[:3], f"-d{max(1, round(args.warmup))}s", *base[3:]], check=True, capture_output=True)
    cpu0, children0 = server.cpu_seconds(), _children_cpu()
    done = subprocess.run([*base[:3], f"-d{max(1, round(seconds))}s", *base[3:]], check=True, capture_output=True,
                          text=True)
    server_cpu, wrk_cpu = server.cpu_seconds() - cpu0, _children_cpu() - children0
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    elapsed = figures["duration_us"] / 1e6
    kinds = {"socket errors": figures["socket_errors"], "not 200 with an audit index": figures["bad_answers"]}
    kinds = {kind: count for kind, count in kinds.items() if count}
    return {"seconds": elapsed, "requests": figures["requests"], "errors": sum(kinds.values()), "error_kinds": kinds,
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "p999_ms": figures["p999_us"] / 1000, "max_ms": figures["max_us"] / 1000,
            "server_cpu": server_cpu, "client_cpu": wrk_cpu, "late_sends": 0}


# --------------------------------------------------------------------------- steps


def client_step(server: Server, args: argparse.Namespace, mode: str, rate: float | None) -> dict[str, Any]:
    """One step driven by the asyncio client in its own process."""
    spec = {"port": server.port, "key": server.key, "mode": mode, "rate": rate, "seconds": args.seconds,
            "warmup": args.warmup, "connections": args.connections, "concurrency": args.concurrency}
    client = subprocess.Popen([sys.executable, __file__, "--as-client", json.dumps(spec)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    line = client.stdout.readline()
    if line.strip() != "timed":
        client.wait()
        raise SystemExit(f"the load generator failed: {line!r}")
    cpu0 = server.cpu_seconds()
    result = json.loads(client.stdout.readline())
    result["server_cpu"] = server.cpu_seconds() - cpu0
    client.wait()
    return dict(result)


def row(name: str, target: float | None, result: dict[str, Any], client: str,
        batches: tuple[float, float, float]) -> dict[str, Any]:
    seconds = result["seconds"]
    count, leaves, flush = batches
    return {"audit_batch_mean": leaves / count if count else None,
            "audit_flush_ms_mean": 1000 * flush / count if count else None, "step": name, "target_per_s": target, "client": client,
            "achieved_per_s": result["requests"] / seconds, "requests": result["requests"],
            "errors": result["errors"], "error_kinds": result["error_kinds"], "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"], "p999_ms": result["p999_ms"], "max_ms": result["max_ms"],
            "server_cpu_pct": 100 * result["server_cpu"] / seconds,
            "server_cpu_us_per_request": 1e6 * result["server_cpu"] / max(1, result["requests"]),
            "client_cpu_pct": 100 * result["client_cpu"] / seconds, "late_sends": result["late_sends"]}


def show(r: dict[str, Any]) -> None:
    target = f"{r['target_per_s']:>6,.0f}/s" if r["target_per_s"] else "  closed"
    print(f"{r['step']:<16} {target} achieved {r['achieved_per_s']:8,.0f}/s  p50 {r['p50_ms']:7.2f} ms  "
          f"p99 {r['p99_ms']:7.2f} ms  p99.9 {r['p999_ms']:7.2f} ms  max {r['max_ms']:7.1f} ms  "
          f"errors {r['errors']}  server CPU {r['server_cpu_pct']:4.0f}% "
          f"({r['server_cpu_us_per_request']:.0f} us/request)  client CPU {r['client_cpu_pct']:4.0f}%"
          + (f"  audit batch {r['audit_batch_mean']:.1f} (flush {r['audit_flush_ms_mean']:.1f} ms)"
             if r["audit_batch_mean"] is not None else "")
          + (f"  late sends {r['late_sends']}" if r["late_sends"] else "")
          + (f"  {r['error_kinds']}" if r["error_kinds"] else ""), flush=True)


def run_all(args: argparse.Namespace, server: Server) -> list[dict[str, Any]]:
    """Every step; with one worker each row also gives the audit log's mean group commit (including
    the step's warm-up: /metrics is read before and after)."""
    rows = []

    def batches_since(before: tuple[float, float, float]) -> tuple[float, float, float]:
        if args.workers != 1:
            return (0.0, 0.0, 0.0)  # each worker has its own /metrics: a scrape reaches one of them
        after = audit_batches(server)
        return (after[0] - before[0], after[1] - before[1], after[2] - before[2])

    if args.only in (None, "open"):
        for rate in (float(r) for r in args.rates.split(",")):
            before = audit_batches(server)
            result = client_step(server, args, "open", rate)
            rows.append(row(f"open {rate:,.0f}/s", rate, result, "python", batches_since(before)))
            show(rows[-1])
    if args.only in (None, "closed"):
        use_wrk = args.closed_client == "wrk" and shutil.which("wrk") is not None
        before = audit_batches(server)
        result = (wrk_step(server, args, args.seconds) if use_wrk
                  else client_step(server, args, "closed", None))
        rows.append(row(f"closed c={args.concurrency}", None, result, "wrk" if use_wrk else "python",
                        batches_since(before)))
        show(rows[-1])
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--as-client":
        client_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default="250,500,1000,2000", help="open-loop rates, requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per step")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each step")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight in the closed loop")
    parser.add_argument("--connections", type=int, default=256, help="most connections the open-loop client opens")
    parser.add_argument("--workers", type=int, default=1, help="lictor serve --workers")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a file in a temporary directory) or a postgresql:// URL (a fresh schema in it)")
    parser.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                        help="uvicorn's HTTP parser (anything but auto runs uvicorn's command line)")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                        help="uvicorn's event loop (anything but auto runs uvicorn's command line)")
    parser.add_argument("--closed-client", choices=["wrk", "python"], default="wrk",
                        help="the closed-loop load generator (python when wrk is not installed)")
    parser.add_argument("--only", choices=["open", "closed"], default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    info = describe()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}; "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="lictor-bench-http-") as tmp, database(args.database, Path(tmp)) as url:
        server = start_server(Path(tmp), url, args)
        try:
            where = "SQLite in a temporary directory" if args.database == "sqlite" else "a fresh PostgreSQL schema"
            print(f"server: --workers {args.workers}, http {args.http}, loop {args.loop}, {where}, durable audit "
                  "(sync); load generators in processes of their own", flush=True)
            rows = run_all(args, server)
        finally:
            stop_server(server)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "steps": rows}, indent=1))


if __name__ == "__main__":
    main()
