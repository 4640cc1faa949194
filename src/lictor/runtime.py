"""The composition root: the one place that builds a working gateway from settings.

``Gateway.open(...)`` opens the store, the checkpoint signer, the audit log and the policies;
``gateway.decide(action)`` evaluates the action and returns only once its decision leaf is durable,
with ``audit.index`` and ``audit.leaf_hash`` filled in. If the log cannot take the leaf, the
decision is BLOCK with the error (fail closed) unless the operator set ``unsafe_fail_open``.
Delivery code (CLI, HTTP) uses this module and never a concrete store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lictor.access import ApiKey, KeyRing, KeyStore
from lictor.audit.bundle import write_bundle
from lictor.audit.checkpoint import open_checkpoint
from lictor.audit.index import DecisionIndex
from lictor.audit.leaf import RISK_TIERS, decision_leaf, leaf_time, new_salts, sensitive_values
from lictor.audit.log import AuditLog, Publisher, Receipt, extend_tree
from lictor.audit.merkle import Tree
from lictor.audit.note import Verifier
from lictor.audit.payload import (
    PayloadKeys,
    PayloadVault,
    open_document,
    payload_document,
    payload_ref,
    sampled,
)
from lictor.audit.port import AuditStore, Erasure, Payload
from lictor.audit.signer import STATE_SUFFIX, CheckpointSigner, FileSigner, HandoverSigner
from lictor.audit.verify import VerifyReport, verify_log
from lictor.config import Settings
from lictor.detect import Detection, DetectionSettings, merge_findings
from lictor.errors import ConfigError, InputError, LictorError, ReviewError, VerificationError
from lictor.model import Action, Decision, Finding, RuleError, Verdict, data_subjects
from lictor.oversee import ReviewHub
from lictor.oversight import Reviewer, ReviewQuery, ReviewRequest, ReviewStore
from lictor.oversight.desk import Presented, ReviewDesk
from lictor.policy import PolicySet, load_policies
from lictor.policy.limits import InMemoryLimitStore
from lictor.store import open_limit_store, open_review_signal, open_store

if TYPE_CHECKING:  # httpx and the notifier load only when notifications are configured
    from lictor.webhooks import WebhookNotifier

__all__ = ["DEFAULT_DATABASE", "DEFAULT_KEY_FILE", "DEFAULT_PAYLOAD_KEY_FILE", "DEFAULT_SAMPLE_RATES", "AuditReader",
           "Custodian", "Gateway", "KeyAdmin", "ReviewAdmin", "data_subjects", "export_bundle", "open_audit_reader",
           "open_custodian", "open_key_admin", "open_review_admin", "rotate_signing_key"]

DEFAULT_DATABASE = "sqlite:///lictor.db"
DEFAULT_KEY_FILE = "lictor-audit.key"
DEFAULT_PAYLOAD_KEY_FILE = "lictor-payload.key"
DEFAULT_ORIGIN = "lictor.local/audit"
#: The share of ALLOW decisions without errors whose payload is kept, by risk tier (every other
#: decision keeps its payload at every tier).
DEFAULT_SAMPLE_RATES = {"high": 1.0, "medium": 0.5, "low": 0.1}
#: Erasure leaves list at most this many leaf indices each (a leaf is at most 64 KiB).
ERASURE_INDICES_PER_LEAF = 4000
_BUILT_IN_DETECTORS = DetectionSettings()
_BASIS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def keep_always(decision: Decision) -> bool:
    """Enforcement and LOG (every verdict but ALLOW), errors and reviews keep their full record (the
    payload) at every risk tier: they are never sampled away."""
    return decision.verdict is not Verdict.ALLOW or bool(decision.errors) or bool(decision.review)


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

    def __init__(self, *, policies: PolicySet, log: AuditLog, store: AuditStore, vault: PayloadVault,
                 risk_tiers: Mapping[str, str] | None = None, default_risk_tier: str = "high",
                 sample_rates: Mapping[str, float] | None = None, unsafe_fail_open: bool = False,
                 durability: str = "sync", detection: Detection | None = None) -> None:
        if durability not in ("sync", "async"):
            raise ConfigError(f"durability is sync or async, got {durability!r}", path="audit.durability")
        for system, tier in {**(risk_tiers or {}), "*": default_risk_tier}.items():
            if tier not in RISK_TIERS:
                raise ConfigError(f"risk tier must be one of {', '.join(RISK_TIERS)}, got {tier!r}",
                                  path=f"systems.{system}.risk")
        rates = {**DEFAULT_SAMPLE_RATES, **(sample_rates or {})}
        for tier, rate in rates.items():
            if tier not in RISK_TIERS:
                raise ConfigError(f"sample rates are by risk tier ({', '.join(RISK_TIERS)}), not {tier!r}",
                                  path=f"audit.sample_rates.{tier}")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
                raise ConfigError(f"a sample rate is a number from 0 to 1, got {rate!r}",
                                  path=f"audit.sample_rates.{tier}")
        self.policies = policies
        self.log = log
        self.vault = vault
        self._store = store
        self._risk = dict(risk_tiers or {})
        self._default_risk = default_risk_tier
        # 1 rather than 1.0: the same canonical JSON, written by the fast canonicaliser
        self._rates = {tier: _number(rates[tier]) for tier in RISK_TIERS}
        self.unsafe_fail_open = unsafe_fail_open
        self.durability = durability
        #: The content detectors run on every action before policy evaluation (None: none run).
        self.detection = detection
        #: How long :attr:`keys` remembers an authenticated key (seconds; 0: never). Set before first use.
        self.key_cache_ttl = 0.0
        self.publisher: Publisher | None = None
        self.signer: CheckpointSigner | None = None
        #: Human oversight, when the store keeps reviews (every built-in store does), and its side
        #: here: wake-ups, the sweep, notifications (see :mod:`lictor.oversee`).
        self.desk = ReviewDesk(store, log) if isinstance(store, ReviewStore) else None
        self.hub = ReviewHub(self.desk) if self.desk is not None else None
        if self.desk is not None and self.hub is not None:
            self.desk.listener = self.hub.step

    @property
    def notifier(self) -> WebhookNotifier | None:
        """Review notifications (webhooks), when configured; see :meth:`notify_reviews_to`."""
        return self.hub.notifier if self.hub is not None else None

    def notify_reviews_to(self, notifier: WebhookNotifier) -> None:
        """Send review events (created, escalated, approved, rejected, expired) to ``notifier``'s
        webhooks; the gateway closes it when it closes. Build the notifier with
        ``on_result=gateway.hub.outcome`` to record each delivery's outcome as a ``notified`` leaf."""
        if self.hub is not None:
            self.hub.notify_to(notifier)

    @classmethod
    def open(cls, *, policies: PolicySet | str | Path, database: str = DEFAULT_DATABASE, key_file: str | Path = DEFAULT_KEY_FILE,
             payload_key_file: str | Path = DEFAULT_PAYLOAD_KEY_FILE, origin: str = DEFAULT_ORIGIN,
             default_verdict: Verdict = Verdict.ALLOW, risk_tiers: Mapping[str, str] | None = None,
             default_risk_tier: str = "high", sample_rates: Mapping[str, float] | None = None,
             unsafe_fail_open: bool = False, max_batch: int = 256, max_delay: float = 0.002,
             durability: str = "sync", checkpoint_interval: float | None = None,
             seal_interval: float = 900.0, redis: str | None = None,
             detectors: DetectionSettings | None = _BUILT_IN_DETECTORS, detection: Detection | None = None) -> Gateway:
        """Build a gateway: load policies (unless given loaded, with their own default verdict), open the
        store, the signer and the payload keys (both generated on first use in files beside the
        database, never stored in it) and the audit log. Erasures a crash left without their leaf
        get it now. With ``checkpoint_interval`` (seconds) a publisher thread seals and signs the log
        that often while it grows, and at least every ``seal_interval`` when idle (the heartbeat).
        With ``redis`` (a URL), ``limit`` rules count in Redis, shared with every gateway using it.
        ``detectors`` says which content detectors scan every action's content and args before its
        policies are evaluated (default: every registered detector; None: none); ``detection``, when
        given, is used as built instead."""
        if detection is None and detectors is not None:
            detection = Detection.from_settings(detectors)  # before anything is opened: it may refuse
        policy_set = policies if isinstance(policies, PolicySet) else load_policies(
            policies, default_verdict=default_verdict)
        if redis is not None:
            policy_set = policy_set.with_limits(open_limit_store(redis))
        signer = _signer(key_file, origin)
        keys = PayloadKeys.open(payload_key_file)
        policy_set = policy_set.with_redaction_key(_redaction_key(keys))
        store = open_store(database)
        log = AuditLog(store=store, signer=signer, max_batch=max_batch, max_delay=max_delay)
        log.start()
        gateway = cls(policies=policy_set, log=log, store=store, vault=PayloadVault(keys, store),
                      risk_tiers=risk_tiers, default_risk_tier=default_risk_tier, sample_rates=sample_rates,
                      unsafe_fail_open=unsafe_fail_open, durability=durability, detection=detection)
        gateway.signer = signer
        gateway.record_config(vkey=signer.vkey)
        gateway.record_pending_erasures()
        if checkpoint_interval is not None:
            gateway.publisher = Publisher(log, interval=checkpoint_interval, seal_interval=seal_interval)
            gateway.publisher.start()
        return gateway

    def _config(self, vkey: str) -> dict[str, Any]:
        return {
            "policy_revision": self.policies.revision,
            "policies": [p.name for p in self.policies.policies],
            "default_verdict": self.policies.default_verdict.name,
            "risk_tiers": dict(sorted(self._risk.items())),
            "default_risk_tier": self._default_risk,
            "sample_rates": self._rates,
            "sampling_key_sha256": self.vault.keys.sampling_fingerprint(),
            "unsafe_fail_open": self.unsafe_fail_open,
            "durability": self.durability,
            "vkey": vkey,
        }

    def record_config(self, *, vkey: str) -> bool:
        """Append a ``config`` leaf when what decides (policy revision, tiers, sampling, fail mode,
        signing key) differs from the last one recorded, so the log itself says which rules were in
        force."""
        config = self._config(vkey)
        last = _last_config(self._store)
        if last is not None and {k: last.get(k) for k in config} == config:
            return False
        self.log.append({"v": 1, "type": "config", "ts": leaf_time(), **config})
        return True

    def record_change(self, change: str, **details: Any) -> Receipt:
        """Append a ``config`` leaf for an administrative change (a key created or revoked, ...);
        ``details`` must hold nothing secret."""
        return _record_change(self.log, change, details)

    def reload(self, path: str | Path) -> bool:
        """Load the policies at ``path`` again (same default verdict) and put them in force; a
        ``config`` leaf records the new revision when it changed. Raises PolicyError and keeps the
        policies in force when the new ones do not load."""
        policies = load_policies(path, default_verdict=self.policies.default_verdict)
        # counters (shared or not) and the redaction key carry over
        self.policies = policies.with_limits(self.policies.limits).with_redaction_key(self.policies.redaction_key)
        if self.signer is None:
            return False
        return self.record_config(vkey=self.signer.vkey)

    @functools.cached_property
    def decision_index(self) -> DecisionIndex:
        """The queryable index of this log's decisions (checked once: a Protocol isinstance is slow)."""
        if not isinstance(self._store, DecisionIndex):
            raise ConfigError("this audit store keeps no decision index", path="database")
        return self._store

    @functools.cached_property
    def keys(self) -> KeyRing:
        """The API keys kept in this gateway's database: one ring per gateway, so a key revoked through
        it is forgotten by every caller here at once (it remembers keys for ``key_cache_ttl`` seconds)."""
        if not isinstance(self._store, KeyStore):
            raise ConfigError("this audit store keeps no API keys", path="database")
        return KeyRing(self._store, cache_ttl=self.key_cache_ttl)

    def readiness(self) -> dict[str, bool]:
        """Whether the store answers, policies are loaded and the signer is ready."""
        try:
            self._store.state()
            store = True
        except LictorError:
            store = False
        return {"store": store, "policies": self.policies is not None, "signer": self.signer is not None}

    def leaf(self, index: int) -> dict[str, Any]:
        """The stored leaf at ``index`` as JSON data (empty when pruned)."""
        size = self._store.state().size
        if not 0 <= index < size:
            raise InputError(f"there is no leaf {index} (the log holds {size})", path="$.index")
        data = self._store.leaves(index, index + 1)[0]
        leaf: dict[str, Any] = json.loads(data) if data else {}
        return leaf

    def leaf_hash(self, index: int) -> str:
        """The RFC 6962 hash of leaf ``index``, in hex."""
        size = self._store.state().size
        if not 0 <= index < size:
            raise InputError(f"there is no leaf {index} (the log holds {size})", path="$.index")
        return self._store.leaf_hashes(index, index + 1)[0].hex()

    def constrained_action(self, index: int) -> dict[str, Any] | None:
        """The constrained action a CONSTRAIN decision at leaf ``index`` returned, read back from its
        sealed payload (CONSTRAIN always keeps one); None when there is none, or it was erased."""
        payload = self._store.payload(index)
        if payload is None:
            return None
        try:
            fields = open_document(self.vault.open(payload.ciphertext, index=index))
        except VerificationError:  # shredded (a subject was erased) or unreadable: not recoverable
            return None
        value = fields.get("constrained_action", (None, b""))[0]
        return value if isinstance(value, dict) else None

    def latest_checkpoint(self) -> str | None:
        notes = self._store.checkpoints()
        return notes[-1].note if notes else None

    def proof(self, index: int) -> dict[str, Any]:
        """An inclusion proof of leaf ``index`` in the latest signed checkpoint, shaped as
        ``lictor audit proof --json`` prints it. Raises InputError when no checkpoint covers it."""
        notes = self._store.checkpoints()
        if not notes:
            raise InputError("the log has no signed checkpoint yet", path="$.index")
        latest = notes[-1]
        if not 0 <= index < latest.size:
            raise InputError(f"index {index} is not covered by the latest checkpoint (size {latest.size})",
                             path="$.index")
        leaf_hash, proof, size = self.log.proof(index, latest.size)
        return {"index": index, "tree_size": size, "leaf_hash": leaf_hash.hex(),
                "proof": [h.hex() for h in proof], "checkpoint": latest.note}

    def risk_tier(self, system: str) -> str:
        return self._risk.get(system, self._default_risk)

    def decide(self, action: Action, *, findings: Sequence[Finding] = (), now: datetime | None = None,
               explain: list[dict[str, Any]] | None = None) -> Decision:
        """Decide ``action`` and make its decision leaf (and payload, when kept) durable before returning.
        A BLOCK by an ``approval`` rule raises (or returns) a pending review; an approval the action
        presents lifts those rules only when it is valid for exactly this action, and is used up."""
        presented = self._presented(action, _clock(now)) if action.approval is not None else None
        findings, failure = self._detect(action, findings)
        decision = self.policies.evaluate(action, now=now, findings=findings, explain=explain,
                                          excused=presented.excused if presented else ())
        if failure is not None:
            decision = _detection_failed(decision, failure)
        if presented is not None or decision.approval_required:
            decision = self._oversee(decision, action, presented, _clock(now))
        try:
            leaf, payload, queued_only = self._record(decision, action)
            if queued_only:
                self.log.submit(leaf, payload)
                return dataclasses.replace(decision, audit={"index": None, "durability": "async"})
            receipt = self.log.append(leaf, payload)
        except (LictorError, ValueError, TypeError) as exc:  # the log or the payload store failed
            return self._unrecorded(decision, exc)
        return dataclasses.replace(decision, audit={"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex()})

    async def adecide(self, action: Action, *, findings: Sequence[Finding] = (), now: datetime | None = None,
                      timeout: float = 10.0, oversee: bool = True) -> Decision:
        """:meth:`decide` for an event loop: the caller awaits the durable commit instead of blocking a
        thread on it, so one loop can keep many decisions in the same group commit. ``oversee=False``
        records the decision without opening a review or using an approval (for a probe: a question
        about an action that will not run, such as whether to list an MCP tool)."""
        return await self._recorded(*await self._queue(action, findings, now, timeout, oversee))

    async def adecide_many(self, actions: Sequence[Action], *, timeout: float = 10.0) -> list[Decision]:
        """:meth:`adecide` for several actions, recorded in their order: every leaf is queued before
        any is awaited, so they share group commits instead of waiting for one each."""
        queued = [await self._queue(action, (), None, timeout, True) for action in actions]
        return [await self._recorded(decision, waiting) for decision, waiting in queued]

    async def _queue(self, action: Action, findings: Sequence[Finding], now: datetime | None,
                     timeout: float, oversee: bool) -> tuple[Decision, asyncio.Future[Receipt] | None]:
        """Decide ``action`` and queue its leaf; the decision and the future of its receipt (None when
        the decision is final already: unrecorded, or ``async`` durability)."""
        presented = (await asyncio.to_thread(self._presented, action, _clock(now))
                     if oversee and action.approval is not None else None)
        excused = presented.excused if presented else ()
        findings, failure = self._detect(action, findings)
        policies = self.policies
        if _counts_remotely(policies):  # a limit rule may ask Redis: not on the event loop
            decision = await asyncio.to_thread(policies.evaluate, action, now=now, findings=findings, excused=excused)
        else:
            decision = policies.evaluate(action, now=now, findings=findings, excused=excused)
        if failure is not None:
            decision = _detection_failed(decision, failure)
        if oversee and (presented is not None or decision.approval_required):
            decision = await asyncio.to_thread(self._oversee, decision, action, presented, _clock(now))
        try:
            leaf, payload, queued_only = self._record(decision, action)
            if queued_only:
                self.log.submit(leaf, payload)
                return dataclasses.replace(decision, audit={"index": None, "durability": "async"}), None
            return decision, self.log.submit_async(leaf, payload, timeout=timeout)
        except (LictorError, ValueError, TypeError) as exc:
            return self._unrecorded(decision, exc), None

    async def _recorded(self, decision: Decision, waiting: asyncio.Future[Receipt] | None) -> Decision:
        if waiting is None:
            return decision
        try:
            receipt = await waiting
        except (LictorError, ValueError, TypeError) as exc:
            return self._unrecorded(decision, exc)
        return dataclasses.replace(decision, audit={"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex()})

    def _detect(self, action: Action, given: Sequence[Finding]) -> tuple[Sequence[Finding], Exception | None]:
        """The caller's findings plus what the detectors find in ``action`` (those the caller already
        gave are not repeated); a detector that fails makes the decision BLOCK (fail closed)."""
        if self.detection is None:
            return given, None
        try:
            detected = self.detection.scan(action)
        except Exception as exc:  # a plug-in detector may fail in any way; never let it ALLOW
            return given, exc
        return merge_findings(given, detected), None

    def _presented(self, action: Action, clock: float) -> Presented | None:
        if action.approval is None or self.desk is None:
            return None
        try:
            return self.desk.presented(action, clock)
        except LictorError as exc:  # the review store failed: the approval cannot be checked
            return Presented(action.approval, None, ReviewError(f"the review store failed: {exc}",
                                                                reason="unavailable"))

    def _oversee(self, decision: Decision, action: Action, presented: Presented | None, clock: float) -> Decision:
        """The decision after human oversight (fail closed: BLOCK when the review store fails)."""
        if self.desk is None:
            if action.approval is None:
                return decision
            return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, constraints=(), errors=(
                *decision.errors, RuleError("", "", "this gateway keeps no reviews; approvals cannot be checked",
                                            True)))
        context = {"action": action.to_dict(), "reasons": [r.to_dict() for r in decision.reasons],
                   "findings": [f.to_dict() for f in decision.findings], "risk_tier": self.risk_tier(action.system)}
        try:
            return self.desk.settle(decision, action, presented, clock, context=context)
        except LictorError as exc:
            return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, constraints=(), errors=(
                *decision.errors, RuleError("", "", f"human oversight failed, blocked (fail closed): {exc}", True)))

    # -- reviews ------------------------------------------------------------------

    @property
    def reviews(self) -> ReviewDesk:
        """The review desk (reviewers list, show, approve and reject through it)."""
        if self.desk is None:
            raise ConfigError("this audit store keeps no reviews", path="database")
        return self.desk

    def list_reviews(self, query: ReviewQuery) -> list[ReviewRequest]:
        return self.reviews.reviews(query, time.time())

    def show_review(self, review_id: str) -> ReviewRequest:
        return self.reviews.review(review_id, time.time())

    def act_on_review(self, review_id: str, key: ApiKey, verdict: str, comment: str = "") -> ReviewRequest:
        """Approve or reject as the reviewer ``key`` (its user id and roles are checked against the
        review's approvers); raises ReviewError when a rule refuses."""
        return self.reviews.act(review_id, Reviewer(key.id, key.user, key.roles), verdict, comment, time.time())

    def wait_review(self, review_id: str, timeout: float) -> ReviewRequest:
        """The review once its status changes (here or in another gateway process), or after
        ``timeout`` seconds; ReviewError when there is no such review."""
        self.reviews  # noqa: B018 -- ConfigError when this store keeps no reviews
        assert self.hub is not None
        return self.hub.wait(review_id, timeout)

    def review_stats(self, query: ReviewQuery) -> dict[str, Any]:
        """Oversight statistics over the reviews ``query`` selects (see :func:`lictor.oversight.review_stats`)."""
        return self.reviews.stats(query, time.time())

    def _record(self, decision: Decision, action: Action) -> tuple[dict[str, Any], Payload | None, bool]:
        """The decision's leaf and payload (kept by risk tier and sampling), and whether the leaf may
        be only queued (``async`` durability: low-risk ALLOW/LOG without errors or review)."""
        tier = self.risk_tier(action.system)
        rate = self._rates[tier]
        selected = sampled(self.vault.keys.sampling, decision.decision_id, rate)
        keep = selected or keep_always(decision)
        salts = new_salts()
        values = sensitive_values(decision, action)
        payload = self.vault.seal(payload_document(values, salts), data_subjects(action)) if keep else None
        leaf = decision_leaf(decision, action, risk_tier=tier, salts=salts, values=values,
                             detail="full" if keep else "summary", sampling={"rate": rate, "selected": selected},
                             payload_ref=payload_ref(payload.ciphertext) if payload else None)
        queued_only = (self.durability == "async" and tier == "low"
                       and decision.verdict in (Verdict.ALLOW, Verdict.LOG) and not decision.errors
                       and not decision.review)
        return leaf, payload, queued_only

    def _unrecorded(self, decision: Decision, exc: Exception) -> Decision:
        """Fail closed (BLOCK) when the decision could not be recorded, unless ``unsafe_fail_open``."""
        if self.unsafe_fail_open:
            return dataclasses.replace(decision, errors=(*decision.errors, RuleError(
                "", "", f"audit log unavailable, decision NOT recorded (unsafe_fail_open): {exc}", False)))
        return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, errors=(*decision.errors, RuleError(
            "", "", f"audit log unavailable, blocked (fail closed): {exc}", True)))

    def erase(self, subject: str, *, basis: str = "erasure-request") -> tuple[Erasure, list[Receipt]]:
        """Crypto-shred a data subject (see :meth:`Custodian.erase`)."""
        return self.custodian.erase(subject, basis=basis)

    def record_pending_erasures(self) -> int:
        return self.custodian.record_pending_erasures()

    @functools.cached_property
    def custodian(self) -> Custodian:
        """Erasure and retention over this gateway's store and log."""
        return Custodian(store=self._store, log=self.log, vault=self.vault)

    def checkpoint(self) -> str | None:
        """Seal and sign the log now; returns the signed checkpoint note."""
        return self.log.checkpoint()

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self.hub is not None:
            self.hub.close()  # before the log: the last deliveries' outcomes are recorded in it
        self.log.close()
        self._store.close()

    @classmethod
    def from_settings(cls, settings: Settings, *, policies: PolicySet | None = None, publish: bool = False) -> Gateway:
        """Build a gateway from validated settings (:func:`lictor.config.load_settings`); ``policies``,
        when given loaded, are used instead of loading the ``policies`` directory. ``publish`` starts
        the checkpoint publisher on ``audit.checkpoint_interval`` and ``audit.seal_interval`` (for
        long-running gateways; a one-shot command seals and signs when it ends)."""
        audit = settings.audit
        gateway = cls.open(policies=policies if policies is not None else settings.policies,
                        database=settings.database, key_file=audit.key_file,
                        payload_key_file=audit.payload_key_file, origin=audit.origin,
                        default_verdict=settings.default_verdict, risk_tiers=settings.risk_tiers,
                        default_risk_tier=settings.default_risk_tier, sample_rates=audit.sample_rates,
                        unsafe_fail_open=audit.unsafe_fail_open, max_batch=audit.max_batch,
                        max_delay=audit.max_delay, durability=audit.durability,
                        checkpoint_interval=audit.checkpoint_interval if publish else None,
                        seal_interval=audit.seal_interval, redis=settings.redis, detectors=settings.detectors)
        gateway.key_cache_ttl = settings.http.key_cache_ttl
        if gateway.hub is not None:
            _wire_reviews(gateway.hub, settings)
            if publish:  # a long-running gateway: sweep due reviews, and hear other processes' changes now
                gateway.hub.start_sweeper(settings.reviews.sweep_interval)
                gateway.hub.listen()
        return gateway


class Custodian:
    """Erasure of a data subject and retention pruning: the two ways content leaves the log, each
    recorded by a leaf so that the log still verifies and says what is gone and why."""

    def __init__(self, *, store: AuditStore, log: AuditLog, vault: PayloadVault) -> None:
        self._store = store
        self.log = log
        self.vault = vault
        self.reviews_forgotten = 0  # by the last erase

    def erase(self, subject: str, *, basis: str = "erasure-request") -> tuple[Erasure, list[Receipt]]:
        """Destroy the subject's payload key and every payload that concerns it, then append the
        ``erasure`` leaves that list the leaves whose payload is gone. The leaves and the tree do not
        change. ``basis`` is a short code (e.g. ``gdpr-art17``), never free text."""
        if not isinstance(subject, str) or not subject:
            raise InputError("name the data subject to erase", path="$.subject")
        if not _BASIS.fullmatch(basis):
            raise InputError("the basis is a short code (letters, digits, . _ : -), never free text that "
                             "could itself identify the person", path="$.basis")
        erasure = self._store.erase_subject(self.vault.keys.subject_ref(subject), time.time())
        self.vault.forget(subject)
        # review records keep the held action in clear for reviewers: they go too (the log keeps
        # the review leaves, which hold only commitments)
        self.reviews_forgotten = (self._store.forget_subject(subject)
                                  if isinstance(self._store, ReviewStore) else 0)
        return erasure, self._record_erasure(erasure, basis)

    def record_pending_erasures(self) -> int:
        """Append the leaves of erasures that were carried out but not yet recorded (a crash between
        the two leaves at most one duplicate erasure leaf, never an unrecorded erasure)."""
        pending = self._store.erasures(pending=True)
        for erasure in pending:
            self._record_erasure(erasure, "recovered")
        return len(pending)

    def _record_erasure(self, erasure: Erasure, basis: str) -> list[Receipt]:
        chunks = [erasure.indices[i:i + ERASURE_INDICES_PER_LEAF]
                  for i in range(0, len(erasure.indices), ERASURE_INDICES_PER_LEAF)] or [()]
        receipts = [self.log.append({
            "v": 1, "type": "erasure", "ts": leaf_time(), "erasure": erasure.id, "basis": basis,
            "erased_at": leaf_time(erasure.erased_at), "part": n + 1, "parts": len(chunks),
            "indices": list(chunk)}) for n, chunk in enumerate(chunks)]
        self._store.record_erasure_leaf(erasure.id, receipts[-1].index)
        return receipts

    def prune(self, before: datetime) -> tuple[int, Receipt | None]:
        """Retention: drop the content of leaves older than ``before`` (their hashes stay, so every
        root and proof still verifies) after appending a ``prune`` leaf that says so. ``config``,
        ``erasure`` and ``prune`` leaves keep their bytes: they are the log's own history. Returns
        the new floor (leaves below it are pruned) and the prune leaf's receipt (None if nothing was
        old enough)."""
        if before.tzinfo is None:
            raise InputError("give the retention cut-off with a time zone (e.g. 2026-01-01T00:00:00Z)",
                             path="$.before")
        floor = self._store.pruned_below()
        size = self._store.state().size
        keep: list[int] = []
        below = floor
        while below < size:
            chunk = self._store.leaves(below, min(size, below + 4096))
            stop = False
            for data in chunk:
                if data:
                    leaf = json.loads(data)
                    ts = leaf.get("ts")
                    if isinstance(ts, str) and _parse_time(ts) >= before:
                        stop = True
                        break
                    if leaf.get("type") in ("config", "erasure", "prune"):
                        keep.append(below)
                below += 1
            if stop:
                break
        if below <= floor:
            return floor, None
        receipt = self.log.append({"v": 1, "type": "prune", "ts": leaf_time(), "before": leaf_time(
            before.timestamp()), "below": below})
        return self._store.prune(below, time.time(), keep), receipt


class AuditReader:
    """Read-only access to a stored log for the auditor's commands (verify, proof, checkpoint)."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def leaves(self) -> list[bytes]:
        return self._store.leaves(0, self._store.state().size)

    def pruned_hashes(self) -> list[bytes]:
        """The stored leaf hashes of the pruned prefix (whose bytes are gone)."""
        return self._store.leaf_hashes(0, self._store.pruned_below())

    def payloads(self, size: int) -> dict[int, bytes]:
        return self._store.payloads(0, size)

    def checkpoint_notes(self) -> list[str]:
        return [c.note for c in self._store.checkpoints()]

    def leaf_hash(self, index: int) -> str:
        """The RFC 6962 hash of leaf ``index``, in hex."""
        size = self._store.state().size
        if not 0 <= index < size:
            raise InputError(f"there is no leaf {index} (the log holds {size})", path="$.index")
        return self._store.leaf_hashes(index, index + 1)[0].hex()

    def latest_checkpoint(self) -> str | None:
        notes = self.checkpoint_notes()
        return notes[-1] if notes else None

    def verify(self, verifier: Verifier, *, origin: str, extra_checkpoints: Sequence[str] = (),
               max_seal_interval: float | None = None, payload_keys: PayloadKeys | None = None,
               sampling_key: bytes | None = None) -> VerifyReport:
        """Verify the stored log, its payloads against their leaves and, given the payload keys (the
        operator's own check), the commitments inside each payload and the sampling."""
        notes = self.checkpoint_notes()  # read before the leaves: every checkpoint is covered
        pruned = self.pruned_hashes()
        leaves = self.leaves()
        payloads = self.payloads(len(leaves))
        opener = None
        if payload_keys is not None:
            vault = PayloadVault(payload_keys, self._store)
            opener = lambda blob, index: vault.open(blob, index=index)  # noqa: E731
            sampling_key = sampling_key or payload_keys.sampling
        return verify_log(leaves, [*notes, *extra_checkpoints], [verifier], origin=origin,
                          max_seal_interval=max_seal_interval, pruned_hashes=pruned, payloads=payloads,
                          open_payload=opener, sampling_key=sampling_key)

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




def _wire_reviews(hub: ReviewHub, settings: Settings) -> None:
    """Give ``hub`` what the settings configure: how often waiters poll, the signal between gateway
    processes (Redis, or PostgreSQL's notifications), and the webhooks with their outcomes recorded."""
    hub.poll_interval = settings.reviews.poll_interval
    signal = open_review_signal(settings.database, settings.redis)
    if signal is not None:
        hub.signal_through(signal)
    if settings.notifications.webhooks:
        from lictor.webhooks import WebhookNotifier

        hub.notify_to(WebhookNotifier.from_settings(settings, on_result=hub.outcome))


def _redaction_key(keys: PayloadKeys) -> bytes:
    """The key of ``redact`` hash tags, derived from the payload key file's sampling secret (so it
    is as private as that file and stable across restarts)."""
    return hmac.new(keys.sampling, b"lictor/redact-hash/v1", hashlib.sha256).digest()


def _detection_failed(decision: Decision, exc: Exception) -> Decision:
    """BLOCK with the error: content that could not be scanned is not let through."""
    return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, constraints=(), errors=(
        *decision.errors, RuleError("", "", f"content detection failed, blocked (fail closed): "
                                            f"{type(exc).__name__}: {exc}", True)))


def _counts_remotely(policies: PolicySet) -> bool:
    """Whether evaluating ``policies`` may wait on the network: they have ``limit`` rules counted in
    a store outside this process (Redis)."""
    return not isinstance(policies.limits, InMemoryLimitStore) and any(
        rule.limit is not None for policy in policies.policies for rule in policy.rules)


def _clock(now: datetime | None) -> float:
    """The decision's clock as epoch seconds (the current time when none is given)."""
    return (now if now is not None else datetime.now(UTC)).timestamp()


def _record_change(log: AuditLog, change: str, details: Mapping[str, Any]) -> Receipt:
    """A ``config`` leaf naming an administrative change and its (never secret) details."""
    return log.append({"v": 1, "type": "config", "ts": leaf_time(), "change": change, **details})


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # an unreadable time is never "old enough" to prune
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _last_config(store: AuditStore, chunk: int = 1024) -> dict[str, Any] | None:
    """The most recent ``config`` leaf that records what decides, searching back from the end of the
    log; the ones that record an administrative change (``change``: a key created, a reload) are
    skipped, or every change would look like a new configuration."""
    end = store.state().size
    while end > 0:
        start = max(0, end - chunk)
        for data in reversed(store.leaves(start, end)):
            if not data:
                continue  # pruned (config leaves are kept when pruning)
            leaf = json.loads(data)
            if leaf.get("type") == "config" and "change" not in leaf:
                return leaf  # type: ignore[no-any-return]
        end = start
    return None


@contextlib.contextmanager
def open_custodian(database: str, *, key_file: str | Path = DEFAULT_KEY_FILE,
                   payload_key_file: str | Path = DEFAULT_PAYLOAD_KEY_FILE) -> Iterator[Custodian]:
    """A custodian over an existing deployment's log (for ``lictor audit erase|prune``). Both key
    files must exist; on leaving, the log is sealed and a checkpoint signed so the new leaves are
    covered at once."""
    for path, what in ((key_file, "signing key"), (payload_key_file, "payload key")):
        if not Path(path).exists():
            raise ConfigError(f"the {what} file {path} does not exist", path="audit.key_file"
                              if what == "signing key" else "audit.payload_key_file")
    keys = PayloadKeys.load(payload_key_file)
    with _writing(database, FileSigner(Path(key_file))) as (store, log):
        custodian = Custodian(store=store, log=log, vault=PayloadVault(keys, store))
        custodian.record_pending_erasures()
        yield custodian


@contextlib.contextmanager
def _writing(database: str, signer: CheckpointSigner) -> Iterator[tuple[AuditStore, AuditLog]]:
    """The store and a log writing to it, for one administrative change; on a clean exit the log is
    sealed and a checkpoint signed so the change's leaves are covered at once."""
    store = open_store(database)
    log = AuditLog(store=store, signer=signer)
    try:
        yield store, log
        log.checkpoint()
    finally:
        log.close()
        store.close()


def rotate_signing_key(database: str, *, key_file: str | Path = DEFAULT_KEY_FILE) -> tuple[str, str, str]:
    """Replace the log's checkpoint signing key: a ``config`` leaf announces the new key, one
    checkpoint over it is signed by both keys (the handover), and the new key takes the key file's
    place (the old one is kept beside it as ``KEYFILE.retired-KEYID``, to be archived or destroyed).
    Gateways using the key file must be stopped while this runs and started again after it.
    Returns (old vkey, new vkey, the handover checkpoint note)."""
    key = Path(key_file)
    old = FileSigner(key)
    staging = key.with_name(key.name + ".next")
    for leftover in (staging, staging.with_name(staging.name + STATE_SUFFIX)):
        if leftover.exists():
            raise ConfigError(f"{leftover} is left from an interrupted rotation; move it away first",
                              path="audit.key_file")
    new = FileSigner.create(staging, old.origin)
    store = open_store(database)
    log = AuditLog(store=store, signer=HandoverSigner(old, new))
    try:
        _record_change(log, "key-rotation", {"previous_vkey": old.vkey, "vkey": new.vkey})
        note = log.checkpoint()
    finally:
        log.close()
        store.close()
    if note is None:
        raise ConfigError("the handover checkpoint was not signed; the old key stays in force")
    retired = key.with_name(f"{key.name}.retired-{old.verifier.key_id:08x}")
    os.replace(old.state_path, retired.with_name(retired.name + STATE_SUFFIX))
    os.replace(key, retired)
    os.replace(new.state_path, old.state_path)
    os.replace(staging, key)
    return old.vkey, new.vkey, note


class KeyAdmin:
    """API key administration outside a running gateway (``lictor keys``): every change is
    recorded in the log as a ``config`` leaf naming the key, never its secret."""

    def __init__(self, store: AuditStore, log: AuditLog) -> None:
        if not isinstance(store, KeyStore):
            raise ConfigError("this audit store keeps no API keys", path="database")
        self.keys = KeyRing(store)
        self.log = log

    def record_change(self, change: str, **details: Any) -> Receipt:
        return _record_change(self.log, change, details)


@contextlib.contextmanager
def open_key_admin(settings: Settings) -> Iterator[KeyAdmin]:
    """Key administration over the deployment ``settings`` name (its signing key is created on first
    use, as a gateway would); on leaving, a checkpoint covers the new leaves."""
    with _writing(settings.database, _signer(settings.audit.key_file, settings.audit.origin)) as (store, log):
        yield KeyAdmin(store, log)


class ReviewAdmin:
    """Human review outside a running gateway (``lictor reviews``): the review desk over the
    deployment's store, recording to its log, and the keys reviewers act with."""

    def __init__(self, store: AuditStore, log: AuditLog) -> None:
        if not isinstance(store, ReviewStore) or not isinstance(store, KeyStore):
            raise ConfigError("this audit store keeps no reviews", path="database")
        self.desk = ReviewDesk(store, log)
        #: The same wake-ups and notifications as a gateway's (wired by :func:`open_review_admin`).
        self.hub = ReviewHub(self.desk)
        self.desk.listener = self.hub.step
        self.keys = KeyRing(store)

    def reviewer(self, text: str) -> ApiKey:
        """The live reviewer key whose full text is ``text``; ReviewError when it is not one."""
        key = self.keys.authenticate(text)
        if key is None:
            raise ReviewError("the reviewer key is unknown or revoked", reason="not_approver")
        if key.scope != "reviewer":
            raise ReviewError(f"a key with scope {key.scope!r} may not review; it needs reviewer", reason="not_approver")
        return key

    def act(self, review_id: str, key: ApiKey, verdict: str, comment: str = "") -> ReviewRequest:
        return self.desk.act(review_id, Reviewer(key.id, key.user, key.roles), verdict, comment, time.time())


@contextlib.contextmanager
def open_review_admin(settings: Settings) -> Iterator[ReviewAdmin]:
    """Review administration over the deployment ``settings`` name: each step is announced to the
    gateways (Redis or PostgreSQL notifications) and sent to the webhooks as a gateway would send it,
    waiting up to five seconds for the deliveries on leaving; then a checkpoint covers the review
    leaves appended, their ``notified`` leaves included."""
    with _writing(settings.database, _signer(settings.audit.key_file, settings.audit.origin)) as (store, log):
        admin = ReviewAdmin(store, log)
        _wire_reviews(admin.hub, settings)
        try:
            yield admin
        finally:  # the webhooks are sent (their outcomes recorded) before the log is sealed and closed
            admin.hub.close()


def open_audit_reader(database: str) -> AuditReader:
    return AuditReader(open_store(database))


def export_bundle(database: str, out_dir: str | Path, vkey: str) -> tuple[Path, int, int]:
    """Write the stored log to an auditor bundle at ``out_dir``; returns (path, leaves, checkpoints).

    The checkpoints are read before the leaves, so every exported checkpoint is covered by the
    exported leaves even while a gateway keeps appending. Pruned leaves go as their hashes."""
    reader = open_audit_reader(database)
    try:
        notes = reader.checkpoint_notes()
        pruned = reader.pruned_hashes()
        leaves = reader.leaves()
    finally:
        reader.close()
    return write_bundle(out_dir, leaves, notes, vkey, pruned_hashes=pruned), len(leaves), len(notes)
