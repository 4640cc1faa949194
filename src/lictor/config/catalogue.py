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
    McpServerSettings,
    SystemSettings,
    UpstreamSettings,
    WebhookSettings,
    _Bool,
    _Choice,
    _Detectors,
    _Duration,
    _host_rule,
    _Int,
    _Invalid,
    _Kind,
    _McpServers,
    _Optional,
    _origin_rule,
    _Path,
    _Rates,
    _Systems,
    _Text,
    _Upstreams,
    _Url,
    _Webhooks,
    is_placeholder,
)
from lictor.detect import DetectionSettings
from lictor.errors import ConfigError
from lictor.model import Verdict

__all__ = ["SETTINGS", "AuditSettings", "HttpSettings", "McpSettings", "NotificationSettings", "ProxySettings",
           "ReviewSettings", "Setting", "Settings"]

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
    Setting("detectors", DetectionSettings(),
            "Which content detectors run on every action and what they report, in general and per system: "
            "`enabled` (detector names), `types` and `exclude_types` (type globs), `min_score`, `options` "
            "(per detector), `custom` (patterns and keyword lists reported as `custom.NAME`), `allow` "
            "(known-benign `values`, `domains`, `patterns`), `decode_budget`, and `systems: {ID: {...}}`, "
            "whose keys replace the general ones for that system. `{}` runs every registered detector.",
            _Detectors()),
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
            "The longest a group commit waits for more records to join it: a record someone waits for waits "
            "only while records come at least twice per `max_delay` on average, one queued under `async` "
            "durability waits it whole; `0s` writes at once.",
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
    Setting("reviews.poll_interval", 0.5,
            "How often a request waiting on a review (`GET /v1/reviews/{id}?wait=`, the SDK's "
            "`wait_for_approval`) re-reads it from the store. With `redis`, or a PostgreSQL `database`, every "
            "gateway process is told of each change at once and waiters wake then; the poll is the safety net "
            "for a lost signal. With neither (one SQLite process) changes made by the command line are seen "
            "at the next poll.",
            _Duration()),
    Setting("reviews.sweep_interval", 10.0,
            "How often `lictor serve` escalates the reviews whose `escalate_after` has passed undecided and "
            "records the expiry of those whose `ttl` has passed, even when nobody looks at them.",
            _Duration()),
    Setting("notifications.public_url", None,
            "The gateway's address as reviewers reach it, for the link in each notification "
            "(`{public_url}/v1/reviews/{id}`); null means `http://HOST:PORT` from `host` and `port`.",
            _Optional(_Url(("http", "https")))),
    Setting("notifications.webhooks", MappingProxyType({}),
            "Where review events are sent, per approver group (`role:NAME`, `user:ID`, or `*` for every event): "
            "a list of `{url, secret, format}`, `format` being `generic` (the event's JSON, the default) or "
            "`slack`. Each request is signed with its `secret` (see [Notifications](notifications.md)).",
            _Webhooks(), secret=True),
    Setting("mcp.servers", MappingProxyType({}),
            "Streamable-HTTP MCP servers that `lictor serve` fronts at `/mcp/NAME`, by name: "
            "`{NAME: {url, system, token_env}}`, `system` being the AI system their calls are attributed to "
            "and `token_env` (optional) the environment variable holding the bearer token Lictor presents "
            "to the server (see [MCP](mcp.md)).",
            _McpServers()),
    Setting("mcp.pins_file", Path("lictor-mcp-pins.json"),
            "Where the MCP proxies pin the SHA-256 of each tool's description and input schema as first "
            "seen, per server, to flag a description that changes later.",
            _Path()),
    Setting("proxy.system", None,
            "The AI system id the LLM proxy's traffic is attributed to (the `system` of its actions); null "
            "turns the proxy off. With it set, `lictor serve` answers `POST /v1/chat/completions` "
            "(see [LLM proxy](proxy.md)).",
            _Optional(_Text("system id"))),
    Setting("proxy.upstreams", MappingProxyType({}),
            "The model providers the proxy forwards to, in order: `{NAME: {base_url, api_key_env, kind, timeout, "
            "models}}`. `kind` is `openai` (the default; any OpenAI-compatible server) or `anthropic`; "
            "`api_key_env` names the environment variable holding the provider's key (the gateway reads it; "
            "clients never send it); `timeout` defaults to `60s`; a model goes to the first upstream whose "
            "`models` globs match it, an upstream without `models` serving any model.",
            _Upstreams()),
    Setting("proxy.on_blocked_tool_call", "remove",
            "What the proxy does with a response in which a tool call is blocked: `remove` drops that call "
            "and says why in the message text; `replace` replaces the whole response with the explanation.",
            _Choice(("remove", "replace"))),
    Setting("proxy.stream_window", 1024,
            "When streaming, how many characters of the model's text are decided at a time before they are "
            "released; `0` buffers the whole response and decides it once.", _Int(0)),
    Setting("proxy.stream_lookbehind", 256,
            "When streaming, how many decided characters are held back and decided again with the next "
            "window, so that a finding spanning two windows is caught before any of it is released.", _Int(0)),
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
class ReviewSettings:
    """The ``reviews`` section: how waiters poll and how often due reviews are swept."""

    poll_interval: float = field(default_factory=partial(_default, "reviews.poll_interval"))
    sweep_interval: float = field(default_factory=partial(_default, "reviews.sweep_interval"))


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """The ``notifications`` section: the gateway's public address and the webhooks of each approver group."""

    public_url: str | None = field(default_factory=partial(_default, "notifications.public_url"))
    webhooks: Mapping[str, tuple[WebhookSettings, ...]] = field(
        default_factory=partial(_default, "notifications.webhooks"))


@dataclass(frozen=True, slots=True)
class McpSettings:
    """The ``mcp`` section: the fronted streamable-HTTP MCP servers and the description pins file."""

    servers: Mapping[str, McpServerSettings] = field(default_factory=partial(_default, "mcp.servers"))
    pins_file: Path = field(default_factory=partial(_default, "mcp.pins_file"))


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The ``proxy`` section: the LLM proxy's system id, upstreams, blocked tool calls and streaming."""

    system: str | None = field(default_factory=partial(_default, "proxy.system"))
    upstreams: Mapping[str, UpstreamSettings] = field(default_factory=partial(_default, "proxy.upstreams"))
    on_blocked_tool_call: str = field(default_factory=partial(_default, "proxy.on_blocked_tool_call"))
    stream_window: int = field(default_factory=partial(_default, "proxy.stream_window"))
    stream_lookbehind: int = field(default_factory=partial(_default, "proxy.stream_lookbehind"))

    def upstream_keys(self, environ: Mapping[str, str]) -> dict[str, str | None]:
        """Each upstream's key, read from the environment variable it names (None when it names none).
        Raises ConfigError when the proxy is on without upstreams, or a named variable is unset or empty."""
        if self.system is not None and not self.upstreams:
            raise ConfigError("the proxy needs at least one upstream", path="proxy.upstreams")
        keys: dict[str, str | None] = {}
        for name, upstream in self.upstreams.items():
            key = None
            if upstream.api_key_env is not None:
                key = environ.get(upstream.api_key_env, "").strip()
                if not key:
                    raise ConfigError(f"the environment variable {upstream.api_key_env} (the upstream's key) "
                                      "is not set", path=f"proxy.upstreams.{name}.api_key_env")
            keys[name] = key
        return keys


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
    detectors: DetectionSettings = field(default_factory=partial(_default, "detectors"))
    audit: AuditSettings = field(default_factory=AuditSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    reviews: ReviewSettings = field(default_factory=ReviewSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def risk_tiers(self) -> dict[str, str]:
        """The risk tier of each listed system, by system id."""
        return {system: entry.risk for system, entry in self.systems.items()}

    def is_set(self, name: str) -> bool:
        """Whether setting ``name`` was given (in the file or the environment) rather than defaulted."""
        return self.sources.get(name, "default") != "default"


# --------------------------------------------------------------------------- reading a file


