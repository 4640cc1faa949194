"""``lictor audit``: verify the log offline, export auditor bundles, print checkpoints, proofs and the key.

``verify`` exits 0 valid, 1 tampered, 2 incomplete, 3 policy violation; it names the failing step
and the first bad index, and never says "valid" for something it did not check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
from click.core import ParameterSource

from lictor.audit.bundle import read_bundle
from lictor.audit.note import Verifier
from lictor.audit.signer import FileSigner
from lictor.audit.verify import EXIT_CODES, LogVerificationError, VerifyReport, verify_log
from lictor.cli.options import CONFIG_OPTION, override, read_settings
from lictor.config import Settings
from lictor.errors import LictorError, VerificationError
from lictor.runtime import export_bundle, open_audit_reader

__all__ = ["audit_group"]

_DB = click.option("--db", "database", default=None,
                   help="The audit store: sqlite:///FILE or postgresql://USER@HOST/DB "
                        "(default: the database setting, sqlite:///lictor.db).")


def _settings(config_file: Path | None, database: str | None = None, key_file: str | None = None) -> Settings:
    return override(read_settings(config_file),
                    {"database": database, "audit.key_file": Path(key_file) if key_file else None})


def _verifier(key: str | None, settings: Settings) -> Verifier:
    """The pinned public key (vkey text or a file holding it), or the deployment's own key file; a
    configured ``audit.origin`` must be the key's name."""
    try:
        if key:
            text = Path(key).read_text().strip() if Path(key).is_file() else key.strip()
            verifier = Verifier.from_vkey(text)
        else:
            verifier = FileSigner(settings.audit.key_file).verifier
    except (OSError, LictorError) as exc:
        raise click.UsageError(f"cannot read the public key: {exc}") from None
    if settings.is_set("audit.origin") and verifier.name != settings.audit.origin:
        raise click.UsageError(f"the key is for the log {verifier.name!r}, but audit.origin "
                               f"({settings.sources['audit.origin']}) is {settings.audit.origin!r}")
    return verifier


@click.group("audit")
def audit_group() -> None:
    """Verify and inspect the tamper-evident audit log."""


def _fail(exc: LogVerificationError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"outcome": exc.outcome, "step": exc.step, "index": exc.index,
                               "message": exc.message}))
    else:
        where = f" at index {exc.index}" if exc.index is not None else ""
        click.echo(f"{exc.outcome.upper()}: step {exc.step}{where}: {exc.message}")
    sys.exit(exc.exit_code)


def _verify_database(settings: Settings, key: str | None, extra: list[str],
                     max_seal_interval: float | None) -> VerifyReport:
    verifier = _verifier(key, settings)
    try:
        reader = open_audit_reader(settings.database)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        return reader.verify(verifier, origin=verifier.name, extra_checkpoints=extra,
                             max_seal_interval=max_seal_interval)
    finally:
        reader.close()


def _verify_bundle(ctx: click.Context, bundle: Path, key: str | None, key_file: str | None,
                   trust_bundle_key: bool, extra: list[str], max_seal_interval: float | None,
                   config_file: Path | None) -> VerifyReport:
    if ctx.get_parameter_source("database") is ParameterSource.COMMANDLINE:
        raise click.UsageError("give either --db or a BUNDLE directory, not both")
    if key_file:
        raise click.UsageError("a bundle is verified against a pinned public key: use --key, not --key-file")
    if key is None and not trust_bundle_key:
        raise click.UsageError(
            "pin the log's public key with --key VKEY (obtained out of band, e.g. from the operator's "
            "`lictor audit key`); the bundle's own key.vkey is not trusted unless you pass --trust-bundle-key")
    pinned = _verifier(key, read_settings(config_file)) if key else None
    contents = read_bundle(bundle)
    if pinned is None:
        try:
            pinned = Verifier.from_vkey(contents.vkey)
        except VerificationError as exc:
            raise LogVerificationError(f"key.vkey: {exc.message}", outcome="tampered", step="0 bundle") from None
        click.echo(f"warning: trusting the bundle's own key {contents.vkey}; whoever could rewrite the bundle "
                   "could have replaced it too. Pin the key with --key.", err=True)
    return verify_log(contents.leaves, [*contents.checkpoint_notes, *extra], [pinned], origin=pinned.name,
                      max_seal_interval=max_seal_interval)


@audit_group.command("verify")
@click.argument("bundle", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@_DB
@click.option("--key", default=None, help="The pinned public key (vkey text, or a file holding it).")
@click.option("--key-file", default=None, help="The deployment's own signing key file (its public half is used).")
@click.option("--trust-bundle-key", is_flag=True,
              help="With BUNDLE and no --key: use the bundle's own key.vkey (prints a warning).")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint the auditor kept; may be repeated.")
@click.option("--max-seal-interval", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds: a longer time without a seal leaf is a policy violation (exit 3).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@CONFIG_OPTION
@click.pass_context
def verify_command(ctx: click.Context, bundle: Path | None, database: str | None, key: str | None,
                   key_file: str | None, trust_bundle_key: bool, checkpoint_files: tuple[str, ...],
                   max_seal_interval: float | None, as_json: bool, config_file: Path | None) -> None:
    """Verify every leaf, root and checkpoint signature of the log in --db or in a BUNDLE directory."""
    extra = [Path(f).read_text() for f in checkpoint_files]
    try:
        if bundle is None:
            if trust_bundle_key:
                raise click.UsageError("--trust-bundle-key applies only to a BUNDLE directory")
            report = _verify_database(_settings(config_file, database, key_file), key, extra, max_seal_interval)
        else:
            report = _verify_bundle(ctx, bundle, key, key_file, trust_bundle_key, extra, max_seal_interval,
                                    config_file)
    except LogVerificationError as exc:
        _fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({"outcome": "valid", "origin": report.origin, "leaves": report.leaves,
                               "checkpoints": report.checkpoints, "signed_size": report.signed_size,
                               "leaf_types": report.leaf_types}))
    else:
        click.echo(report.summary())
    sys.exit(EXIT_CODES["valid"])


@audit_group.command("export")
@_DB
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="The bundle directory to create; it must not exist or be empty.")
@click.option("--key", default=None, help="The log's public key (vkey text, or a file holding it).")
@click.option("--key-file", default=None, help="The deployment's own signing key file (its public half is used).")
@CONFIG_OPTION
def export_command(database: str | None, out_dir: Path, key: str | None, key_file: str | None,
                   config_file: Path | None) -> None:
    """Write the log to an auditor bundle: leaves, checkpoints, public key and a hashed manifest."""
    settings = _settings(config_file, database, key_file)
    verifier = _verifier(key, settings)
    try:
        path, leaves, notes = export_bundle(settings.database, out_dir, verifier.vkey)
    except (LictorError, ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {leaves} leaves and {notes} checkpoints to {path}")


@audit_group.command("checkpoint")
@_DB
@CONFIG_OPTION
def checkpoint_command(database: str | None, config_file: Path | None) -> None:
    """Print the latest signed checkpoint note."""
    reader = open_audit_reader(_settings(config_file, database).database)
    try:
        note = reader.latest_checkpoint()
    finally:
        reader.close()
    if note is None:
        click.echo("no checkpoint has been signed yet", err=True)
        sys.exit(2)
    click.echo(note, nl=False)


@audit_group.command("proof")
@click.argument("index", type=int)
@_DB
@click.option("--key", default=None, help="The pinned public key (vkey text, or a file holding it).")
@click.option("--key-file", default=None, help="The deployment's own signing key file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default is a short text form).")
@CONFIG_OPTION
def proof_command(index: int, database: str | None, key: str | None, key_file: str | None, as_json: bool,
                  config_file: Path | None) -> None:
    """An RFC 6962 inclusion proof of leaf INDEX in the latest signed checkpoint."""
    settings = _settings(config_file, database, key_file)
    verifier = _verifier(key, settings)
    reader = open_audit_reader(settings.database)
    try:
        proof = reader.proof(index, verifier, verifier.name)
    except (LictorError, VerificationError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        reader.close()
    if as_json:
        click.echo(json.dumps(proof))
    else:
        click.echo(f"leaf {proof['index']} of {proof['tree_size']}: {proof['leaf_hash']}")
        for h in proof["proof"]:
            click.echo(f"  {h}")


@audit_group.command("key")
@click.option("--key-file", default=None,
              help="The signing key file (default: the audit.key_file setting, lictor-audit.key).")
@CONFIG_OPTION
def key_command(key_file: str | None, config_file: Path | None) -> None:
    """Print the log's public key (C2SP vkey) for auditors to pin."""
    try:
        click.echo(FileSigner(_settings(config_file, key_file=key_file).audit.key_file).vkey)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None
