"""Shared by the CLI tests: run the `lictor` command in the current directory, and where the examples are."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lictor.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"


def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the CLI in ``cwd`` (the tests chdir there; the argument documents where files land)."""
    assert Path.cwd() == cwd
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
