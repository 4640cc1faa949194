"""Webhook notifications against a real local HTTP receiver that checks every signature with the
function docs/notifications.md gives: both payload formats, routing by approver group, retries with
one delivery id, Retry-After, giving up, a full queue, a slow endpoint, closing, and secrets kept out
of logs and errors."""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lictor.config import load_settings
from lictor.errors import ConfigError, InputError
from lictor.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Endpoint,
    Outcome,
    ReviewEvent,
    WebhookNotifier,
    sign,
)

from .test_docs import parse_blocks

DOC = Path(__file__).parents[1] / "docs" / "notifications.md"
SECRET = "k7-Rq2v-9XwL-m4Zt"
TOKEN = "T0K3N-in-the-path"  # a URL path that is itself a credential, as chat webhooks' are


def documented_checker() -> dict[str, Any]:
    """The namespace of the Python block in docs/notifications.md (``verify_signature``, ``BadSignature``)."""
    (block,) = [b for b in parse_blocks(DOC) if b.lang == "python"]
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(compile(block.text, str(DOC), "exec"), namespace)
    return namespace


CHECKER = documented_checker()
verify_signature: Callable[..., None] = CHECKER["verify_signature"]
BadSignature: type[Exception] = CHECKER["BadSignature"]


# --------------------------------------------------------------------------- a receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server that records each request, checks its signature, and answers from
    ``answers`` (status, headers) in turn, 200 when they run out. While ``hold`` is clear, requests
    wait for it before being answered; ``arrived`` is set when a request comes in."""

    secret: str = SECRET
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    now: float | None = None  # the receiver's clock, when the notifier's is replaced

    def __post_init__(self) -> None:
        self.hold.set()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        try:
            verify_signature(self.secret, handler.headers.get(SIGNATURE_HEADER, ""), body, now=self.now)
        except BadSignature as exc:
            self.bad_signatures.append(str(exc))
        with self.lock:
            self.requests.append(Received(handler.path, dict(handler.headers.items()), body))
            status, headers = self.answers.pop(0) if self.answers else (200, {})
        self.arrived.set()
        self.hold.wait(10)
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/{TOKEN}"
    try:
        yield state
    finally:
        state.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not state.bad_signatures, state.bad_signatures


@dataclass
class Harness:
    """Notifiers built for one test, closed after it; every outcome lands in ``results``."""

    results: queue.Queue[tuple[ReviewEvent, Outcome]] = field(default_factory=queue.Queue)
    sleeps: list[float] = field(default_factory=list)
    built: list[WebhookNotifier] = field(default_factory=list)

    def notifier(self, webhooks: dict[str, list[Endpoint]], **options: Any) -> WebhookNotifier:
        options.setdefault("sleep", self.sleeps.append)
        options.setdefault("timeout", 5.0)
        notifier = WebhookNotifier(webhooks, public_url="https://lictor.example.com/",
                                   on_result=lambda e, o: self.results.put((e, o)), **options)
        self.built.append(notifier)
        return notifier

    def outcome(self) -> Outcome:
        return self.results.get(timeout=10)[1]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    for notifier in h.built:
        notifier.close(timeout=5)


def event(type: str = "review.created", review_id: str = "rev_7d1c", approvers: tuple[str, ...] = ("role:credit-officer",),
          **extra: Any) -> ReviewEvent:
    return ReviewEvent(type=type, review_id=review_id, system="credit-scoring", kind="tool_call",
                       name="approve_loan", approvers=approvers, quorum=2,
                       expires_at="2026-11-29T12:00:00+00:00", **extra)


# --------------------------------------------------------------------------- delivery and formats


def test_a_generic_event_is_delivered_signed_with_its_headers(receiver: Receiver, harness: Harness) -> None:
    notifier = harness.notifier({"role:credit-officer": [Endpoint(receiver.url, SECRET)]})
    assert notifier.notify(event()) is True
    outcome = harness.outcome()
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("delivered", 1, 200)
    (request,) = receiver.requests
    assert request.path == f"/hooks/{TOKEN}"
    assert request.headers[EVENT_HEADER] == "review.created"
    assert request.headers[DELIVERY_HEADER] == outcome.delivery_id
    assert re.fullmatch(r"dlv_[0-9a-f]{32}", outcome.delivery_id)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", request.headers[SIGNATURE_HEADER])
    assert request.headers["Content-Type"] == "application/json"
    body = request.json
    assert datetime.fromisoformat(body.pop("occurred_at")).tzinfo is not None
    assert body == {
        "type": "review.created", "review_id": "rev_7d1c", "system": "credit-scoring", "kind": "tool_call",
        "name": "approve_loan", "approvers": ["role:credit-officer"], "quorum": 2,
        "expires_at": "2026-11-29T12:00:00+00:00", "link": "https://lictor.example.com/v1/reviews/rev_7d1c",
    }
    assert notifier.stats().delivered == 1 and notifier.stats().pending == 0


def test_approved_and_rejected_events_carry_the_reviewer_and_comment(receiver: Receiver, harness: Harness) -> None:
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]})
    notifier.notify(event("review.rejected", reviewer="user:u-9", comment="amount above the limit"))
    assert harness.outcome().status == "delivered"
    body = receiver.requests[0].json
    assert (body["type"], body["reviewer"], body["comment"]) == ("review.rejected", "user:u-9", "amount above the limit")


def test_a_slack_event_is_a_compatible_message_linking_the_review(receiver: Receiver, harness: Harness) -> None:
    notifier = harness.notifier({"role:credit-officer": [Endpoint(receiver.url, SECRET, "slack")]})
    notifier.notify(event("review.escalated", approvers=("role:credit-officer", "user:<u&1>")))
    assert harness.outcome().status == "delivered"
    body = receiver.requests[0].json
    assert set(body) == {"text", "blocks"}
    link = "https://lictor.example.com/v1/reviews/rev_7d1c"
    assert "Review escalated" in body["text"] and "rev_7d1c" in body["text"] and link in body["text"]
    assert body["blocks"][0]["type"] == "header"
    shown = json.dumps(body["blocks"])
    for part in ("rev_7d1c", "credit-scoring", "tool_call approve_loan", "role:credit-officer",
                 "quorum 2", "2026-11-29T12:00:00+00:00", f"<{link}|"):
        assert part in shown, part
    assert "user:&lt;u&amp;1&gt;" in shown  # text from the action is escaped, not markup


def test_events_go_to_their_approver_groups_and_to_star_once_each(receiver: Receiver, harness: Harness) -> None:
    shared = Endpoint(receiver.url, SECRET)
    other = Endpoint(receiver.url + "/other", SECRET)
    notifier = harness.notifier({"role:credit-officer": [shared], "user:u-1": [shared], "*": [other],
                                 "role:auditor": [Endpoint(receiver.url + "/auditor", SECRET)]})
    assert notifier.endpoints_for(event(approvers=("role:credit-officer", "user:u-1"))) == [shared, other]
    notifier.notify(event(approvers=("role:credit-officer", "user:u-1")))
    outcomes = [harness.outcome(), harness.outcome()]
    assert {o.status for o in outcomes} == {"delivered"}
    assert sorted(r.path for r in receiver.requests) == [f"/hooks/{TOKEN}", f"/hooks/{TOKEN}/other"]
    assert len({r.headers[DELIVERY_HEADER] for r in receiver.requests}) == 2


def test_an_event_no_endpoint_wants_is_accepted_and_sends_nothing(harness: Harness) -> None:
    notifier = harness.notifier({"role:auditor": [Endpoint("http://127.0.0.1:9/", SECRET)]})
    assert notifier.notify(event()) is True
    assert notifier.stats().queued == 0


# --------------------------------------------------------------------------- retries


def test_a_500_is_retried_with_the_same_delivery_id_after_a_jittered_backoff(receiver: Receiver,
                                                                              harness: Harness) -> None:
    receiver.answers = [(500, {}), (502, {})]
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, backoff=1.0)
    notifier.notify(event())
    outcome = harness.outcome()
    assert (outcome.status, outcome.attempts) == ("delivered", 3)
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {outcome.delivery_id}
    assert len(receiver.requests) == 3
    assert 0.5 <= harness.sleeps[0] <= 1.0 and 1.0 <= harness.sleeps[1] <= 2.0
    assert notifier.stats().retried == 2


def test_retry_after_is_honoured_in_seconds_and_as_a_date(receiver: Receiver, harness: Harness) -> None:
    receiver.answers = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"})]
    receiver.now = 1767225600.0
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, clock=lambda: 1767225600.0)
    notifier.notify(event())
    assert harness.outcome().status == "delivered"
    assert harness.sleeps == [7.0, 30.0]


def test_a_long_retry_after_is_capped(receiver: Receiver, harness: Harness) -> None:
    receiver.answers = [(503, {"Retry-After": "86400"})]
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, max_retry_after=120)
    notifier.notify(event())
    assert harness.outcome().status == "delivered"
    assert harness.sleeps == [120]


def test_giving_up_after_max_attempts_is_reported(receiver: Receiver, harness: Harness) -> None:
    receiver.answers = [(503, {})] * 5
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, max_attempts=3)
    notifier.notify(event())
    got_event, outcome = harness.results.get(timeout=10)
    assert got_event.review_id == "rev_7d1c"
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("failed", 3, 503)
    assert outcome.error == "answered 503"
    assert len(receiver.requests) == 3 and len(harness.sleeps) == 2
    stats = notifier.stats()
    assert (stats.failed, stats.retried, stats.delivered) == (1, 2, 0)


def test_a_client_error_is_final(receiver: Receiver, harness: Harness) -> None:
    receiver.answers = [(400, {})]
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]})
    notifier.notify(event())
    outcome = harness.outcome()
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("failed", 1, 400)
    assert harness.sleeps == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_retried_then_given_up(harness: Harness) -> None:
    notifier = harness.notifier({"*": [Endpoint(f"http://127.0.0.1:{free_port()}/{TOKEN}", SECRET)]},
                                max_attempts=2)
    notifier.notify(event())
    outcome = harness.outcome()
    assert (outcome.status, outcome.attempts, outcome.http_status) == ("failed", 2, None)
    assert outcome.error == "ConnectError: no answer"
    assert len(harness.sleeps) == 1


# --------------------------------------------------------------------------- never blocking


def test_a_slow_endpoint_does_not_delay_notify(receiver: Receiver, harness: Harness) -> None:
    receiver.hold.clear()
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]})
    assert notifier.notify(event()) is True
    assert receiver.arrived.wait(10)
    # notify returned while the receiver still holds the request unanswered
    assert not receiver.hold.is_set() and harness.results.empty()
    assert notifier.notify(event(review_id="rev_2")) is True
    assert notifier.stats().pending == 2
    receiver.hold.set()
    assert {harness.outcome().status, harness.outcome().status} == {"delivered"}


def test_a_full_queue_refuses_new_events_without_blocking(receiver: Receiver, harness: Harness) -> None:
    receiver.hold.clear()
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, workers=1, queue_size=2)
    assert notifier.notify(event(review_id="rev_1")) is True
    assert receiver.arrived.wait(10)  # the one worker is busy with rev_1
    assert notifier.notify(event(review_id="rev_2")) is True
    assert notifier.notify(event(review_id="rev_3")) is True
    assert notifier.notify(event(review_id="rev_4")) is False  # refused at once, the worker still held
    refused_event, refused = harness.results.get_nowait()
    assert (refused_event.review_id, refused.status, refused.attempts) == ("rev_4", "refused", 0)
    stats = notifier.stats()
    assert (stats.queued, stats.refused, stats.pending) == (3, 1, 3)
    receiver.hold.set()
    notifier.close(timeout=10)
    assert sorted(r.json["review_id"] for r in receiver.requests) == ["rev_1", "rev_2", "rev_3"]
    assert notifier.stats().delivered == 3
    assert notifier.notify(event()) is False  # closed


def test_close_gives_up_on_what_cannot_be_sent_in_time(receiver: Receiver, harness: Harness) -> None:
    receiver.hold.clear()
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET)]}, workers=1, timeout=0.5)
    notifier.notify(event(review_id="rev_1"))
    assert receiver.arrived.wait(10)
    notifier.notify(event(review_id="rev_2"))
    notifier.close(timeout=0)
    outcomes = {e.review_id: o for e, o in (harness.results.get(timeout=10) for _ in range(2))}
    assert outcomes["rev_2"].status == "dropped" and outcomes["rev_2"].attempts == 0
    assert outcomes["rev_1"].status == "dropped"  # its answer timed out after the notifier closed
    assert notifier.stats().dropped == 2 and notifier.stats().pending == 0


def test_an_on_result_that_raises_does_not_stop_the_worker(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def on_result(e: ReviewEvent, o: Outcome) -> None:
        seen.append(e.review_id)
        raise RuntimeError("boom")

    with WebhookNotifier({"*": [Endpoint(receiver.url, SECRET)]}, public_url="http://127.0.0.1:8700",
                         on_result=on_result) as notifier:
        notifier.notify(event(review_id="rev_1"))
        notifier.notify(event(review_id="rev_2"))
    assert sorted(seen) == ["rev_1", "rev_2"]
    assert "on_result failed" in caplog.text


# --------------------------------------------------------------------------- secrets


def test_secrets_are_absent_from_logs_outcomes_and_errors(harness: Harness, receiver: Receiver,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.answers = [(500, {})]
    unreachable = Endpoint(f"http://127.0.0.1:{free_port()}/{TOKEN}", SECRET)
    notifier = harness.notifier({"*": [Endpoint(receiver.url, SECRET), unreachable]}, max_attempts=2)
    notifier.notify(event())
    outcomes = [harness.outcome(), harness.outcome()]
    shown = caplog.text + repr(outcomes) + repr(notifier.endpoints_for(event()))
    with pytest.raises(ConfigError) as bad_url:
        Endpoint(f"ftp://127.0.0.1/{TOKEN}", SECRET)
    with pytest.raises(ConfigError) as bad_format:
        Endpoint(receiver.url, SECRET, "xml")
    settings_error = ""
    try:
        load_settings(env={"LICTOR_NOTIFICATIONS__WEBHOOKS": f"{{'*': [{{url: 'ftp://h/{TOKEN}', secret: {SECRET}}}]}}"})
    except ConfigError as exc:
        settings_error = str(exc)
    assert "notifications.webhooks.*.0.url" in settings_error
    shown += str(bad_url.value) + str(bad_format.value) + settings_error
    assert "127.0.0.1" in shown and "webhook" in caplog.text  # the logs do say what happened
    assert SECRET not in shown and TOKEN not in shown


def test_a_placeholder_secret_is_refused_outside_demo_mode() -> None:
    env = {"LICTOR_NOTIFICATIONS__WEBHOOKS": "{'role:credit-officer': [{url: 'https://hooks.example.com/x', secret: changeme}]}"}
    with pytest.raises(ConfigError, match=re.escape("notifications.webhooks: the secret in this value looks like a placeholder")):
        load_settings(env=env)
    assert load_settings(env=env, demo=True).notifications.webhooks["role:credit-officer"][0].secret == "changeme"


@pytest.mark.parametrize(("value", "message"), [
    ("{'team-a': [{url: 'https://h.example.com', secret: k-2b7f}]}", "an approver group is role:NAME, user:ID or *"),
    ("{'*': [{url: 'https://h.example.com'}]}", "missing required field 'secret'"),
    ("{'*': [{url: 'https://h.example.com', secret: k-2b7f, format: xml}]}", "must be one of generic, slack"),
    ("{'*': [{url: 'https://h.example.com', secret: k-2b7f, method: PUT}]}", "unknown field 'method'"),
    ("{'*': []}", "expected a list of webhooks"),
])
def test_invalid_webhook_settings(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env={"LICTOR_NOTIFICATIONS__WEBHOOKS": value})


def test_the_documented_settings_build_a_notifier(tmp_path: Path) -> None:
    (block,) = [b for b in parse_blocks(DOC) if b.lang == "yaml"]
    path = tmp_path / "lictor.yaml"
    path.write_text(block.text)
    settings = load_settings(path, env={})
    assert SECRET not in repr(settings) and "9f2c-7Qe1-Lx4d-b8Tz" not in repr(settings)
    with WebhookNotifier.from_settings(settings, queue_size=10) as notifier:
        assert notifier.link("rev_1") == "https://lictor.example.com/v1/reviews/rev_1"
        slack = notifier.endpoints_for(event(approvers=()))
        assert [(e.origin, e.format) for e in slack] == [("https://chat.example.com", "slack")]
        assert len(notifier.endpoints_for(event(approvers=("role:credit-officer", "user:u-1042")))) == 3
    with WebhookNotifier.from_settings(load_settings(env={})) as default:
        assert default.link("rev_1") == "http://127.0.0.1:8700/v1/reviews/rev_1"


# --------------------------------------------------------------------------- the documented checker


def test_the_documented_checker_refuses_what_it_should() -> None:
    body = b'{"type":"review.created"}'
    header = sign(SECRET, 1_800_000_000, body)
    verify_signature(SECRET, header, body, now=1_800_000_100)
    for args, now in [((SECRET, header, body + b" "), 1_800_000_000),          # altered body
                      (("another-secret", header, body), 1_800_000_000),       # another secret
                      ((SECRET, header, body), 1_800_000_301),                 # replayed too late
                      ((SECRET, "v1=abc", body), 1_800_000_000),               # malformed
                      ((SECRET, header.replace("t=1800000000", "t=1800000001"), body), 1_800_000_000)]:
        with pytest.raises(BadSignature):
            verify_signature(*args, now=now)


def test_review_events_are_checked() -> None:
    with pytest.raises(InputError, match="unknown event type"):
        event("review.maybe")
    with pytest.raises(ConfigError):
        WebhookNotifier({}, public_url="lictor.example.com")
