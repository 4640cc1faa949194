"""Policy source files: YAML documents read with the line and column of every key and value.

PyYAML composes the node graph; this module turns it into plain Python data plus a location table,
refuses duplicate keys and anchors/aliases, and reports YAML syntax errors as diagnostics instead of
raising on the first one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lictor.errors import Diagnostic

__all__ = ["Located", "SourceDocument", "find_policy_files", "read_documents"]

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Located:
    """A position in a file (1-based)."""

    file: str
    line: int
    column: int

    def diagnostic(self, message: str) -> Diagnostic:
        return Diagnostic(self.file, self.line, self.column, message)


@dataclass(slots=True)
class SourceDocument:
    """One YAML document: its data, and where each value (and each mapping key) sits in the file."""

    file: str
    index: int
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: Path_) -> Located:
        """Location of the value at ``path``; falls back to the nearest enclosing value."""
        p = tuple(path)
        while p not in self.values and p:
            p = p[:-1]
        line, col = self.values.get(p, (1, 1))
        return Located(self.file, line, col)

    def key_at(self, path: Path_) -> Located:
        """Location of the mapping key that ends ``path`` (for "unknown field" messages)."""
        if tuple(path) in self.keys:
            line, col = self.keys[tuple(path)]
            return Located(self.file, line, col)
        return self.at(path)


class _Builder:
    def __init__(self, file: str, index: int, errors: list[Diagnostic]) -> None:
        self.doc = SourceDocument(file, index, None)
        self.errors = errors
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self._error(key_node, "YAML merge keys (<<) are not allowed in policies")
                    continue
                key = self.build_scalar_key(key_node)
                if key is None:
                    continue
                if key in out:
                    self._error(key_node, f"duplicate key {key!r}")
                    continue
                self.doc.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def build_scalar_key(self, node: yaml.Node) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self._error(node, "mapping keys must be plain strings")
            return None
        value = self.constructor.construct_object(node, deep=True)
        if not isinstance(value, str):
            # YAML 1.1 turns keys like `on`, `yes`, `1` into booleans and numbers; keep them as written.
            return str(node.value)
        return value

    def _error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(
            Diagnostic(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, message)
        )


def _check_aliases(file: str, text: str, errors: list[Diagnostic]) -> bool:
    ok = True
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
                errors.append(Diagnostic(file, line, col, "YAML anchors and aliases are not allowed in policies"))
                ok = False
    except yaml.YAMLError:
        return True  # the syntax error is reported by read_documents
    return ok


def read_documents(file: str, text: str, errors: list[Diagnostic]) -> list[SourceDocument]:
    """Parse every YAML document in ``text``; problems are appended to ``errors``."""
    if not _check_aliases(file, text, errors):
        return []
    docs: list[SourceDocument] = []
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=yaml.SafeLoader)):
            if node is None:
                continue
            builder = _Builder(file, index, errors)
            builder.doc.data = builder.build(node, ())
            docs.append(builder.doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = 1, 1
        if mark is not None:
            line, col = mark.line + 1, mark.column + 1
        problem = exc.problem or exc.context or "invalid YAML"
        errors.append(Diagnostic(file, line, col, f"YAML syntax error: {problem}"))
    except yaml.YAMLError as exc:
        errors.append(Diagnostic(file, 1, 1, f"YAML error: {exc}"))
    except (ValueError, TypeError) as exc:  # e.g. an invalid date scalar
        errors.append(Diagnostic(file, 1, 1, f"YAML error: {exc}"))
    return docs


def find_policy_files(root: Path) -> Iterator[Path]:
    """The ``*.yaml`` and ``*.yml`` files under ``root`` (or ``root`` itself), in sorted order."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml") and not any(
            part.startswith(".") for part in path.relative_to(root).parts
        ):
            yield path
