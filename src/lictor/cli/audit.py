"""``lictor audit``: verify the log offline, export auditor bundles, print checkpoints, proofs and the key.

``verify`` exits 0 valid, 1 tampered, 2 incomplete, 3 policy violation; it names the failing step
and the first bad index, and never says "valid" for something it did not check.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import click
from click.core import ParameterSource

from lictor.audit.bundle import read_bundle
from lictor.audit.note import Verifier
from lictor.audit.payload import PayloadKeys
from lictor.audit.signer import FileSigner
from lictor.audit.verify import EXIT_CODES, LogVerificationError, VerifyReport, verify_log
from lictor.cli.options import CONFIG_OPTION, override, read_settings
from lictor.config import Settings
from lictor.errors import LictorError, VerificationError
from lictor.runtime import export_bundle, open_audit_reader, open_custodian, rotate_signing_key

__all__ = ["audit_group"]

_DB = click.option("--db", "database", default=None,
                   help="The audit store: sqlite:///FILE or postgresql://USER@HOST/DB "
                        "(default: the database setting, sqlite:///lictor.db).")


def _settings(config_file: Path | None, database: str | None = None, key_file: str | None = None,
              payload_key_file: str | None = None) -> Settings:
    return override(read_settings(config_file),
                    {"database": database, "audit.key_file": Path(key_file) if key_file else None,
                     "audit.payload_key_file": Path(payload_key_file) if payload_key_file else None})


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


def _payload_keys(settings: Settings, explicit: bool, own_deployment: bool) -> PayloadKeys | None:
    """The payload keys named on the command line, or the deployment's own (when verifying it with
    its own signing key and the file exists)."""
    path = settings.audit.payload_key_file
    if not explicit and (not own_deployment or not Path(path).exists()):
        return None
    try:
        return PayloadKeys.load(path)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None


def _sampling_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise click.UsageError("--sampling-key is the base64 key the operator disclosed") from None
    if len(key) != 32:
        raise click.UsageError("--sampling-key must decode to 32 bytes")
    return key


def _verify_database(settings: Settings, key: str | None, extra: list[str], max_seal_interval: float | None,
                     payload_keys: PayloadKeys | None, sampling_key: bytes | None) -> VerifyReport:
    verifier = _verifier(key, settings)
    try:
        reader = open_audit_reader(settings.database)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        return reader.verify(verifier, origin=verifier.name, extra_checkpoints=extra,
                             max_seal_interval=max_seal_interval, payload_keys=payload_keys,
                             sampling_key=sampling_key)
    finally:
        reader.close()


def _verify_bundle(ctx: click.Context, bundle: Path, key: str | None, key_file: str | None,
                   trust_bundle_key: bool, extra: list[str], max_seal_interval: float | None,
                   config_file: Path | None, sampling_key: bytes | None) -> VerifyReport:
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
                      max_seal_interval=max_seal_interval, pruned_hashes=contents.pruned_hashes,
                      sampling_key=sampling_key)


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
@click.option("--payload-key-file", default=None,
              help="The deployment's payload key file: open every payload and check it against its leaf's "
                   "commitments, and recompute sampling (default: the audit.payload_key_file setting, used "
                   "when verifying --db without --key and the file exists).")
@click.option("--sampling-key", default=None,
              help="The sampling key (base64) the operator disclosed: recompute which decisions kept a payload.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@CONFIG_OPTION
@click.pass_context
def verify_command(ctx: click.Context, bundle: Path | None, database: str | None, key: str | None,
                   key_file: str | None, trust_bundle_key: bool, checkpoint_files: tuple[str, ...],
                   max_seal_interval: float | None, payload_key_file: str | None, sampling_key: str | None,
                   as_json: bool, config_file: Path | None) -> None:
    """Verify every leaf, root and checkpoint signature of the log in --db or in a BUNDLE directory,
    and the payloads against their leaves."""
    extra = [Path(f).read_text() for f in checkpoint_files]
    sampling = _sampling_key(sampling_key)
    try:
        if bundle is None:
            if trust_bundle_key:
                raise click.UsageError("--trust-bundle-key applies only to a BUNDLE directory")
            settings = _settings(config_file, database, key_file, payload_key_file)
            keys = _payload_keys(settings, explicit=payload_key_file is not None, own_deployment=key is None)
            report = _verify_database(settings, key, extra, max_seal_interval, keys, sampling)
        else:
            if payload_key_file:
                raise click.UsageError("--payload-key-file applies to --db; a bundle holds no payloads")
            report = _verify_bundle(ctx, bundle, key, key_file, trust_bundle_key, extra, max_seal_interval,
                                    config_file, sampling)
    except LogVerificationError as exc:
        _fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({"outcome": "valid", "origin": report.origin, "leaves": report.leaves,
                               "checkpoints": report.checkpoints, "signed_size": report.signed_size,
                               "leaf_types": report.leaf_types, "pruned": report.pruned,
                               "payloads": report.payloads, "sampling_checked": report.sampling_checked,
                               "keys": report.keys, "skipped_checkpoints": report.skipped_checkpoints}))
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


_KEYS = click.option("--key-file", default=None,
                     help="The deployment's signing key file (default: the audit.key_file setting); a "
                          "checkpoint is signed after the change.")
_PAYLOAD_KEYS = click.option("--payload-key-file", default=None,
                             help="The deployment's payload key file (default: the audit.payload_key_file setting).")


@audit_group.command("erase")
@_DB
@click.option("--subject", required=True, help="The data subject's id (a principal id or a listed data subject).")
@click.option("--basis", default="erasure-request", show_default=True,
              help="A short code for the legal basis (e.g. gdpr-art17); never free text.")
@_KEYS
@_PAYLOAD_KEYS
@CONFIG_OPTION
def erase_command(database: str | None, subject: str, basis: str, key_file: str | None,
                  payload_key_file: str | None, config_file: Path | None) -> None:
    """Crypto-shred a data subject's payloads and record it with an erasure leaf; the log still verifies."""
    settings = _settings(config_file, database, key_file, payload_key_file)
    try:
        with open_custodian(settings.database, key_file=settings.audit.key_file,
                            payload_key_file=settings.audit.payload_key_file) as custodian:
            erasure, receipts = custodian.erase(subject, basis=basis)
            reviews = custodian.reviews_forgotten
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    where = ", ".join(str(r.index) for r in receipts)
    click.echo(f"erased the payloads of {len(erasure.indices)} leaves and {reviews} review records; "
               f"recorded by erasure leaf {where}")


@audit_group.command("prune")
@_DB
@click.option("--before", required=True,
              help="Drop the content of leaves older than this time (ISO 8601 with a zone, e.g. 2026-01-01T00:00:00Z).")
@_KEYS
@_PAYLOAD_KEYS
@CONFIG_OPTION
def prune_command(database: str | None, before: str, key_file: str | None, payload_key_file: str | None,
                  config_file: Path | None) -> None:
    """Retention: drop old leaves' content and payloads (hashes stay, so the log still verifies),
    recorded first by a prune leaf."""
    try:
        cutoff = datetime.fromisoformat(before.replace("Z", "+00:00"))
    except ValueError:
        raise click.UsageError(f"--before {before!r} is not an ISO 8601 time") from None
    if cutoff.tzinfo is None:
        raise click.UsageError("--before needs a time zone, e.g. 2026-01-01T00:00:00Z")
    settings = _settings(config_file, database, key_file, payload_key_file)
    try:
        with open_custodian(settings.database, key_file=settings.audit.key_file,
                            payload_key_file=settings.audit.payload_key_file) as custodian:
            floor, receipt = custodian.prune(cutoff)
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if receipt is None:
        click.echo(f"nothing older than {before} to prune (pruned below index {floor})")
    else:
        click.echo(f"pruned the content of leaves below index {floor}; recorded by prune leaf {receipt.index}")


@audit_group.command("rotate-key")
@_DB
@_KEYS
@CONFIG_OPTION
def rotate_key_command(database: str | None, key_file: str | None, config_file: Path | None) -> None:
    """Replace the checkpoint signing key: announced in the log, handed over by a checkpoint both keys sign."""
    settings = _settings(config_file, database, key_file)
    try:
        old, new, _ = rotate_signing_key(settings.database, key_file=settings.audit.key_file)
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"retired: {old}")
    click.echo(f"new key: {new}")
    click.echo("auditors who pinned the retired key keep verifying: the log hands over to the new key")
