"""``lictor eval`` (decide actions offline) and ``lictor policy check|test`` (validate, run tests)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from lictor.cli.options import CONFIG_OPTION, override, read_settings
from lictor.detect import Detection, merge_findings
from lictor.errors import InputError, LictorError, PolicyError
from lictor.model import Action, Finding, Verdict
from lictor.policy import PolicySet, load_policies, run_policy_tests
from lictor.runtime import Gateway

__all__ = ["eval_command", "policy_group"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2

_VERDICTS = click.Choice([v.name for v in Verdict])


def _load(directory: str, default_verdict: str = "ALLOW") -> PolicySet:
    """Load policies or exit 1 printing every diagnostic as file:line:col: message."""
    try:
        return load_policies(directory, default_verdict=Verdict[default_verdict])
    except PolicyError as exc:
        for diag in exc.diagnostics:
            click.echo(str(diag))
        n = len(exc.diagnostics)
        click.echo(f"{n} error{'s' if n != 1 else ''} in {directory}", err=True)
        sys.exit(EXIT_FAILED)


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        return parsed
    except ValueError:
        raise click.BadParameter(f"expected an RFC 3339 timestamp such as 2026-11-28T15:00:00Z, got {value!r}",
                                 param_hint="--now") from None


def _documents(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    """Yield (where, JSON value) for one JSON document or for JSON lines; raise InputError on bad JSON."""
    text = stream.read()
    stripped = text.strip()
    if not stripped:
        raise InputError("no input: expected a JSON action or JSON lines", path=name)
    try:
        yield name, json.loads(stripped)
        return
    except json.JSONDecodeError as whole:
        if "\n" not in stripped or whole.msg != "Extra data":
            raise InputError(f"invalid JSON: {whole.msg} at line {whole.lineno} column {whole.colno}",
                             path=name) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{name}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            # one bad line is reported and skipped; the others are still decided
            yield f"{name}:{number}", InputError(f"invalid JSON: {exc.msg} at column {exc.colno}",
                                                 path=f"{name}:{number}")


@click.command("eval")
@click.option("--policies", "policies_dir", default=None, type=click.Path(exists=True),
              help="Directory (or file) of policies (default: the policies setting, ./policies).")
@click.argument("input_file", default="-", type=click.File("r", encoding="utf-8"))
@click.option("--explain", is_flag=True, help="Add each rule considered and why it matched or not.")
@click.option("--default-verdict", default=None, type=_VERDICTS,
              help="Verdict when no rule matches (BLOCK for default-deny; default: the default_verdict setting, ALLOW).")
@click.option("--now", "now_text", default=None, help="Decide as of this RFC 3339 time (default: now).")
@click.option("--findings", "findings_file", type=click.File("r", encoding="utf-8"), default=None,
              help="JSON list of findings to decide with, besides those the detectors find.")
@click.option("--db", "database", default=None,
              help="Record every decision in the audit log at this store (sqlite:///FILE or "
                   "postgresql://...); a checkpoint is signed when the input ends. Default: the database "
                   "setting when the settings file or LICTOR_DATABASE sets it, else no recording.")
@click.option("--key-file", default=None,
              help="The log's Ed25519 signing key (created on first use; never stored in the database; "
                   "default: the audit.key_file setting, lictor-audit.key).")
@CONFIG_OPTION
def eval_command(policies_dir: str | None, input_file: IO[str], explain: bool, default_verdict: str | None,
                 now_text: str | None, findings_file: IO[str] | None, database: str | None,
                 key_file: str | None, config_file: Path | None) -> None:
    """Decide one JSON action, or JSON lines of actions, from INPUT_FILE (default: stdin).

    Prints one decision per line as JSON. Exit 0 when every input was decided, 2 when some input was
    malformed (each problem is printed on stderr with its place).
    """
    now = _parse_now(now_text)
    settings = override(read_settings(config_file), {
        "policies": Path(policies_dir) if policies_dir else None,
        "default_verdict": Verdict[default_verdict] if default_verdict else None,
        "database": database, "audit.key_file": Path(key_file) if key_file else None})
    if not settings.policies.exists():
        if settings.is_set("policies"):
            click.echo(f"error: {settings.sources['policies']}: policies: {settings.policies} does not exist", err=True)
        else:
            click.echo(f"error: no policies at ./{settings.policies}: give --policies PATH, or set policies in "
                       "lictor.yaml or LICTOR_POLICIES", err=True)
        sys.exit(EXIT_INPUT)
    policies = _load(str(settings.policies), settings.default_verdict.name)
    gateway = None
    try:
        detection = Detection.from_settings(settings.detectors)
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    if settings.is_set("database"):
        try:
            gateway = Gateway.from_settings(settings, policies=policies)
        except LictorError as exc:
            click.echo(f"cannot open the audit log: {exc}", err=True)
            sys.exit(EXIT_INPUT)
    name = "<stdin>" if input_file.name == "<stdin>" else input_file.name
    findings: tuple[Finding, ...] = ()
    if findings_file is not None:
        try:
            raw = json.load(findings_file)
            if not isinstance(raw, list):
                raise InputError("expected a JSON list of findings", path=findings_file.name)
            findings = tuple(Finding.from_dict(f, f"$[{i}]") for i, f in enumerate(raw))
        except json.JSONDecodeError as exc:
            click.echo(f"{findings_file.name}: invalid JSON: {exc.msg}", err=True)
            sys.exit(EXIT_INPUT)
        except InputError as exc:
            click.echo(f"{findings_file.name}: {exc}", err=True)
            sys.exit(EXIT_INPUT)
    bad = 0
    try:
        for where, data in _documents(input_file, name):
            if isinstance(data, InputError):
                click.echo(str(data), err=True)
                bad += 1
                continue
            try:
                action = Action.from_dict(data)
            except InputError as exc:
                click.echo(f"{where}: {exc}", err=True)
                bad += 1
                continue
            trace: list[dict[str, Any]] | None = [] if explain else None
            if gateway is not None:  # the gateway runs the detectors itself
                decision = gateway.decide(action, now=now or datetime.now(UTC), findings=findings, explain=trace)
            else:
                found = merge_findings(findings, detection.scan(action))
                decision = policies.evaluate(action, now=now or datetime.now(UTC), findings=found, explain=trace)
            out = decision.to_dict()
            if trace is not None:
                out["explain"] = trace
            click.echo(json.dumps(out, ensure_ascii=False))
    except InputError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_INPUT)
    finally:
        if gateway is not None:
            gateway.checkpoint()
            gateway.close()
    sys.exit(EXIT_INPUT if bad else EXIT_OK)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@click.group("policy")
def policy_group() -> None:
    """Validate policies and run policy tests."""


@policy_group.command("check")
@click.argument("directory", type=click.Path(exists=True))
def check_command(directory: str) -> None:
    """Validate every policy in DIRECTORY; print each problem as file:line:col: message.

    Exit 0 when clean, 1 when there are errors.
    """
    policies = _load(directory)
    tests = sum(len(t.cases) for t in policies.tests)
    click.echo(f"ok: {_count(len(policies.policies), 'policy', 'policies')}, "
               f"{_count(policies.rule_count, 'rule')}, {_count(tests, 'test case')} (revision {policies.revision})")


@policy_group.command("test")
@click.argument("directory", type=click.Path(exists=True))
@click.option("-v", "--verbose", is_flag=True, help="Also list passing cases.")
def test_command(directory: str, verbose: bool) -> None:
    """Run the PolicyTest cases in DIRECTORY against its policies.

    Prints each failure, then `N passed, M failed`. Exit 0 when all pass, 1 otherwise.
    """
    policies = _load(directory)
    passed = failed = 0
    for result in run_policy_tests(policies):
        if result.passed:
            passed += 1
            if verbose:
                click.echo(f"PASS {result.test}: {result.case}")
            continue
        failed += 1
        click.echo(f"FAIL {result.location}: {result.test}: {result.case}")
        for failure in result.failures:
            click.echo(f"    {failure}")
    if passed + failed == 0:
        click.echo(f"no PolicyTest cases found in {Path(directory)}", err=True)
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(EXIT_FAILED if failed or not passed else EXIT_OK)
