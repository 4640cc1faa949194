"""The Merkle tree against a literal RFC 6962 §2.1 reference, published vectors, and tamper sweeps."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
    verify_root,
)
from lictor.errors import VerificationError

# --- The reference: RFC 6962 §2.1, written as literally as Python allows. ----------------------------
# A subtree is named by its range [lo, hi) of the list D; PATH and PROOF return ranges, whose hashes
# are MTH of those ranges. Returning ranges also lets the tamper sweep reason about what a proof claims.

Range = tuple[int, int]


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, on leaf data."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = split(n)
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:n])).digest()


def path(m: int, lo: int, hi: int) -> list[Range]:
    """PATH(m, D[lo:hi]) of RFC 6962 §2.1.1, m counted from lo."""
    n = hi - lo
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return [*path(m, lo, lo + k), (lo + k, hi)]
    return [*path(m - k, lo + k, hi), (lo, lo + k)]


def subproof(m: int, lo: int, hi: int, b: bool) -> list[Range]:
    """SUBPROOF(m, D[lo:hi], b) of RFC 6962 §2.1.2."""
    n = hi - lo
    if m == n:
        return [] if b else [(lo, hi)]
    k = split(n)
    if m <= k:
        return [*subproof(m, lo, lo + k, b), (lo + k, hi)]
    return [*subproof(m - k, lo + k, hi, False), (lo, lo + k)]


def proof(m: int, n: int) -> list[Range]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, 0, n, True)


class Reference:
    """MTH of any range of one fixed list of leaves, memoised so that sweeping every proof is cheap."""

    def __init__(self, data: Sequence[bytes]) -> None:
        self.data = list(data)
        self.mth: Callable[[int, int], bytes] = functools.cache(lambda lo, hi: mth(self.data[lo:hi]))

    def hashes(self, ranges: list[Range]) -> list[bytes]:
        return [self.mth(lo, hi) for lo, hi in ranges]


def leaves(count: int) -> list[bytes]:
    return [f"leaf {i}".encode() * (i % 3) for i in range(count)]


N = 300
REF = Reference(leaves(N))
LEAF_HASHES = [leaf_hash(d) for d in REF.data]
TREE = Tree(LEAF_HASHES)


# --- Known answers -------------------------------------------------------------------------------------
# The eight leaves and prefix roots of the Certificate Transparency C++ merkle_tree_test.cc, as published
# in google/trillian merkle/testonly (constants.go) and transparency-dev/merkle proof/verify_test.go;
# the inclusion and consistency proofs are those of transparency-dev/merkle proof/verify_test.go.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_ROOTS_BYTES = [bytes.fromhex(h) for h in CT_ROOTS]
H96 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H5F = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H6B = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
HBC = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
HCA = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H0E = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
HB0 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
# (0-based leaf index, tree size, audit path)
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [H96, H5F, H6B]),
    (5, 8, [HBC, HCA, CT_ROOTS[3]]),
    (2, 3, [CT_ROOTS[1]]),
    (1, 5, [CT_ROOTS[0], H5F, HBC]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H96, H5F, H6B]),
    (6, 8, [H0E, HCA, CT_ROOTS[3]]),
    (2, 5, [H5F, HBC]),
    (6, 7, [H0E, HB0, CT_ROOTS[3]]),
]


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == CT_ROOTS_BYTES[0] == mth([b""])
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == Tree().root() == Frontier().root()


@pytest.mark.parametrize("size", range(1, 9))
def test_certificate_transparency_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES[:size]]
    assert mth(CT_LEAVES[:size]) == CT_ROOTS_BYTES[size - 1]  # the reference agrees with the vectors
    assert root_from_leaf_hashes(hashes) == CT_ROOTS_BYTES[size - 1]
    assert Tree(hashes).root() == CT_ROOTS_BYTES[size - 1]
    frontier = Frontier()
    frontier.extend(hashes)
    assert frontier.root() == CT_ROOTS_BYTES[size - 1]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_certificate_transparency_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    assert [h.hex() for h in inclusion_proof(index, size, hashes)] == expected
    assert [h.hex() for h in Tree(hashes).inclusion_proof(index, size)] == expected
    verify_inclusion(hashes[index], index, size, [bytes.fromhex(h) for h in expected], CT_ROOTS_BYTES[size - 1])


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_certificate_transparency_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    assert [h.hex() for h in consistency_proof(old, new, hashes)] == expected
    assert [h.hex() for h in Tree(hashes).consistency_proof(old, new)] == expected
    verify_consistency(
        old, new, CT_ROOTS_BYTES[old - 1], CT_ROOTS_BYTES[new - 1], [bytes.fromhex(h) for h in expected]
    )


# --- Equivalence with the reference, exhaustively up to N leaves -------------------------------------


def test_roots_of_every_prefix() -> None:
    frontier = Frontier()
    assert frontier.state() == (0, ())
    for size in range(N + 1):
        expected = REF.mth(0, size)
        assert TREE.root(size) == expected
        assert frontier.root() == expected
        assert frontier.size == size
        assert Frontier.from_state(*frontier.state()).root() == expected
        if size < 70:
            assert root_from_leaf_hashes(LEAF_HASHES[:size]) == expected
        if size < N:
            frontier.append(LEAF_HASHES[size])
    assert root_from_leaf_hashes(LEAF_HASHES) == REF.mth(0, N)


def test_every_inclusion_proof_equals_the_reference_and_verifies() -> None:
    for size in range(1, N + 1):
        root = REF.mth(0, size)
        for index in range(size):
            expected = REF.hashes(path(index, 0, size))
            got = TREE.inclusion_proof(index, size)
            assert got == expected, (index, size)
            verify_inclusion(LEAF_HASHES[index], index, size, got, root)


def test_every_consistency_proof_equals_the_reference_and_verifies() -> None:
    for new in range(1, N + 1):
        new_root = REF.mth(0, new)
        for old in range(1, new + 1):
            expected = REF.hashes(proof(old, new))
            got = TREE.consistency_proof(old, new)
            assert got == expected, (old, new)
            verify_consistency(old, new, REF.mth(0, old), new_root, got)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=140), st.data())
def test_sequence_api_equals_the_reference(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    size = draw.draw(st.integers(1, len(data)))
    index = draw.draw(st.integers(0, size - 1))
    old = draw.draw(st.integers(1, size))
    ref = Reference(data)
    assert root_from_leaf_hashes(hashes[:size]) == mth(data[:size])
    assert inclusion_proof(index, size, hashes) == ref.hashes(path(index, 0, size))
    assert consistency_proof(old, size, hashes) == ref.hashes(proof(old, size))
    tree = Tree()
    tree.extend(hashes)
    assert tree.root(size) == mth(data[:size])
    assert tree.leaf(index) == hashes[index]
    verify_root(hashes[:size], mth(data[:size]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=8))
def test_extending_in_chunks_equals_appending_one_by_one(chunks: list[int]) -> None:
    """Frontier.extend and Tree.extend hash whole levels at once, from any starting size."""
    frontier, tree = Frontier(), Tree()
    size = 0
    for count in chunks:
        if size + count > N:
            break
        frontier.extend(LEAF_HASHES[size:size + count])
        tree.extend(iter(LEAF_HASHES[size:size + count]))
        size += count
        one_by_one, tree_one_by_one = Frontier(), Tree()
        for h in LEAF_HASHES[:size]:
            one_by_one.append(h)
            tree_one_by_one.append(h)
        assert frontier.state() == one_by_one.state()
        assert frontier.root() == tree.root() == REF.mth(0, size)
        assert tree.size == size and tree._levels == tree_one_by_one._levels
        for bad in ([b"short"], [LEAF_HASHES[0], b"x" * 33]):  # a bad hash appends nothing
            with pytest.raises(ValueError, match="a leaf hash is 32 bytes"):
                frontier.extend(bad)
            with pytest.raises(ValueError, match="a leaf hash is 32 bytes"):
                tree.extend(bad)
            assert frontier.size == tree.size == size


def test_leaf_hashes_equal_leaf_hash() -> None:
    assert leaf_hashes(REF.data) == LEAF_HASHES
    assert leaf_hashes([]) == []


# --- Tamper sweeps ---------------------------------------------------------------------------------------
# A verifier may accept changed parameters only when the changed claim computes the very same hashes
# from the very same proof: e.g. leaf 0 of 5 leaves and leaf 0 of 6 leaves have audit paths of the same
# shape, so the proof of one is, hash for hash, a proof of the other (the last sibling is then read as a
# node instead of a leaf). `claim` names what each root would be computed from, symbolically, and a
# changed parameter must verify exactly when its symbolic claim is the same as the true one.

Expr = tuple[object, ...]


def expr(lo: int, hi: int, atoms: dict[Range, Expr]) -> Expr:
    """MTH(D[lo:hi]) as an expression over the named atoms (what a verifier can compute it from)."""
    if (lo, hi) in atoms:
        return atoms[(lo, hi)]
    if hi - lo <= 1:
        return ("unknown", lo, hi)
    k = split(hi - lo)
    return ("node", expr(lo, lo + k, atoms), expr(lo + k, hi, atoms))


def inclusion_claim(index: int, size: int) -> Expr | None:
    if not 0 <= index < size:
        return None
    atoms: dict[Range, Expr] = {r: ("proof", i) for i, r in enumerate(path(index, 0, size))}
    atoms[(index, index + 1)] = ("leaf",)
    return (len(atoms), expr(0, size, atoms))


def substitute(e: Expr, name: Expr, value: Expr) -> Expr:
    if e == name:
        return value
    if e[0] == "node":
        left, right = e[1], e[2]
        assert isinstance(left, tuple) and isinstance(right, tuple)
        return ("node", substitute(left, name, value), substitute(right, name, value))
    return e


def consistency_claim(old: int, new: int) -> tuple[int, Expr, Expr] | None:
    """(proof length, old root, new root) as expressions over proof elements and the given old root."""
    if not 0 < old < new:
        return None
    ranges = proof(old, new)
    atoms: dict[Range, Expr] = {r: ("proof", i) for i, r in enumerate(ranges)}
    if old & (old - 1) == 0:
        atoms[(0, old)] = ("old root",)
    old_expr, new_expr = expr(0, old, atoms), expr(0, new, atoms)
    if old_expr != ("old root",):  # the given old root is itself computed from the proof
        new_expr = substitute(new_expr, ("old root",), old_expr)
    return (len(ranges), old_expr, new_expr)


def consistency_equivalent(old: int, new: int, old2: int, new2: int) -> bool:
    true, changed = consistency_claim(old, new), consistency_claim(old2, new2)
    if true is None or changed is None or true[0] != changed[0]:
        return False
    # Under the changed claim "old root" stands for the given old root, which is the true old expression.
    old_expr = substitute(changed[1], ("old root",), true[1])
    new_expr = substitute(changed[2], ("old root",), true[1])
    return old_expr == true[1] and new_expr == true[2]


def flips(value: bytes, every_bit: bool, rng: st.DataObject | None = None) -> list[bytes]:
    """Copies of value with one bit flipped: every bit, one drawn at random, or the first and the last."""
    last = len(value) * 8 - 1
    if every_bit:
        positions: Sequence[int] = range(last + 1)
    elif rng is not None:
        positions = [rng.draw(st.integers(0, last))]
    else:
        positions = [0, last]
    out = []
    for bit in positions:
        changed = bytearray(value)
        changed[bit // 8] ^= 1 << (bit % 8)
        out.append(bytes(changed))
    return out


def assert_rejected(check: Callable[[], None], step: str) -> None:
    with pytest.raises(VerificationError) as info:
        check()
    assert info.value.step == step


def sweep_inclusion(index: int, size: int, every_bit: bool, rng: st.DataObject | None = None) -> None:
    good = TREE.inclusion_proof(index, size)
    root, leaf = REF.mth(0, size), LEAF_HASHES[index]

    def check(h: bytes, i: int, s: int, p: list[bytes], r: bytes) -> Callable[[], None]:
        return lambda: verify_inclusion(h, i, s, p, r)

    for i in range(len(good)):
        for bad in flips(good[i], every_bit, rng):
            assert_rejected(check(leaf, index, size, [*good[:i], bad, *good[i + 1 :]], root), "inclusion")
    for bad in flips(leaf, every_bit, rng):
        assert_rejected(check(bad, index, size, good, root), "inclusion")
    for bad in flips(root, every_bit, rng):
        assert_rejected(check(leaf, index, size, good, bad), "inclusion")
    for bad_proof in ([*good, good[0] if good else root], good[:-1] if good else [root], [root, *good]):
        assert_rejected(check(leaf, index, size, bad_proof, root), "inclusion")
    true = inclusion_claim(index, size)
    for index2, size2 in ((index - 1, size), (index + 1, size), (index, size - 1), (index, size + 1)):
        if inclusion_claim(index2, size2) == true:
            verify_inclusion(leaf, index2, size2, good, root)  # the same claim, hash for hash
        else:
            assert_rejected(check(leaf, index2, size2, good, root), "inclusion")


def sweep_consistency(old: int, new: int, every_bit: bool, rng: st.DataObject | None = None) -> None:
    good = TREE.consistency_proof(old, new)
    old_root, new_root = REF.mth(0, old), REF.mth(0, new)

    def check(o: int, n: int, r1: bytes, r2: bytes, p: list[bytes]) -> Callable[[], None]:
        return lambda: verify_consistency(o, n, r1, r2, p)

    for i in range(len(good)):
        for bad in flips(good[i], every_bit, rng):
            assert_rejected(check(old, new, old_root, new_root, [*good[:i], bad, *good[i + 1 :]]), "consistency")
    for bad in flips(old_root, every_bit, rng):
        assert_rejected(check(old, new, bad, new_root, good), "consistency")
    for bad in flips(new_root, every_bit, rng):
        assert_rejected(check(old, new, old_root, bad, good), "consistency")
    for bad_proof in ([*good, old_root], good[:-1] if good else [new_root], [new_root, *good]):
        assert_rejected(check(old, new, old_root, new_root, bad_proof), "consistency")
    for old2, new2 in ((old - 1, new), (old + 1, new), (old, new - 1), (old, new + 1)):
        if consistency_equivalent(old, new, old2, new2):
            verify_consistency(old2, new2, old_root, new_root, good)
        else:
            assert_rejected(check(old2, new2, old_root, new_root, good), "consistency")


def test_every_bit_flip_and_off_by_one_is_rejected_in_small_trees() -> None:
    for size in range(1, 12):
        for index in range(size):
            sweep_inclusion(index, size, every_bit=True)
        for old in range(1, size + 1):
            sweep_consistency(old, size, every_bit=True)


def test_off_by_one_parameters_in_larger_trees() -> None:
    accepted = rejected = 0
    for size in range(1, 130):
        for index in range(size):
            sweep_inclusion(index, size, every_bit=False)
            same = inclusion_claim(index, size + 1) == inclusion_claim(index, size)
            accepted += same
            rejected += not same
    for size in range(1, 70):
        for old in range(1, size + 1):
            sweep_consistency(old, size, every_bit=False)
    assert accepted and rejected  # both outcomes occur: the shape of the tree alone decides


@settings(max_examples=150, deadline=None)
@given(st.integers(1, N), st.data())
def test_random_bit_flips_are_rejected(size: int, rng: st.DataObject) -> None:
    index = rng.draw(st.integers(0, size - 1))
    old = rng.draw(st.integers(1, size))
    sweep_inclusion(index, size, every_bit=False, rng=rng)
    sweep_consistency(old, size, every_bit=False, rng=rng)


# --- Edge cases of the verifiers and argument errors of the generators -----------------------------------

SOME = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_inclusion_edge_cases() -> None:
    one = leaf_hash(b"data")
    verify_inclusion(one, 0, 1, [], one)  # a one-leaf tree: root is the leaf hash, proof empty
    for index, size in ((0, 0), (1, 1), (-1, 1), (2, 1), (1, 0)):
        with pytest.raises(VerificationError):
            verify_inclusion(one, index, size, [], one)
    assert_rejected(lambda: verify_inclusion(one, 0, 1, [], EMPTY_ROOT), "inclusion")
    assert_rejected(lambda: verify_inclusion(b"", 0, 1, [], b""), "inclusion")  # wrong hash size
    assert_rejected(lambda: verify_inclusion(one, 0, 2, [b"short"], one), "inclusion")
    with pytest.raises(VerificationError) as info:
        verify_inclusion(one, 3, 8, [SOME, SOME, SOME], SOME)
    assert info.value.index == 3 and info.value.step == "inclusion"


def test_consistency_edge_cases() -> None:
    a, b = REF.mth(0, 1), REF.mth(0, 2)
    verify_consistency(1, 1, a, a, [])
    verify_consistency(N, N, REF.mth(0, N), REF.mth(0, N), [])
    cases = [
        (1, 1, a, b, []),  # equal sizes, different roots
        (1, 1, a, a, [EMPTY_ROOT]),  # equal sizes, proof not empty
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),  # an empty old tree proves nothing
        (0, 1, EMPTY_ROOT, a, []),
        (-1, 1, EMPTY_ROOT, a, []),
        (2, 1, b, a, []),  # time travel
        (1, 2, a, b, []),  # empty proof between different sizes
        (1, 2, a, b, [b"short"]),
        (1, 2, a[:-1], b, [LEAF_HASHES[1]]),
    ]
    for old, new, r1, r2, p in cases:
        with pytest.raises(VerificationError) as info:
            verify_consistency(old, new, r1, r2, p)
        assert info.value.step == "consistency"
    verify_consistency(1, 2, a, b, [LEAF_HASHES[1]])


def test_verify_root() -> None:
    verify_root(LEAF_HASHES[:5], REF.mth(0, 5))
    verify_root([], EMPTY_ROOT)
    with pytest.raises(VerificationError) as info:
        verify_root(LEAF_HASHES[:5], REF.mth(0, 4))
    assert info.value.step == "root"


def test_generators_refuse_bad_arguments() -> None:
    hashes = LEAF_HASHES[:8]
    for index, size in ((-1, 8), (8, 8), (0, 0), (0, 9), (0, -1)):
        with pytest.raises(ValueError):
            inclusion_proof(index, size, hashes)
    for old, new in ((0, 8), (-1, 8), (9, 8), (3, 9), (5, 4)):
        with pytest.raises(ValueError):
            consistency_proof(old, new, hashes)
    tree = Tree(hashes)
    assert consistency_proof(8, 8, hashes) == tree.consistency_proof(8) == []
    for bad in (lambda: tree.root(9), lambda: tree.leaf(8), lambda: tree.inclusion_proof(8), lambda: tree.consistency_proof(0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        tree.append(b"short")
    assert len(tree) == tree.size == 8 and repr(tree) == "Tree(size=8)"


def test_frontier_state_round_trip_and_validation() -> None:
    frontier = Frontier()
    frontier.extend(LEAF_HASHES[:13])
    size, hashes = frontier.state()
    assert size == 13 and len(hashes) == 3  # 13 = 8 + 4 + 1
    assert hashes[0] == REF.mth(0, 8) and hashes[1] == REF.mth(8, 12) and hashes[2] == REF.mth(12, 13)
    restored = Frontier.from_state(size, hashes)
    restored.append(LEAF_HASHES[13])
    frontier.append(LEAF_HASHES[13])
    assert restored.state() == frontier.state() and restored.root() == REF.mth(0, 14)
    assert repr(restored) == "Frontier(size=14)"
    for bad_size, bad_hashes in ((13, hashes[:2]), (12, hashes), (-1, ()), (1, (b"short",))):
        with pytest.raises(ValueError):
            Frontier.from_state(bad_size, bad_hashes)
    with pytest.raises(ValueError):
        frontier.append(b"x" * (HASH_SIZE + 1))
