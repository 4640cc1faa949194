"""The gateway: policy evaluation, content detection, human oversight and a durable audit log, put
together from settings.

``Gateway.open(...)`` opens the store, the checkpoint signer, the audit log and the policies;
``gateway.decide(action)`` evaluates the action and returns only once its decision leaf is durable,
with ``audit.index`` and ``audit.leaf_hash`` filled in. If the log cannot take the leaf, the
decision is BLOCK with the error (fail closed) unless the operator set ``unsafe_fail_open``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lictor.access import ApiKey, KeyRing, KeyStore
from lictor.audit.index import DecisionIndex
from lictor.audit.leaf import RISK_TIERS, decision_leaf, leaf_time, new_salts, sensitive_values
from lictor.audit.log import AuditLog, Publisher, Receipt
from lictor.audit.payload import (
    PayloadKeys,
    PayloadVault,
    open_document,
    payload_document,
    payload_ref,
    sampled,
)
from lictor.audit.port import AuditStore, Erasure, Payload
from lictor.audit.signer import CheckpointSigner, FileSigner
from lictor.config import Settings
from lictor.detect import Detection, DetectionSettings, merge_findings
from lictor.errors import ConfigError, InputError, LictorError, ReviewError, VerificationError
from lictor.model import Action, Decision, Finding, RuleError, Verdict, data_subjects
from lictor.oversight import Reviewer, ReviewQuery, ReviewRequest, ReviewStore
from lictor.oversight.desk import Presented, ReviewDesk
from lictor.policy import PolicySet, load_policies
from lictor.policy.limits import InMemoryLimitStore
from lictor.runtime.custody import (
    DEFAULT_KEY_FILE,
    DEFAULT_PAYLOAD_KEY_FILE,
    Custodian,
    record_change,
)
from lictor.runtime.hub import ReviewHub
from lictor.store import open_limit_store, open_review_signal, open_store

if TYPE_CHECKING:  # httpx and the notifier load only when notifications are configured
    from lictor.webhooks import WebhookNotifier

__all__ = ["DEFAULT_DATABASE", "DEFAULT_KEY_FILE", "DEFAULT_PAYLOAD_KEY_FILE", "DEFAULT_SAMPLE_RATES", "Gateway", "keep_always"]

DEFAULT_DATABASE = "sqlite:///lictor.db"
DEFAULT_ORIGIN = "lictor.local/audit"
#: The share of ALLOW decisions without errors whose payload is kept, by risk tier (every other
#: decision keeps its payload at every tier).
DEFAULT_SAMPLE_RATES = {"high": 1.0, "medium": 0.5, "low": 0.1}
_BUILT_IN_DETECTORS = DetectionSettings()


def keep_always(decision: Decision) -> bool:
    """Enforcement and LOG (every verdict but ALLOW), errors and reviews keep their full record (the
    payload) at every risk tier: they are never sampled away."""
    return decision.verdict is not Verdict.ALLOW or bool(decision.errors) or bool(decision.review)


def open_signer(key_file: str | Path, origin: str) -> FileSigner:
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
        #: here: wake-ups, the sweep, notifications (see :mod:`lictor.runtime.hub`).
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
        signer = open_signer(key_file, origin)
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
        return record_change(self.log, change, details)

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
                self.log.submit(leaf, payload, waited=False)
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
                self.log.submit(leaf, payload, waited=False)
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
            wire_reviews(gateway.hub, settings)
            if publish:  # a long-running gateway: sweep due reviews, and hear other processes' changes now
                gateway.hub.start_sweeper(settings.reviews.sweep_interval)
                gateway.hub.listen()
        return gateway


def wire_reviews(hub: ReviewHub, settings: Settings) -> None:
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
    return policies.has_limits and not isinstance(policies.limits, InMemoryLimitStore)


def _clock(now: datetime | None) -> float:
    """The decision's clock as epoch seconds (the current time when none is given)."""
    return (now if now is not None else datetime.now(UTC)).timestamp()


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


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
