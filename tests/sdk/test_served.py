"""The remote backend against the real HTTP service: ``create_app`` over a real gateway (SQLite, the
example policies, keys from the key ring) reached through httpx's ASGI transport, and a real
``lictor serve`` process on a free port; the stand-in of tests/sdk/contract.py must not drift from it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lictor import Blocked, GatewayError, Guard, InputError, Verdict
from lictor.config import Settings
from lictor.http import create_app
from lictor.runtime import Gateway
from tests.http.test_serve import free_port, run
from tests.sdk.conftest import EXAMPLES, example

BASE = "http://gateway.test"


@dataclasses.dataclass
class Served:
    app: FastAPI
    gateway: Gateway
    agent: str
    reviewer: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    base = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=EXAMPLES / "policies")
    settings = dataclasses.replace(base, audit=dataclasses.replace(
        base.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))
    gateway = Gateway.from_settings(settings)
    try:
        agent = gateway.keys.create("agent", user="loan-agent")[1]
        reviewer = gateway.keys.create("reviewer", user="bob")[1]
        yield Served(create_app(gateway, keys=gateway.keys, settings=settings), gateway, agent, reviewer)
    finally:
        gateway.close()


def decisions(gateway: Gateway) -> list[dict[str, Any]]:
    """The decision leaves of the gateway's log, in order."""
    leaves = (gateway.leaf(i) for i in range(gateway.log.state.size))
    return [leaf for leaf in leaves if leaf.get("type") == "decision"]


class LostAnswers(httpx.AsyncBaseTransport):
    """Passes each request to the app, then loses the first ``count`` answers (a proxy's 502 after
    the gateway decided), as a connection dropped on the way back would."""

    def __init__(self, inner: httpx.AsyncBaseTransport, count: int) -> None:
        self.inner = inner
        self.count = count
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        response = await self.inner.handle_async_request(request)
        if self.count:
            self.count -= 1
            await response.aread()
            return httpx.Response(502, json={"title": "Bad Gateway", "status": 502})
        return response


def test_allow_block_constrain_and_the_record(served: Served) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=served.app)
        async with Guard.remote(BASE, served.agent, async_transport=transport) as guard:
            allowed = await guard.adecide(example("credit-small"))
            assert allowed.verdict is Verdict.ALLOW and isinstance((allowed.audit or {})["index"], int)

            @guard.tool(system="credit-scoring", context={"confidence": 0.93})
            async def approve_credit(amount: int, customer_id: str) -> str:
                raise AssertionError("a blocked tool must not run")

            with pytest.raises(Blocked) as caught:
                await approve_credit(150000, "C-42")
            assert [r.rule for r in caught.value.reasons] == ["large-credit-needs-approval"]
            assert "Credit decisions above" in str(caught.value)

            @guard.tool(system="support-bot", agent="support-agent-1")
            async def issue_refund(order_id: str, amount: float) -> float:
                return amount

            assert await issue_refund("O-1", 750) == 500

    asyncio.run(main())
    assert [leaf["verdict"] for leaf in decisions(served.gateway)] == ["ALLOW", "BLOCK", "CONSTRAIN"]


def test_a_retry_after_a_lost_answer_replays_the_decision(served: Served) -> None:
    async def main() -> None:
        lossy = LostAnswers(httpx.ASGITransport(app=served.app), count=1)
        async with Guard.remote(BASE, served.agent, async_transport=lossy, backoff=0) as guard:
            @guard.tool(system="support-bot", agent="support-agent-1")
            async def issue_refund(order_id: str, amount: float) -> float:
                return amount

            # decided and recorded, the answer lost, resent with the same request_id: the replay
            # carries the constrained action, so the tool runs as the first answer would have had it
            assert await issue_refund("O-1", 750) == 500
            assert lossy.sent == 2
            action = example("credit-large") | {"request_id": "order-7"}
            first = await guard.backend.arequest("POST", "/v1/decide", json=action)
            again = await guard.backend.arequest("POST", "/v1/decide", json=action)
            assert again["decision_id"] == first["decision_id"] and again["audit"] == first["audit"]
            assert again["replayed"] is True and "replayed" not in first
            assert again["reasons"] == [{k: r[k] for k in ("policy", "rule", "verdict", "message")}
                                        for r in first["reasons"]]
            assert (await guard.adecide(action)).decision_id == first["decision_id"]

    asyncio.run(main())
    assert len(decisions(served.gateway)) == 2  # one record each, whatever the retries


def test_refusals_are_raised_with_the_problem(served: Served) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=served.app)
        for key, status in (("lictor_nope", 401), (served.reviewer, 403)):
            async with Guard.remote(BASE, key, async_transport=transport) as guard:
                with pytest.raises(GatewayError) as caught:
                    await guard.adecide(example("credit-small"))
                assert caught.value.status == status and caught.value.problem["status"] == status
                assert caught.value.problem["instance"] == "/v1/decide"
        async with Guard.remote(BASE, served.agent, async_transport=transport) as guard:
            # the SDK reads the first of the problem's errors[] as the JSON path of its InputError
            bad = example("credit-small") | {"args": 3, "principal": {"roles": [1]}}
            with pytest.raises(InputError) as input_error:
                await guard.backend.arequest("POST", "/v1/decide", json=bad)
            assert input_error.value.path == "$.args"
            # an unpaired surrogate cannot even be encoded: refused before anything is sent
            with pytest.raises(InputError, match="not text"):
                await guard.adecide(example("credit-small") | {"name": "\ud800"})
            never = httpx.MockTransport(lambda request: httpx.Response(500))
            with Guard.remote(BASE, served.agent, transport=never) as sync, \
                    pytest.raises(InputError, match="nothing was sent"):
                sync.decide(example("credit-small") | {"args": {"note": "\udc00"}})

    asyncio.run(main())
    assert decisions(served.gateway) == []


def test_against_a_served_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLES / "policies", tmp_path / "policies")
    agent = run("keys", "create", "--scope", "agent")[1].strip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    server = subprocess.Popen([sys.executable, "-m", "lictor", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        with Guard.remote(url, agent) as guard:
            verdicts = [guard.decide(example(n)).verdict for n in ("credit-small", "credit-large", "refund-large")]
            assert verdicts == [Verdict.ALLOW, Verdict.BLOCK, Verdict.CONSTRAIN]
            action = example("refund-large") | {"request_id": "refund-O-1001"}
            first, again = guard.decide(action), guard.decide(action)
            assert again.decision_id == first.decision_id and again.action == first.action
            assert again.action is not None and again.action["args"]["amount"] == 500
        with Guard.remote(url, "lictor_nope") as guard, pytest.raises(GatewayError) as caught:
            guard.decide(example("credit-small"))
        assert caught.value.status == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr:
            server.stderr.close()
