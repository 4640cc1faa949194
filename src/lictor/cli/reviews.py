"""``lictor reviews``: list, show, approve and reject held actions from the terminal, and the
oversight statistics.

The commands work directly on the deployment's database. Reading needs nothing more than access to
it (as ``lictor audit`` does); approving and rejecting need a ``reviewer`` API key (``--key`` or
``LICTOR_REVIEWER_KEY``), so that the reviewer's identity and roles are the ones an admin gave the
key, never ones the person at the terminal claims. Approving and rejecting send the same webhooks as
the HTTP API does and wake the gateways' waiters (through Redis or PostgreSQL when configured).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from lictor.cli.options import CONFIG_OPTION, EXIT_INPUT, override, read_settings
from lictor.config import Settings
from lictor.errors import InputError, LictorError
from lictor.oversight import STATUSES, ReviewQuery, time_text
from lictor.runtime import open_review_admin

__all__ = ["reviews_group"]

#: The environment variable holding the reviewer key when ``--key`` is not given.
KEY_ENV = "LICTOR_REVIEWER_KEY"
_DB = click.option("--db", "database", default=None,
                   help="The store holding the reviews and the log (default: the database setting).")
_KEY = click.option("--key", "key", envvar=KEY_ENV, default=None, show_envvar=True,
                    help=f"A reviewer API key (default: ${KEY_ENV}); its user id and roles are checked.")


def _settings(config_file: Path | None, database: str | None) -> Settings:
    return override(read_settings(config_file), {"database": database})


def _fail(exc: LictorError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_INPUT)


def _epoch(text: str | None, option: str) -> float | None:
    """An RFC 3339 time with its zone (``2026-11-28T15:00:00Z``) as epoch seconds."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"{text!r} is not a time such as 2026-11-28T15:00:00Z", path=option) from None
    if when.tzinfo is None:
        raise InputError(f"give {option} with a time zone (e.g. 2026-11-28T15:00:00Z)", path=option)
    return when.timestamp()


_SINCE = click.option("--since", default=None, help="Only reviews created at or after this time (RFC 3339, with a zone).")
_UNTIL = click.option("--until", default=None, help="Only reviews created before this time (RFC 3339, with a zone).")


@click.group("reviews")
def reviews_group() -> None:
    """Human review of held actions: list, show, approve, reject."""


@reviews_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only reviews with this status.")
@click.option("--system", default=None, help="Only reviews of this AI system.")
@click.option("--approver", default=None, help="Only reviews this approver entry may act on (role:NAME, user:ID).")
@_SINCE
@_UNTIL
@click.option("--limit", type=click.IntRange(1, 10000), default=100, help="At most this many reviews.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per review instead of a table.")
@_DB
@CONFIG_OPTION
def reviews_list(status: str | None, system: str | None, approver: str | None, since: str | None,
                 until: str | None, limit: int, as_json: bool, database: str | None,
                 config_file: Path | None) -> None:
    """List review requests, oldest first: id, status, system, approvers, expiry."""
    settings = _settings(config_file, database)
    try:
        query = ReviewQuery(status=status, system=system, approver=approver, since=_epoch(since, "--since"),
                            until=_epoch(until, "--until"), limit=limit)
        with open_review_admin(settings) as admin:
            now = time.time()
            found = admin.desk.reviews(query, now)
    except LictorError as exc:
        _fail(exc)
        return
    for review in found:
        if as_json:
            click.echo(json.dumps(review.view(now), sort_keys=True))
        else:
            click.echo(f"{review.id}\t{review.status_at(now)}\t{review.system}\t{','.join(review.approvers)}"
                       f"\t{time_text(review.expires_at)}")


@reviews_group.command("show")
@click.argument("review_id")
@_DB
@CONFIG_OPTION
def reviews_show(review_id: str, database: str | None, config_file: Path | None) -> None:
    """Show one review with its full context, as JSON."""
    settings = _settings(config_file, database)
    try:
        with open_review_admin(settings) as admin:
            review = admin.desk.review(review_id, time.time())
    except LictorError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(review.view(time.time()), indent=2, sort_keys=True))


def _act(verdict: str, review_id: str, key: str | None, comment: str, database: str | None,
         config_file: Path | None) -> None:
    if not key:
        click.echo(f"error: give a reviewer key with --key or ${KEY_ENV}", err=True)
        sys.exit(EXIT_INPUT)
    settings = _settings(config_file, database)
    try:
        with open_review_admin(settings) as admin:
            review = admin.act(review_id, admin.reviewer(key), verdict, comment)
    except LictorError as exc:
        _fail(exc)
        return
    click.echo(f"{review.id} {review.status}")


@reviews_group.command("approve")
@click.argument("review_id")
@_KEY
@click.option("--comment", default="", help="Why (kept with the review; the log holds its commitment).")
@_DB
@CONFIG_OPTION
def reviews_approve(review_id: str, key: str | None, comment: str, database: str | None,
                    config_file: Path | None) -> None:
    """Approve a review as the reviewer the key names."""
    _act("approve", review_id, key, comment, database, config_file)


@reviews_group.command("reject")
@click.argument("review_id")
@_KEY
@click.option("--comment", required=True, help="Why (required: a rejection is final).")
@_DB
@CONFIG_OPTION
def reviews_reject(review_id: str, key: str | None, comment: str, database: str | None,
                   config_file: Path | None) -> None:
    """Reject a review as the reviewer the key names; the rejection is final."""
    _act("reject", review_id, key, comment, database, config_file)


@reviews_group.command("stats")
@click.option("--system", default=None, help="Only reviews of this AI system.")
@click.option("--approver", default=None, help="Only reviews this approver entry may act on (role:NAME, user:ID).")
@_SINCE
@_UNTIL
@click.option("--json", "as_json", is_flag=True, help="The statistics as one JSON document.")
@_DB
@CONFIG_OPTION
def reviews_stats(system: str | None, approver: str | None, since: str | None, until: str | None, as_json: bool,
                  database: str | None, config_file: Path | None) -> None:
    """Oversight statistics: reviews by status, time to decision, approval rate by reviewer,
    escalations and expiries."""
    settings = _settings(config_file, database)
    try:
        query = ReviewQuery(system=system, approver=approver, since=_epoch(since, "--since"),
                            until=_epoch(until, "--until"))
        with open_review_admin(settings) as admin:
            stats = admin.desk.stats(query, time.time())
    except LictorError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(stats, indent=2, sort_keys=True))
        return
    click.echo(f"reviews\t{stats['total']}")
    for status, count in stats["by_status"].items():
        click.echo(f"  {status}\t{count}")
    decided = stats["decided"]
    click.echo(f"decided\tapproved {decided['approved']}, rejected {decided['rejected']}, "
               f"approval rate {_share(decided['approval_rate'])}")
    timing = stats["time_to_decision"]
    click.echo(f"time to decision\tmedian {_seconds(timing['median'])}, p90 {_seconds(timing['p90'])}, "
               f"max {_seconds(timing['max'])}")
    click.echo(f"escalations\t{stats['escalations']}")
    click.echo(f"expiries\t{stats['expiries']}")
    for user, counts in stats["reviewers"].items():
        click.echo(f"reviewer {user}\tapproved {counts['approved']}, rejected {counts['rejected']}, "
                   f"approval rate {_share(counts['approval_rate'])}")


def _share(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"
