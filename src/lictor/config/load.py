"""Loading settings: the YAML file with the place of every value, the ``LICTOR_*`` environment, and
validation that reports every problem at once."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lictor.config.catalogue import (
    _BY_ENV,
    _BY_NAME,
    _GROUPS,
    SETTINGS,
    AuditSettings,
    HttpSettings,
    McpSettings,
    NotificationSettings,
    ProxySettings,
    ReviewSettings,
    Settings,
    _parse,
)
from lictor.config.kinds import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    _got,
)
from lictor.errors import ConfigError

__all__ = ["load_settings"]


@dataclass(frozen=True, slots=True)
class _Value:
    name: str
    value: Any
    locate: Callable[[str], str]


class _File:
    """One YAML settings file: plain values plus the ``file:line:column`` of every key and value."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[str, str] = {}

    def where(self, mark: Any) -> str:
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def read(self, problems: list[ConfigError]) -> Iterator[_Value]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the settings file: {exc}", where=str(self.path)) from exc
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return
            if not isinstance(root, yaml.MappingNode):
                kind = "list" if isinstance(root, yaml.SequenceNode) else "single value"
                raise ConfigError(f"expected a mapping of settings, got a {kind}", where=self.where(root.start_mark))
            yield from self._walk(loader, root, "", problems)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = self.where(mark) if mark else str(self.path)
            why = f"{exc.problem} ({exc.context})" if exc.problem and exc.context else exc.problem or exc.context
            raise ConfigError(f"invalid YAML: {why}", where=where) from None
        finally:
            loader.dispose()

    def _plain(self, loader: yaml.SafeLoader, node: yaml.Node, path: str, problems: list[ConfigError]) -> Any:
        """The value of ``node``, remembering where each nested key's value is."""
        self.marks[path] = self.where(node.start_mark)
        if not isinstance(node, yaml.MappingNode):
            return loader.construct_object(node, deep=True)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            self.marks[f"{path}.{key}#key"] = self.where(key_node.start_mark)
            if key in out:
                problems.append(ConfigError(f"duplicate key {key!r}", path=path, where=self.where(key_node.start_mark)))
            out[key] = self._plain(loader, value_node, f"{path}.{key}", problems)
        return out

    def _walk(self, loader: yaml.SafeLoader, node: yaml.MappingNode, prefix: str,
              problems: list[ConfigError]) -> Iterator[_Value]:
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            where = self.where(key_node.start_mark)
            if not isinstance(key, str):
                problems.append(ConfigError(f"a setting name must be a string, got {_got(key)}",
                                            path=prefix.rstrip("."), where=where))
                continue
            name = prefix + key
            if name in seen:
                problems.append(ConfigError("given twice", path=name, where=where))
                continue
            seen.add(name)
            if name in _BY_NAME:
                value = self._plain(loader, value_node, name, problems)
                yield _Value(name, value, self._locator(name))
            elif name in _GROUPS:
                if isinstance(value_node, yaml.MappingNode):
                    yield from self._walk(loader, value_node, name + ".", problems)
                elif not (isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":null")):
                    problems.append(ConfigError(f"expected a mapping of {name} settings", path=name,
                                                where=self.where(value_node.start_mark)))
            else:
                problems.append(ConfigError(f"unknown setting{_unknown_hint(prefix, key)}", path=name, where=where))

    def _locator(self, name: str) -> Callable[[str], str]:
        def locate(sub: str) -> str:
            return self.marks.get(f"{name}.{sub}" if sub else name) or self.marks[name]
        return locate


def _unknown_hint(prefix: str, key: str) -> str:
    siblings = {n[len(prefix):].split(".")[0] for n in (*_BY_NAME, *_GROUPS) if n.startswith(prefix)}
    close = difflib.get_close_matches(key, sorted(siblings), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    elsewhere = sorted(n for n in _BY_NAME if n.rsplit(".", 1)[-1] == key and n != prefix + key)
    return f"; did you mean {elsewhere[0]!r}?" if elsewhere else ""


# --------------------------------------------------------------------------- loading


def _config_file(path: str | Path | None) -> Path | None:
    if path is None:
        default = Path(DEFAULT_CONFIG_FILE)
        return default if default.is_file() else None
    chosen = Path(path)
    if not chosen.is_file():
        raise ConfigError("no such settings file", where=str(chosen))
    return chosen


def _unknown_env(environ: Mapping[str, str]) -> list[ConfigError]:
    """Variables that were surely meant as settings but name none: the nested form (``__``), or a
    setting's name with its underscores miscounted. Other ``LICTOR_*`` names are left alone."""
    folded = {re.sub("_+", "_", name): name for name in _BY_ENV}
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in _BY_ENV:
            continue
        meant = folded.get(re.sub("_+", "_", name))
        if meant:
            problems.append(ConfigError(f"not a setting; did you mean {meant}?", where=name))
        elif "__" in name:
            close = difflib.get_close_matches(name[len(ENV_PREFIX):], [e[len(ENV_PREFIX):] for e in _BY_ENV], 1, 0.6)
            hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
            problems.append(ConfigError(f"not a setting{hint}", where=name))
    return problems


def load_settings(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                  demo: bool = False) -> Settings:
    """Read and validate the settings.

    ``path`` is the YAML settings file (default: ``./lictor.yaml`` when present, else none); ``env``
    the environment (default: ``os.environ``), whose ``LICTOR_*`` variables override the file key by
    key; ``demo`` accepts placeholder secrets. Raises ConfigError; when there are several problems, its
    ``problems`` lists each one, in file order, then the environment's."""
    environ = os.environ if env is None else env
    problems: list[ConfigError] = []
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources = dict.fromkeys(values, "default")
    file = _config_file(path)
    if file is not None:
        for given in _File(file).read(problems):
            try:
                values[given.name] = _parse(_BY_NAME[given.name], given.value, given.locate, demo=demo)
                sources[given.name] = given.locate("")
            except ConfigError as exc:
                problems.append(exc)
    for setting in SETTINGS:
        text = environ.get(setting.env)
        if text is None:
            continue
        try:
            values[setting.name] = setting.parse_text(text, where=setting.env, demo=demo)
            sources[setting.name] = setting.env
        except ConfigError as exc:
            problems.append(exc)
    problems += _unknown_env(environ)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigError(f"{len(problems)} problems in the settings:\n" + "\n".join(map(str, problems)),
                          problems=problems)
    return _build(values, sources)


#: Each settings section: its prefix in dotted names and the frozen type it fills.
_SECTIONS: dict[str, type[Any]] = {
    "audit": AuditSettings, "http": HttpSettings, "notifications": NotificationSettings,
    "mcp": McpSettings, "proxy": ProxySettings, "reviews": ReviewSettings,
}


def _build(values: Mapping[str, Any], sources: Mapping[str, str]) -> Settings:
    sections: dict[str, dict[str, Any]] = {prefix: {} for prefix in _SECTIONS}
    top: dict[str, Any] = {}
    for name, value in values.items():
        prefix, _, rest = name.partition(".")
        if rest:
            sections[prefix][rest] = value
        else:
            top[name] = value
    built = {prefix: _SECTIONS[prefix](**fields) for prefix, fields in sections.items()}
    return Settings(**top, **built, sources=MappingProxyType(dict(sources)))

