"""The SDK against a real in-process gateway: decisions, ``check``, and ``@guard.tool`` on sync and
async functions with ALLOW, LOG, CONSTRAIN and BLOCK."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import inspect
from pathlib import Path
from typing import Any

import pytest

import lictor
from lictor import Action, Blocked, Guard, InputError, Verdict
from lictor.config import load_settings
from lictor.model import Decision, Principal, Reason
from lictor.runtime import Gateway
from tests.sdk.conftest import EXAMPLES, example, open_gateway


@pytest.fixture
def guard(gateway: Gateway) -> Guard:
    return Guard.local(gateway)


# --------------------------------------------------------------------------- decide


@pytest.mark.parametrize(("name", "verdict"), [
    ("credit-small", Verdict.ALLOW),
    ("credit-large", Verdict.BLOCK),
    ("refund-large", Verdict.CONSTRAIN),
    ("email-with-address", Verdict.CONSTRAIN),
    ("research-shell", Verdict.BLOCK),
])
def test_decide_gives_the_gateways_decision_recorded_in_the_log(guard: Guard, name: str, verdict: Verdict) -> None:
    decision = guard.decide(example(name))
    assert decision.verdict is verdict
    assert decision.audit is not None and isinstance(decision.audit["index"], int)
    same = guard.decide(Action.from_dict(example(name)))
    assert same.verdict is verdict
    assert same.decision_id != decision.decision_id


def test_adecide_gives_the_same_verdicts(guard: Guard) -> None:
    async def main() -> list[Verdict]:
        decisions = await asyncio.gather(*(guard.adecide(example(n)) for n in ("credit-small", "credit-large")))
        return [d.verdict for d in decisions]

    assert asyncio.run(main()) == [Verdict.ALLOW, Verdict.BLOCK]


def test_decide_refuses_a_malformed_action(guard: Guard) -> None:
    with pytest.raises(InputError) as caught:
        guard.decide(example("credit-small") | {"argz": {}})
    assert caught.value.path == "$.argz"
    with pytest.raises(InputError):
        guard.decide("approve_credit")  # type: ignore[arg-type]


def test_check_raises_blocked_and_returns_other_decisions(guard: Guard) -> None:
    assert guard.check(example("credit-small")).verdict is Verdict.ALLOW
    constrained = guard.check(example("refund-large"))
    assert constrained.action is not None and constrained.action["args"] == {"order_id": "O-1001", "amount": 500}
    with pytest.raises(Blocked) as caught:
        guard.check(example("credit-large"))
    assert [r.rule for r in caught.value.reasons] == ["large-credit-needs-approval"]
    with pytest.raises(Blocked):
        asyncio.run(guard.acheck(example("research-shell")))


# --------------------------------------------------------------------------- the decorator, sync


def test_tool_allow_runs_the_function_as_called(guard: Guard) -> None:
    calls: list[tuple[Any, ...]] = []

    @guard.tool(system="credit-scoring", agent="loan-agent-7", context={"confidence": 0.93})
    def approve_credit(amount: int, customer_id: str, note: str = "") -> str:
        calls.append((amount, customer_id, note))
        return "approved"

    assert approve_credit(25000, customer_id="C-43") == "approved"
    assert calls == [(25000, "C-43", "")]


def test_tool_block_raises_blocked_with_the_reasons_and_does_not_run(guard: Guard) -> None:
    calls: list[int] = []

    @guard.tool(system="credit-scoring", principal=Principal("alice", ("analyst",)),
                context={"confidence": 0.93})
    def approve_credit(amount: int, customer_id: str) -> str:
        calls.append(amount)
        return "approved"

    with pytest.raises(Blocked) as caught:
        approve_credit(150000, "C-42")
    assert calls == []
    blocked = caught.value
    assert isinstance(blocked, lictor.LictorError)
    assert blocked.decision.verdict is Verdict.BLOCK
    assert [(r.policy, r.rule) for r in blocked.reasons] == [("credit-decisions", "large-credit-needs-approval")]
    assert str(blocked).startswith("blocked: credit-decisions/large-credit-needs-approval: Credit decisions "
                                   f"above $100,000 need a credit officer's approval (review {blocked.review_id} "
                                   "is pending, approvers: role:credit-officer) [dec_")
    assert blocked.review_id is not None and blocked.review is not None and blocked.review["status"] == "pending"


def test_tool_constrain_runs_the_function_with_the_constrained_arguments(guard: Guard) -> None:
    calls: list[tuple[str, float]] = []

    @guard.tool(system="support-bot", agent="support-agent-1")
    def issue_refund(order_id: str, amount: float) -> str:
        calls.append((order_id, amount))
        return f"refunded {amount}"

    assert issue_refund("O-1001", 750) == "refunded 500"
    assert issue_refund(order_id="O-1002", amount=20) == "refunded 20"
    assert calls == [("O-1001", 500), ("O-1002", 20)]


def test_tool_constrain_redacts_a_string_argument(guard: Guard) -> None:
    sent: list[dict[str, str]] = []

    @guard.tool(system="support-bot")
    def send_email(to: str, body: str) -> None:
        sent.append({"to": to, "body": body})

    send_email("customer@example.com", body="Your colleague jane.doe@example.org asked us to write.")
    assert sent == [{"to": "customer@example.com", "body": "Your colleague [REDACTED] asked us to write."}]


def test_tool_log_runs_the_function_unchanged(guard: Guard) -> None:
    @guard.tool(system="assistant", kind="llm_request", name="chat", context={"environment": "prod"})
    def chat(prompt: str) -> str:
        return prompt.upper()

    assert chat("hello") == "HELLO"
    decision = guard.decide({"system": "assistant", "kind": "llm_request", "name": "chat",
                             "args": {"prompt": "hello"}, "context": {"environment": "prod"}})
    assert decision.verdict is Verdict.LOG


def test_tool_principal_is_evaluated_on_each_call(guard: Guard) -> None:
    user: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("user")

    @guard.tool(system="crm", principal=user.get)
    def delete_customer(customer_id: str) -> str:
        return f"deleted {customer_id}"

    user.set({"id": "bob", "roles": ["records-admin"]})
    assert delete_customer("C-1") == "deleted C-1"
    user.set({"id": "alice", "roles": ["analyst"]})
    with pytest.raises(Blocked) as caught:
        delete_customer("C-1")
    assert [r.rule for r in caught.value.reasons] == ["analysts-cannot-delete"]


def test_tool_keeps_the_functions_metadata(guard: Guard) -> None:
    @guard.tool(system="support-bot")
    def issue_refund(order_id: str, amount: float = 0.0) -> str:
        """Refund an order."""
        return order_id

    @guard.tool(system="support-bot", name="issue_refund")
    async def refund_later(order_id: str) -> str:
        """Refund an order, later."""
        return order_id

    assert issue_refund.__name__ == "issue_refund"
    assert issue_refund.__doc__ == "Refund an order."
    assert list(inspect.signature(issue_refund).parameters) == ["order_id", "amount"]
    assert inspect.signature(issue_refund).parameters["amount"].default == 0.0
    assert inspect.iscoroutinefunction(refund_later)
    assert refund_later.__doc__ == "Refund an order, later."


# --------------------------------------------------------------------------- the decorator, async


def test_async_tool_allow_constrain_and_block(guard: Guard) -> None:
    calls: list[float] = []

    @guard.tool(system="support-bot", agent="support-agent-1")
    async def issue_refund(order_id: str, amount: float) -> float:
        await asyncio.sleep(0)
        calls.append(amount)
        return amount

    @guard.tool(system="research-agent", agent="researcher-2")
    async def shell_exec(cmd: str) -> str:
        raise AssertionError("a blocked tool must not run")

    async def main() -> tuple[float, float]:
        small = await issue_refund("O-1", 20)
        large = await issue_refund("O-2", amount=750)
        with pytest.raises(Blocked) as caught:
            await shell_exec("rm -rf /")
        assert [r.rule for r in caught.value.reasons] == ["forbidden-tools"]
        return small, large

    assert asyncio.run(main()) == (20, 500)
    assert calls == [20, 500]


# --------------------------------------------------------------------------- arguments


def test_wrong_call_raises_the_type_error_python_would(guard: Guard) -> None:
    @guard.tool(system="support-bot")
    def issue_refund(order_id: str, amount: float) -> None: ...

    with pytest.raises(TypeError, match=r"issue_refund\(\): missing a required argument: 'amount'"):
        issue_refund("O-1")
    with pytest.raises(TypeError, match="unexpected keyword argument 'amont'"):
        issue_refund("O-1", 3, amont=3)


def test_an_argument_that_is_not_json_data_is_named(guard: Guard) -> None:
    @guard.tool(system="support-bot")
    def schedule(order_id: str, when: Any, tags: Any = ()) -> None:
        raise AssertionError("not reached")

    with pytest.raises(InputError) as caught:
        schedule("O-1", datetime.date(2026, 1, 1))
    assert caught.value.path == "$.args.when"
    assert "argument 'when' of" in str(caught.value) and "schedule() must be JSON data" in str(caught.value)
    assert "got date" in str(caught.value)
    with pytest.raises(InputError) as caught:
        schedule("O-1", "today", tags=("a", "b"))  # a tuple is not JSON: a list is
    assert caught.value.path == "$.args.tags"
    with pytest.raises(InputError) as caught:
        schedule("O-1", {"at": {1: "x"}})
    assert caught.value.path == "$.args.when.at"
    assert "argument 'when'" in str(caught.value)


def test_a_bad_fixed_part_is_refused_where_the_decorator_is_written(guard: Guard) -> None:
    with pytest.raises(InputError) as caught:
        guard.tool(system="crm", kind="shell")(lambda: None)
    assert caught.value.path == "$.kind"
    with pytest.raises(InputError) as caught:
        guard.tool(system="crm", principal={"id": "alice", "role": "analyst"})(lambda: None)
    assert caught.value.path == "$.principal.role"
    with pytest.raises(InputError) as caught:
        guard.tool(system="crm", agent=42)(lambda: None)  # type: ignore[arg-type]
    assert caught.value.path == "$.agent"


def test_varargs_kwargs_and_self_map_to_args(guard: Guard) -> None:
    seen: list[Any] = []

    class Mailer:
        @guard.tool(system="support-bot", name="send_email")
        def send(self, to: str, *cc: str, body: str, **headers: str) -> None:
            seen.append((self, to, cc, body, headers))

    mailer = Mailer()
    mailer.send("a@example.com", "b@example.com", body="Write to jane.doe@example.org", priority="high")
    assert seen == [(mailer, "a@example.com", ("b@example.com",), "Write to [REDACTED]", {"priority": "high"})]


# --------------------------------------------------------------------------- constraints and signatures


CONSTRAINTS = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: shape}
spec:
  target: {systems: [shop]}
  rules:
    - name: no-bcc
      when: name == "send"
      verdict: CONSTRAIN
      constrain:
        - remove: [args.bcc]
    - name: cap-tokens
      when: name == "complete"
      verdict: CONSTRAIN
      constrain:
        - set: {path: args.max_tokens, value: 512}
    - name: drop-required
      when: name == "charge"
      verdict: CONSTRAIN
      constrain:
        - remove: [args.amount]
"""


@pytest.fixture
def shaped(tmp_path: Path) -> Guard:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "shape.yaml").write_text(CONSTRAINTS, encoding="utf-8")
    return Guard.local(policies=tmp_path / "policies", database=f"sqlite:///{tmp_path / 'l.db'}",
                       key_file=tmp_path / "a.key", payload_key_file=tmp_path / "p.key")


def test_a_removed_argument_takes_the_functions_default(shaped: Guard) -> None:
    with shaped:
        @shaped.tool(system="shop")
        def send(to: str, bcc: str | None = None) -> tuple[str, str | None]:
            return to, bcc

        assert send("a@example.com", "boss@example.com") == ("a@example.com", None)


def test_a_set_argument_reaches_kwargs_or_is_refused(shaped: Guard) -> None:
    with shaped:
        @shaped.tool(system="shop")
        def complete(prompt: str, **options: int) -> dict[str, int]:
            return options

        assert complete("hi", max_tokens=4096, temperature=1) == {"max_tokens": 512, "temperature": 1}

        @shaped.tool(system="shop", name="complete")
        def complete_fixed(prompt: str) -> str:
            raise AssertionError("not reached")

        with pytest.raises(InputError, match=r"sets 'max_tokens', which .*complete_fixed\(\) does not take"):
            complete_fixed("hi")


def test_a_removed_required_argument_stops_the_call(shaped: Guard) -> None:
    with shaped:
        @shaped.tool(system="shop")
        def charge(order_id: str, amount: int) -> None:
            raise AssertionError("not reached")

        with pytest.raises(InputError, match=r"no value for .*charge\(\)'s required argument 'amount'"):
            charge("O-1", 10)


# --------------------------------------------------------------------------- Blocked, construction


def test_blocked_names_the_review_and_every_applied_error() -> None:
    decision = Decision(
        decision_id="dec_1", verdict=Verdict.BLOCK,
        reasons=(Reason("credit-decisions", "large", Verdict.BLOCK, "Too large"),
                 Reason("llm-logging", "log", Verdict.LOG, "logged")),
        review={"id": "rev_9", "status": "pending", "approvers": ["role:credit-officer"]})
    blocked = Blocked(decision)
    assert blocked.review_id == "rev_9"
    assert str(blocked) == ("blocked: credit-decisions/large: Too large (review rev_9 is pending, "
                            "approvers: role:credit-officer) [dec_1]")
    assert str(Blocked(Decision("dec_2", Verdict.BLOCK))) == (
        "blocked: no rule matched and the default verdict is BLOCK [dec_2]")


def test_local_from_settings_owns_and_closes_its_gateway(tmp_path: Path) -> None:
    config = tmp_path / "lictor.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'lictor.db'}\npolicies: {EXAMPLES / 'policies'}\n"
                      f"audit:\n  key_file: {tmp_path / 'a.key'}\n  payload_key_file: {tmp_path / 'p.key'}\n",
                      encoding="utf-8")
    with Guard.local(load_settings(config, env={})) as guard:
        assert guard.decide(example("credit-large")).verdict is Verdict.BLOCK
    # closed: the database can be opened again by someone else and holds the decision
    gateway = open_gateway(tmp_path)
    try:
        assert gateway.log.state.size >= 2
    finally:
        gateway.close()


def test_local_with_a_gateway_leaves_it_open(gateway: Gateway) -> None:
    Guard.local(gateway).close()
    assert gateway.decide(Action.from_dict(example("credit-small"))).verdict is Verdict.ALLOW
    with pytest.raises(TypeError):
        Guard.local(gateway, database="sqlite:///x.db")
