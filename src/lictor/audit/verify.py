"""Offline verification of an audit log from its leaves, its checkpoints and a pinned public key.

The verifier trusts nothing but the key it is given. It runs numbered steps and raises
``LogVerificationError`` at the first failure, naming the step, the outcome class (``tampered``,
``incomplete`` or ``policy``) and, where one can be named, the first bad index:

1. every checkpoint (the log's own and any the auditor brings) carries a valid signature by the
   pinned key for the expected origin;
2. no two checkpoints of the same size disagree (equivocation);
3. every leaf decodes: RFC 8785 canonical bytes, a known version and type (fail closed);
4. the root recomputed from the leaf bytes equals every checkpoint's root at its size; a checkpoint
   larger than the leaves present means records are missing (truncation);
5. leaf timestamps never run backwards by more than the allowed skew (policy).

It never reports success for something it skipped: the report says how many leaves and
checkpoints were checked and the largest size a signature covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lictor.audit.checkpoint import Checkpoint, open_checkpoint
from lictor.audit.leaf import decode_leaf
from lictor.audit.merkle import Frontier, leaf_hashes
from lictor.audit.note import Verifier
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

    def summary(self) -> str:
        unsigned = self.leaves - self.signed_size
        tail = f"; the last {unsigned} leaves are not yet covered by a checkpoint" if unsigned else ""
        return (f"valid: {self.leaves} leaves of {self.origin}, {self.checkpoints} signed checkpoints, "
                f"signed up to size {self.signed_size}{tail}")


def _open_all(notes: Iterable[str], verifiers: Sequence[Verifier], origin: str) -> list[Checkpoint]:
    checkpoints = []
    for number, note in enumerate(notes, start=1):
        try:
            checkpoints.append(open_checkpoint(note, verifiers, origin))
        except VerificationError as exc:
            raise LogVerificationError(f"checkpoint {number}: {exc.message}", outcome="tampered",
                                       step="1 signature") from None
    return checkpoints


def _check_equivocation(checkpoints: Sequence[Checkpoint]) -> None:
    roots: dict[int, bytes] = {}
    for cp in checkpoints:
        if roots.setdefault(cp.size, cp.root) != cp.root:
            raise LogVerificationError(f"two checkpoints of size {cp.size} with different roots (equivocation)",
                                       outcome="tampered", step="2 equivocation")


def verify_log(leaves: Sequence[bytes], checkpoint_notes: Iterable[str], verifiers: Sequence[Verifier], *,
               origin: str, max_skew_seconds: float = 300.0,
               max_seal_interval: float | None = None) -> VerifyReport:
    """Verify ``leaves`` (the exact stored bytes, index order) against signed checkpoint notes.

    ``max_seal_interval`` (seconds), when given, is the longest allowed time between seals (the
    writer's heartbeat): a longer silence cannot be told from missing records, so it is a policy
    violation."""
    checkpoints = sorted(_open_all(checkpoint_notes, verifiers, origin), key=lambda c: c.size)
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
    for index, data in enumerate(leaves):
        try:
            leaf = decode_leaf(data, index=index)
        except VerificationError as exc:
            raise LogVerificationError(exc.message, outcome="tampered", step="3 leaf", index=index) from None
        types[leaf["type"]] = types.get(leaf["type"], 0) + 1
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
        root = wanted.get(index + 1)
        if root is not None:
            frontier.extend(leaf_hashes(unhashed))
            unhashed.clear()
            if root != frontier.root():
                raise LogVerificationError(
                    f"leaves {last_good}..{frontier.size - 1} do not hash to the signed root of size "
                    f"{frontier.size}: a record in that range was changed, removed, added or reordered",
                    outcome="tampered", step="4 root", index=last_good)
            last_good = frontier.size
    largest = checkpoints[-1].size
    if largest > len(leaves):
        raise LogVerificationError(
            f"a signed checkpoint covers {largest} leaves but only {len(leaves)} are present: records "
            f"{len(leaves)}..{largest - 1} are missing (truncation)", outcome="tampered", step="4 root",
            index=len(leaves))
    if policy_problem is not None:
        raise policy_problem
    return VerifyReport(origin=origin, leaves=len(leaves), checkpoints=len(checkpoints), signed_size=largest,
                        leaf_types=dict(sorted(types.items())))


class _Seals:
    """Step 5 for seal leaves: each seal's counts must equal the leaves it covers, and seals must come
    often enough that silence can be told from missing records."""

    def __init__(self, max_interval: float | None) -> None:
        self.max_interval = max_interval
        self.kinds: list[tuple[str, str | None]] = []  # (type, verdict) of every leaf so far
        self.covered_to = 0  # a seal's counts cover the leaves from the previous seal's size_before
        self.last_seal_ts: str | None = None
        self.first_ts: str | None = None

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
        if not self.covered_to <= size_before <= index:
            return LogVerificationError(f"seal covers up to size {size_before}, outside {self.covered_to}..{index}",
                                        outcome="policy", step="5 seal", index=index)
        types: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        for kind, verdict in self.kinds[self.covered_to:size_before]:
            if kind == "seal":
                continue
            types[kind] = types.get(kind, 0) + 1
            if verdict is not None:
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
        self.covered_to = size_before
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


def _seconds_between(earlier: str, later: str) -> float:
    try:
        a = datetime.fromisoformat(earlier.replace("Z", "+00:00"))
        b = datetime.fromisoformat(later.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (b - a).total_seconds()
