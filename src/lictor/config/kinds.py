"""The value kinds of settings (text, URL, path, integer, duration, choices, mappings, webhooks), how
each parses and checks a value, and the placeholder-secret check."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from lictor.detect import DetectionSettings, detector_names, parse_detection_settings
from lictor.errors import ConfigError
from lictor.model import Verdict

__all__ = ["DEFAULT_CONFIG_FILE", "ENV_PREFIX", "McpServerSettings", "SystemSettings", "UpstreamSettings",
           "WebhookSettings", "format_duration", "is_placeholder", "parse_duration"]

DEFAULT_CONFIG_FILE = "lictor.yaml"
ENV_PREFIX = "LICTOR_"

_TIERS = ("high", "medium", "low")


class _Invalid(Exception):
    """A value a kind refuses; ``sub`` is the part of the value at fault (``high`` in a mapping), and
    ``at_key`` says the fault is its key (an unknown name) rather than its value."""

    def __init__(self, message: str, sub: str = "", *, at_key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sub = sub
        self.at_key = at_key


def _got(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


# --------------------------------------------------------------------------- durations

_DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: a number of seconds, or ``2ms``, ``10s``, ``15m``, ``1h``, ``1h30m``.

    Raises ValueError for anything else, including negative numbers and values that are not finite."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s, got {value!r}")
    if isinstance(value, int | float):
        seconds = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = value.strip()
        try:
            seconds = Decimal(text)
        except InvalidOperation:
            parts = list(_DURATION_PART.finditer(text))
            if not text or not parts or "".join(p.group(0) for p in parts) != text:
                raise ValueError(f"expected a duration such as 2ms, 10s, 15m, 1h or a number of seconds, "
                                 f"got {value!r}") from None
            seconds = sum((Decimal(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in parts), Decimal(0))
    if not seconds.is_finite() or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds, not negative, got {value!r}")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """The shortest text :func:`parse_duration` reads back as ``seconds`` (to the millisecond):
    ``2ms``, ``10s``, ``15m``, ``1h30m``; ``0s`` for zero."""
    ms = round(Decimal(str(seconds)) * 1000)
    if ms < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds!r}")
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# --------------------------------------------------------------------------- kinds of value



@dataclass(frozen=True, slots=True)
class SystemSettings:
    """What Lictor knows of one AI system: its risk tier (``high``, ``medium``, ``low``)."""

    risk: str


@dataclass(frozen=True, slots=True)
class McpServerSettings:
    """One streamable-HTTP MCP server that ``lictor serve`` fronts: its ``url``, the AI ``system`` its
    calls are attributed to, and ``token_env``, the environment variable holding the bearer token
    Lictor presents to it (the token itself is never in the settings)."""

    url: str
    system: str
    token_env: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One webhook: its ``url``, the ``secret`` that signs each request, and the payload ``format``
    (``generic`` or ``slack``). Its repr leaves out the secret and the URL's path."""

    url: str
    secret: str = field(repr=False)
    format: str = "generic"

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"WebhookSettings(url='{parts.scheme}://{parts.netloc.rpartition('@')[2]}/...', format={self.format!r})"


class _Kind:
    """How one kind of setting is read from YAML data or from environment text, and shown in docs."""

    label = "string"

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def from_text(self, text: str) -> Any:
        return self.check(text)

    def show(self, value: Any) -> str:
        return str(value)

    def secrets(self, value: Any) -> Iterable[str]:
        """Parts of a valid value that are secrets even when the setting is not (URL passwords)."""
        return ()


class _Text(_Kind):
    def __init__(self, label: str = "string", rule: Callable[[str], str | None] | None = None) -> None:
        self.label = label
        self._rule = rule

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(f"expected a non-empty {self.label}, got {_got(value)}")
        why = self._rule(value) if self._rule else None
        if why:
            raise _Invalid(why)
        return value


class _Url(_Text):
    def __init__(self, schemes: tuple[str, ...]) -> None:
        super().__init__("URL", self._scheme)
        self._schemes = schemes

    def _scheme(self, value: str) -> str | None:
        scheme, sep, _ = value.partition("://")
        if not sep or scheme.lower() not in self._schemes:
            return f"expected a URL starting with {' or '.join(s + '://' for s in self._schemes)}, got {value!r}"
        return None

    def secrets(self, value: Any) -> Iterable[str]:
        try:
            password = urlsplit(value).password if isinstance(value, str) else None
        except ValueError:
            return ()
        return (password,) if password else ()


class _Path(_Text):
    label = "path"

    def __init__(self) -> None:
        super().__init__("path")

    def check(self, value: Any) -> Any:
        return Path(super().check(str(value) if isinstance(value, Path) else value))

    def show(self, value: Any) -> str:
        path = Path(value)
        return str(path) if path.is_absolute() else f"./{path}"


class _Optional(_Kind):
    def __init__(self, inner: _Kind) -> None:
        self.inner = inner
        self.label = f"{inner.label} or null"

    def check(self, value: Any) -> Any:
        return None if value is None else self.inner.check(value)

    def from_text(self, text: str) -> Any:
        return None if text.strip().lower() in ("", "null", "none", "~") else self.inner.from_text(text)

    def show(self, value: Any) -> str:
        return "null" if value is None else self.inner.show(value)

    def secrets(self, value: Any) -> Iterable[str]:
        return () if value is None else self.inner.secrets(value)


class _Int(_Kind):
    label = "integer"

    def __init__(self, low: int, high: int | None = None) -> None:
        self.low, self.high = low, high

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer, got {_got(value)}")
        if value < self.low or (self.high is not None and value > self.high):
            top = f" and {self.high}" if self.high is not None else ""
            raise _Invalid(f"must be {'between ' + str(self.low) + top if top else 'at least ' + str(self.low)}, "
                           f"got {value}")
        return value

    def from_text(self, text: str) -> Any:
        try:
            number = int(text.strip())
        except ValueError:
            raise _Invalid(f"expected an integer, got {text!r}") from None
        return self.check(number)


class _Bool(_Kind):
    label = "boolean"
    _TEXT: Mapping[str, bool] = {"true": True, "yes": True, "on": True, "1": True,
                                 "false": False, "no": False, "off": False, "0": False}

    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise _Invalid(f"expected true or false, got {_got(value)}")
        return value

    def from_text(self, text: str) -> Any:
        try:
            return self._TEXT[text.strip().lower()]
        except KeyError:
            raise _Invalid(f"expected true or false, got {text!r}") from None

    def show(self, value: Any) -> str:
        return "true" if value else "false"


class _Choice(_Kind):
    def __init__(self, choices: tuple[str, ...], convert: Callable[[str], Any] = str) -> None:
        self.choices = choices
        self.label = " | ".join(choices)
        self._convert = convert

    def check(self, value: Any) -> Any:
        if isinstance(value, Verdict):
            value = value.name
        if value not in self.choices:
            hint = _suggest(str(value), self.choices, case=True)
            raise _Invalid(f"must be one of {', '.join(self.choices)}, got {value!r}{hint}")
        return self._convert(value)

    def from_text(self, text: str) -> Any:
        return self.check(text.strip())

    def show(self, value: Any) -> str:
        return str(value.name if isinstance(value, Verdict) else value)


class _Duration(_Kind):
    label = "duration"

    def __init__(self, *, zero: bool = False) -> None:
        self._zero = zero

    def check(self, value: Any) -> Any:
        if not isinstance(value, str | int | float):
            raise _Invalid(f"expected a duration such as 10s, got {_got(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if seconds == 0 and not self._zero:
            raise _Invalid(f"must be longer than zero, got {value!r}")
        return seconds

    def show(self, value: Any) -> str:
        return format_duration(value)


def _yaml_text(text: str) -> Any:
    """Environment text holding a mapping, as YAML flow style: ``{high: 1.0, low: 0.2}``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Invalid(f"expected a YAML mapping such as {{key: value}}: {exc}") from None


def _mapping(value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected a mapping, got {_got(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Invalid(f"keys must be strings, got {_got(key)}")
    return value


class _Rates(_Kind):
    """Sampling rate per risk tier; tiers not given keep their default; ``high`` is always 1.0."""

    label = "mapping of tier to rate"

    def __init__(self, defaults: Mapping[str, float]) -> None:
        self._defaults = defaults

    def check(self, value: Any) -> Any:
        rates = dict(self._defaults)
        for tier, rate in _mapping(value).items():
            if tier not in _TIERS:
                raise _Invalid(f"unknown risk tier {tier!r}; the tiers are {', '.join(_TIERS)}"
                               f"{_suggest(tier, _TIERS)}", tier, at_key=True)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise _Invalid(f"a sampling rate is a number from 0 to 1, got {_got(rate)}", tier)
            rates[tier] = float(rate)
        if rates["high"] != 1.0:
            raise _Invalid("must be 1.0: every decision about a high-risk system keeps its full record "
                           "(ISO/IEC 42001 A.6.2.8, EU AI Act article 12); sampling applies to the medium and low tiers", "high")
        return MappingProxyType(rates)

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text))

    def show(self, value: Any) -> str:
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"


class _Systems(_Kind):
    label = "mapping of system id to {risk}"
    _FIELDS = ("risk",)

    def check(self, value: Any) -> Any:
        systems: dict[str, SystemSettings] = {}
        for system, entry in _mapping(value).items():
            if not system.strip():
                raise _Invalid("a system id must not be empty", system)
            if not isinstance(entry, Mapping):
                raise _Invalid(f"expected a mapping such as {{risk: high}}, got {_got(entry)}", system)
            for key in entry:
                if key not in self._FIELDS:
                    raise _Invalid(f"unknown field {key!r}{_suggest(str(key), self._FIELDS)}", f"{system}.{key}",
                                   at_key=True)
            if "risk" not in entry:
                raise _Invalid(f"missing required field 'risk' ({', '.join(_TIERS)})", system)
            if entry["risk"] not in _TIERS:
                raise _Invalid(f"must be one of {', '.join(_TIERS)}, got {entry['risk']!r}", f"{system}.risk")
            systems[system] = SystemSettings(risk=entry["risk"])
        return MappingProxyType(systems)

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text) or {})

    def show(self, value: Any) -> str:
        return "{" + ", ".join(f"{k}: {{risk: {v.risk}}}" for k, v in value.items()) + "}"


class _Detectors(_Kind):
    """Which content detectors run and what they keep, in general and per system (see
    :func:`lictor.detect.parse_detection_settings`)."""

    label = "detector settings (see [Detectors](detectors.md))"

    def check(self, value: Any) -> Any:
        if isinstance(value, DetectionSettings):
            return value
        try:
            return parse_detection_settings(value, detector_names())
        except ConfigError as exc:
            unknown = exc.message.startswith(("unknown field", "unknown detector")) and ".enabled" not in exc.path \
                and not exc.path.startswith("enabled")
            raise _Invalid(exc.message, exc.path, at_key=unknown) from None

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text) or {})

    def show(self, value: Any) -> str:
        return "{}" if value == DetectionSettings() else "{...}"


_WEBHOOK_FORMATS = ("generic", "slack")
_WEBHOOK_FIELDS = ("url", "secret", "format")
_APPROVER_GROUP = re.compile(r"\*|(?:role|user):\S+")


class _Webhooks(_Kind):
    """Webhook endpoints per approver group: ``{role:NAME: [{url, secret, format}], "*": [...]}``."""

    label = "mapping of approver group to [{url, secret, format}]"
    _url = _Url(("http", "https"))

    def check(self, value: Any) -> Any:
        groups: dict[str, tuple[WebhookSettings, ...]] = {}
        for group, entries in _mapping(value).items():
            if not _APPROVER_GROUP.fullmatch(group):
                raise _Invalid(f"an approver group is role:NAME, user:ID or * (every event), got {group!r}",
                               group, at_key=True)
            if isinstance(entries, Mapping):
                entries = [entries]
            if not isinstance(entries, list) or not entries:
                raise _Invalid("expected a list of webhooks such as [{url: ..., secret: ...}]", group)
            groups[group] = tuple(self._entry(entry, f"{group}.{i}") for i, entry in enumerate(entries))
        return MappingProxyType(groups)

    def _entry(self, entry: Any, where: str) -> WebhookSettings:
        if not isinstance(entry, Mapping):
            raise _Invalid(f"expected a mapping such as {{url: ..., secret: ...}}, got {type(entry).__name__}", where)
        for key in entry:
            if key not in _WEBHOOK_FIELDS:
                raise _Invalid(f"unknown field {key!r}{_suggest(str(key), _WEBHOOK_FIELDS)}", f"{where}.{key}",
                               at_key=True)
        for key in ("url", "secret"):
            if key not in entry:
                raise _Invalid(f"missing required field {key!r}", where)
        try:
            url = self._url.check(entry["url"])
        except _Invalid:  # the URL's path is often a credential: do not repeat it
            raise _Invalid("expected a URL starting with http:// or https://", f"{where}.url") from None
        secret = entry["secret"]
        if not isinstance(secret, str) or not secret.strip():
            raise _Invalid("expected a non-empty string (the signing secret)", f"{where}.secret")
        fmt = entry.get("format", "generic")
        if fmt not in _WEBHOOK_FORMATS:
            raise _Invalid(f"must be one of {', '.join(_WEBHOOK_FORMATS)}, got {fmt!r}", f"{where}.format")
        return WebhookSettings(url=url, secret=secret, format=fmt)

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text) or {})

    def show(self, value: Any) -> str:
        shown = (f"{group}: [" + ", ".join(f"{{url: {w.url}, secret: '***', format: {w.format}}}" for w in hooks) + "]"
                 for group, hooks in value.items())
        return "{" + ", ".join(shown) + "}"

    def secrets(self, value: Any) -> Iterable[str]:
        for hooks in value.values():
            for hook in hooks:
                yield hook.secret
                yield from self._url.secrets(hook.url)


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """One model provider the LLM proxy forwards to: its ``base_url``, the environment variable holding
    its API key (read by the gateway, never sent by clients), its API ``kind`` (``openai`` or
    ``anthropic``), the request ``timeout`` in seconds and the model names (globs) it serves."""

    base_url: str
    api_key_env: str | None = None
    kind: str = "openai"
    timeout: float = 60.0
    models: tuple[str, ...] = ()


_UPSTREAM_KINDS = ("openai", "anthropic")
_UPSTREAM_FIELDS = ("base_url", "api_key_env", "kind", "timeout", "models")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Upstreams(_Kind):
    """The LLM proxy's upstreams, in order: ``{NAME: {base_url, api_key_env, kind, timeout, models}}``;
    a model goes to the first upstream whose ``models`` globs match it (none listed: any model)."""

    label = "mapping of name to {base_url, api_key_env, kind, timeout, models}"
    _url = _Url(("http", "https"))
    _timeout = _Duration()

    def check(self, value: Any) -> Any:
        upstreams: dict[str, UpstreamSettings] = {}
        for name, entry in _mapping(value).items():
            if not name.strip():
                raise _Invalid("an upstream name must not be empty", name, at_key=True)
            if not isinstance(entry, Mapping):
                raise _Invalid(f"expected a mapping such as {{base_url: ..., api_key_env: ...}}, got {_got(entry)}",
                               name)
            for key in entry:
                if key not in _UPSTREAM_FIELDS:
                    raise _Invalid(f"unknown field {key!r}{_suggest(str(key), _UPSTREAM_FIELDS)}", f"{name}.{key}",
                                   at_key=True)
            upstreams[name] = self._entry(name, entry)
        return MappingProxyType(upstreams)

    def _entry(self, name: str, entry: Mapping[str, Any]) -> UpstreamSettings:
        if "base_url" not in entry:
            raise _Invalid("missing required field 'base_url'", name)
        try:
            url = self._url.check(entry["base_url"]).rstrip("/")
        except _Invalid as exc:
            raise _Invalid(exc.message, f"{name}.base_url") from None
        env = entry.get("api_key_env")
        if env is not None and (not isinstance(env, str) or not _ENV_NAME.fullmatch(env)):
            raise _Invalid("the name of an environment variable (letters, digits, _), not the key itself",
                           f"{name}.api_key_env")
        kind = entry.get("kind", "openai")
        if kind not in _UPSTREAM_KINDS:
            raise _Invalid(f"must be one of {', '.join(_UPSTREAM_KINDS)}, got {kind!r}", f"{name}.kind")
        try:
            timeout = self._timeout.check(entry.get("timeout", 60.0))
        except _Invalid as exc:
            raise _Invalid(exc.message, f"{name}.timeout") from None
        models = entry.get("models", [])
        if isinstance(models, str):
            models = [models]
        if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
            raise _Invalid("expected a list of model names or globs such as [gpt-4o*]", f"{name}.models")
        return UpstreamSettings(base_url=url, api_key_env=env, kind=kind, timeout=timeout, models=tuple(models))

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text) or {})

    def show(self, value: Any) -> str:
        return "{" + ", ".join(f"{name}: {{base_url: {u.base_url}, kind: {u.kind}}}" for name, u in value.items()) + "}"


def _origin_rule(value: str) -> str | None:
    """A C2SP tlog-checkpoint origin: a schema-less URL naming the log, e.g. ``example.com/log``."""
    if any(ch.isspace() or ch < " " or ch == "\x7f" for ch in value):
        return f"an origin may not contain spaces or control characters, got {value!r}"
    if "+" in value:
        return f"an origin may not contain '+' (it separates the parts of a key), got {value!r}"
    if "://" in value:
        return f"an origin is a URL without its scheme (example.com/log), got {value!r}"
    return None


def _host_rule(value: str) -> str | None:
    return f"a host name may not contain spaces, got {value!r}" if any(ch.isspace() for ch in value) else None


# --------------------------------------------------------------------------- placeholders

_PLACEHOLDER = re.compile(
    r"""(?ix)
    (?: change[-_ .]?me | placeholder | secret | password | passwd | todo | tbd | fixme | dummy | example
      | your[-_ ].* | .*[-_]here
      | x{3,} | \*{3,} | \.{3,} | … | 0{3,}
      | <[^>]*> | \{\{.*\}\} | \$\{[^}]*\} )
    """)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` looks like a placeholder left in for a secret: ``changeme``, ``secret``,
    ``xxxx``, ``<api-key>``, ``${TOKEN}``, ``your-key-here``, or nothing at all."""
    return not value.strip() or _PLACEHOLDER.fullmatch(value.strip()) is not None


def _suggest(word: str, candidates: Iterable[str], *, case: bool = False) -> str:
    pool = list(candidates)
    if case:
        folded = {c.lower(): c for c in pool}
        if word.lower() in folded:
            return f"; did you mean {folded[word.lower()]!r}?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""



_MCP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MCP_FIELDS = ("url", "system", "token_env")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _McpServers(_Kind):
    """Fronted MCP servers by name (the path ``/mcp/NAME``): ``{NAME: {url, system}}``."""

    label = "mapping of name to {url, system, token_env}"
    _url = _Url(("http", "https"))

    def check(self, value: Any) -> Any:
        servers: dict[str, McpServerSettings] = {}
        for name, entry in _mapping(value).items():
            if not _MCP_NAME.fullmatch(name):
                raise _Invalid("a server name is 1 to 64 letters, digits, '_', '.' or '-' (it is a URL path "
                               f"segment), got {name!r}", name, at_key=True)
            if not isinstance(entry, Mapping):
                raise _Invalid(f"expected a mapping such as {{url: ..., system: ...}}, got {_got(entry)}", name)
            for key in entry:
                if key not in _MCP_FIELDS:
                    raise _Invalid(f"unknown field {key!r}{_suggest(str(key), _MCP_FIELDS)}", f"{name}.{key}",
                                   at_key=True)
            for key in ("url", "system"):
                if key not in entry:
                    raise _Invalid(f"missing required field {key!r}", name)
            try:
                url = self._url.check(entry["url"])
            except _Invalid:  # the URL may carry a credential: do not repeat it
                raise _Invalid("expected a URL starting with http:// or https://", f"{name}.url") from None
            system = entry["system"]
            if not isinstance(system, str) or not system.strip():
                raise _Invalid(f"expected a non-empty system id, got {_got(system)}", f"{name}.system")
            token_env = entry.get("token_env")
            if token_env is not None and (not isinstance(token_env, str) or not _ENV_NAME.fullmatch(token_env)):
                raise _Invalid(f"expected the name of an environment variable, got {_got(token_env)}",
                               f"{name}.token_env")
            servers[name] = McpServerSettings(url=url, system=system, token_env=token_env)
        return MappingProxyType(servers)

    def from_text(self, text: str) -> Any:
        return self.check(_yaml_text(text) or {})

    def show(self, value: Any) -> str:
        return "{" + ", ".join(f"{k}: {{url: {v.url}, system: {v.system}"
                               + (f", token_env: {v.token_env}" if v.token_env else "") + "}"
                               for k, v in value.items()) + "}"
