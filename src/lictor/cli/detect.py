"""``lictor detect scan`` (findings in text or JSON lines) and ``lictor detect eval`` (precision,
recall and false-positive rate of the detectors on labelled JSON lines)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from lictor.cli.options import CONFIG_OPTION, read_settings
from lictor.detect import Detection, Scanner
from lictor.detect.evaluation import Evaluation, Score, evaluate
from lictor.errors import ConfigError, InputError

__all__ = ["detect_group"]

EXIT_OK, EXIT_FOUND, EXIT_INPUT = 0, 1, 2

SYSTEM_OPTION = click.option("--system", default=None,
                             help="Use this system's detector settings (its entry under detectors.systems).")


def _scanner(config_file: Path | None, system: str | None) -> Scanner:
    settings = read_settings(config_file)
    try:
        detection = Detection.from_settings(settings.detectors)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    return detection.scanner(system) if system else detection.default


def _json_lines(text: str, name: str) -> Iterator[tuple[str, Any]] | None:
    """(place, object) per non-empty line when every line is a JSON object with "text"; else None."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines or not lines[0][1].lstrip().startswith("{"):
        return None
    parsed = []
    for number, line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=f"{name}:{number}") from None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise InputError('expected an object with a "text" string', path=f"{name}:{number}")
        parsed.append((f"{name}:{number}", value))
    return iter(parsed)


@click.group("detect")
def detect_group() -> None:
    """Run the content detectors on text, and measure them on labelled data."""


@detect_group.command("scan")
@click.argument("input_file", default="-", type=click.File("r", encoding="utf-8"))
@click.option("--show-values", is_flag=True,
              help="Add the matched text to each finding (it may be a secret: mind where the output goes).")
@SYSTEM_OPTION
@CONFIG_OPTION
def scan_command(input_file: IO[str], show_values: bool, system: str | None, config_file: Path | None) -> None:
    """Print the findings in INPUT_FILE (default: stdin) as JSON lines.

    Plain text is scanned as one text; JSON lines whose objects hold a "text" are scanned one by one,
    each finding carrying the "line" it came from. Exit 0 when nothing was found, 1 when something
    was, 2 on bad input.
    """
    scanner = _scanner(config_file, system)
    name = "<stdin>" if input_file.name == "<stdin>" else input_file.name
    text = input_file.read()
    try:
        records = _json_lines(text, name)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    items = [(int(where.rsplit(":", 1)[1]), obj["text"]) for where, obj in records] if records is not None \
        else [(None, text)]
    found = 0
    for line, body in items:
        for finding in scanner.scan(body):
            out: dict[str, Any] = {} if line is None else {"line": line}
            out.update(finding.to_dict())
            del out["path"]
            if show_values:
                out["value"] = body[finding.start:finding.end]
            click.echo(json.dumps(out, ensure_ascii=False))
            found += 1
    sys.exit(EXIT_FOUND if found else EXIT_OK)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(title: str, rows: dict[str, Score]) -> list[str]:
    if not rows:
        return []
    width = max(len(title), *(len(k) for k in rows))
    out = [f"{title:<{width}}  {'tp':>6} {'fp':>6} {'fn':>6}  {'precision':>9} {'recall':>7} {'fpr':>6}"]
    for name, s in sorted(rows.items()):
        out.append(f"{name:<{width}}  {s.tp:>6} {s.fp:>6} {s.fn:>6}  {_pct(s.precision):>9} {_pct(s.recall):>7} "
                   f"{_pct(s.fpr):>6}")
    return out


def _report(result: Evaluation) -> str:
    total = result.total()
    lines = [f"{result.lines} lines", *_table("type", result.types)]
    if result.categories:
        lines += ["", *_table("category", result.categories)]
    if result.types:
        lines += ["", f"all types: precision {_pct(total.precision)}, recall {_pct(total.recall)}"]
    return "\n".join(lines)


@detect_group.command("eval")
@click.argument("input_file", type=click.File("r", encoding="utf-8"))
@click.option("--types", "types_glob", default="*", show_default=True,
              help="Score only the finding types matching this glob (pii.*, secret.*, injection.*).")
@click.option("--split", default=None, help='Use only the lines whose "split" field has this value (dev, test).')
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object instead of tables.")
@SYSTEM_OPTION
@CONFIG_OPTION
def eval_command(input_file: IO[str], types_glob: str, split: str | None, as_json: bool, system: str | None,
                 config_file: Path | None) -> None:
    """Measure the detectors on the labelled JSON lines of INPUT_FILE.

    A line is {"text", "spans": [{"type", "start", "end"}]} (ground-truth spans: precision, recall
    and false-positive rate per type) or {"text", "label": "attack" | "benign", "category"}
    (recall and false-positive rate per category). Exit 0 once scored, 2 on bad input.
    """
    scanner = _scanner(config_file, system)
    name = input_file.name
    lines = []
    for number, raw in enumerate(input_file, start=1):
        if not raw.strip():
            continue
        try:
            lines.append((f"{name}:{number}", json.loads(raw)))
        except json.JSONDecodeError as exc:
            click.echo(f"error: {name}:{number}: invalid JSON: {exc.msg} at column {exc.colno}", err=True)
            sys.exit(EXIT_INPUT)
    try:
        result = evaluate(lines, scanner, types=types_glob, split=split)
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else _report(result))
