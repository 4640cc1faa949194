"""The one contract every audit store keeps, run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading

import pytest

from lictor.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash, root_from_leaf_hashes
from lictor.audit.port import AuditStore, Erasure, Payload, StoredCheckpoint, SubjectKey, TreeState
from lictor.errors import InputError
from lictor.store.migrations import MIGRATIONS
from tests.store.conftest import Backend


def append_all(store: AuditStore, leaves: list[bytes]) -> int:
    return store.append(leaves, [None] * len(leaves)).first_index


def expected_state(leaves: list[bytes]) -> TreeState:
    frontier = Frontier()
    frontier.extend(leaf_hash(leaf) for leaf in leaves)
    size, hashes = frontier.state()
    return TreeState(size, root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves]), hashes)


def test_an_empty_store(backend: Backend) -> None:
    store = backend.open()
    assert store.state() == TreeState(0, EMPTY_ROOT, ())
    assert store.leaves(0, 0) == []
    assert store.checkpoints() == []
    assert store.payload(0) is None
    assert store.payloads(0, 0) == {}
    assert store.subject_key(b"nobody") is None
    assert store.wrapped_key("k") is None
    assert store.erasures() == []
    assert store.pruned_below() == 0
    assert store.leaf_hashes(0, 0) == []


def test_append_gives_the_next_indices_and_the_root_of_all_leaves(backend: Backend) -> None:
    store = backend.open()
    written: list[bytes] = []
    for n in (1, 2, 3, 7, 16, 1, 5):
        batch = [f"leaf {len(written) + i}".encode() for i in range(n)]
        result = store.append(batch, [None] * n)
        assert result.first_index == len(written)
        written.extend(batch)
        assert result.state == expected_state(written)
        assert result.state.root == root_from_leaf_hashes([leaf_hash(leaf) for leaf in written])
        assert store.state() == result.state


def test_leaves_come_back_byte_for_byte(backend: Backend) -> None:
    rng = random.Random(7)
    leaves = [b"", b"\x00", b"\xff" * 3, bytes(range(256)), rng.randbytes(70_000)]
    leaves += [rng.randbytes(rng.randrange(1, 600)) for _ in range(40)]
    store = backend.open()
    assert append_all(store, leaves) == 0
    assert store.leaves(0, len(leaves)) == leaves
    for start, end in [(0, 1), (3, 9), (44, 45), (10, 10), (45, 45)]:
        assert store.leaves(start, end) == leaves[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, 0), (0, 4), (3, 2)])
def test_leaves_outside_the_tree_are_refused(backend: Backend, start: int, end: int) -> None:
    store = backend.open()
    append_all(store, [b"a", b"b", b"c"])
    with pytest.raises(InputError):
        store.leaves(start, end)


def test_batches_of_1_to_300(backend: Backend) -> None:
    store = backend.open()
    written: list[bytes] = []
    for n in (1, 2, 31, 255, 256, 257, 300):
        batch = [b"%d:%d" % (n, i) for i in range(n)]
        assert append_all(store, batch) == len(written)
        written.extend(batch)
    assert store.state() == expected_state(written)
    assert store.leaves(0, len(written)) == written


def test_an_empty_batch_changes_nothing(backend: Backend) -> None:
    store = backend.open()
    append_all(store, [b"a", b"b"])
    before = store.state()
    result = store.append([], [])
    assert result.first_index == 2
    assert result.state == before == store.state()


def test_a_malformed_batch_is_refused_before_anything_is_written(backend: Backend) -> None:
    store = backend.open()
    with pytest.raises(InputError):
        store.append([b"a", b"b"], [None])
    with pytest.raises(InputError):
        store.append([b"a", "b"], [None, None])  # type: ignore[list-item]
    with pytest.raises(InputError):
        store.append([b"a"], [Payload(b"c", "k", (b"s", b"s"))])
    assert store.state() == TreeState(0, EMPTY_ROOT, ())


def test_payloads_are_kept_and_erased_by_subject(backend: Backend) -> None:
    store = backend.open()
    alice, bob = b"A" * 32, b"B" * 32
    first = Payload(b"\x01secret one", "key-1", (alice,))
    both = Payload(b"\x02secret two", "key-2", (bob, alice))
    third = Payload(b"\x03secret three", "key-1", (bob,))
    store.append([b"l0", b"l1", b"l2"], [first, None, both])
    store.append([b"l3", b"l4"], [Payload(b"", "key-3"), third])
    assert store.payload(0) == first
    assert store.payload(1) is None
    assert store.payload(2) == both
    assert store.payload(3) == Payload(b"", "key-3")
    assert store.payload(4) == third
    assert store.payload(99) is None

    assert store.payloads(0, 5) == {0: first.ciphertext, 2: both.ciphertext, 3: b"", 4: third.ciphertext}
    assert store.payloads(1, 3) == {2: both.ciphertext}

    erasure = store.erase_subject(alice, 1000.5)
    assert erasure.indices == (0, 2) and erasure.erased_at == 1000.5 and erasure.leaf_index is None
    assert store.payload(0) is None
    assert store.payload(2) is None  # the whole payload is destroyed, whoever else it concerns
    assert store.payload(4) == third
    assert store.erase_subject(alice, 1001.0).indices == ()
    assert store.erase_subject(bob, 1002.0).indices == (4,)  # 2 went with alice's erasure
    assert store.payload(4) is None
    assert store.payload(3) == Payload(b"", "key-3")
    assert store.payloads(0, 5) == {3: b""}
    # the tree does not change: payloads are outside it
    assert store.state() == expected_state([b"l0", b"l1", b"l2", b"l3", b"l4"])


def test_the_erasure_journal_keeps_what_was_erased_until_its_leaf_is_recorded(backend: Backend) -> None:
    store = backend.open()
    ref = b"R" * 32
    store.append([b"a", b"b"], [Payload(b"c0", "k", (ref,)), Payload(b"c1", "k", (ref,))])
    first = store.erase_subject(ref, 5.0)
    second = store.erase_subject(b"S" * 32, 6.0)
    assert first.indices == (0, 1) and second.indices == ()
    assert first.id != second.id
    assert store.erasures() == store.erasures(pending=True) == [first, second]
    store.record_erasure_leaf(first.id, 2)
    assert store.erasures(pending=True) == [second]
    assert store.erasures() == [Erasure(first.id, (0, 1), 5.0, 2), second]
    with pytest.raises(InputError):
        store.record_erasure_leaf(10_000, 3)


def test_subject_keys_are_shared_by_writers_and_destroyed_by_erasure(backend: Backend) -> None:
    store = backend.open()
    ref = b"K" * 32
    mine = store.add_subject_key(ref, SubjectKey("key-a", b"wrapped a"), 1.0)
    assert mine == SubjectKey("key-a", b"wrapped a")
    # a second writer that raced to add its own key gets the first one
    assert store.add_subject_key(ref, SubjectKey("key-b", b"wrapped b"), 2.0) == mine
    assert store.subject_key(ref) == mine
    assert store.wrapped_key("key-a") == b"wrapped a"
    assert store.wrapped_key("key-b") is None
    with pytest.raises(InputError):
        store.add_subject_key(b"L" * 32, SubjectKey("key-a", b"other"), 3.0)  # ids are unique

    store.erase_subject(ref, 4.0)
    assert store.subject_key(ref) is None
    assert store.wrapped_key("key-a") is None  # destroyed: crypto-shredded
    fresh = store.add_subject_key(ref, SubjectKey("key-c", b"wrapped c"), 5.0)
    assert store.subject_key(ref) == fresh
    assert store.wrapped_key("key-a") is None


def test_prune_drops_leaf_bytes_and_payloads_but_keeps_hashes(backend: Backend) -> None:
    store = backend.open()
    leaves = [b"leaf %d" % i for i in range(10)]
    ref = b"P" * 32
    store.append(leaves, [Payload(b"c%d" % i, "k", (ref,)) for i in range(10)])
    state = store.state()
    assert store.prune(4, 9.0, keep=[1, 2, 7]) == 4
    assert store.pruned_below() == 4
    assert store.leaves(0, 10) == [b"", leaves[1], leaves[2], b"", *leaves[4:]]
    assert store.leaf_hashes(0, 10) == [leaf_hash(leaf) for leaf in leaves]
    assert sorted(store.payloads(0, 10)) == [4, 5, 6, 7, 8, 9]
    assert store.prune(2, 10.0) == 4  # the floor never goes down
    assert store.state() == state
    assert store.erase_subject(ref, 11.0).indices == (4, 5, 6, 7, 8, 9)
    with pytest.raises(InputError):
        store.prune(11, 12.0)


def test_checkpoints_are_all_kept_smallest_first(backend: Backend) -> None:
    store = backend.open()
    append_all(store, [b"%d" % i for i in range(6)])
    store.add_checkpoint(4, "note four\n", 20.0)
    store.add_checkpoint(1, "note one\n", 10.0)
    store.add_checkpoint(6, "note six\n", 30.5)
    store.add_checkpoint(4, "note four\n", 25.0)  # the same note again is a no-op
    assert store.checkpoints() == [
        StoredCheckpoint(1, "note one\n", 10.0),
        StoredCheckpoint(4, "note four\n", 20.0),
        StoredCheckpoint(6, "note six\n", 30.5),
    ]
    with pytest.raises(InputError):
        store.add_checkpoint(4, "another note\n", 40.0)
    with pytest.raises(InputError):
        store.add_checkpoint(7, "a tree the store never had\n", 40.0)
    assert len(store.checkpoints()) == 3


def test_a_reopened_store_sees_everything(durable: Backend) -> None:
    store = durable.open()
    leaves = [b"x%d" % i for i in range(20)]
    store.append(leaves[:12], [Payload(b"c", "k", (b"s",))] + [None] * 11)
    store.append(leaves[12:], [None] * 8)
    store.add_checkpoint(20, "note\n", 5.0)
    state = store.state()
    store.close()

    again = durable.open()
    assert again.state() == state == expected_state(leaves)
    assert again.leaves(0, 20) == leaves
    assert again.payload(0) == Payload(b"c", "k", (b"s",))
    assert again.checkpoints() == [StoredCheckpoint(20, "note\n", 5.0)]
    assert again.append([b"more"], [None]).state == expected_state([*leaves, b"more"])


def hammer(stores: list[AuditStore], batches: int) -> None:
    """Append from one thread per store at once; check the indices tile 0..n-1 and the root recomputes."""
    landed: dict[int, bytes] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def work(t: int) -> None:
        rng = random.Random(t)
        try:
            start.wait()
            for b in range(batches):
                batch = [b"t%d b%d #%d" % (t, b, i) for i in range(rng.randrange(1, 9))]
                first = stores[t].append(batch, [None] * len(batch)).first_index
                for i, leaf in enumerate(batch):
                    assert first + i not in landed
                    landed[first + i] = leaf
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(len(stores))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    assert sorted(landed) == list(range(len(landed)))
    ordered = [landed[i] for i in range(len(landed))]
    state = stores[0].state()
    assert state == expected_state(ordered)
    assert stores[0].leaves(0, state.size) == ordered


def test_concurrent_appends_from_threads_get_gapless_unique_indices(backend: Backend) -> None:
    hammer([backend.open()] * 4, batches=12)


def test_concurrent_appends_from_separate_instances_are_serialised(durable: Backend) -> None:
    hammer([durable.open() for _ in range(4)], batches=12)


def test_migrations_are_recorded_once(durable: Backend) -> None:
    names = [migration.name for migration in MIGRATIONS]
    first = durable.open()
    append_all(first, [b"kept"])
    assert first.applied_migrations() == names  # type: ignore[attr-defined]
    first.close()
    second = durable.open()
    third = durable.open()
    assert second.applied_migrations() == names  # type: ignore[attr-defined]
    assert third.applied_migrations() == names  # type: ignore[attr-defined]
    assert second.leaves(0, 1) == [b"kept"]
