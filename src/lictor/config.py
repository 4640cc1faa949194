"""Settings: every setting as data (name, type, default, help, environment variable), loaded from a
YAML file and ``LICTOR_*`` environment variables, and validated at start.

``load_settings()`` reads ``--config FILE`` (or ``./lictor.yaml`` when present), then lets the
environment override any key (``LICTOR_AUDIT__DURABILITY=async``: a double underscore goes one level
down), and returns a frozen :class:`Settings` tree. Every problem is reported at once, each naming the
setting's dotted path and where its value came from (``lictor.yaml:7:3`` or ``LICTOR_PORT``); unknown
keys are errors, with a suggestion when one is close. Secret values that look like placeholders
(``changeme``, ``<token>``, ``xxxx``) are refused unless ``demo=True``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from lictor.errors import ConfigError
from lictor.model import Verdict

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "SETTINGS",
    "AuditSettings",
    "HttpSettings",
    "NotificationSettings",
    "Setting",
    "Settings",
    "SystemSettings",
    "WebhookSettings",
    "format_duration",
    "is_placeholder",
    "load_settings",
    "parse_duration",
]

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


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its dotted ``name``, ``default`` and ``help``; the ``kind`` of value it takes;
    ``secret`` settings refuse placeholder values outside demo mode."""

    name: str
    default: Any
    help: str
    kind: _Kind = field(default_factory=_Text)
    secret: bool = False

    @property
    def env(self) -> str:
        """The environment variable that overrides it: ``audit.durability`` -> ``LICTOR_AUDIT__DURABILITY``."""
        return ENV_PREFIX + self.name.upper().replace(".", "__")

    @property
    def type(self) -> str:
        """The kind of value, as the docs name it (``duration``, ``sync | async``, ...)."""
        return self.kind.label

    @property
    def shown_default(self) -> str:
        """The default as it would be written in ``lictor.yaml``."""
        return self.kind.show(self.default)

    def parse(self, value: Any, *, where: str = "", demo: bool = False) -> Any:
        """Validate a value from YAML data; raise ConfigError naming this setting and ``where``."""
        return _parse(self, value, lambda _sub: where, demo=demo)

    def parse_text(self, text: str, *, where: str = "", demo: bool = False) -> Any:
        """Validate a value given as text (an environment variable)."""
        return _parse(self, text, lambda _sub: where, demo=demo, text=True)


def _parse(setting: Setting, value: Any, locate: Callable[[str], str], *, demo: bool, text: bool = False) -> Any:
    try:
        parsed = setting.kind.from_text(value) if text else setting.kind.check(value)
    except _Invalid as exc:
        path = f"{setting.name}.{exc.sub}" if exc.sub else setting.name
        raise ConfigError(exc.message, path=path, where=locate(f"{exc.sub}#key" if exc.at_key else exc.sub)) from None
    if not demo:
        secrets = [parsed] if setting.secret and isinstance(parsed, str) else []
        secrets += setting.kind.secrets(parsed)
        for secret in secrets:
            if is_placeholder(secret):
                what = ("value" if secret is parsed else "secret in this value" if setting.secret
                        else "password in this URL")
                raise ConfigError(f"the {what} looks like a placeholder ({secret!r}); set the real secret "
                                  "(demo mode alone accepts placeholders)", path=setting.name, where=locate(""))
    return parsed


_DEFAULT_RATES = MappingProxyType({"high": 1.0, "medium": 0.5, "low": 0.1})

SETTINGS: tuple[Setting, ...] = (
    Setting("database", "sqlite:///lictor.db",
            "The audit store: `sqlite:///FILE` (relative to the working directory), `sqlite:////ABSOLUTE/FILE` "
            "or `postgresql://USER@HOST/DB` for several gateway processes.",
            _Url(("sqlite", "postgresql", "postgres", "memory"))),
    Setting("redis", None,
            "`redis://HOST:6379/0` (or `rediss://`, `unix:///PATH?db=0`) to share the counters of `limit` rules "
            "between gateway processes; `?prefix=NAME` sets the prefix of its keys (default `lictor`). "
            "null keeps the counters in each process.",
            _Optional(_Url(("redis", "rediss", "unix")))),
    Setting("policies", Path("policies"), "The directory (or single file) of policies and policy tests.", _Path()),
    Setting("default_verdict", Verdict.ALLOW,
            "The verdict when no rule matches; `BLOCK` for default-deny.",
            _Choice(tuple(v.name for v in Verdict), lambda name: Verdict[name])),
    Setting("host", "127.0.0.1", "The address `lictor serve` listens on.", _Text("host", _host_rule)),
    Setting("port", 8700, "The TCP port `lictor serve` listens on.", _Int(1, 65535)),
    Setting("default_risk_tier", "high",
            "The risk tier of a system not listed under `systems`; it decides how much detail its records keep.",
            _Choice(_TIERS)),
    Setting("systems", MappingProxyType({}),
            "The AI systems Lictor knows, by the id actions carry in `system`: `{credit-scoring: {risk: high}}`.",
            _Systems()),
    Setting("audit.origin", "lictor.local/audit",
            "The log's name in its signed checkpoints: a URL without scheme, no spaces, no `+`. "
            "It must match the name of the signing key.",
            _Text("origin", _origin_rule)),
    Setting("audit.key_file", Path("lictor-audit.key"),
            "The Ed25519 checkpoint signing key, created (mode 0600) on first use; never stored in the database.",
            _Path()),
    Setting("audit.payload_key_file", Path("lictor-payload.key"),
            "The key that encrypts payloads in the side store, so a subject's records can be erased.",
            _Path()),
    Setting("audit.durability", "sync",
            "`sync`: a decision is returned only once its record is durable. `async`: low-risk ALLOW and LOG "
            "decisions without errors return once queued (a crash can lose the last batch, at most "
            "`max_batch` records written within `max_delay`); everything else stays `sync`.",
            _Choice(("sync", "async"))),
    Setting("audit.max_batch", 256, "The most records written in one group commit.", _Int(1)),
    Setting("audit.max_delay", 0.002,
            "How long a group commit waits for more records to join it; `0s` writes at once.",
            _Duration(zero=True)),
    Setting("audit.checkpoint_interval", 10.0,
            "How often a new checkpoint is signed while the log grows.", _Duration()),
    Setting("audit.seal_interval", 900.0,
            "The longest time without a seal and checkpoint, even when idle (the log's heartbeat).", _Duration()),
    Setting("audit.sample_rates", _DEFAULT_RATES,
            "Per risk tier, the share of ALLOW decisions (without errors) whose full payload is kept; every "
            "decision is recorded whatever the rate, and LOG, CONSTRAIN, BLOCK, errors and reviews always "
            "keep their payload. `high` must be 1.0.",
            _Rates(_DEFAULT_RATES)),
    Setting("audit.unsafe_fail_open", False,
            "When the log cannot record a decision, let it through anyway (marked NOT recorded) instead of "
            "blocking it. Unsafe: actions could run with no record.",
            _Bool()),
    Setting("http.max_body_bytes", 1_048_576,
            "The largest request body `lictor serve` reads, in bytes; a larger one gets 413 (counted as it "
            "streams in, whatever Content-Length says).", _Int(1024)),
    Setting("http.max_batch", 100, "The most actions one `POST /v1/decide/batch` may carry.", _Int(1, 10_000)),
    Setting("notifications.public_url", None,
            "The gateway's address as reviewers reach it, for the link in each notification "
            "(`{public_url}/v1/reviews/{id}`); null means `http://HOST:PORT` from `host` and `port`.",
            _Optional(_Url(("http", "https")))),
    Setting("notifications.webhooks", MappingProxyType({}),
            "Where review events are sent, per approver group (`role:NAME`, `user:ID`, or `*` for every event): "
            "a list of `{url, secret, format}`, `format` being `generic` (the event's JSON, the default) or "
            "`slack`. Each request is signed with its `secret` (see [Notifications](notifications.md)).",
            _Webhooks(), secret=True),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_BY_ENV = {s.env: s for s in SETTINGS}
_GROUPS = {s.name.rsplit(".", 1)[0] for s in SETTINGS if "." in s.name}


def _suggest(word: str, candidates: Iterable[str], *, case: bool = False) -> str:
    pool = list(candidates)
    if case:
        folded = {c.lower(): c for c in pool}
        if word.lower() in folded:
            return f"; did you mean {folded[word.lower()]!r}?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- the settings tree


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """What Lictor knows of one AI system: its risk tier (``high``, ``medium``, ``low``)."""

    risk: str


def _default(name: str) -> Any:
    return _BY_NAME[name].default


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The ``audit`` section: the log's name, keys, durability, batching, checkpoints and sampling."""

    origin: str = field(default_factory=partial(_default, "audit.origin"))
    key_file: Path = field(default_factory=partial(_default, "audit.key_file"))
    payload_key_file: Path = field(default_factory=partial(_default, "audit.payload_key_file"))
    durability: str = field(default_factory=partial(_default, "audit.durability"))
    max_batch: int = field(default_factory=partial(_default, "audit.max_batch"))
    max_delay: float = field(default_factory=partial(_default, "audit.max_delay"))
    checkpoint_interval: float = field(default_factory=partial(_default, "audit.checkpoint_interval"))
    seal_interval: float = field(default_factory=partial(_default, "audit.seal_interval"))
    sample_rates: Mapping[str, float] = field(default_factory=partial(_default, "audit.sample_rates"))
    unsafe_fail_open: bool = field(default_factory=partial(_default, "audit.unsafe_fail_open"))


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The ``http`` section: limits of the HTTP API."""

    max_body_bytes: int = field(default_factory=partial(_default, "http.max_body_bytes"))
    max_batch: int = field(default_factory=partial(_default, "http.max_batch"))


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


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """The ``notifications`` section: the gateway's public address and the webhooks of each approver group."""

    public_url: str | None = field(default_factory=partial(_default, "notifications.public_url"))
    webhooks: Mapping[str, tuple[WebhookSettings, ...]] = field(
        default_factory=partial(_default, "notifications.webhooks"))


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, validated. ``sources`` says where each one's value came from, by dotted name:
    ``default``, ``FILE:LINE:COLUMN`` or the environment variable's name."""

    database: str = field(default_factory=partial(_default, "database"))
    redis: str | None = field(default_factory=partial(_default, "redis"))
    policies: Path = field(default_factory=partial(_default, "policies"))
    default_verdict: Verdict = field(default_factory=partial(_default, "default_verdict"))
    host: str = field(default_factory=partial(_default, "host"))
    port: int = field(default_factory=partial(_default, "port"))
    default_risk_tier: str = field(default_factory=partial(_default, "default_risk_tier"))
    systems: Mapping[str, SystemSettings] = field(default_factory=partial(_default, "systems"))
    audit: AuditSettings = field(default_factory=AuditSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def risk_tiers(self) -> dict[str, str]:
        """The risk tier of each listed system, by system id."""
        return {system: entry.risk for system, entry in self.systems.items()}

    def is_set(self, name: str) -> bool:
        """Whether setting ``name`` was given (in the file or the environment) rather than defaulted."""
        return self.sources.get(name, "default") != "default"


# --------------------------------------------------------------------------- reading a file


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


def _build(values: Mapping[str, Any], sources: Mapping[str, str]) -> Settings:
    audit = {name.split(".", 1)[1]: value for name, value in values.items() if name.startswith("audit.")}
    http = {name.split(".", 1)[1]: value for name, value in values.items() if name.startswith("http.")}
    notifications = {name.split(".", 1)[1]: value for name, value in values.items()
                     if name.startswith("notifications.")}
    top = {name: value for name, value in values.items() if "." not in name}
    return Settings(**top, audit=AuditSettings(**audit), http=HttpSettings(**http),
                    notifications=NotificationSettings(**notifications),
                    sources=MappingProxyType(dict(sources)))
