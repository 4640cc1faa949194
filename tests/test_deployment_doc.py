"""docs/deployment.md stays honest: its settings load, its command lines are real, its container file
copies paths that exist and installs extras that exist."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest

from lictor.cli import main
from lictor.config import load_settings
from tests.cli.test_cli import _commands
from tests.test_docs import Block, parse_blocks

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "deployment.md"
BLOCKS = parse_blocks(DOC)
COMMANDS = dict(_commands(main))


def _yaml_blocks() -> list[Block]:
    return [b for b in BLOCKS if b.lang == "yaml"]


def _command_lines() -> list[list[str]]:
    """Every `lictor …` command line in the page's shell blocks, unit file and container file."""
    lines: list[list[str]] = []
    for block in BLOCKS:
        for line in block.text.splitlines():
            if block.lang == "sh" and line.startswith("lictor "):
                lines.append(shlex.split(line))
            elif block.lang == "ini" and re.match(r"Exec\w*=\S*/lictor ", line):
                lines.append(["lictor", *shlex.split(line.split("=", 1)[1])[1:]])
            elif block.lang == "dockerfile" and line.startswith("CMD "):
                lines.append(["lictor", *json.loads(line[4:])])
    return lines


@pytest.mark.parametrize("block", _yaml_blocks(), ids=str)
def test_the_documented_settings_load(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "lictor.yaml"
    path.write_text(block.text)
    settings = load_settings(path, env={})
    assert settings.is_set("database") and settings.audit.key_file.is_absolute()


def test_the_page_has_its_examples() -> None:
    assert len(_yaml_blocks()) >= 2
    assert {"ini", "dockerfile"} <= {b.lang for b in BLOCKS}
    assert len(_command_lines()) >= 8


@pytest.mark.parametrize("words", _command_lines(), ids=" ".join)
def test_every_command_line_uses_real_commands_and_options(words: list[str]) -> None:
    name, rest = "lictor", words[1:]
    while rest and any(c == f"{name} {rest[0]}" or c.startswith(f"{name} {rest[0]} ") for c in COMMANDS):
        name, rest = f"{name} {rest[0]}", rest[1:]
    assert name in COMMANDS, f"no command {' '.join(words)!r}"
    command: click.Command = COMMANDS[name]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in options, f"{name} has no option {word}"
    required = {param.opts[0] for param in command.params if isinstance(param, click.Option) and param.required}
    assert required <= set(rest), f"{' '.join(words)}: missing {required - set(rest)}"


def test_the_container_file_copies_real_paths_and_installs_real_extras() -> None:
    (block,) = [b for b in BLOCKS if b.lang == "dockerfile"]
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    copied = installed = 0
    for line in block.text.splitlines():
        if line.startswith("COPY "):
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), f"the container file copies {source}, which is not in the repository"
                copied += 1
        for wanted in re.findall(r"'\.\[([a-z0-9,-]+)\]'", line):
            for extra in wanted.split(","):
                assert extra in extras, f"no extra {extra!r} in pyproject.toml"
                installed += 1
    assert copied >= 3 and installed >= 2
