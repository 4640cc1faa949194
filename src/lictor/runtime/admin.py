"""Administration outside a running gateway: API keys (``lictor keys``) and human review
(``lictor reviews``), each change recorded in the deployment's log."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lictor.access import ApiKey, KeyRing, KeyStore
from lictor.audit.log import AuditLog, Receipt
from lictor.audit.port import AuditStore
from lictor.config import Settings
from lictor.errors import ConfigError, ReviewError
from lictor.oversight import Reviewer, ReviewRequest, ReviewStore
from lictor.oversight.desk import ReviewDesk
from lictor.runtime.custody import record_change, writing_log
from lictor.runtime.gateway import open_signer, wire_reviews
from lictor.runtime.hub import ReviewHub

if TYPE_CHECKING:  # httpx and the notifier load only when notifications are configured
    pass

__all__ = ["KeyAdmin", "ReviewAdmin", "open_key_admin", "open_review_admin"]

class KeyAdmin:
    """API key administration outside a running gateway (``lictor keys``): every change is
    recorded in the log as a ``config`` leaf naming the key, never its secret."""

    def __init__(self, store: AuditStore, log: AuditLog) -> None:
        if not isinstance(store, KeyStore):
            raise ConfigError("this audit store keeps no API keys", path="database")
        self.keys = KeyRing(store)
        self.log = log

    def record_change(self, change: str, **details: Any) -> Receipt:
        return record_change(self.log, change, details)


@contextlib.contextmanager
def open_key_admin(settings: Settings) -> Iterator[KeyAdmin]:
    """Key administration over the deployment ``settings`` name (its signing key is created on first
    use, as a gateway would); on leaving, a checkpoint covers the new leaves."""
    with writing_log(settings.database, open_signer(settings.audit.key_file, settings.audit.origin)) as (store, log):
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
    with writing_log(settings.database, open_signer(settings.audit.key_file, settings.audit.origin)) as (store, log):
        admin = ReviewAdmin(store, log)
        wire_reviews(admin.hub, settings)
        try:
            yield admin
        finally:  # the webhooks are sent (their outcomes recorded) before the log is sealed and closed
            admin.hub.close()
