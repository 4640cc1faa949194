"""Review change signals between processes: a publish on Redis or through PostgreSQL's NOTIFY reaches
every subscriber of the same prefix (or schema) and no other; no signal without Redis or PostgreSQL."""

from __future__ import annotations

import queue
import secrets
from collections.abc import Callable, Iterator

import pytest

from lictor.oversight import ReviewSignal
from lictor.store import open_review_signal

Opener = Callable[[], ReviewSignal]


def _opener(request: pytest.FixtureRequest, kind: str) -> Opener:
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda: open_review_signal("sqlite:///unused.db", url)  # type: ignore[return-value]
    url = request.getfixturevalue("postgres_url")
    return lambda: open_review_signal(url, None)  # type: ignore[return-value]


@pytest.fixture(params=["redis", "postgres"])
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    opened: list[ReviewSignal] = []

    def open_one() -> ReviewSignal:
        signal = _opener(request, request.param)()
        opened.append(signal)
        return signal

    yield open_one
    for signal in opened:
        signal.close()


def subscribed(signal: ReviewSignal) -> queue.Queue[str]:
    """A queue receiving what ``signal`` hears, once it listens (its first report is ``*``)."""
    heard: queue.Queue[str] = queue.Queue()
    signal.subscribe(heard.put)
    assert heard.get(timeout=10) == "*"  # connected and listening
    return heard


def test_a_change_published_in_one_process_reaches_the_others(opener: Opener) -> None:
    listener, other, publisher = opener(), opener(), opener()
    heard, heard_too = subscribed(listener), subscribed(other)
    review_id = f"rev_{secrets.token_hex(6)}"
    publisher.publish(review_id)
    assert heard.get(timeout=10) == review_id
    assert heard_too.get(timeout=10) == review_id


def test_other_prefixes_and_schemas_hear_nothing(request: pytest.FixtureRequest, opener: Opener,
                                                 redis_url: str, postgres_url: str) -> None:
    mine = opener()
    heard = subscribed(mine)
    for foreign in (open_review_signal("sqlite:///unused.db", redis_url.rsplit("prefix=", 1)[0] + "prefix=elsewhere"),
                    open_review_signal(postgres_url.rsplit("schema=", 1)[0] + "schema=elsewhere", None)):
        assert foreign is not None
        try:
            foreign.publish("rev_foreign")
        finally:
            foreign.close()
    marker = f"rev_{secrets.token_hex(6)}"
    opener().publish(marker)
    assert heard.get(timeout=10) == marker  # the foreign ones, sent first, never arrived


def test_without_redis_or_postgresql_there_is_no_signal() -> None:
    assert open_review_signal("sqlite:///lictor.db", None) is None
    assert open_review_signal("memory://", None) is None


def test_a_publish_to_an_unreachable_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    signal = open_review_signal("sqlite:///lictor.db", "redis://:hunter2-secret@127.0.0.1:9/0")
    assert signal is not None
    try:
        signal.publish("rev_1")
    finally:
        signal.close()
    assert "cannot publish a review change" in caplog.text and "hunter2-secret" not in caplog.text
