"""Offline verification of an audit log from its leaves, its checkpoints and a pinned public key.

The verifier trusts nothing but the key it is given. It runs numbered steps and raises
``LogVerificationError`` at the first failure, naming the step, the outcome class (``tampered``,
``incomplete`` or ``policy``) and, where one can be named, the first bad index:

1. every checkpoint (the log's own and any the auditor brings) carries a valid signature, for the
   expected origin, by the key in force for its tree size: the pinned key, then each key a
   ``config`` leaf announces (key rotation) from the first checkpoint that the previous key signed
   over the announcement (the handover); a retired key signs nothing after its handover, and
   checkpoints from before the pinned key's epoch are reported as not checked;
2. no two checkpoints of the same size disagree (equivocation);
3. every leaf decodes: RFC 8785 canonical bytes, a known version and type (fail closed);
4. the root recomputed from the leaf bytes equals every checkpoint's root at its size; a checkpoint
   larger than the leaves present means records are missing (truncation);
5. leaf timestamps never run backwards by more than the allowed skew, seals count what they cover
   and come often enough (policy);
6. payloads, when the store's are given: every payload a leaf references is present with the
   SHA-256 the leaf records, unless an ``erasure`` or ``prune`` leaf covers its absence (a missing
   payload is incomplete, a changed one tampered); with the payload keys, each payload decrypts and
   opens every commitment of its leaf; enforcement decisions (not ALLOW, errors, reviews) are never
   sampled away; with the sampling key, each decision's sampling is recomputed from its id and must
   match, and the key must be the one the ``config`` leaves committed to (policy).

Pruned leaves (retention) are present as their stored hashes only: they count towards the roots, but
their content cannot be checked, and each must be covered by a ``prune`` leaf.

It never reports success for something it skipped: the report says how many leaves and
checkpoints were checked and the largest size a signature covers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lictor.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from lictor.audit.leaf import decode_leaf, verify_commitment
from lictor.audit.merkle import Frontier, leaf_hashes
from lictor.audit.note import Verifier
from lictor.audit.payload import (
    ShreddedPayload,
    open_document,
    payload_ref,
    sampled,
    sampling_fingerprint,
)
from lictor.errors import VerificationError

__all__ = ["EXIT_CODES", "LogVerificationError", "VerifyReport", "verify_log"]

#: Process exit code for each outcome of ``lictor audit verify``.
EXIT_CODES = {"valid": 0, "tampered": 1, "incomplete": 2, "policy": 3}


class LogVerificationError(VerificationError):
    """A log that does not verify; ``outcome`` is ``tampered``, ``incomplete`` or ``policy``."""

    def __init__(self, message: str, *, outcome: str, step: str, index: int | None = None) -> None:
        super().__init__(message, step=step, index=index)
        self.outcome = outcome

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What was checked, for a log that verified."""

    origin: str
    leaves: int
    checkpoints: int
    signed_size: int
    leaf_types: dict[str, int]
    pruned: int = 0
    payloads: dict[str, int] | None = None
    sampling_checked: bool = False
    keys: int = 1
    skipped_checkpoints: int = 0

    def summary(self) -> str:
        unsigned = self.leaves - self.signed_size
        tail = f"; the last {unsigned} leaves are not yet covered by a checkpoint" if unsigned else ""
        lines = [f"valid: {self.leaves} leaves of {self.origin}, {self.checkpoints} signed checkpoints, "
                 f"signed up to size {self.signed_size}{tail}"]
        if self.keys > 1:
            lines.append(f"keys: {self.keys} signing keys, each checked for its own range of tree sizes")
        if self.skipped_checkpoints:
            lines.append(f"not checked: {self.skipped_checkpoints} checkpoints from before the pinned key's epoch")
        if self.pruned:
            lines.append(f"pruned: {self.pruned} leaves kept as hashes only (retention); their content was not checked")
        if self.payloads is None:
            lines.append("payloads: not checked (none were given)")
        else:
            lines.append("payloads: " + ", ".join(f"{n} {what}" for what, n in self.payloads.items()))
        lines.append("sampling: recomputed from the sampling key" if self.sampling_checked
                     else "sampling: not recomputed (no sampling key); enforcement decisions checked as kept")
        return "\n".join(lines)


def _open_all(notes: Iterable[str], verifiers: Sequence[Verifier], origin: str) -> list[Checkpoint]:
    checkpoints = []
    for number, note in enumerate(notes, start=1):
        try:
            checkpoints.append(open_checkpoint(note, verifiers, origin))
        except VerificationError as exc:
            raise LogVerificationError(f"checkpoint {number}: {exc.message}", outcome="tampered",
                                       step="1 signature") from None
    return checkpoints


def _announced_keys(leaves: Sequence[bytes]) -> list[tuple[int, str]]:
    """(index, vkey) of every ``config`` leaf that announces a signing key different from the last."""
    chain: list[tuple[int, str]] = []
    for index, data in enumerate(leaves):
        if b'"type":"config"' not in data:
            continue
        try:
            leaf = json.loads(data)
        except ValueError:
            continue  # step 3 reports it
        vkey = leaf.get("vkey") if isinstance(leaf, dict) else None
        if isinstance(vkey, str) and (not chain or chain[-1][1] != vkey):
            chain.append((index, vkey))
    return chain


def _note_size(note: str, number: int) -> int:
    try:
        return parse_checkpoint(note[:note.rfind("\n\n") + 1]).size
    except VerificationError as exc:
        raise LogVerificationError(f"checkpoint {number}: {exc.message}", outcome="tampered",
                                   step="1 signature") from None


def _opens(note: str, key: Verifier, origin: str) -> bool:
    try:
        open_checkpoint(note, [key], origin)
    except VerificationError:
        return False
    return True


def _open_by_epoch(chain: Sequence[tuple[int, str]], notes: Sequence[str], verifiers: Sequence[Verifier],
                   origin: str) -> tuple[list[Checkpoint], int]:
    """Step 1 with key rotation: open each checkpoint with the key in force for its size (``chain``:
    the announced keys); return the checkpoints and how many were skipped as older than the pinned
    key's epoch."""
    pinned = {v.vkey for v in verifiers}
    start = next((n for n, (_, vkey) in enumerate(chain) if vkey in pinned), None)
    if start is None:
        if chain:
            raise LogVerificationError(f"the pinned key is none of the signing keys this log announces "
                                       f"({', '.join(v for _, v in chain)})", outcome="tampered", step="1 signature")
        return _open_all(notes, verifiers, origin), 0  # a log without config leaves: the pinned key only
    try:
        keys = [Verifier.from_vkey(vkey) for _, vkey in chain[start:]]
    except VerificationError as exc:
        raise LogVerificationError(f"a config leaf announces a malformed key: {exc.message}", outcome="tampered",
                                   step="1 signature") from None
    sized = sorted((_note_size(note, number), number, note) for number, note in enumerate(notes, 1))
    # the handover of key k: the smallest checkpoint over its announcement signed by key k - 1 (by key
    # k itself for the pinned key when it is not the log's first: its predecessor is not trusted)
    lows: list[int] = []
    for k, (announced, _) in enumerate(chain[start:]):
        if k == 0 and start == 0:
            lows.append(0)
            continue
        signer = keys[k] if k == 0 else keys[k - 1]
        handover = next((size for size, _, note in sized if size > announced and _opens(note, signer, origin)), None)
        if handover is None:
            break  # announced, but no checkpoint hands over to it yet: not trusted
        lows.append(handover)
    checkpoints: list[Checkpoint] = []
    skipped = 0
    for size, number, note in sized:
        if not lows or size < lows[0]:
            skipped += 1
            continue
        allowed = [keys[k] for k, low in enumerate(lows) if low <= size and (k + 1 >= len(lows) or size <= lows[k + 1])]
        try:
            checkpoints.append(open_checkpoint(note, allowed, origin))
        except VerificationError as exc:
            raise LogVerificationError(f"checkpoint {number} (size {size}) is not signed by the key in force for "
                                       f"that size: {exc.message}", outcome="tampered", step="1 signature") from None
    return checkpoints, skipped


def _check_equivocation(checkpoints: Sequence[Checkpoint]) -> None:
    roots: dict[int, bytes] = {}
    for cp in checkpoints:
        if roots.setdefault(cp.size, cp.root) != cp.root:
            raise LogVerificationError(f"two checkpoints of size {cp.size} with different roots (equivocation)",
                                       outcome="tampered", step="2 equivocation")


def verify_log(leaves: Sequence[bytes], checkpoint_notes: Iterable[str], verifiers: Sequence[Verifier], *,
               origin: str, max_skew_seconds: float = 300.0, max_seal_interval: float | None = None,
               pruned_hashes: Sequence[bytes] = (), payloads: Mapping[int, bytes] | None = None,
               open_payload: Callable[[bytes, int], bytes] | None = None,
               sampling_key: bytes | None = None) -> VerifyReport:
    """Verify ``leaves`` (the exact stored bytes, index order) against signed checkpoint notes.

    ``max_seal_interval`` (seconds), when given, is the longest allowed time between seals (the
    writer's heartbeat): a longer silence cannot be told from missing records, so it is a policy
    violation. ``pruned_hashes[i]`` is the stored leaf hash of leaf ``i`` when its bytes were pruned
    (given as ``b""``). ``payloads`` (leaf index -> stored ciphertext) enables step 6;
    ``open_payload`` decrypts one (the operator's own check) and ``sampling_key`` recomputes sampling."""
    chain = _announced_keys(leaves)
    opened, skipped = _open_by_epoch(chain, list(checkpoint_notes), verifiers, origin)
    checkpoints = sorted(opened, key=lambda c: c.size)
    if not checkpoints:
        raise LogVerificationError("no signed checkpoint: nothing vouches for these leaves",
                                   outcome="incomplete", step="1 signature")
    _check_equivocation(checkpoints)
    wanted = {cp.size: cp.root for cp in checkpoints}
    frontier = Frontier()
    unhashed: list[bytes] = []  # leaves since the last checked size, hashed together at the next one
    types: dict[str, int] = {}
    last_good = 0
    last_ts = ""
    policy_problem: LogVerificationError | None = None
    seals = _Seals(max_seal_interval)
    if 0 in wanted and wanted[0] != frontier.root():
        raise LogVerificationError("checkpoint of size 0 does not have the empty root", outcome="tampered",
                                   step="4 root", index=0)
    evidence = _Evidence(remember=payloads is not None, keep_commitments=open_payload is not None,
                         sampling_key=sampling_key)
    pruned = 0
    def check_root(size: int) -> None:
        nonlocal last_good
        frontier.extend(leaf_hashes(unhashed))
        unhashed.clear()
        if wanted[size] != frontier.root():
            raise LogVerificationError(
                f"leaves {last_good}..{size - 1} do not hash to the signed root of size {size}: a record "
                "in that range was changed, removed, added or reordered",
                outcome="tampered", step="4 root", index=last_good)
        last_good = size

    for index, data in enumerate(leaves):
        if not data and index < len(pruned_hashes):  # pruned: only its stored hash is left
            pruned += 1
            evidence.pruned_leaf(index)
            seals.pruned()
            frontier.extend(leaf_hashes(unhashed))
            unhashed.clear()
            frontier.append(pruned_hashes[index])
            if index + 1 in wanted:
                check_root(index + 1)
            continue
        try:
            leaf = decode_leaf(data, index=index)
        except VerificationError as exc:
            raise LogVerificationError(exc.message, outcome="tampered", step="3 leaf", index=index) from None
        types[leaf["type"]] = types.get(leaf["type"], 0) + 1
        evidence.see(index, leaf)
        if policy_problem is None:
            policy_problem = seals.see(index, leaf)
        ts = leaf.get("ts")
        if isinstance(ts, str):
            if (policy_problem is None and last_ts and ts < last_ts
                    and _seconds_between(ts, last_ts) > max_skew_seconds):
                # reported only once the structure verified: tampering outranks a policy finding
                policy_problem = LogVerificationError(f"timestamp {ts} runs back from {last_ts}",
                                                      outcome="policy", step="5 time", index=index)
            last_ts = max(last_ts, ts)
        unhashed.append(data)
        if index + 1 in wanted:
            check_root(index + 1)
    largest = checkpoints[-1].size
    if largest > len(leaves):
        raise LogVerificationError(
            f"a signed checkpoint covers {largest} leaves but only {len(leaves)} are present: records "
            f"{len(leaves)}..{largest - 1} are missing (truncation)", outcome="tampered", step="4 root",
            index=len(leaves))
    evidence.check_pruned()
    counts = evidence.check_payloads(payloads, open_payload) if payloads is not None else None
    policy_problem = policy_problem or evidence.problem
    if policy_problem is not None:
        raise policy_problem
    return VerifyReport(origin=origin, leaves=len(leaves), checkpoints=len(checkpoints), signed_size=largest,
                        leaf_types=dict(sorted(types.items())), pruned=pruned, payloads=counts,
                        sampling_checked=sampling_key is not None, keys=max(1, len(chain)),
                        skipped_checkpoints=skipped)


class _Seals:
    """Step 5 for seal leaves: each seal's counts must equal the leaves it covers, and seals must come
    often enough that silence can be told from missing records."""

    def __init__(self, max_interval: float | None) -> None:
        self.max_interval = max_interval
        # (type, verdict) of every leaf from index ``base`` on; what a seal has covered is dropped, so
        # memory holds only the leaves since the last seal, whatever the log's length
        self.kinds: list[tuple[str, str | None]] = []
        self.base = 0
        self.covered_to = 0  # a seal's counts cover the leaves from the previous seal's size_before
        self.last_seal_ts: str | None = None
        self.first_ts: str | None = None

    def pruned(self) -> None:
        self.kinds.append(("pruned", None))

    def _covered(self, size_before: int) -> list[tuple[str, str | None]]:
        return self.kinds[self.covered_to - self.base:size_before - self.base]

    def _advance(self, size_before: int) -> None:
        self.covered_to = size_before
        del self.kinds[:size_before - self.base]
        self.base = size_before

    def see(self, index: int, leaf: dict[str, object]) -> LogVerificationError | None:
        kind = str(leaf["type"])
        verdict = leaf.get("verdict") if kind == "decision" else None
        self.kinds.append((kind, verdict if isinstance(verdict, str) else None))
        raw_ts = leaf.get("ts")
        ts = raw_ts if isinstance(raw_ts, str) else None
        if self.first_ts is None and ts is not None:
            self.first_ts = ts
        if kind != "seal":
            return None
        problem = self._check_counts(index, leaf) or self._check_gap(index, ts)
        if ts is not None:
            self.last_seal_ts = ts
        return problem

    def _check_counts(self, index: int, leaf: dict[str, object]) -> LogVerificationError | None:
        size_before, counts = leaf.get("size_before"), leaf.get("counts")
        if not isinstance(size_before, int) or not isinstance(counts, dict):
            return None  # a seal without counts (older writer, or a test): nothing to compare
        if size_before >= self.covered_to and any(kind == "pruned" for kind, _ in self._covered(size_before)):
            self._advance(size_before)  # pruned content cannot be counted
            return None
        if not self.covered_to <= size_before <= index:
            return LogVerificationError(f"seal covers up to size {size_before}, outside {self.covered_to}..{index}",
                                        outcome="policy", step="5 seal", index=index)
        types: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        for kind, verdict in self._covered(size_before):
            if kind == "seal":
                continue
            types[kind] = types.get(kind, 0) + 1
            if verdict is not None:
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
        self._advance(size_before)
        if counts.get("types", types) != types or counts.get("verdicts", verdicts) != verdicts:
            return LogVerificationError(
                f"seal counts {counts} do not match the leaves they cover ({types}, {verdicts})",
                outcome="policy", step="5 seal", index=index)
        return None

    def _check_gap(self, index: int, ts: str | None) -> LogVerificationError | None:
        if self.max_interval is None or ts is None:
            return None
        since = self.last_seal_ts or self.first_ts
        if since is not None and _seconds_between(since, ts) > self.max_interval:
            return LogVerificationError(f"no seal between {since} and {ts}: longer than {self.max_interval:g} s, "
                                        "so missing records could not be told from silence",
                                        outcome="policy", step="5 seal", index=index)
        return None


class _Evidence:
    """What steps 4 (pruning) and 6 (payloads, sampling) check, gathered during the leaf pass.

    Sampling is checked as each decision leaf goes by (it depends only on the ``config`` in force);
    payloads are checked at the end, when every ``erasure`` and ``prune`` leaf is known, so only the
    decisions that reference a payload are remembered, and their commitments only when the payloads
    will be opened."""

    __slots__ = ("config", "erased", "fingerprint", "keep_commitments", "kept", "last_pruned", "problem",
                 "prune_floor", "remember", "sampled_out", "sampling_key")

    def __init__(self, *, remember: bool, keep_commitments: bool, sampling_key: bytes | None) -> None:
        self.remember = remember
        self.keep_commitments = keep_commitments
        self.sampling_key = sampling_key
        self.fingerprint = sampling_fingerprint(sampling_key) if sampling_key is not None else None
        self.kept: list[tuple[int, Any, Any]] = []  # (index, payload_ref, commitments or None)
        self.sampled_out = 0
        self.erased: set[int] = set()
        self.prune_floor = 0
        self.last_pruned = -1
        self.config: dict[str, Any] = {}
        self.problem: LogVerificationError | None = None

    def pruned_leaf(self, index: int) -> None:
        self.last_pruned = index

    def see(self, index: int, leaf: dict[str, Any]) -> None:
        kind = leaf["type"]
        if kind == "decision":
            ref = leaf.get("payload_ref")
            if ref is None:
                self.sampled_out += 1
            elif self.remember:
                self.kept.append((index, ref, leaf.get("commitments") if self.keep_commitments else None))
            if self.problem is None:
                self.problem = self._sampling(index, leaf, ref is not None)
        elif kind == "erasure":
            indices = leaf.get("indices")
            if isinstance(indices, list):
                self.erased.update(i for i in indices if isinstance(i, int) and i < index)
        elif kind == "prune":
            below = leaf.get("below")
            if isinstance(below, int) and 0 <= below <= index:
                self.prune_floor = max(self.prune_floor, below)
        elif kind == "config":  # a partial one (a key rotation) changes only what it names
            self.config = {**self.config, **leaf}

    def check_pruned(self) -> None:
        if self.last_pruned >= self.prune_floor:
            raise LogVerificationError(
                f"leaf {self.last_pruned} has no content and no prune leaf covers it (pruned below "
                f"{self.prune_floor} only)", outcome="incomplete", step="4 prune", index=self.last_pruned)

    def check_payloads(self, payloads: Mapping[int, bytes],
                       open_payload: Callable[[bytes, int], bytes] | None) -> dict[str, int]:
        counts = {"present": 0, "opened": 0, "erased": 0, "pruned": 0, "not kept (sampled out)": self.sampled_out,
                  "unreadable (keys destroyed)": 0}
        for index, ref, commitments in self.kept:
            blob = payloads.get(index)
            if blob is None:
                if index in self.erased:
                    counts["erased"] += 1
                elif index < self.prune_floor:
                    counts["pruned"] += 1
                else:
                    raise LogVerificationError(f"the payload of leaf {index} is missing and no erasure or "
                                               "prune leaf covers it", outcome="incomplete", step="6 payload",
                                               index=index)
                continue
            if payload_ref(blob) != ref:
                raise LogVerificationError(f"the payload of leaf {index} does not match the hash its leaf "
                                           "records", outcome="tampered", step="6 payload", index=index)
            counts["present"] += 1
            if index in self.erased:
                raise LogVerificationError(f"leaf {index} is recorded as erased but its payload is still "
                                           "stored", outcome="policy", step="6 payload", index=index)
            if open_payload is not None:
                try:
                    document = open_payload(blob, index)
                except ShreddedPayload:
                    counts["unreadable (keys destroyed)"] += 1
                    continue
                except VerificationError as exc:
                    raise LogVerificationError(exc.message, outcome="tampered", step="6 payload",
                                               index=index) from None
                _open_commitments(index, commitments, document)
                counts["opened"] += 1
        return {what: n for what, n in counts.items() if n or what == "present"}

    def _sampling(self, index: int, leaf: dict[str, Any], kept: bool) -> LogVerificationError | None:
        detail, sampling = leaf.get("detail"), leaf.get("sampling")
        if detail is None and sampling is None:
            return None  # a decision leaf without tiered detail (written by hand or by an older writer)
        sampling = sampling if isinstance(sampling, dict) else {}
        if detail not in ("full", "summary") or kept != (detail == "full"):
            return LogVerificationError(f"leaf {index} says detail {detail!r} but {'has' if kept else 'has no'} "
                                        "payload", outcome="policy", step="6 sampling", index=index)
        enforced = leaf.get("verdict") != "ALLOW" or bool(leaf.get("errors")) or bool(leaf.get("review"))
        if not kept and (enforced or sampling.get("selected") is not False):
            return LogVerificationError(f"leaf {index}: a decision that must keep its payload (enforcement, "
                                        "error, review or sampled in) has none", outcome="policy",
                                        step="6 sampling", index=index)
        if self.sampling_key is None:
            return None
        if self.config.get("sampling_key_sha256") != self.fingerprint:
            return LogVerificationError(f"leaf {index}: the sampling key given is not the one the log committed to",
                                        outcome="policy", step="6 sampling", index=index)
        rate, rates, tier = sampling.get("rate"), self.config.get("sample_rates"), leaf.get("risk_tier")
        if not isinstance(rates, dict) or rates.get(tier) != rate or not isinstance(rate, int | float):
            return LogVerificationError(f"leaf {index}: sampling rate {rate!r} is not the configured rate of tier "
                                        f"{tier}", outcome="policy", step="6 sampling", index=index)
        if sampled(self.sampling_key, str(leaf.get("decision_id")), float(rate)) != sampling.get("selected"):
            return LogVerificationError(f"leaf {index}: the sampling decision does not follow from the sampling "
                                        "key and the decision id", outcome="policy", step="6 sampling", index=index)
        return None


def _open_commitments(index: int, commitments: Any, document: bytes) -> None:
    try:
        fields = open_document(document)
        if not isinstance(commitments, dict) or set(commitments) != set(fields):
            raise VerificationError("the payload's fields are not the leaf's commitments", step="commitment")
        for name, commitment in commitments.items():
            value, salt = fields[name]
            verify_commitment(commitment, value, salt)
    except VerificationError as exc:
        raise LogVerificationError(f"leaf {index}: {exc.message}", outcome="tampered", step="6 payload",
                                   index=index) from None


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds from one leaf time to another; infinite when either is not a time with a zone (a leaf
    time without one cannot be placed, so it counts as out of order)."""
    try:
        a = datetime.fromisoformat(earlier.replace("Z", "+00:00"))
        b = datetime.fromisoformat(later.replace("Z", "+00:00"))
        return (b - a).total_seconds()
    except (ValueError, TypeError):  # TypeError: one naive, one aware
        return float("inf")
