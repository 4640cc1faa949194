"""``--config FILE``, shared by the commands that open a gateway or a store, and how they read settings.

Precedence, highest first: an option given on the command line, a ``LICTOR_*`` environment
variable, the settings file, the built-in default.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import click

from lictor.config import Settings, load_settings
from lictor.errors import ConfigError

__all__ = ["CONFIG_OPTION", "EXIT_INPUT", "override", "read_settings"]

EXIT_INPUT = 2

CONFIG_OPTION: Callable[[Any], Any] = click.option(
    "--config", "config_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The settings file (default: ./lictor.yaml when present). LICTOR_* variables override it; "
         "options given here override both.")


def read_settings(config_file: Path | None, *, demo: bool = False) -> Settings:
    """Load the settings (``demo`` accepts placeholder secrets), or exit 2 printing each problem on
    its own line with its place."""
    try:
        return load_settings(config_file, demo=demo)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_INPUT)


def override(settings: Settings, given: Mapping[str, Any]) -> Settings:
    """``settings`` with the options given on the command line, by dotted setting name; ``None``
    means the option was not given and the setting keeps its value."""
    chosen = {name: value for name, value in given.items() if value is not None}
    top = {name: value for name, value in chosen.items() if "." not in name}
    audit = {name.split(".", 1)[1]: value for name, value in chosen.items() if name.startswith("audit.")}
    sources = MappingProxyType({**settings.sources, **dict.fromkeys(chosen, "command line")})
    return dataclasses.replace(settings, **top, audit=dataclasses.replace(settings.audit, **audit), sources=sources)
