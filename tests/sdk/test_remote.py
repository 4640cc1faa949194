"""The remote backend against a small real server of the HTTP contract (tests/sdk/contract.py),
reached through httpx's ASGI transport (async) and its mock transport (sync); then retries, timeouts and fail-closed answers,
with faults injected in front of that server and the waits between attempts recorded, not slept."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lictor import Action, Blocked, GatewayError, Guard, InputError, Verdict
from lictor.errors import ConfigError
from lictor.runtime import Gateway
from lictor.sdk import RemoteBackend
from tests.sdk.conftest import example
from tests.sdk.contract import AGENT_KEY, MAX_BODY, REVIEWER_KEY, Contract, serve

Fault = int | tuple[int, dict[str, str]] | type[httpx.TransportError]


def _fault(fault: Fault, request: httpx.Request) -> httpx.Response:
    if isinstance(fault, type):
        raise fault("injected", request=request)
    status, headers = fault if isinstance(fault, tuple) else (fault, {})
    return httpx.Response(status, headers={"content-type": "application/problem+json", **headers},
                          json={"type": "about:blank", "title": "injected", "status": status})


class Flaky(httpx.BaseTransport):
    """Fails with each of ``faults`` in turn, then passes requests on; records every attempt's request_id."""

    def __init__(self, inner: httpx.BaseTransport, faults: list[Fault]) -> None:
        self.inner = inner
        self.faults = list(faults)
        self.request_ids: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.request_ids.append(json.loads(request.read() or b"{}").get("request_id"))
        if self.faults:
            return _fault(self.faults.pop(0), request)
        return self.inner.handle_request(request)


class AsyncFlaky(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, faults: list[Fault]) -> None:
        self.inner = inner
        self.faults = list(faults)
        self.request_ids: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.request_ids.append(json.loads(await request.aread() or b"{}").get("request_id"))
        if self.faults:
            return _fault(self.faults.pop(0), request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def contract(gateway: Gateway) -> Contract:
    return Contract(gateway)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def remote(transport: httpx.BaseTransport, sleeps: list[float], **options: Any) -> Guard:
    return Guard.remote("http://gateway.test", AGENT_KEY, transport=transport, sleep=sleeps.append, **options)


@pytest.fixture
def guard(contract: Contract, sleeps: list[float]) -> Iterator[Guard]:
    with remote(httpx.MockTransport(contract.handle), sleeps) as guard:
        yield guard


# --------------------------------------------------------------------------- decisions over HTTP


@pytest.mark.parametrize("name", ["credit-small", "credit-large", "refund-large", "email-with-address"])
def test_remote_decisions_are_the_gateways(guard: Guard, gateway: Gateway, name: str) -> None:
    remote_decision = guard.decide(example(name))
    local_decision = gateway.decide(Action.from_dict(example(name)))
    assert remote_decision.verdict is local_decision.verdict
    assert remote_decision.reasons == local_decision.reasons
    sent = dict(remote_decision.action or {})
    assert sent.pop("request_id", None) is not None or remote_decision.action is None
    assert (sent or None) == local_decision.action
    assert remote_decision.audit is not None and isinstance(remote_decision.audit["index"], int)


def test_each_logical_call_gets_a_fresh_request_id(guard: Guard, contract: Contract) -> None:
    first = guard.decide(example("credit-small"))
    second = guard.decide(example("credit-small"))
    ids = [body["request_id"] for body in contract.bodies]
    assert len(set(ids)) == 2 and all(i.startswith("req_") and len(i) == 36 for i in ids)
    assert first.decision_id != second.decision_id
    assert contract.decided == 2


def test_a_request_id_the_caller_set_is_kept_and_decided_once(guard: Guard, contract: Contract) -> None:
    action = example("credit-large") | {"request_id": "order-7-approval"}
    first = guard.decide(action)
    again = guard.decide(action)
    assert [body["request_id"] for body in contract.bodies] == ["order-7-approval"] * 2
    assert again == first
    assert contract.decided == 1


def test_the_decorator_over_http(guard: Guard) -> None:
    @guard.tool(system="support-bot", agent="support-agent-1")
    def issue_refund(order_id: str, amount: float) -> float:
        return amount

    @guard.tool(system="research-agent", agent="researcher-2")
    def shell_exec(cmd: str) -> None:
        raise AssertionError("a blocked tool must not run")

    assert issue_refund("O-1", 750) == 500
    with pytest.raises(Blocked) as caught:
        shell_exec("ls")
    assert [r.rule for r in caught.value.reasons] == ["forbidden-tools"]


def test_async_over_the_asgi_app(contract: Contract) -> None:
    async def main() -> None:
        async with Guard.remote("http://gateway.test", AGENT_KEY,
                                async_transport=httpx.ASGITransport(app=contract.app)) as guard:
            @guard.tool(system="support-bot", agent="support-agent-1")
            async def issue_refund(order_id: str, amount: float) -> float:
                return amount

            @guard.tool(system="credit-scoring", context={"confidence": 0.93})
            async def approve_credit(amount: int, customer_id: str) -> str:
                raise AssertionError("a blocked tool must not run")

            decisions = await asyncio.gather(*(guard.adecide(example(n)) for n in ("credit-small", "credit-large")))
            assert [d.verdict for d in decisions] == [Verdict.ALLOW, Verdict.BLOCK]
            assert await issue_refund("O-1", 750) == 500
            with pytest.raises(Blocked) as caught:
                await approve_credit(150000, "C-42")
            assert caught.value.reasons[0].rule == "large-credit-needs-approval"

    asyncio.run(main())
    assert contract.decided == 4


def test_over_real_http_with_pooled_connections(contract: Contract) -> None:
    with serve(contract) as url:
        with Guard.remote(url, AGENT_KEY) as guard:
            verdicts = [guard.decide(example(n)).verdict for n in ("credit-small", "credit-large", "credit-small")]

        async def main() -> list[Verdict]:
            async with Guard.remote(url, AGENT_KEY) as guard:
                decisions = await asyncio.gather(*(guard.adecide(example("refund-large")) for _ in range(5)))
                return [d.verdict for d in decisions]

        async_verdicts = asyncio.run(main())
    assert verdicts == [Verdict.ALLOW, Verdict.BLOCK, Verdict.ALLOW]
    assert async_verdicts == [Verdict.CONSTRAIN] * 5
    assert contract.decided == 8


# --------------------------------------------------------------------------- refusals are raised


def test_a_wrong_key_or_scope_is_raised_not_decided(contract: Contract, sleeps: list[float]) -> None:
    transport = httpx.MockTransport(contract.handle)
    for key, status, hint in (("lk_nope", 401, "did not accept the API key"),
                              (REVIEWER_KEY, 403, "needs an agent key")):
        with Guard.remote("http://gateway.test", key, transport=transport, sleep=sleeps.append) as guard:
            with pytest.raises(GatewayError) as caught:
                guard.decide(example("credit-small"))
            assert caught.value.status == status
            assert hint in str(caught.value)
            assert caught.value.problem["status"] == status
    assert contract.decided == 0 and sleeps == []


def test_a_wrong_base_url_is_raised(contract: Contract, sleeps: list[float]) -> None:
    guard = Guard.remote("http://gateway.test/api", AGENT_KEY, transport=httpx.MockTransport(contract.handle))
    with guard, pytest.raises(GatewayError, match=r"404 Not Found from http://gateway.test/api/v1/decide \(.*check the base URL"):
        guard.decide(example("credit-small"))


def test_an_oversized_action_is_an_input_error_with_its_path(guard: Guard, contract: Contract) -> None:
    with pytest.raises(InputError) as caught:
        guard.decide(example("credit-small") | {"content": "x" * MAX_BODY})
    assert caught.value.path == "$"
    assert "at most 16384 bytes" in str(caught.value)
    assert contract.decided == 0


def test_a_422_lists_every_error(contract: Contract, sleeps: list[float]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                                         "errors": [{"path": "$.args.amount", "message": "too many digits"},
                                                    {"path": "$.context", "message": "too deep"}]})

    flaky = Flaky(httpx.MockTransport(refuse), [])
    with remote(flaky, sleeps) as guard, pytest.raises(InputError) as caught:
        guard.decide(example("credit-small"))
    assert caught.value.path == "$.args.amount"
    assert str(caught.value) == "$.args.amount: too many digits; $.context: too deep"
    assert len(flaky.request_ids) == 1 and sleeps == []  # a 4xx is never retried


# --------------------------------------------------------------------------- retries


def test_retries_resend_the_same_request_id_until_it_is_decided(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [httpx.ConnectError, 503, 502, 504])
    with remote(flaky, sleeps, retries=4, backoff=0.1, max_backoff=10) as guard:
        decision = guard.decide(example("credit-large"))
    assert decision.verdict is Verdict.BLOCK and decision.audit is not None
    assert len(flaky.request_ids) == 5 and len(set(flaky.request_ids)) == 1 and flaky.request_ids[0]
    assert contract.decided == 1
    assert len(sleeps) == 4
    for attempt, slept in enumerate(sleeps):  # doubling, with jitter in the upper half
        assert 0.1 * 2 ** attempt * 0.5 <= slept <= 0.1 * 2 ** attempt


def test_backoff_is_capped_and_retry_after_is_honoured(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [(503, {"Retry-After": "1.5"}), 503, (503, {"Retry-After": "60"})])
    with remote(flaky, sleeps, retries=3, backoff=0.5, max_backoff=2) as guard:
        assert guard.decide(example("credit-small")).verdict is Verdict.ALLOW
    assert sleeps[0] == 1.5
    assert 0.5 <= sleeps[1] <= 1.0
    assert sleeps[2] == 2  # the gateway's wish, capped


def test_retries_exhausted_block_fail_closed(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [httpx.ConnectError] * 3)
    with remote(flaky, sleeps, retries=2) as guard:
        decision = guard.decide(example("credit-small"))

        @guard.tool(system="credit-scoring", context={"confidence": 0.93})
        def approve_credit(amount: int, customer_id: str) -> str:
            raise AssertionError("must not run when the gateway is unreachable")

        flaky.faults = [httpx.ConnectError] * 3
        with pytest.raises(Blocked) as caught:
            approve_credit(10, "C-1")
    assert decision.verdict is Verdict.BLOCK
    assert decision.audit is None and decision.reasons == ()
    [error] = decision.errors
    assert error.applied
    assert error.message.startswith("gateway unreachable at http://gateway.test (3 attempts): ConnectError")
    assert error.message.endswith("blocked (fail closed)")
    assert "gateway unreachable" in str(caught.value)
    assert contract.decided == 0 and len(sleeps) == 4


def test_a_500_is_not_retried_and_blocks(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [500])
    with remote(flaky, sleeps) as guard:
        decision = guard.decide(example("credit-small"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.errors[0].message == ("gateway unavailable at http://gateway.test: it answered 500 Internal "
                                          "Server Error (injected); blocked (fail closed)")
    assert len(flaky.request_ids) == 1 and sleeps == []


def test_a_post_without_request_id_is_never_resent(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [httpx.ConnectError, 503])
    backend = RemoteBackend("http://gateway.test", AGENT_KEY, transport=flaky, sleep=sleeps.append)
    try:
        with pytest.raises(GatewayError) as caught:
            backend.request("POST", "/v1/decide", json=example("credit-small"))
        assert caught.value.status is None and "ConnectError" in str(caught.value)
        with pytest.raises(GatewayError) as caught:
            backend.request("POST", "/v1/decide", json=example("credit-small"))
        assert caught.value.status == 503
    finally:
        backend.close()
    assert flaky.request_ids == [None, None] and sleeps == [] and contract.decided == 0


def test_async_retries_use_the_async_sleep(contract: Contract) -> None:
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    flaky = AsyncFlaky(httpx.ASGITransport(app=contract.app), [httpx.ReadError, 504])

    async def main() -> Verdict:
        async with Guard.remote("http://gateway.test", AGENT_KEY, async_transport=flaky,
                                async_sleep=record) as guard:
            return (await guard.adecide(example("refund-large"))).verdict

    assert asyncio.run(main()) is Verdict.CONSTRAIN
    assert len(waited) == 2 and len(set(flaky.request_ids)) == 1 and len(flaky.request_ids) == 3
    assert contract.decided == 1


# --------------------------------------------------------------------------- fail closed, fail open


def test_a_timeout_blocks(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [httpx.ReadTimeout] * 2)
    with remote(flaky, sleeps, retries=1, timeout=0.5) as guard:
        decision = guard.decide(example("credit-small"))
    assert decision.verdict is Verdict.BLOCK
    assert "gateway unreachable" in decision.errors[0].message and "ReadTimeout" in decision.errors[0].message


def test_an_unreachable_gateway_blocks(sleeps: list[float]) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Guard.remote(f"http://127.0.0.1:{port}", AGENT_KEY, retries=1, timeout=2, sleep=sleeps.append) as guard:
        decision = guard.decide(example("credit-small"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.errors[0].message.startswith(f"gateway unreachable at http://127.0.0.1:{port} (2 attempts)")
    assert len(sleeps) == 1


def test_unsafe_fail_open_allows_what_it_could_not_decide(contract: Contract, sleeps: list[float]) -> None:
    flaky = Flaky(httpx.MockTransport(contract.handle), [httpx.ConnectError] * 2)
    ran: list[int] = []
    with remote(flaky, sleeps, retries=0, unsafe_fail_open=True) as guard:
        decision = guard.decide(example("credit-large"))

        @guard.tool(system="credit-scoring", context={"confidence": 0.93})
        def approve_credit(amount: int, customer_id: str) -> str:
            ran.append(amount)
            return "approved"

        assert approve_credit(150000, "C-42") == "approved"
        # once the gateway answers, its BLOCK stands: fail open is only for no answer
        with pytest.raises(Blocked):
            approve_credit(150000, "C-42")
    assert decision.verdict is Verdict.ALLOW and decision.audit is None
    assert not decision.errors[0].applied
    assert "NOT decided and NOT recorded" in decision.errors[0].message
    assert ran == [150000]


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"[1, 2]", b'{"verdict": "ALLOW"}',
                                  b'{"decision_id": "d", "verdict": "MAYBE"}'])
def test_an_answer_that_is_not_a_decision_blocks(body: bytes, sleeps: list[float]) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with remote(transport, sleeps) as guard:
        decision = guard.decide(example("credit-small"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.errors[0].message.endswith("blocked (fail closed)")


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(("args", "options", "path"), [
    (("ftp://gateway.test", AGENT_KEY), {}, "base_url"),
    (("gateway.test:8700", AGENT_KEY), {}, "base_url"),
    (("http://gateway.test", " "), {}, "api_key"),
    (("http://gateway.test", AGENT_KEY), {"timeout": 0}, "timeout"),
    (("http://gateway.test", AGENT_KEY), {"retries": -1}, "retries"),
    (("http://gateway.test", AGENT_KEY), {"backoff": -0.1}, "backoff"),
])
def test_settings_are_checked(args: tuple[str, str], options: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Guard.remote(*args, **options)
    assert caught.value.path == path


def test_the_key_is_sent_as_a_bearer_token_and_never_shown(contract: Contract) -> None:
    seen: list[str] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return contract.handle(request)

    with Guard.remote("http://gateway.test/", AGENT_KEY, transport=httpx.MockTransport(spy)) as guard:
        guard.decide(example("credit-small"))
        assert AGENT_KEY not in repr(guard)
    assert seen == [f"Bearer {AGENT_KEY}"]
