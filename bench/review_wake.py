#!/usr/bin/env python3
"""How soon a request waiting on a review in one gateway process answers after a reviewer approves
it through another: two real ``lictor serve`` processes on one PostgreSQL database, the change
carried by Redis pub/sub (``--channel redis``) or PostgreSQL ``NOTIFY`` (``--channel postgres``),
with ``reviews.poll_interval`` set to an hour so that only the signal can wake the waiter.

Each round: the agent's action is held on process A (a new review), a long poll
``GET /v1/reviews/{id}?wait=30`` waits on A (the script approves only once A's
``lictor_review_waiters`` gauge shows it waiting), then ``POST /v1/reviews/{id}/approve`` goes to
process B. Reported: the time from sending the approval to the waiter's answer, and the approval
request's own time, p50/p90/max over the rounds.

    python bench/review_wake.py [--channel redis|postgres] [--rounds N]
        [--postgres URL] [--redis URL]

Needs the PostgreSQL and Redis of the test setup (``LICTOR_TEST_POSTGRES``, ``LICTOR_TEST_REDIS``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import describe, free_port

# this script's directory holds bench/http.py, which must not shadow the standard library's http
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

__all__ = ["main"]

POLICY = """apiVersion: lictor/v1
kind: Policy
metadata: {name: payouts}
spec:
  target: {names: [payout]}
  rules:
    - name: needs-finance
      verdict: BLOCK
      approval: {approvers: ["role:finance"], ttl: 1h}
"""


def _lictor(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "lictor", *args], cwd=cwd, capture_output=True, text=True,
                          check=True, env={k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")})
    return done.stdout.strip()


def _serve(config: Path, cwd: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lictor", "serve", "--config", str(config), "--port", str(port)],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               env={k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")})
    url = f"http://127.0.0.1:{port}"
    give_up = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            pass
        if time.monotonic() > give_up or process.poll() is not None:
            raise SystemExit(f"the server on port {port} did not start")
        time.sleep(0.1)


def _waiting(url: str) -> bool:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("lictor_review_waiters "):
            return float(line.split()[1]) >= 1
    return False


def _long_poll(url: str, key: str, answered: list[float]) -> None:
    httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    answered.append(time.perf_counter())


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", choices=("redis", "postgres"), default="redis")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--postgres", default=os.environ.get("LICTOR_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get("LICTOR_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    options = parser.parse_args()
    schema = f"lictor_bench_{secrets.token_hex(4)}"
    with psycopg.connect(options.postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "policies").mkdir()
            (root / "policies" / "payouts.yaml").write_text(POLICY)
            redis = f"redis: {json.dumps(options.redis + '?prefix=' + schema)}\n" if options.channel == "redis" else ""
            config = root / "lictor.yaml"
            config.write_text(f"database: {json.dumps(options.postgres + '?schema=' + schema)}\n{redis}"
                              f"policies: {root / 'policies'}\nreviews: {{poll_interval: 1h}}\n")
            agent = _lictor("keys", "create", "--scope", "agent", "--config", str(config), cwd=root)
            reviewer = _lictor("keys", "create", "--scope", "reviewer", "--user", "bob", "--roles", "finance",
                               "--config", str(config), cwd=root)
            (one, a), (two, b) = _serve(config, root), _serve(config, root)
            processes += [a, b]
            wakes: list[float] = []
            approvals: list[float] = []
            with httpx.Client(timeout=60) as client:
                for n in range(options.rounds):
                    action = {"system": "treasury", "kind": "tool_call", "name": "payout", "args": {"n": n},
                              "principal": {"id": "alice"}}
                    review_id = client.post(f"{one}/v1/decide", json=action,
                                            headers={"Authorization": f"Bearer {agent}"}).json()["review"]["id"]
                    answered: list[float] = []
                    waiter = threading.Thread(target=_long_poll, args=(f"{one}/v1/reviews/{review_id}?wait=30",
                                                                       agent, answered))
                    waiter.start()
                    while not _waiting(one):
                        time.sleep(0.01)
                    sent = time.perf_counter()
                    client.post(f"{two}/v1/reviews/{review_id}/approve", json={},
                                headers={"Authorization": f"Bearer {reviewer}"})
                    approvals.append(time.perf_counter() - sent)
                    waiter.join(60)
                    wakes.append(answered[0] - sent)
            print(describe())
            print(f"channel {options.channel}, {options.rounds} rounds, waiters poll every hour")
            print(f"  approval sent on B -> waiter on A answered: {_summary(wakes)}")
            print(f"  the approval request itself:               {_summary(approvals)}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        with psycopg.connect(options.postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
