"""``lictor serve`` (the HTTP gateway on uvicorn) and ``lictor keys`` (API keys, hashed in the store)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from lictor.access import SCOPES
from lictor.cli.options import CONFIG_OPTION, EXIT_INPUT, override, read_settings
from lictor.config import Settings
from lictor.errors import LictorError
from lictor.policy import load_policies
from lictor.runtime import KeyAdmin, open_key_admin

__all__ = ["keys_group", "serve_command"]

#: Where ``--demo`` looks for the example policies when ``policies`` is not set: the source tree this
#: package runs from (an editable install or a checkout), then ``./examples/policies``.
_EXAMPLES = (Path(__file__).resolve().parents[3] / "examples" / "policies", Path("examples") / "policies")
#: The environment variables the workers read (``lictor.http.app_from_env``): the settings file, and demo mode.
_CONFIG_ENV, _DEMO_ENV = "LICTOR_CONFIG", "LICTOR_SERVE_DEMO"
_DB = click.option("--db", "database", default=None,
                   help="The store holding the keys and the log (default: the database setting).")


def _settings(config_file: Path | None, database: str | None) -> Settings:
    return override(read_settings(config_file), {"database": database})


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys; only their hashes are stored."""


@keys_group.command("create")
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="What the key may do.")
@click.option("--user", default=None, help="The person the key belongs to (reviewers).")
@click.option("--roles", default="", help="Business roles, comma-separated (what approval rules match).")
@_DB
@CONFIG_OPTION
def keys_create(scope: str, user: str | None, roles: str, database: str | None, config_file: Path | None) -> None:
    """Create a key and print it once; it cannot be shown again."""
    settings = _settings(config_file, database)
    try:
        with open_key_admin(settings) as admin:
            key, text = admin.keys.create(scope, user=user, roles=[r.strip() for r in roles.split(",") if r.strip()])
            admin.record_change("key-created", key=key.to_dict())
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    click.echo(f"created key {key.id} (scope {key.scope}); it is shown only now:", err=True)
    click.echo(text)


@keys_group.command("list")
@_DB
@CONFIG_OPTION
def keys_list(database: str | None, config_file: Path | None) -> None:
    """List the keys (never their secrets)."""
    settings = _settings(config_file, database)
    with open_key_admin(settings) as admin:
        keys = admin.keys.list()
    for key in keys:
        state = "revoked" if key.revoked_at is not None else "live"
        click.echo(f"{key.id}\t{key.scope}\t{key.user or '-'}\t{','.join(key.roles) or '-'}\t{state}")


@keys_group.command("revoke")
@click.argument("key_id")
@_DB
@CONFIG_OPTION
def keys_revoke(key_id: str, database: str | None, config_file: Path | None) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    settings = _settings(config_file, database)
    try:
        with open_key_admin(settings) as admin:
            key = admin.keys.revoke(key_id)
            admin.record_change("key-revoked", key=key.to_dict())
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    click.echo(f"revoked key {key.id}")


@click.command("serve")
@CONFIG_OPTION
@click.option("--demo", is_flag=True, help="Example policies and a fresh key for every scope, printed.")
@click.option("--host", default=None, help="The address to listen on (default: the host setting).")
@click.option("--port", type=int, default=None, help="The port to listen on (default: the port setting).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (several need PostgreSQL or one shared SQLite file).")
def serve_command(config_file: Path | None, demo: bool, host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP gateway."""
    import uvicorn

    settings = override(read_settings(config_file, demo=demo), {"host": host, "port": port})
    if demo and not settings.is_set("policies"):
        settings = override(settings, {"policies": _demo_policies()})
    if settings.database.partition("://")[0].lower() == "memory":
        _refuse("`lictor serve` needs a database that the key commands and every worker share; "
                "memory:// lives and dies with one process. Use sqlite:///FILE or postgresql://…")
    try:
        load_policies(settings.policies, default_verdict=settings.default_verdict)
        if settings.mcp.servers:  # the fronted MCP servers' pins file and tokens (the SDK loads only then)
            from lictor.mcp import check_mcp_settings

            check_mcp_settings(settings)
        if settings.proxy.system is not None:  # the LLM proxy's upstream keys, before any worker starts
            settings.proxy.upstream_keys(os.environ)
        with open_key_admin(settings) as admin:
            if demo:
                _demo_keys(admin, settings)
            elif not admin.keys.any_live():
                _refuse("no API key exists, and the gateway never runs open. Create one first:\n"
                        "  lictor keys create --scope agent\n(or try `lictor serve --demo`)")
    except LictorError as exc:
        _refuse(str(exc))
    if workers > 1 and settings.redis is None:
        click.echo(f"warning: {workers} workers without the redis setting: each worker counts `limit` rules "
                   "on its own, so a limit of N lets through up to N per worker", err=True)
    # every worker builds its gateway from the same settings: the file, then these variables
    if config_file is not None:
        os.environ[_CONFIG_ENV] = str(config_file.resolve())
    if demo:
        os.environ[_DEMO_ENV] = "1"
    os.environ.update({"LICTOR_HOST": settings.host, "LICTOR_PORT": str(settings.port),
                       "LICTOR_POLICIES": str(Path(settings.policies).resolve()),
                       "LICTOR_DATABASE": settings.database})
    uvicorn.run("lictor.http:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=workers if workers > 1 else None, log_level="info",
                access_log=False)  # every decision is in the audit log and /metrics; a line per request costs ~5%


def _refuse(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def _demo_policies() -> Path:
    """The example policies for ``--demo``, or exit 2 saying how to name a policies directory."""
    for candidate in _EXAMPLES:
        if candidate.is_dir():
            return candidate.resolve()
    _refuse("--demo uses the example policies, which are not installed with the package and are not in "
            "./examples/policies; run it from a checkout of the source, or name a policies directory "
            "(the policies setting, LICTOR_POLICIES=DIR)")


def _demo_keys(admin: KeyAdmin, settings: Settings) -> None:
    agent = ""
    for scope in SCOPES:
        key, text = admin.keys.create(scope, user=f"demo-{scope}",
                                      roles=["credit-officer"] if scope == "reviewer" else [])
        admin.record_change("key-created", key=key.to_dict())
        click.echo(f"{scope:9} {text}")
        agent = text if scope == "agent" else agent
    click.echo(f"\ntry:\n  curl -s http://{settings.host}:{settings.port}/v1/decide "
               f"-H 'Authorization: Bearer {agent}' -H 'Content-Type: application/json' "
               "-d '{\"system\": \"credit-scoring\", \"kind\": \"tool_call\", \"name\": \"approve_credit\", "
               "\"args\": {\"amount\": 150000}}'\n")
