"""Payloads, erasure, sampling and retention, end to end through the gateway and the verifier."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lictor import Action, Verdict, load_policies
from lictor.audit.payload import PayloadKeys
from lictor.audit.verify import LogVerificationError
from lictor.runtime import Gateway, open_audit_reader

EXAMPLES = Path(__file__).parents[2] / "examples"

CREDIT = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
          "args": {"amount": 150000, "customer_id": "C-42"}, "agent": {"id": "loan-agent-7"},
          "principal": {"id": "alice", "roles": ["analyst"]},
          "context": {"confidence": 0.93, "environment": "prod", "data_subjects": ["C-42"]}}
CHAT = {"system": "chat", "kind": "message", "content": "hello", "principal": {"id": "bob"}}


class Deployment:
    """A gateway on SQLite in a temporary directory, reopened at will."""

    def __init__(self, tmp: Path, **options: object) -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'audit.db'}"
        self.options = options
        self.gateway = self.open()

    def open(self) -> Gateway:
        return Gateway.open(policies=load_policies(EXAMPLES / "policies"), database=self.url,
                            key_file=self.tmp / "audit.key", payload_key_file=self.tmp / "payload.key",
                            **self.options)  # type: ignore[arg-type]

    def decide(self, action: dict[str, object]) -> int:
        decision = self.gateway.decide(Action.from_dict(action))
        assert decision.audit is not None
        return int(decision.audit["index"])

    def verify(self, *, keys: bool = True, sampling_key: bytes | None = None) -> dict[str, object]:
        self.gateway.checkpoint()
        reader = open_audit_reader(self.url)
        try:
            report = reader.verify(self.gateway.log._signer.verifier,  # type: ignore[union-attr]
                                   origin="lictor.local/audit",
                                   payload_keys=PayloadKeys.load(self.tmp / "payload.key") if keys else None,
                                   sampling_key=sampling_key)
        finally:
            reader.close()
        return {"pruned": report.pruned, "payloads": report.payloads, "sampling": report.sampling_checked}

    def sql(self, statement: str, *args: object) -> None:
        conn = sqlite3.connect(self.tmp / "audit.db")
        with conn:
            conn.execute(statement, args)
        conn.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    d.gateway.close()


def failure(d: Deployment, **kwargs: object) -> LogVerificationError:
    with pytest.raises(LogVerificationError) as info:
        d.verify(**kwargs)  # type: ignore[arg-type]
    return info.value


def test_every_kept_payload_opens_its_leaf_commitments(deployment: Deployment) -> None:
    deployment.decide(CREDIT)
    deployment.decide(CHAT)
    report = deployment.verify()
    assert report["payloads"] == {"present": 2, "opened": 2}
    assert report["sampling"] is True
    assert deployment.verify(keys=False)["payloads"] == {"present": 2}


def test_a_changed_payload_is_tampering(deployment: Deployment) -> None:
    index = deployment.decide(CREDIT)
    deployment.sql("UPDATE payload SET ciphertext = CAST(ciphertext || X'00' AS BLOB) WHERE leaf_index = ?", index)
    error = failure(deployment)
    assert (error.outcome, error.step, error.index) == ("tampered", "6 payload", index)


def test_a_payload_stored_as_text_is_tampering_not_a_crash(deployment: Deployment) -> None:
    index = deployment.decide(CREDIT)
    deployment.sql("UPDATE payload SET ciphertext = ciphertext || 'x' WHERE leaf_index = ?", index)
    error = failure(deployment)
    assert (error.outcome, error.index) == ("tampered", index)


def test_a_payload_swapped_for_another_is_tampering(deployment: Deployment) -> None:
    first = deployment.decide(CREDIT)
    second = deployment.decide(CREDIT)
    deployment.sql("UPDATE payload SET ciphertext = (SELECT ciphertext FROM payload WHERE leaf_index = ?)"
                   " WHERE leaf_index = ?", first, second)
    error = failure(deployment, keys=False)
    assert (error.outcome, error.index) == ("tampered", second)


def test_a_deleted_payload_without_erasure_is_incomplete(deployment: Deployment) -> None:
    index = deployment.decide(CREDIT)
    deployment.sql("DELETE FROM payload WHERE leaf_index = ?", index)
    error = failure(deployment)
    assert (error.outcome, error.step, error.index) == ("incomplete", "6 payload", index)


def test_erasure_shreds_the_subject_and_the_log_still_verifies(deployment: Deployment) -> None:
    about_customer = deployment.decide(CREDIT)
    other = deployment.decide(CHAT)
    erasure, receipts = deployment.gateway.erase("C-42", basis="gdpr-art17")
    assert erasure.indices == (about_customer,)
    report = deployment.verify()
    assert report["payloads"] == {"present": 1, "opened": 1, "erased": 1}
    leaf = json.loads(deployment.gateway._store.leaves(receipts[0].index, receipts[0].index + 1)[0])
    assert leaf["type"] == "erasure" and leaf["indices"] == [about_customer] and leaf["basis"] == "gdpr-art17"
    assert "C-42" not in json.dumps(leaf) and "alice" not in json.dumps(leaf)
    assert deployment.gateway._store.payload(other) is not None


def test_an_erasure_left_unrecorded_by_a_crash_is_recorded_at_the_next_start(deployment: Deployment) -> None:
    deployment.decide(CREDIT)
    store = deployment.gateway._store
    store.erase_subject(deployment.gateway.vault.keys.subject_ref("alice"), 1.0)  # then "crash"
    assert failure(deployment).outcome == "incomplete"
    deployment.gateway.close()
    deployment.gateway = deployment.open()
    assert deployment.verify()["payloads"] == {"present": 0, "erased": 1}


def test_a_payload_kept_after_its_recorded_erasure_is_a_policy_violation(deployment: Deployment) -> None:
    index = deployment.decide(CREDIT)
    deployment.gateway.log.append({"v": 1, "type": "erasure", "ts": "2030-01-01T00:00:00.000000Z",
                                   "erasure": 99, "basis": "test", "indices": [index]})
    error = failure(deployment)
    assert (error.outcome, error.index) == ("policy", index)


def test_a_decision_about_nobody_cannot_be_erased_by_subject(deployment: Deployment) -> None:
    deployment.decide({"system": "chat", "kind": "message", "content": "anonymous"})
    erasure, _ = deployment.gateway.erase("someone-else")
    assert erasure.indices == ()
    assert deployment.verify()["payloads"] == {"present": 1, "opened": 1}


def test_low_risk_allow_decisions_are_sampled_and_enforcement_never(tmp_path: Path) -> None:
    d = Deployment(tmp_path, risk_tiers={"chat": "low", "credit-scoring": "low"}, sample_rates={"low": 0.0})
    try:
        allowed = d.gateway.decide(Action.from_dict(CHAT))
        blocked = d.gateway.decide(Action.from_dict(CREDIT))
        assert allowed.verdict is Verdict.ALLOW and blocked.verdict is Verdict.BLOCK
        assert d.gateway._store.payload(allowed.audit["index"]) is None  # type: ignore[index]
        assert d.gateway._store.payload(blocked.audit["index"]) is not None  # type: ignore[index]
        assert d.verify()["payloads"] == {"present": 1, "opened": 1, "not kept (sampled out)": 1}
    finally:
        d.gateway.close()


def test_the_sampling_key_must_be_the_committed_one(deployment: Deployment) -> None:
    deployment.decide(CHAT)
    error = failure(deployment, keys=False, sampling_key=b"\x01" * 32)
    assert (error.outcome, error.step) == ("policy", "6 sampling")


def test_an_enforcement_decision_without_its_payload_is_a_policy_violation(deployment: Deployment) -> None:
    decision = deployment.gateway.policies.evaluate(Action.from_dict(CREDIT))
    from lictor.audit.leaf import decision_leaf, new_salts

    leaf = decision_leaf(decision, Action.from_dict(CREDIT), risk_tier="high", salts=new_salts(),
                         detail="summary", sampling={"rate": 1.0, "selected": False})
    index = deployment.gateway.log.append(leaf).index
    error = failure(deployment, keys=False)
    assert (error.outcome, error.step, error.index) == ("policy", "6 sampling", index)


def test_prune_keeps_the_log_verifiable_and_says_what_it_dropped(deployment: Deployment) -> None:
    for _ in range(3):
        deployment.decide(CREDIT)
    deployment.gateway.checkpoint()
    custodian = deployment.gateway.custodian
    floor, receipt = custodian.prune(datetime.now(UTC) + timedelta(seconds=1))
    assert receipt is not None
    leaves = deployment.gateway._store.leaves(0, floor)
    kept = [json.loads(leaf)["type"] for leaf in leaves if leaf]
    assert kept == ["config"]  # the log's own history keeps its bytes
    report = deployment.verify()
    assert report["pruned"] == floor - 1
    assert custodian.prune(datetime(2000, 1, 1, tzinfo=UTC)) == (floor, None)


def test_pruned_leaves_without_a_prune_leaf_are_incomplete(deployment: Deployment) -> None:
    deployment.decide(CREDIT)
    deployment.decide(CREDIT)
    deployment.gateway._store.prune(2, 1.0)  # behind the log's back
    error = failure(deployment)
    assert (error.outcome, error.step) == ("incomplete", "4 prune")


def test_a_pruned_hash_that_was_changed_is_tampering(deployment: Deployment) -> None:
    deployment.decide(CREDIT)
    deployment.gateway.checkpoint()
    deployment.gateway.custodian.prune(datetime.now(UTC) + timedelta(seconds=1))
    deployment.sql("UPDATE leaf SET hash = zeroblob(32) WHERE idx = 1")
    error = failure(deployment)
    assert (error.outcome, error.step) == ("tampered", "4 root")


def test_async_durability_applies_to_low_risk_allow_only(tmp_path: Path) -> None:
    d = Deployment(tmp_path, risk_tiers={"chat": "low"}, sample_rates={"low": 1.0}, durability="async")
    try:
        queued = d.gateway.decide(Action.from_dict(CHAT))
        assert queued.audit == {"index": None, "durability": "async"}
        high = d.gateway.decide(Action.from_dict(CREDIT))
        assert high.audit is not None and isinstance(high.audit["index"], int)
        d.gateway.log.close()  # flushes the queue
        d.gateway = d.open()
        assert d.verify()["payloads"] == {"present": 2, "opened": 2}
    finally:
        d.gateway.close()


def test_the_documented_action_names_its_data_subjects() -> None:
    import re

    from lictor.runtime import data_subjects

    text = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    (block,) = re.findall(r"```json\n(.*?)```", text, re.S)
    assert data_subjects(Action.from_dict(json.loads(block))) == ["alice", "C-42"]


def test_a_publishing_gateway_seals_and_signs_on_its_own(tmp_path: Path) -> None:
    import time

    d = Deployment(tmp_path, checkpoint_interval=0.01, seal_interval=0.05)
    try:
        index = d.decide(CHAT)

        def covered() -> bool:
            notes = d.gateway._store.checkpoints()
            return bool(notes) and notes[-1].size > index

        deadline = time.monotonic() + 30
        while not covered() and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the publisher thread, not measuring it
        assert covered()  # nobody called checkpoint(): the publisher sealed and signed the decision
        assert d.gateway.publisher is not None and not d.gateway.publisher.errors
    finally:
        d.gateway.close()
    assert d.gateway.publisher is not None and not d.gateway.publisher.is_alive()


def test_adecide_awaits_the_same_durable_record(deployment: Deployment) -> None:
    import asyncio

    async def both() -> list[object]:
        return list(await asyncio.gather(*(deployment.gateway.adecide(Action.from_dict(CREDIT)) for _ in range(8))))

    decisions = asyncio.run(both())
    indices = sorted(d.audit["index"] for d in decisions)  # type: ignore[attr-defined]
    assert len(set(indices)) == 8
    assert {d.verdict for d in decisions} == {Verdict.BLOCK}  # type: ignore[attr-defined]
    assert deployment.verify()["payloads"] == {"present": 8, "opened": 8}


def test_adecide_many_records_in_order_in_shared_group_commits(deployment: Deployment,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    gateway = deployment.gateway
    store = gateway._store  # type: ignore[attr-defined]
    gate, sizes, append = threading.Event(), [], store.append

    def held(leaves, payloads):  # type: ignore[no-untyped-def]
        sizes.append(len(leaves))
        assert gate.wait(10)
        return append(leaves, payloads)

    monkeypatch.setattr(store, "append", held)
    first = gateway.log.submit({"v": 1, "type": "config", "ts": "2026-01-01T00:00:00.000000Z", "change": "hold"})

    async def many() -> list[object]:
        task = asyncio.ensure_future(gateway.adecide_many([Action.from_dict({**CHAT, "content": str(n)})
                                                           for n in range(3)]))
        for _ in range(100_000):  # the writer is held at the gate: all three leaves queue behind it
            if gateway.log.queue_depth() == 3:
                break
            await asyncio.sleep(0)
        gate.set()
        return list(await task)

    decisions = asyncio.run(many())
    start = first.result(10).index + 1
    assert [d.audit["index"] for d in decisions] == [start, start + 1, start + 2]  # type: ignore[attr-defined]
    assert sizes[-2:] == [1, 3]
    assert [json.loads(leaf)["decision_id"] for leaf in store.leaves(start, start + 3)] == [
        d.decision_id for d in decisions]  # type: ignore[attr-defined]


def test_adecide_fails_closed_when_the_log_is_closed(deployment: Deployment) -> None:
    import asyncio

    deployment.gateway.log.close()
    decision = asyncio.run(deployment.gateway.adecide(Action.from_dict(CHAT)))
    assert decision.verdict is Verdict.BLOCK and decision.audit is None
    assert "fail closed" in decision.errors[-1].message


def test_erasure_also_removes_the_review_records_that_hold_the_action(deployment: Deployment) -> None:
    decision = deployment.gateway.decide(Action.from_dict(CREDIT))
    assert decision.review is not None  # the large credit is held for a credit officer
    review_id = decision.review["id"]
    assert deployment.gateway._store.review(review_id) is not None  # type: ignore[attr-defined]
    deployment.gateway.erase("C-42")
    assert deployment.gateway._store.review(review_id) is None  # type: ignore[attr-defined]
    assert deployment.verify()["payloads"]["erased"] == 1  # type: ignore[index]
