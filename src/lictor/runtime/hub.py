"""The gateway's side of human oversight: waking those who wait on a review (in this process and,
through a :class:`~lictor.oversight.ReviewSignal`, in every other), the sweep that escalates and
expires due reviews, and the webhooks of each step with their outcomes recorded as evidence.

The runtime builds one :class:`ReviewHub` per review desk and makes it the desk's listener: every
step the desk records (created, approved, rejected, used, escalated, expired) wakes the local
waiters, is published on the signal, and goes to the webhooks of the groups concerned. Each
webhook delivery's outcome comes back (from a notifier thread) and is recorded by the desk as a
``notified`` leaf.

Where expiry and escalation are recorded: **on access** (the desk settles a review's time-driven
steps whenever it reads one for a decision, a listing, a reviewer or a waiter) and **by the sweep**
(:meth:`ReviewHub.start_sweeper`: a thread of ``lictor serve`` calling
:meth:`~lictor.oversight.ReviewDesk.sweep` every ``reviews.sweep_interval``), so that a review
nobody looks at again is still escalated and its expiry recorded. Several gateways may sweep one
store: each step is recorded by the one whose atomic change made it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lictor.errors import LictorError
from lictor.oversight import ReviewRequest, ReviewSignal, time_text
from lictor.oversight.desk import ReviewDesk

if TYPE_CHECKING:  # httpx and the notifier load only when notifications are configured
    from lictor.webhooks import Outcome, ReviewEvent, WebhookNotifier

__all__ = ["NOTIFIED_STEPS", "ReviewHub", "review_event"]

#: The review steps sent to webhooks.
NOTIFIED_STEPS = ("created", "escalated", "approved", "rejected", "expired")
#: What a signal subscriber hears when any review may have changed unseen.
EVERYTHING = "*"

log = logging.getLogger(__name__)


def review_event(step: str, review: ReviewRequest) -> ReviewEvent:
    """The webhook event of a review step. An escalation goes to the groups it lets in
    (``escalate_to``); every other step to the review's approvers."""
    from lictor.webhooks import ReviewEvent

    action = review.context.get("action")
    action = action if isinstance(action, dict) else {}
    acts = [a for a in review.acts if a.verdict == ("approve" if step == "approved" else "reject")]
    last = acts[-1] if step in ("approved", "rejected") and acts else None
    approvers = review.escalated_to if step == "escalated" else review.approvers
    return ReviewEvent(
        type=f"review.{step}", review_id=review.id, system=review.system, kind=str(action.get("kind", "")),
        name=str(action.get("name") or ""), approvers=approvers, quorum=review.quorum,
        expires_at=time_text(review.expires_at), reviewer=last.user if last else None,
        comment=(last.comment or None) if last else None)


class ReviewHub:
    """Wake-ups, the sweep and the notifications of one review desk."""

    def __init__(self, desk: ReviewDesk, *, poll_interval: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.desk = desk
        self.poll_interval = poll_interval
        self.clock = clock
        self.notifier: WebhookNotifier | None = None
        self.signal: ReviewSignal | None = None
        self._subscribed = False
        self._cond = threading.Condition()
        self._generation = 0
        self._callbacks: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    # ---------------------------------------------------------------- wiring

    def notify_to(self, notifier: WebhookNotifier) -> None:
        """Send review steps to ``notifier``; the hub closes it when it closes."""
        self.notifier = notifier

    def signal_through(self, signal: ReviewSignal) -> None:
        """Publish each step on ``signal``, and (once someone waits) listen to it for the steps of
        other processes; the hub closes it when it closes."""
        self.signal = signal

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(review_id)`` for each review change seen here or announced by another
        process (``"*"``: any may have changed); from whichever thread saw it."""
        with self._cond:
            self._callbacks.append(callback)
        self._listen()

    def listen(self) -> None:
        """Listen to the signal now (a serving gateway does at start), not at the first waiter."""
        self._listen()

    def _listen(self) -> None:
        with self._cond:
            if self.signal is None or self._subscribed:
                return
            self._subscribed = True
        self.signal.subscribe(self._changed)

    # ---------------------------------------------------------------- the desk's listener

    def step(self, step: str, review: ReviewRequest) -> None:
        """What follows a recorded step: wake, publish, notify. Never raises."""
        self._changed(review.id)
        if self.signal is not None:
            self.signal.publish(review.id)
        if self.notifier is not None and step in NOTIFIED_STEPS:
            self.notifier.notify(review_event(step, review))

    def _changed(self, review_id: str) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(review_id)
            except Exception as exc:
                log.error("a review change callback failed: %s", type(exc).__name__)

    def outcome(self, event: ReviewEvent, outcome: Outcome) -> None:
        """Record one webhook delivery's outcome as a ``notified`` leaf (from a notifier thread)."""
        self.desk.notified(event.review_id, event.system, event.type, group=outcome.group,
                           outcome=outcome.status, attempts=outcome.attempts,
                           http_status=outcome.http_status, now=self.clock())

    # ---------------------------------------------------------------- waiting

    def wait(self, review_id: str, timeout: float) -> ReviewRequest:
        """The review once its status differs from what it was when called, or after ``timeout``
        seconds (then as it is). Wakes on a change made here or announced by another process, and
        re-reads the store every ``poll_interval`` in case an announcement was lost."""
        self._listen()
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            generation = self._generation
        review = self.desk.review(review_id, self.clock())
        first = review.status_at(self.clock())
        while review.status_at(self.clock()) == first:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._cond:
                if self._generation == generation:
                    self._cond.wait(min(self.poll_interval, left))
                generation = self._generation
            review = self.desk.review(review_id, self.clock())
        return review

    # ---------------------------------------------------------------- the sweep

    def start_sweeper(self, interval: float) -> None:
        """Sweep due reviews every ``interval`` seconds in a background thread until :meth:`close`."""
        if self._sweeper is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.desk.sweep(self.clock(), limit=500)
                except LictorError as exc:  # the store is down: try again at the next round
                    log.warning("the review sweep failed: %s", exc)

        self._sweeper = threading.Thread(target=run, name="lictor-review-sweep", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop the sweep, drain the notifications (their outcomes still recorded) and stop listening;
        call before the log closes."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(10.0)
        if self.notifier is not None:
            self.notifier.close(5.0)
        if self.signal is not None:
            self.signal.close()
