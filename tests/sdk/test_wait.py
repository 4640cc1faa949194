"""``@guard.tool(wait_for_approval=...)``: a held call waits for its review, then runs presenting the
approval, or raises Blocked with the outcome; locally (the desk) and remotely (the long poll), sync
and async."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lictor import Blocked, Guard, InputError
from lictor.access import ApiKey
from lictor.config import Settings
from lictor.http import create_app
from lictor.oversight import ReviewQuery
from lictor.runtime import Gateway
from tests.sdk.conftest import EXAMPLES, open_gateway

CONTEXT = {"confidence": 0.93}


@pytest.fixture
def officer(gateway: Gateway) -> ApiKey:
    return gateway.keys.create("reviewer", user="olivia", roles=["credit-officer"])[0]


def decide_later(gateway: Gateway, key: ApiKey, customer_id: str, verdict: str) -> threading.Thread:
    """A reviewer elsewhere: acts on the held credit of ``customer_id`` once it is held."""

    def work() -> None:
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            held = [r for r in gateway.list_reviews(ReviewQuery(status="pending", system="credit-scoring"))
                    if r.context["action"]["args"].get("customer_id") == customer_id]
            if held:
                gateway.act_on_review(held[0].id, key, verdict, "checked")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def used_reviews(gateway: Gateway) -> list[dict[str, Any]]:
    leaves = (gateway.leaf(i) for i in range(gateway.log.state.size))
    return [leaf for leaf in leaves if leaf.get("type") == "review" and leaf["event"] == "used"]


def test_an_approved_call_runs_once_presenting_its_approval(gateway: Gateway, officer: ApiKey) -> None:
    guard = Guard.local(gateway)
    calls: list[tuple[int, str]] = []

    @guard.tool(system="credit-scoring", context=CONTEXT, wait_for_approval=30)
    def approve_credit(amount: int, customer_id: str) -> str:
        calls.append((amount, customer_id))
        return "done"

    reviewer = decide_later(gateway, officer, "C-1", "approve")
    assert approve_credit(150000, "C-1") == "done"
    reviewer.join()
    assert calls == [(150000, "C-1")]
    assert len(used_reviews(gateway)) == 1  # the approval was presented and used up


def test_a_rejected_call_raises_with_the_outcome(gateway: Gateway, officer: ApiKey) -> None:
    guard = Guard.local(gateway)

    @guard.tool(system="credit-scoring", context=CONTEXT, wait_for_approval=30)
    def approve_credit(amount: int, customer_id: str) -> str:
        raise AssertionError("must not run")

    reviewer = decide_later(gateway, officer, "C-2", "reject")
    with pytest.raises(Blocked) as caught:
        approve_credit(150000, "C-2")
    reviewer.join()
    assert caught.value.status == "rejected" and caught.value.review_id is not None
    assert caught.value.review is not None and caught.value.review["status"] == "rejected"


def test_nobody_deciding_in_time_is_a_timeout(gateway: Gateway) -> None:
    guard = Guard.local(gateway)

    @guard.tool(system="credit-scoring", name="approve_credit", context=CONTEXT, wait_for_approval=0.3)
    def credit(amount: int, customer_id: str) -> str:
        raise AssertionError("must not run")

    with pytest.raises(Blocked) as caught:
        credit(150000, "C-3")
    assert caught.value.status == "timeout" and "no decision on the review in time" in str(caught.value)
    assert gateway.show_review(str(caught.value.review_id)).status == "pending"  # still open for reviewers


def test_a_review_that_expires_while_waited_on_is_expired(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text((EXAMPLES / "policies" / "credit-decisions.yaml").read_text().replace("ttl: 24h", "ttl: 1s"))
    gateway = open_gateway(tmp_path, policies)
    try:
        guard = Guard.local(gateway)

        @guard.tool(system="credit-scoring", name="approve_credit", context=CONTEXT, wait_for_approval=30)
        def credit(amount: int, customer_id: str) -> str:
            raise AssertionError("must not run")

        with pytest.raises(Blocked) as caught:
            credit(150000, "C-4")
        assert caught.value.status == "expired"
    finally:
        gateway.close()


def test_async_functions_wait_without_blocking_the_loop(gateway: Gateway, officer: ApiKey) -> None:
    guard = Guard.local(gateway)

    @guard.tool(system="credit-scoring", context=CONTEXT, wait_for_approval=30)
    async def approve_credit(amount: int, customer_id: str) -> str:
        return f"{amount} for {customer_id}"

    async def main() -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:  # the loop keeps running while the call waits
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        reviewer = await asyncio.to_thread(decide_later, gateway, officer, "C-5", "approve")
        result = await approve_credit(150000, "C-5")
        await asyncio.to_thread(reviewer.join)
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result == "150000 for C-5" and ticks > 0


@pytest.mark.parametrize("wait", [0, -1, True, "10"])
def test_wait_for_approval_is_a_positive_number_of_seconds(gateway: Gateway, wait: Any) -> None:
    guard = Guard.local(gateway)
    with pytest.raises(InputError) as caught:
        guard.tool(system="credit-scoring", wait_for_approval=wait)(lambda amount: amount)
    assert caught.value.path == "wait_for_approval"


# --------------------------------------------------------------------------- remote


@dataclasses.dataclass
class Served:
    gateway: Gateway
    transport: httpx.ASGITransport
    agent: str
    officer: ApiKey


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    base = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=EXAMPLES / "policies")
    settings = dataclasses.replace(base, audit=dataclasses.replace(
        base.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))
    gateway = Gateway.from_settings(settings)
    try:
        agent = gateway.keys.create("agent", user="loan-agent")[1]
        officer = gateway.keys.create("reviewer", user="olivia", roles=["credit-officer"])[0]
        app = create_app(gateway, keys=gateway.keys, settings=settings)
        yield Served(gateway, httpx.ASGITransport(app=app), agent, officer)
    finally:
        gateway.close()


def test_a_remote_call_long_polls_then_runs_or_times_out(served: Served) -> None:
    async def main() -> None:
        async with Guard.remote("http://gateway.test", served.agent, async_transport=served.transport) as guard:

            @guard.tool(system="credit-scoring", context=CONTEXT, wait_for_approval=30)
            async def approve_credit(amount: int, customer_id: str) -> str:
                return "granted"

            reviewer = await asyncio.to_thread(decide_later, served.gateway, served.officer, "C-6", "approve")
            assert await approve_credit(150000, "C-6") == "granted"
            await asyncio.to_thread(reviewer.join)

            @guard.tool(system="credit-scoring", name="approve_credit", context=CONTEXT, wait_for_approval=0.3)
            async def quick(amount: int, customer_id: str) -> str:
                raise AssertionError("must not run")

            with pytest.raises(Blocked) as caught:
                await quick(150000, "C-7")
            assert caught.value.status == "timeout"

    asyncio.run(main())
    assert len(used_reviews(served.gateway)) == 1


def test_the_remote_backend_asks_for_the_review_with_a_long_enough_timeout() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "rev_1", "status": "approved", "approvers": []})

    with Guard.remote("http://gateway.test", "lk_agent", transport=httpx.MockTransport(answer), timeout=2.0) as guard:
        review = guard.backend.wait_review("rev_1", 500)  # type: ignore[attr-defined]
    assert review["status"] == "approved"
    assert seen[0].url.path == "/v1/reviews/rev_1" and seen[0].url.params["wait"] == "60.000"
    assert seen[0].extensions["timeout"]["read"] == 62.0
