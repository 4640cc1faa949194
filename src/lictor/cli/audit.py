"""``lictor audit``: verify the log offline, print checkpoints, inclusion proofs and the public key.

``verify`` exits 0 valid, 1 tampered, 2 incomplete, 3 policy violation; it names the failing step
and the first bad index, and never says "valid" for something it did not check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lictor.audit.note import Verifier
from lictor.audit.signer import FileSigner
from lictor.audit.verify import EXIT_CODES, LogVerificationError
from lictor.errors import LictorError, VerificationError
from lictor.runtime import DEFAULT_DATABASE, DEFAULT_KEY_FILE, open_audit_reader

__all__ = ["audit_group"]

_DB = click.option("--db", "database", default=DEFAULT_DATABASE, envvar="LICTOR_DATABASE", show_default=True,
                   help="The audit store: sqlite:///FILE or postgresql://USER@HOST/DB.")


def _verifier(key: str | None, key_file: str | None) -> Verifier:
    """The pinned public key (vkey text or a file holding it), or the deployment's own key file."""
    try:
        if key:
            text = Path(key).read_text().strip() if Path(key).is_file() else key.strip()
            return Verifier.from_vkey(text)
        return FileSigner(Path(key_file or DEFAULT_KEY_FILE)).verifier
    except (OSError, LictorError) as exc:
        raise click.UsageError(f"cannot read the public key: {exc}") from None


@click.group("audit")
def audit_group() -> None:
    """Verify and inspect the tamper-evident audit log."""


@audit_group.command("verify")
@_DB
@click.option("--key", default=None, help="The pinned public key (vkey text, or a file holding it).")
@click.option("--key-file", default=None, help="The deployment's own signing key file (its public half is used).")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint the auditor kept; may be repeated.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def verify_command(database: str, key: str | None, key_file: str | None, checkpoint_files: tuple[str, ...],
                   as_json: bool) -> None:
    """Verify every leaf, root and checkpoint signature of the log."""
    verifier = _verifier(key, key_file)
    extra = [Path(f).read_text() for f in checkpoint_files]
    try:
        reader = open_audit_reader(database)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        report = reader.verify(verifier, origin=verifier.name, extra_checkpoints=extra)
    except LogVerificationError as exc:
        if as_json:
            click.echo(json.dumps({"outcome": exc.outcome, "step": exc.step, "index": exc.index,
                                   "message": exc.message}))
        else:
            where = f" at index {exc.index}" if exc.index is not None else ""
            click.echo(f"{exc.outcome.upper()}: step {exc.step}{where}: {exc.message}")
        sys.exit(exc.exit_code)
    finally:
        reader.close()
    if as_json:
        click.echo(json.dumps({"outcome": "valid", "origin": report.origin, "leaves": report.leaves,
                               "checkpoints": report.checkpoints, "signed_size": report.signed_size,
                               "leaf_types": report.leaf_types}))
    else:
        click.echo(report.summary())
    sys.exit(EXIT_CODES["valid"])


@audit_group.command("checkpoint")
@_DB
def checkpoint_command(database: str) -> None:
    """Print the latest signed checkpoint note."""
    reader = open_audit_reader(database)
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
def proof_command(index: int, database: str, key: str | None, key_file: str | None, as_json: bool) -> None:
    """An RFC 6962 inclusion proof of leaf INDEX in the latest signed checkpoint."""
    verifier = _verifier(key, key_file)
    reader = open_audit_reader(database)
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
@click.option("--key-file", default=DEFAULT_KEY_FILE, show_default=True, help="The signing key file.")
def key_command(key_file: str) -> None:
    """Print the log's public key (C2SP vkey) for auditors to pin."""
    try:
        click.echo(FileSigner(Path(key_file)).vkey)
    except LictorError as exc:
        raise click.UsageError(str(exc)) from None
