"""The settings catalogue (every setting as data: name, kind, default, help, environment variable)
and the frozen tree of settings it fills."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lictor.config.kinds import (
    _TIERS,
    ENV_PREFIX,
    SystemSettings,
    WebhookSettings,
    _Bool,
    _Choice,
    _Duration,
    _host_rule,
    _Int,
    _Invalid,
    _Kind,
    _Optional,
    _origin_rule,
    _Path,
    _Rates,
    _Systems,
    _Text,
    _Url,
    _Webhooks,
    is_placeholder,
)
from lictor.errors import ConfigError
from lictor.model import Verdict

__all__ = ["SETTINGS", "AuditSettings", "HttpSettings", "NotificationSettings", "Setting", "Settings"]

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
    Setting("http.key_cache_ttl", 5.0,
            "How long a gateway process remembers an API key it authenticated, instead of reading the "
            "store on every request; `0s` reads it every time. A key revoked through this process's API "
            "is refused at once; one revoked elsewhere (`lictor keys revoke`, another worker) may still "
            "be accepted here for up to this long.", _Duration(zero=True)),
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



# --------------------------------------------------------------------------- the settings tree


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
    key_cache_ttl: float = field(default_factory=partial(_default, "http.key_cache_ttl"))


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


