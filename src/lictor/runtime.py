"""The composition root: the one place that builds a working gateway from settings.

``Gateway.open(...)`` opens the store, the checkpoint signer, the audit log and the policies;
``gateway.decide(action)`` evaluates the action and returns only once its decision leaf is durable,
with ``audit.index`` and ``audit.leaf_hash`` filled in. If the log cannot take the leaf, the
decision is BLOCK with the error (fail closed) unless the operator set ``unsafe_fail_open``.
Delivery code (CLI, HTTP) uses this module and never a concrete store.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lictor.audit.bundle import write_bundle
from lictor.audit.checkpoint import open_checkpoint
from lictor.audit.leaf import RISK_TIERS, decision_leaf, new_salts
from lictor.audit.log import AuditLog, AuditUnavailable, extend_tree
from lictor.audit.merkle import Tree
from lictor.audit.note import Verifier
from lictor.audit.port import AuditStore
from lictor.audit.signer import FileSigner
from lictor.audit.verify import VerifyReport, verify_log
from lictor.config import Settings
from lictor.errors import ConfigError
from lictor.model import Action, Decision, Finding, RuleError, Verdict
from lictor.policy import PolicySet, load_policies
from lictor.store import open_store

__all__ = ["DEFAULT_DATABASE", "DEFAULT_KEY_FILE", "AuditReader", "Gateway", "export_bundle", "open_audit_reader"]

DEFAULT_DATABASE = "sqlite:///lictor.db"
DEFAULT_KEY_FILE = "lictor-audit.key"
DEFAULT_ORIGIN = "lictor.local/audit"


def _signer(key_file: str | Path, origin: str) -> FileSigner:
    path = Path(key_file)
    if not path.exists():
        return FileSigner.create(path, origin)
    signer = FileSigner(path)
    if signer.origin != origin:
        raise ConfigError(f"the key in {path} signs for {signer.origin!r}, not {origin!r}", path="audit.origin")
    return signer


class Gateway:
    """Policy evaluation plus a durable audit log: the in-process gateway."""

    def __init__(self, *, policies: PolicySet, log: AuditLog, store: AuditStore,
                 risk_tiers: Mapping[str, str] | None = None, default_risk_tier: str = "high",
                 unsafe_fail_open: bool = False) -> None:
        for system, tier in {**(risk_tiers or {}), "*": default_risk_tier}.items():
            if tier not in RISK_TIERS:
                raise ConfigError(f"risk tier must be one of {', '.join(RISK_TIERS)}, got {tier!r}",
                                  path=f"systems.{system}.risk")
        self.policies = policies
        self.log = log
        self._store = store
        self._risk = dict(risk_tiers or {})
        self._default_risk = default_risk_tier
        self.unsafe_fail_open = unsafe_fail_open

    @classmethod
    def open(cls, *, policies: PolicySet | str | Path, database: str = DEFAULT_DATABASE, key_file: str | Path = DEFAULT_KEY_FILE,
             origin: str = DEFAULT_ORIGIN, default_verdict: Verdict = Verdict.ALLOW,
             risk_tiers: Mapping[str, str] | None = None, unsafe_fail_open: bool = False) -> Gateway:
        """Build a gateway: load policies (unless given loaded, with their own default verdict), open the
        store, the signer (a key is generated beside the database on first use, never stored in it) and
        the audit log."""
        policy_set = policies if isinstance(policies, PolicySet) else load_policies(
            policies, default_verdict=default_verdict)
        signer = _signer(key_file, origin)
        store = open_store(database)
        log = AuditLog(store=store, signer=signer)
        log.start()
        gateway = cls(policies=policy_set, log=log, store=store, risk_tiers=risk_tiers,
                      unsafe_fail_open=unsafe_fail_open)
        gateway.record_config(vkey=signer.vkey)
        return gateway

    def _config(self, vkey: str) -> dict[str, Any]:
        return {
            "policy_revision": self.policies.revision,
            "policies": [p.name for p in self.policies.policies],
            "default_verdict": self.policies.default_verdict.name,
            "risk_tiers": dict(sorted(self._risk.items())),
            "default_risk_tier": self._default_risk,
            "unsafe_fail_open": self.unsafe_fail_open,
            "vkey": vkey,
        }

    def record_config(self, *, vkey: str) -> bool:
        """Append a ``config`` leaf when what decides (policy revision, tiers, fail mode, signing key)
        differs from the last one recorded, so the log itself says which rules were in force."""
        config = self._config(vkey)
        last = _last_config(self._store)
        if last is not None and {k: last.get(k) for k in config} == config:
            return False
        self.log.append({"v": 1, "type": "config", "ts": _now_text(), **config})
        return True

    def risk_tier(self, system: str) -> str:
        return self._risk.get(system, self._default_risk)

    def decide(self, action: Action, *, findings: Sequence[Finding] = (), now: datetime | None = None,
               explain: list[dict[str, Any]] | None = None) -> Decision:
        """Decide ``action`` and make its decision leaf durable before returning."""
        decision = self.policies.evaluate(action, now=now, findings=findings, explain=explain)
        try:
            leaf = decision_leaf(decision, action, risk_tier=self.risk_tier(action.system), salts=new_salts())
            receipt = self.log.append(leaf)
        except (AuditUnavailable, ValueError, TypeError) as exc:
            if self.unsafe_fail_open:
                return dataclasses.replace(decision, errors=(*decision.errors, RuleError(
                    "", "", f"audit log unavailable, decision NOT recorded (unsafe_fail_open): {exc}", False)))
            return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, errors=(*decision.errors, RuleError(
                "", "", f"audit log unavailable, blocked (fail closed): {exc}", True)))
        return dataclasses.replace(decision, audit={"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex()})

    def checkpoint(self) -> str | None:
        """Seal and sign the log now; returns the signed checkpoint note."""
        return self.log.checkpoint()

    def close(self) -> None:
        self.log.close()
        self._store.close()

    @classmethod
    def from_settings(cls, settings: Settings, *, policies: PolicySet | None = None) -> Gateway:
        """Build a gateway from validated settings (:func:`lictor.config.load_settings`); ``policies``,
        when given loaded, are used instead of loading the ``policies`` directory."""
        audit = settings.audit
        policy_set = policies if policies is not None else load_policies(
            settings.policies, default_verdict=settings.default_verdict)
        signer = _signer(audit.key_file, audit.origin)
        store = open_store(settings.database)
        log = AuditLog(store=store, signer=signer, max_batch=audit.max_batch, max_delay=audit.max_delay)
        gateway = cls(policies=policy_set, log=log, store=store, risk_tiers=settings.risk_tiers,
                      default_risk_tier=settings.default_risk_tier, unsafe_fail_open=audit.unsafe_fail_open)
        log.start()
        gateway.record_config(vkey=signer.vkey)
        return gateway


class AuditReader:
    """Read-only access to a stored log for the auditor's commands (verify, proof, checkpoint)."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def leaves(self) -> list[bytes]:
        return self._store.leaves(0, self._store.state().size)

    def checkpoint_notes(self) -> list[str]:
        return [c.note for c in self._store.checkpoints()]

    def latest_checkpoint(self) -> str | None:
        notes = self.checkpoint_notes()
        return notes[-1] if notes else None

    def verify(self, verifier: Verifier, *, origin: str, extra_checkpoints: Sequence[str] = (),
               max_seal_interval: float | None = None) -> VerifyReport:
        return verify_log(self.leaves(), [*self.checkpoint_notes(), *extra_checkpoints], [verifier], origin=origin,
                          max_seal_interval=max_seal_interval)

    def proof(self, index: int, verifier: Verifier, origin: str) -> dict[str, Any]:
        """An inclusion proof of leaf ``index`` in the latest signed checkpoint, as JSON data."""
        note = self.latest_checkpoint()
        if note is None:
            raise ConfigError("the log has no signed checkpoint yet; run `lictor audit checkpoint` first")
        cp = open_checkpoint(note, [verifier], origin)
        if not 0 <= index < cp.size:
            raise ConfigError(f"index {index} is not covered by the latest checkpoint (size {cp.size})")
        tree = Tree()
        extend_tree(tree, self._store, cp.size)
        return {"index": index, "tree_size": cp.size, "leaf_hash": tree.leaf(index).hex(),
                "proof": [h.hex() for h in tree.inclusion_proof(index, cp.size)], "checkpoint": note}

    def close(self) -> None:
        self._store.close()


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _last_config(store: AuditStore, chunk: int = 1024) -> dict[str, Any] | None:
    """The most recent ``config`` leaf, searching back from the end of the log."""
    end = store.state().size
    while end > 0:
        start = max(0, end - chunk)
        for data in reversed(store.leaves(start, end)):
            leaf = json.loads(data)
            if leaf.get("type") == "config":
                return leaf  # type: ignore[no-any-return]
        end = start
    return None


def open_audit_reader(database: str) -> AuditReader:
    return AuditReader(open_store(database))


def export_bundle(database: str, out_dir: str | Path, vkey: str) -> tuple[Path, int, int]:
    """Write the stored log to an auditor bundle at ``out_dir``; returns (path, leaves, checkpoints).

    The checkpoints are read before the leaves, so every exported checkpoint is covered by the
    exported leaves even while a gateway keeps appending."""
    reader = open_audit_reader(database)
    try:
        notes = reader.checkpoint_notes()
        leaves = reader.leaves()
    finally:
        reader.close()
    return write_bundle(out_dir, leaves, notes, vkey), len(leaves), len(notes)
