"""The audit log's write path: group commit, failures, back-pressure, seals, checkpoints and proofs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lictor.audit.checkpoint import open_checkpoint
from lictor.audit.leaf import decode_leaf
from lictor.audit.log import AuditLog, AuditUnavailable, Publisher, Receipt
from lictor.audit.merkle import leaf_hash, verify_inclusion
from lictor.audit.port import AppendResult, AuditStore, Payload
from lictor.audit.signer import FileSigner
from lictor.audit.verify import verify_log
from lictor.errors import InputError
from lictor.store import open_store

ORIGIN = "lictor.example/audit/log-test"


def decision(n: int, verdict: str = "ALLOW") -> dict[str, Any]:
    return {"v": 1, "type": "decision", "ts": "2020-01-01T00:00:00.000000Z", "verdict": verdict, "n": n}


def review(n: int) -> dict[str, Any]:
    return {"v": 1, "type": "review", "ts": "2020-01-01T00:00:00.000000Z", "n": n}


class CountingStore:
    """Delegates to a real store, counting append calls; can hold a call at a gate or fail it."""

    def __init__(self, inner: AuditStore) -> None:
        self.inner = inner
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.fail_next = False
        self.fail_calls: set[int] = set()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        self.calls += 1
        self.batch_sizes.append(len(leaves))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_next or self.calls in self.fail_calls:
            self.fail_next = False
            raise OSError("disk on fire")
        return self.inner.append(leaves, payloads)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'audit.db'}"
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture
def signer(tmp_path: Path) -> FileSigner:
    return FileSigner.create(tmp_path / "checkpoint.key", ORIGIN)




def hammer(log: AuditLog, threads: int, per_thread: int) -> list[Receipt]:
    receipts: list[Receipt] = []
    lock = threading.Lock()
    go = threading.Barrier(threads)

    def work(t: int) -> None:
        go.wait()
        mine = [log.append(decision(t * per_thread + i)) for i in range(per_thread)]
        with lock:
            receipts.extend(mine)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers)
    return receipts


def check_receipts(store: AuditStore, receipts: list[Receipt]) -> None:
    indices = sorted(r.index for r in receipts)
    assert indices == list(range(len(receipts)))
    stored = store.leaves(0, len(receipts))
    for receipt in receipts:
        assert leaf_hash(stored[receipt.index]) == receipt.leaf_hash


def verify(store: AuditStore, signer: FileSigner) -> None:
    size = store.state().size
    notes = [cp.note for cp in store.checkpoints()]
    report = verify_log(store.leaves(0, size), notes, [signer.verifier], origin=ORIGIN,
                        max_skew_seconds=1e12)  # leaf times here are made up
    assert report.signed_size == size


# --- appending -----------------------------------------------------------------------------------

def test_receipts_are_gapless_and_match_the_stored_leaves(store: AuditStore) -> None:
    with AuditLog(store=store, signer=None) as log:
        receipts = [log.append(decision(n)) for n in range(20)]
    assert [r.index for r in receipts] == list(range(20))
    check_receipts(store, receipts)
    assert [json.loads(leaf)["n"] for leaf in store.leaves(0, 20)] == list(range(20))


def test_payloads_are_stored_beside_their_leaf(store: AuditStore) -> None:
    payload = Payload(ciphertext=b"secret", key_id="k1", subject_refs=(b"s" * 32,))
    with AuditLog(store=store, signer=None) as log:
        receipt = log.append(decision(0), payload)
        assert log.state.size == 1
    assert store.payload(receipt.index) == payload


def test_concurrent_appends_get_distinct_indices_and_the_log_verifies(store: AuditStore,
                                                                      signer: FileSigner) -> None:
    log = AuditLog(store=store, signer=signer)
    log.start()
    receipts = hammer(log, 8, 50)
    note = log.checkpoint()
    log.close()
    assert note is not None
    check_receipts(store, receipts)
    verify(store, signer)


def test_concurrent_appends_on_postgres(postgres_url: str, signer: FileSigner) -> None:
    store = open_store(postgres_url)
    try:
        with AuditLog(store=store, signer=signer) as log:
            receipts = hammer(log, 8, 40)
            log.checkpoint()
        check_receipts(store, receipts)
        verify(store, signer)
    finally:
        store.close()


def test_group_commit_batches(store: AuditStore) -> None:
    counting = CountingStore(store)
    with AuditLog(store=counting, signer=None, max_delay=0.005) as log:
        receipts = hammer(log, 8, 200)
    check_receipts(store, receipts)
    assert len(receipts) == 1600
    assert counting.calls < 1600 / 3
    assert max(counting.batch_sizes) > 1


class FakeMonotonic:
    """The log's monotonic clock, moved by the test (queue times, gaps and group commit deadlines)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time
        from types import SimpleNamespace

        import lictor.audit.log as log_module

        self.now = 0.0
        monkeypatch.setattr(log_module, "time", SimpleNamespace(monotonic=lambda: self.now, time=time.time,
                                                                perf_counter=time.perf_counter))


def _batch_of_two_after_one(log: AuditLog, counting: CountingStore, clock: FakeMonotonic, gap: float) -> None:
    """Commit a batch of one and then a batch of two, with leaves queued ``gap`` seconds apart."""
    counting.gate = threading.Event()
    first = log.submit(decision(0))
    assert counting.entered.wait(10)
    clock.now += gap
    second = log.submit(decision(1))
    clock.now += gap
    third = log.submit(decision(2))
    counting.gate.set()
    assert [f.result(10).index for f in (first, second, third)] == [0, 1, 2]
    assert counting.batch_sizes == [1, 2]


def test_a_lone_leaf_is_not_held_for_company_when_leaves_come_rarely(store: AuditStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic(monkeypatch)
    counting = CountingStore(store)
    with AuditLog(store=counting, signer=None, max_delay=60.0) as log:  # a wait would outlast the test
        _batch_of_two_after_one(log, counting, clock, gap=1000.0)
        clock.now += 1000.0
        assert log.submit(decision(3)).result(10).index == 3
    assert counting.batch_sizes == [1, 2, 1]


def test_a_lone_leaf_waits_for_company_when_leaves_come_often(store: AuditStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic(monkeypatch)
    counting = CountingStore(store)
    with AuditLog(store=counting, signer=None, max_delay=60.0) as log:
        _batch_of_two_after_one(log, counting, clock, gap=0.001)
        fourth = log.submit(decision(3))  # held: the last batch had two, and leaves come often
        fifth = log.submit(decision(4))
        assert [fourth.result(10).index, fifth.result(10).index] == [3, 4]
    assert counting.batch_sizes == [1, 2, 2]


def test_leaves_nobody_waits_for_wait_for_company_however_rarely_they_come(
        store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic(monkeypatch)
    counting = CountingStore(store)
    with AuditLog(store=counting, signer=None, max_delay=60.0) as log:
        _batch_of_two_after_one(log, counting, clock, gap=1000.0)  # rare: a waited-for leaf goes alone
        clock.now += 1000.0
        queued = log.submit(decision(3), waited=False)  # held for company: nobody waits for it
        waited = log.submit(decision(4))  # someone waits: the two go together at once
        assert [queued.result(10).index, waited.result(10).index] == [3, 4]
    assert counting.batch_sizes == [1, 2, 2]


def test_the_batch_observer_sees_every_committed_batch_and_the_queue_depth(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    seen: list[tuple[int, float]] = []

    def broken(size: int, seconds: float) -> None:
        seen.append((size, seconds))
        raise RuntimeError("an observer's failure costs no record")

    log = AuditLog(store=counting, signer=None, max_batch=4, on_batch=broken)
    first = log.submit(decision(0))
    assert counting.entered.wait(10)
    futures = [log.submit(decision(n)) for n in range(1, 6)]
    assert log.queue_depth() == 5
    counting.gate.set()
    assert [f.result(10).index for f in [first, *futures]] == list(range(6))
    log.close()
    assert [size for size, _ in seen] == counting.batch_sizes == [1, 4, 1]
    assert all(seconds >= 0 for _, seconds in seen) and log.queue_depth() == 0


def test_max_batch_bounds_a_batch(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=4)
    first = log.submit(decision(0))
    assert counting.entered.wait(10)
    futures = [log.submit(decision(n)) for n in range(1, 11)]
    counting.gate.set()
    assert [f.result(10).index for f in [first, *futures]] == list(range(11))
    log.close()
    assert counting.batch_sizes == [1, 4, 4, 2]


def test_a_failed_batch_fails_every_waiter_and_the_log_carries_on(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    counting.fail_calls.add(2)
    log = AuditLog(store=counting, signer=None)
    first = log.submit(decision(0))
    assert counting.entered.wait(10)
    doomed = [log.submit(decision(n)) for n in range(1, 6)]
    counting.gate.set()
    assert first.result(10).index == 0
    for future in doomed:
        with pytest.raises(AuditUnavailable, match="disk on fire") as caught:
            future.result(10)
        assert isinstance(caught.value.__cause__, OSError)
    assert counting.batch_sizes[:2] == [1, 5]
    assert log.append(decision(6)).index == 1
    log.close()
    assert store.state().size == 2


def test_append_raises_when_the_store_fails(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.fail_next = True
    with AuditLog(store=counting, signer=None) as log:
        with pytest.raises(AuditUnavailable, match="disk on fire"):
            log.append(decision(0))
        assert log.append(decision(1)).index == 0


def test_a_full_queue_pushes_back(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=1, queue_limit=2)
    held = log.submit(decision(0))
    assert counting.entered.wait(10)
    queued = [log.submit(decision(1)), log.submit(decision(2))]
    with pytest.raises(AuditUnavailable, match="full"):
        log.submit(decision(3))
    with pytest.raises(AuditUnavailable, match="full"):
        log.append(decision(3))
    counting.gate.set()
    assert [f.result(10).index for f in [held, *queued]] == [0, 1, 2]
    assert log.append(decision(3)).index == 3
    log.close()


def test_append_times_out_and_withdraws_the_entry(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=1)
    held = log.submit(decision(0))
    assert counting.entered.wait(10)
    with pytest.raises(AuditUnavailable, match="within"):
        log.append(decision(1), timeout=0)
    counting.gate.set()
    assert held.result(10).index == 0
    assert log.append(decision(2)).index == 1  # the timed-out entry never reached the store
    log.close()
    assert [json.loads(leaf)["n"] for leaf in store.leaves(0, 2)] == [0, 2]


def test_close_flushes_and_later_appends_raise(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=2)
    futures = [log.submit(decision(0))]
    assert counting.entered.wait(10)
    futures += [log.submit(decision(n)) for n in range(1, 7)]
    closer = threading.Thread(target=log.close)
    closer.start()
    counting.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [f.result(0).index for f in futures] == list(range(7))
    assert store.state().size == 7
    with pytest.raises(AuditUnavailable, match="closed"):
        log.append(decision(8))
    with pytest.raises(AuditUnavailable, match="closed"):
        log.checkpoint()
    log.close()  # idempotent


def test_a_closed_log_cannot_be_started(store: AuditStore) -> None:
    log = AuditLog(store=store, signer=None)
    log.close()
    with pytest.raises(AuditUnavailable):
        log.start()


def test_a_leaf_that_cannot_be_encoded_is_refused(store: AuditStore) -> None:
    with AuditLog(store=store, signer=None) as log, pytest.raises(InputError):
        log.append({"v": 1, "type": "gossip"})


# --- seals and checkpoints -----------------------------------------------------------------------

def seal_at(store: AuditStore, index: int) -> dict[str, Any]:
    leaf = decode_leaf(store.leaves(index, index + 1)[0])
    assert leaf["type"] == "seal"
    return leaf


def test_seals_count_types_and_verdicts_since_the_previous_seal(store: AuditStore,
                                                                 signer: FileSigner) -> None:
    with AuditLog(store=store, signer=signer, clock=lambda: 1_800_000_000.25) as log:
        for n in range(3):
            log.append(decision(n, "ALLOW"))
        log.append(decision(3, "BLOCK"))
        log.append(review(4))
        log.checkpoint()
        log.append(decision(5, "REVIEW"))
        log.checkpoint()
        log.checkpoint()
    first, second, third = seal_at(store, 5), seal_at(store, 7), seal_at(store, 8)
    assert first["counts"] == {"types": {"decision": 4, "review": 1}, "verdicts": {"ALLOW": 3, "BLOCK": 1}}
    assert first["size_before"] == 5
    assert first["ts"] == "2027-01-15T08:00:00.250000Z"
    assert second["counts"] == {"types": {"decision": 1}, "verdicts": {"REVIEW": 1}}
    assert second["size_before"] == 7
    assert third["counts"] == {"types": {}, "verdicts": {}}
    assert [cp.size for cp in store.checkpoints()] == [6, 8, 9]
    verify(store, signer)


def test_a_new_log_counts_what_an_earlier_one_left_unsealed(tmp_path: Path, signer: FileSigner) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url)
    with AuditLog(store=store, signer=signer) as log:
        log.append(decision(0, "BLOCK"))
        log.checkpoint()
        log.append(decision(1, "ALLOW"))
        log.append(review(2))
    store.append([json.dumps(decision(3, "ALLOW"), separators=(",", ":"), sort_keys=True).encode()], [None])
    with AuditLog(store=store, signer=signer) as log:
        log.append(decision(4, "ALLOW"))
        log.checkpoint()
    seal = seal_at(store, 6)
    assert seal["counts"] == {"types": {"decision": 3, "review": 1}, "verdicts": {"ALLOW": 3}}
    verify(store, signer)
    store.close()


def test_checkpoint_notes_open_with_the_signers_verifier(store: AuditStore, signer: FileSigner) -> None:
    with AuditLog(store=store, signer=signer) as log:
        log.append(decision(0))
        note = log.checkpoint()
        assert note is not None
        checkpoint = open_checkpoint(note, [signer.verifier], ORIGIN)
        state = log.state
    assert (checkpoint.size, checkpoint.root) == (state.size, state.root) == (2, store.state().root)
    assert store.checkpoints()[-1].note == note


def test_logs_sharing_a_store_seal_in_turn_and_the_log_verifies(store: AuditStore, tmp_path: Path) -> None:
    """Two logs (as two gateway processes would) append and seal at once; every seal counts exactly
    the leaves from the previous seal's size_before, wherever the other log put it."""
    key = tmp_path / "shared.key"
    FileSigner.create(key, ORIGIN)
    logs = [AuditLog(store=store, signer=FileSigner(key), max_delay=0.0005) for _ in range(2)]
    stop = threading.Event()
    problems: list[BaseException] = []

    def seal(log: AuditLog) -> None:
        while not stop.is_set():
            try:
                log.checkpoint()
            except BaseException as exc:  # reported below
                problems.append(exc)
                return

    sealers = [threading.Thread(target=seal, args=(log,)) for log in logs]
    for sealer in sealers:
        sealer.start()
    try:
        receipts = [r for log in logs for r in hammer(log, 3, 40)]
    finally:
        stop.set()
        for sealer in sealers:
            sealer.join(30)
    logs[0].checkpoint()
    for log in logs:
        log.close()
    assert not problems
    assert len({r.index for r in receipts}) == len(receipts)
    verify(store, FileSigner(key))


def test_without_a_signer_checkpoint_seals_and_returns_none(store: AuditStore) -> None:
    with AuditLog(store=store, signer=None) as log:
        log.append(decision(0))
        assert log.checkpoint() is None
    assert seal_at(store, 1)["size_before"] == 1
    assert store.checkpoints() == []


def test_proofs_verify_against_the_checkpoint_root(store: AuditStore, signer: FileSigner) -> None:
    with AuditLog(store=store, signer=signer) as log:
        with pytest.raises(InputError, match="no checkpoint"):
            log.proof(0)
        receipts = [log.append(decision(n)) for n in range(37)]
        first_note = log.checkpoint()
        assert first_note is not None
        more = [log.append(decision(n)) for n in range(37, 50)]
        note = log.checkpoint()
        assert note is not None
        checkpoint = open_checkpoint(note, [signer.verifier], ORIGIN)
        for receipt in [*receipts, *more]:
            hash_, path, size = log.proof(receipt.index)
            assert hash_ == receipt.leaf_hash
            assert size == checkpoint.size
            verify_inclusion(hash_, receipt.index, size, path, checkpoint.root)
        old = open_checkpoint(first_note, [signer.verifier], ORIGIN)
        hash_, path, size = log.proof(5, old.size)
        verify_inclusion(hash_, 5, size, path, old.root)
        with pytest.raises(InputError):
            log.proof(checkpoint.size)
        with pytest.raises(InputError):
            log.proof(0, checkpoint.size + 10)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_maybe_checkpoint_follows_the_cadence(store: AuditStore, signer: FileSigner) -> None:
    clock = Clock(1_800_000_000.0)
    with AuditLog(store=store, signer=signer, clock=clock) as log:
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is not None  # never checkpointed
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is None
        log.append(decision(0))
        clock.now += 9
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is None  # grew, too soon
        clock.now += 1
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is not None  # grew, interval passed
        clock.now += 500
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is None  # nothing happened
        clock.now += 100
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is not None  # heartbeat
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is None
    assert [cp.size for cp in store.checkpoints()] == [1, 3, 4]
    verify(store, signer)


def test_maybe_checkpoint_picks_up_the_stored_checkpoints(store: AuditStore, signer: FileSigner) -> None:
    clock = Clock(1_800_000_000.0)
    with AuditLog(store=store, signer=signer, clock=clock) as log:
        log.checkpoint()
    with AuditLog(store=store, signer=signer, clock=clock) as log:
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is None
        clock.now += 600
        assert log.maybe_checkpoint(interval=10, seal_interval=600) is not None


def test_the_publisher_checkpoints_until_stopped(store: AuditStore, signer: FileSigner) -> None:
    done = threading.Event()

    class Signer:
        origin, vkey = signer.origin, signer.vkey

        def sign(self, size: int, root: bytes) -> str:
            note = signer.sign(size, root)
            done.set()
            return note

    with AuditLog(store=store, signer=Signer()) as log:
        log.append(decision(0))
        publisher = Publisher(log, interval=0.0, seal_interval=3600, tick=0.001)
        publisher.start()
        assert done.wait(10)
        publisher.stop(10)
        assert not publisher.is_alive()
        assert publisher.errors == []
    assert store.checkpoints()
    verify(store, signer)


def test_coroutines_wait_without_threads_and_share_a_batch(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=64)

    async def main() -> list[Receipt]:
        first = asyncio.ensure_future(log.append_async(decision(0)))
        await asyncio.sleep(0)
        assert await asyncio.to_thread(counting.entered.wait, 10)
        rest = [asyncio.ensure_future(log.append_async(decision(n))) for n in range(1, 6)]
        await asyncio.sleep(0)  # all five queued while the first batch is held
        counting.gate.set()
        return [await first, *await asyncio.gather(*rest)]

    receipts = asyncio.run(main())
    log.close()
    assert [r.index for r in receipts] == list(range(6))
    assert counting.batch_sizes == [1, 5]
    assert all(r.leaf_hash == leaf_hash(data) for r, data in zip(receipts, store.leaves(0, 6), strict=True))


def test_a_coroutine_times_out_and_its_entry_is_withdrawn(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.gate = threading.Event()
    log = AuditLog(store=counting, signer=None, max_batch=1)
    held = log.submit(decision(0))
    assert counting.entered.wait(10)

    async def main() -> None:
        with pytest.raises(AuditUnavailable, match=r"within 0\.01 s"):
            await log.append_async(decision(1), timeout=0.01)

    asyncio.run(main())
    counting.gate.set()
    assert held.result(10).index == 0
    assert log.append(decision(2)).index == 1  # the timed-out entry never reached the store
    log.close()
    assert [json.loads(leaf)["n"] for leaf in store.leaves(0, 2)] == [0, 2]


def test_a_failed_batch_fails_its_coroutines(store: AuditStore) -> None:
    counting = CountingStore(store)
    counting.fail_next = True
    log = AuditLog(store=counting, signer=None)

    async def main() -> None:
        with pytest.raises(AuditUnavailable, match="disk on fire"):
            await log.append_async(decision(0))
        assert (await log.append_async(decision(1))).index == 0

    asyncio.run(main())
    log.close()
