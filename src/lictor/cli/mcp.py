"""``lictor mcp proxy``: an MCP client's stdio server that wraps another stdio MCP server, deciding
every tools/list, tools/call and tool result against policy."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from lictor.cli.options import CONFIG_OPTION, EXIT_INPUT, read_settings
from lictor.errors import LictorError
from lictor.runtime import Gateway

__all__ = ["mcp_group"]


def _cause(exc: BaseException) -> str:
    """The first real error inside the task groups' exception groups, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


@click.group("mcp")
def mcp_group() -> None:
    """Put Lictor in front of MCP servers."""


@mcp_group.command("proxy", context_settings={"allow_interspersed_args": False})
@click.option("--system", required=True, help="The AI system id the proxied calls are attributed to.")
@click.option("--agent", default=None, help="The agent id recorded with every decision (default: none).")
@click.option("--name", "server_name", default=None,
              help="The server's name in records and description pins (default: the command line).")
@CONFIG_OPTION
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def mcp_proxy(system: str, agent: str | None, server_name: str | None, config_file: Path | None,
              command: tuple[str, ...]) -> None:
    """Serve MCP on standard input and output, wrapping the stdio MCP server COMMAND (given after --)."""
    # the MCP SDK loads only for this command
    from lictor.mcp import DescriptionPins, run_stdio_proxy

    settings = read_settings(config_file)
    try:
        pins = DescriptionPins(settings.mcp.pins_file)
        gateway = Gateway.from_settings(settings, publish=True)
    except LictorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    try:
        asyncio.run(run_stdio_proxy(gateway, system=system, command=command[0], args=command[1:],
                                    server_name=server_name, agent=agent, pins=pins))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # the wrapped server could not start, or a connection broke
        click.echo(f"error: the MCP proxy for {' '.join(command)!r} stopped: {_cause(exc)}", err=True)
        sys.exit(EXIT_INPUT)
    finally:
        try:
            gateway.checkpoint()  # the last decisions signed now, not by the next gateway on this log
        except LictorError as exc:
            click.echo(f"error: the final checkpoint could not be signed: {exc}", err=True)
        finally:
            gateway.close()
