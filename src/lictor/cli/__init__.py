"""The ``lictor`` command line: one click group, one module per command family.

Exit codes: 0 success; 1 the check found problems (policy errors, failed tests); 2 bad input or
usage (malformed JSON or YAML, an unknown option). No command prints a traceback for bad input.
"""

from __future__ import annotations

import click

from lictor import __version__
from lictor.cli.audit import audit_group
from lictor.cli.detect import detect_group
from lictor.cli.mcp import mcp_group
from lictor.cli.policy import eval_command, policy_group
from lictor.cli.reviews import reviews_group
from lictor.cli.serve import keys_group, serve_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lictor")
def main() -> None:
    """Lictor decides every AI action against policy and keeps the proof."""


main.add_command(eval_command)
main.add_command(policy_group)
main.add_command(audit_group)
main.add_command(detect_group)
main.add_command(keys_group)
main.add_command(reviews_group)
main.add_command(serve_command)
main.add_command(mcp_group)
