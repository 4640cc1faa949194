"""Webhook notifications of review events: signed JSON sent from background threads, retried with
backoff, never blocking the caller.

A :class:`WebhookNotifier` holds the endpoints of each approver group (``role:credit-officer``,
``user:u-17``, or ``*`` for every event). :meth:`WebhookNotifier.notify` looks up the endpoints of the
event's approvers and puts one delivery per endpoint on a bounded in-memory queue, then returns at
once; worker threads send them through one pooled ``httpx`` transport.

- **A full queue refuses the new event** (``notify`` returns False) rather than dropping an older
  one: what was accepted stays accepted, and the caller learns at once that this event was not, so it
  can record that. Refusals are counted in :meth:`~WebhookNotifier.stats` and reported to
  ``on_result`` with status ``refused``.
- **Retries**: a connection error, a timeout, 429 or a 5xx is retried after a backoff that doubles
  from ``backoff`` up to ``max_backoff``, with jitter (a random factor between 0.5 and 1), or after
  exactly what ``Retry-After`` asks (at most ``max_retry_after``). Other answers are final: 2xx is
  ``delivered``, anything else ``failed``. After ``max_attempts`` attempts the delivery is ``failed``.
- **Signatures**: each attempt carries ``Lictor-Signature: t=<unix seconds>,v1=<hex>``, the
  HMAC-SHA256 of ``"<t>." + body`` under the endpoint's secret, signed afresh per attempt;
  ``Lictor-Event`` names the event type and ``Lictor-Delivery`` is a random id that stays the same
  across the attempts of one delivery (a receiver uses it to ignore repeats).
- **Secrets** (the signing secret and the endpoint's URL, whose path is often a credential itself)
  never appear in logs, outcomes, reprs or errors: endpoints are shown as ``scheme://host`` only.
- :meth:`~WebhookNotifier.close` stops taking events, lets the queue drain for up to ``timeout``
  seconds, then gives up on what is left (status ``dropped``) and closes the connection pool.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from lictor.errors import ConfigError, InputError

__all__ = [
    "ALL_GROUPS",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "EVENT_TYPES",
    "FORMATS",
    "SIGNATURE_HEADER",
    "Endpoint",
    "NotifierStats",
    "Outcome",
    "ReviewEvent",
    "WebhookNotifier",
    "sign",
    "slack_body",
]

SIGNATURE_HEADER = "Lictor-Signature"
EVENT_HEADER = "Lictor-Event"
DELIVERY_HEADER = "Lictor-Delivery"
#: The events a notifier sends, each about one review request.
EVENT_TYPES = ("review.created", "review.escalated", "review.approved", "review.rejected", "review.expired")
#: Payload formats: the event's JSON as it is, or a Slack-compatible incoming-webhook message.
FORMATS = ("generic", "slack")
#: The approver group whose endpoints receive every event.
ALL_GROUPS = "*"

_RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
_TITLES = {
    "review.created": "Review requested",
    "review.escalated": "Review escalated",
    "review.approved": "Review approved",
    "review.rejected": "Review rejected",
    "review.expired": "Review expired",
}

log = logging.getLogger("lictor.webhooks")


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what may be shown of an endpoint."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one group's events go: an ``http(s)://`` ``url``, the ``secret`` that signs each request,
    and the payload ``format`` (``generic`` or ``slack``). Its repr shows the URL's origin only."""

    url: str
    secret: str
    format: str = "generic"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected an http:// or https:// URL", path="url")
        if not isinstance(self.secret, str) or not self.secret.strip():
            raise ConfigError("a webhook needs a non-empty signing secret", path="secret")
        if self.format not in FORMATS:
            raise ConfigError(f"must be one of {', '.join(FORMATS)}, got {self.format!r}", path="format")

    @property
    def origin(self) -> str:
        """The URL's ``scheme://host[:port]``, safe to log."""
        return _origin(self.url)

    def __repr__(self) -> str:
        return f"Endpoint({self.origin!r}, format={self.format!r})"


@dataclass(frozen=True, slots=True)
class ReviewEvent:
    """Something that happened to a review request: its ``type`` (one of :data:`EVENT_TYPES`), the
    review's id, the action's ``system``, ``kind`` and ``name``, the ``approvers`` who may act (the
    groups notified), the ``quorum``, when it expires (ISO 8601), and who decided (``reviewer``) with
    their ``comment`` when it was approved or rejected."""

    type: str
    review_id: str
    system: str
    kind: str
    name: str
    approvers: tuple[str, ...]
    quorum: int
    expires_at: str
    reviewer: str | None = None
    comment: str | None = None
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise InputError(f"unknown event type {self.type!r}; the types are {', '.join(EVENT_TYPES)}",
                             path="$.type")
        if not self.review_id:
            raise InputError("a review id is required", path="$.review_id")
        object.__setattr__(self, "approvers", tuple(self.approvers))

    def to_json(self, link: str) -> dict[str, object]:
        """The event as JSON data (the ``generic`` payload), with ``link`` to the review."""
        data: dict[str, object] = {
            "type": self.type, "review_id": self.review_id, "system": self.system, "kind": self.kind,
            "name": self.name, "approvers": list(self.approvers), "quorum": self.quorum,
            "expires_at": self.expires_at, "link": link, "occurred_at": self.occurred_at,
        }
        if self.reviewer is not None:
            data["reviewer"] = self.reviewer
        if self.comment is not None:
            data["comment"] = self.comment
        return data


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: ReviewEvent, link: str) -> dict[str, object]:
    """A Slack-compatible incoming-webhook message for ``event``: ``text`` (the notification's
    fallback) and ``blocks`` showing the review id, system, action, approvers, quorum, expiry and a
    link to the review."""
    e = _slack_escape
    title = _TITLES[event.type]
    action = f"{event.kind} {event.name}"
    approvers = ", ".join(event.approvers) or "none"
    text = (f"{title}: {event.review_id} for {action} on {event.system}; approvers {approvers} "
            f"(quorum {event.quorum}), expires {event.expires_at}. {link}")
    fields = [
        f"*Review*\n<{link}|{e(event.review_id)}>",
        f"*System*\n{e(event.system)}",
        f"*Action*\n`{e(action)}`",
        f"*Approvers*\n{e(approvers)} (quorum {event.quorum})",
        f"*Expires*\n{e(event.expires_at)}",
    ]
    if event.reviewer is not None:
        fields.append(f"*Reviewer*\n{e(event.reviewer)}")
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{title}: {event.review_id}"[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if event.comment:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Comment*\n{e(event.comment)}"}})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the review>"}})
    return {"text": _slack_escape(text), "blocks": blocks}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Lictor-Signature`` header value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "t.body">``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery (one event to one endpoint): ``status`` is ``delivered``,
    ``failed`` (a final answer, or ``max_attempts`` used), ``refused`` (the queue was full) or
    ``dropped`` (the notifier closed first); ``endpoint`` is the URL's origin, ``http_status`` the
    last answer's status (None when none came), ``error`` why it was not delivered and ``group`` the
    approver group (or ``*``) whose endpoint it was."""

    status: str
    delivery_id: str
    endpoint: str
    attempts: int
    http_status: int | None = None
    error: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """Counts since the notifier was built: deliveries ``queued`` (accepted), ``delivered``,
    ``failed``, ``refused`` (queue full), ``dropped`` (at close), attempts ``retried``, and ``pending``
    (queued or being sent now)."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    refused: int = 0
    dropped: int = 0
    retried: int = 0
    pending: int = 0


@dataclass(slots=True)
class _Delivery:
    id: str
    event: ReviewEvent
    endpoint: Endpoint
    body: bytes
    group: str = ALL_GROUPS


class _EndpointSettings(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def format(self) -> str: ...


class _NotificationSettings(Protocol):
    @property
    def public_url(self) -> str | None: ...
    @property
    def webhooks(self) -> Mapping[str, Sequence[_EndpointSettings]]: ...


class _Settings(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def notifications(self) -> _NotificationSettings: ...


class _Closed(Exception):
    """The notifier closed while a delivery waited to be retried."""


class WebhookNotifier:
    """Sends review events to the webhooks of their approver groups, from ``workers`` background
    threads, never blocking :meth:`notify`.

    ``webhooks`` maps an approver group (``role:NAME``, ``user:ID``, or ``*`` for every event) to its
    endpoints; ``public_url`` is the gateway's address as reviewers reach it, for the link
    ``{public_url}/v1/reviews/{id}``. ``queue_size`` bounds the deliveries waiting; ``timeout`` each
    attempt; ``max_attempts`` the attempts of one delivery; ``backoff``, ``max_backoff`` and
    ``max_retry_after`` the waits between them. ``on_result(event, outcome)`` is called once per
    delivery when it is settled (from a worker thread, or from ``notify`` when refused); its errors
    are logged and ignored. ``transport``, ``sleep``, ``clock`` and ``rng`` replace the network, the
    waits, the signing time and the jitter in tests.
    """

    def __init__(self, webhooks: Mapping[str, Iterable[Endpoint]], *, public_url: str,
                 queue_size: int = 1000, workers: int = 2, timeout: float = 5.0, max_attempts: int = 5,
                 backoff: float = 0.5, max_backoff: float = 60.0, max_retry_after: float = 300.0,
                 on_result: Callable[[ReviewEvent, Outcome], object] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], object] | None = None,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        if queue_size < 1 or workers < 1 or max_attempts < 1:
            raise ConfigError("queue_size, workers and max_attempts must be at least 1")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected an http:// or https:// URL", path="notifications.public_url")
        self.public_url = public_url.rstrip("/")
        self._webhooks = {group: tuple(endpoints) for group, endpoints in webhooks.items()}
        self._queue_size = queue_size
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._on_result = on_result
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._clock = clock
        self._rng = rng or random.Random()
        self._timeout = httpx.Timeout(timeout)
        # requests go straight to the pooled transport: a client would log each URL, and a webhook's
        # URL can be a credential
        self._transport = transport or httpx.HTTPTransport(limits=httpx.Limits(max_connections=max(workers, 10)))
        self._queue: deque[_Delivery] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._abandon = False
        self._in_flight = 0
        self._counts = dict.fromkeys(("queued", "delivered", "failed", "refused", "dropped", "retried"), 0)
        self._threads = [threading.Thread(target=self._run, name=f"lictor-webhooks-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @classmethod
    def from_settings(cls, settings: _Settings, **options: object) -> WebhookNotifier:
        """A notifier for ``settings.notifications`` (``public_url``, or ``http://HOST:PORT`` when it
        is null; ``webhooks``); ``options`` are passed to the constructor."""
        notifications = settings.notifications
        public_url = notifications.public_url or f"http://{settings.host}:{settings.port}"
        webhooks = {group: [Endpoint(e.url, e.secret, e.format) for e in endpoints]
                    for group, endpoints in notifications.webhooks.items()}
        return cls(webhooks, public_url=public_url, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the caller's side

    def link(self, review_id: str) -> str:
        """The URL of review ``review_id`` in the gateway's API."""
        return f"{self.public_url}/v1/reviews/{review_id}"

    def endpoints_for(self, event: ReviewEvent) -> list[Endpoint]:
        """The endpoints of the event's approver groups and of ``*``, each once."""
        return [endpoint for _, endpoint in self._targets(event)]

    def _targets(self, event: ReviewEvent) -> list[tuple[str, Endpoint]]:
        """(group, endpoint) for each endpoint the event goes to, under the first group naming it."""
        found: list[tuple[str, Endpoint]] = []
        for group in (*event.approvers, ALL_GROUPS):
            for endpoint in self._webhooks.get(group, ()):
                if all(endpoint != seen for _, seen in found):
                    found.append((group, endpoint))
        return found

    def notify(self, event: ReviewEvent) -> bool:
        """Queue ``event`` for its endpoints and return at once: True when it was accepted (or no
        endpoint wants it), False when the queue had no room for all its deliveries (or the notifier
        is closed), in which case none of them is queued and each is reported as ``refused``."""
        link = self.link(event.review_id)
        deliveries = []
        for group, endpoint in self._targets(event):
            data = slack_body(event, link) if endpoint.format == "slack" else event.to_json(link)
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
            deliveries.append(_Delivery(f"dlv_{secrets.token_hex(16)}", event, endpoint, body, group))
        with self._cond:
            accepted = not self._closing and len(self._queue) + len(deliveries) <= self._queue_size
            if accepted:
                self._queue.extend(deliveries)
                self._counts["queued"] += len(deliveries)
                self._cond.notify(len(deliveries))
            else:
                self._counts["refused"] += len(deliveries)
        if not accepted:
            log.warning("webhook queue full or closed: %s event for review %s refused (%d deliveries)",
                        event.type, event.review_id, len(deliveries))
            for delivery in deliveries:
                self._report(delivery, Outcome("refused", delivery.id, delivery.endpoint.origin, 0,
                                               error="the notification queue was full or closed"))
        return accepted

    def stats(self) -> NotifierStats:
        """The counts so far (see :class:`NotifierStats`)."""
        with self._cond:
            return NotifierStats(**self._counts, pending=len(self._queue) + self._in_flight)

    def close(self, timeout: float = 10.0) -> None:
        """Take no more events, send what is queued for up to ``timeout`` seconds, then give up on
        the rest (reported as ``dropped``) and close the connection pool. An attempt already under
        way when time runs out is let finish (it is bounded by the request timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            with self._cond:
                self._abandon = True
                left = list(self._queue)
                self._queue.clear()
                self._counts["dropped"] += len(left)
                self._cond.notify_all()
            self._stop.set()
            for delivery in left:
                self._report(delivery, Outcome("dropped", delivery.id, delivery.endpoint.origin, 0,
                                               error="the notifier closed before it was sent"))
            for thread in self._threads:
                thread.join((self._timeout.read or 5.0) + 1.0)  # an attempt under way ends by its timeout
        self._transport.close()

    def __enter__(self) -> WebhookNotifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the workers' side

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or self._abandon:
                    return
                delivery = self._queue.popleft()
                self._in_flight += 1
            try:
                outcome = self._deliver(delivery)
            except Exception as exc:  # a bug must not kill the worker; the outcome says what it was
                outcome = Outcome("failed", delivery.id, delivery.endpoint.origin, 0,
                                  error=f"internal error: {type(exc).__name__}")
            with self._cond:
                self._in_flight -= 1
                self._counts[outcome.status] += 1
            self._report(delivery, outcome)

    def _deliver(self, delivery: _Delivery) -> Outcome:
        endpoint = delivery.endpoint
        status: int | None = None
        error = ""
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                with self._cond:
                    self._counts["retried"] += 1
            timestamp = int(self._clock())
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(endpoint.secret, timestamp, delivery.body),
                EVENT_HEADER: delivery.event.type,
                DELIVERY_HEADER: delivery.id,
            }
            retry_after: float | None = None
            request = httpx.Request("POST", endpoint.url, content=delivery.body, headers=headers,
                                    extensions={"timeout": self._timeout.as_dict()})
            try:
                response = self._transport.handle_request(request)
                try:
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                status, error = None, f"{type(exc).__name__}: no answer"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Outcome("delivered", delivery.id, endpoint.origin, attempt, status)
                error = f"answered {status}"
                if status not in _RETRY_STATUSES:
                    break
                retry_after = _retry_after(response.headers.get("Retry-After"), self._clock())
            if attempt == self._max_attempts:
                break
            log.info("webhook %s to %s: %s; attempt %d of %d", delivery.id, endpoint.origin, error,
                     attempt, self._max_attempts)
            if self._abandon:
                return Outcome("dropped", delivery.id, endpoint.origin, attempt, status,
                               f"{error}; the notifier closed before the next attempt")
            self._sleep(self._delay(attempt, retry_after))
            if self._abandon:
                return Outcome("dropped", delivery.id, endpoint.origin, attempt, status,
                               f"{error}; the notifier closed before the next attempt")
        attempts = attempt
        log.warning("webhook %s to %s failed after %d attempt(s): %s", delivery.id, endpoint.origin,
                    attempts, error)
        return Outcome("failed", delivery.id, endpoint.origin, attempts, status, error)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_retry_after)
        ceiling = min(self._max_backoff, self._backoff * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + self._rng.random() / 2)

    def _report(self, delivery: _Delivery, outcome: Outcome) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(delivery.event, replace(outcome, group=delivery.group))
        except Exception as exc:
            log.error("on_result failed for webhook %s: %s", delivery.id, type(exc).__name__)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
