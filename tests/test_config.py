"""Settings: defaults, the file, the environment and their precedence, every error with its place,
durations, placeholder secrets, the CLI's --config, and docs/configuration.md kept honest."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from lictor import Verdict, load_policies
from lictor.audit.signer import FileSigner
from lictor.cli import main
from lictor.config import (
    SETTINGS,
    AuditSettings,
    Setting,
    Settings,
    SystemSettings,
    format_duration,
    is_placeholder,
    load_settings,
    parse_duration,
)
from lictor.errors import ConfigError
from lictor.model import Action
from lictor.runtime import Gateway

from .test_docs import parse_blocks, parse_tables

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "configuration.md"
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in an empty directory with no LICTOR_* variables set."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LICTOR_")]:
        monkeypatch.delenv(name)
    return tmp_path


def write(text: str, name: str = "lictor.yaml") -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def problem(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(text) if text else None, env=env or {})
    assert len(caught.value.problems) == 1, str(caught.value)
    return caught.value.problems[0]


# --------------------------------------------------------------------------- defaults and the catalogue


_SETTING_NAMES = frozenset(s.name for s in SETTINGS)


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name == "sources":
            continue
        value = getattr(obj, f.name)
        # a section (audit, http, ...) is a dataclass; so is a structured setting's value (detectors)
        if dataclasses.is_dataclass(value) and not isinstance(value, type) and prefix + f.name not in _SETTING_NAMES:
            out.update(_leaves(value, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = value
    return out


def test_no_file_and_no_environment_gives_the_defaults() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert _leaves(settings) == {s.name: s.default for s in SETTINGS}
    assert not any(settings.is_set(s.name) for s in SETTINGS)
    assert settings.database == "sqlite:///lictor.db" and settings.port == 8700
    assert settings.default_verdict is Verdict.ALLOW
    assert settings.audit.max_delay == 0.002 and settings.audit.seal_interval == 900
    assert dict(settings.audit.sample_rates) == {"high": 1.0, "medium": 0.5, "low": 0.1}


def test_the_catalogue_and_the_settings_tree_name_the_same_settings() -> None:
    assert sorted(_leaves(Settings())) == sorted(s.name for s in SETTINGS)
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    for setting in SETTINGS:
        assert setting.help.endswith(".") and setting.type
        assert setting.parse(setting.default) == setting.default, setting.name  # defaults are valid values
        assert setting.parse_text(setting.shown_default) == setting.default, setting.name  # and read back


def test_env_names() -> None:
    names = {s.name: s.env for s in SETTINGS}
    assert names["database"] == "LICTOR_DATABASE"
    assert names["audit.durability"] == "LICTOR_AUDIT__DURABILITY"
    assert names["default_verdict"] == "LICTOR_DEFAULT_VERDICT"


# --------------------------------------------------------------------------- file, environment, precedence


def test_a_file_sets_values_and_says_where_each_came_from() -> None:
    path = write("database: postgresql://lictor@db/lictor\ndefault_verdict: BLOCK\naudit:\n"
                 "  max_delay: 5ms\n  sample_rates: {low: 0.05}\nsystems:\n  credit-scoring: {risk: medium}\n",
                 "custom.yaml")
    settings = load_settings(path, env={})
    assert settings.database == "postgresql://lictor@db/lictor"
    assert settings.default_verdict is Verdict.BLOCK
    assert settings.audit.max_delay == 0.005
    assert dict(settings.audit.sample_rates) == {"high": 1.0, "medium": 0.5, "low": 0.05}  # others kept
    assert settings.systems == {"credit-scoring": SystemSettings(risk="medium")}
    assert settings.risk_tiers == {"credit-scoring": "medium"}
    assert settings.sources["database"] == "custom.yaml:1:11"
    assert settings.sources["audit.max_delay"] == "custom.yaml:4:14"
    assert settings.sources["port"] == "default"


def test_lictor_yaml_in_the_working_directory_is_read_by_default() -> None:
    write("port: 9000\n")
    assert load_settings(env={}).port == 9000
    assert load_settings(write("", "empty.yaml"), env={}).port == 8700  # an empty file is all defaults


def test_an_explicit_file_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("nowhere.yaml", env={})
    assert str(caught.value) == "nowhere.yaml: no such settings file"


def test_the_environment_overrides_the_file_key_by_key() -> None:
    path = write("port: 9000\nhost: 10.0.0.1\naudit: {durability: sync}\n")
    env = {"LICTOR_PORT": "9100", "LICTOR_AUDIT__DURABILITY": "async", "LICTOR_AUDIT__UNSAFE_FAIL_OPEN": "yes",
           "LICTOR_SYSTEMS": "{support-bot: {risk: low}}", "LICTOR_AUDIT__SAMPLE_RATES": "{medium: 0.2}",
           "LICTOR_REDIS": "null", "LICTOR_AUDIT__SEAL_INTERVAL": "1h30m", "LICTOR_TEST_POSTGRES": "anything",
           "LICTOR_HOME": "/not/a/setting", "PATH": "/bin"}
    settings = load_settings(path, env=env)
    assert (settings.port, settings.host, settings.audit.durability) == (9100, "10.0.0.1", "async")
    assert settings.audit.unsafe_fail_open is True
    assert settings.risk_tiers == {"support-bot": "low"}
    assert settings.audit.sample_rates["medium"] == 0.2
    assert settings.redis is None and settings.audit.seal_interval == 5400
    assert settings.sources["port"] == "LICTOR_PORT" and settings.sources["host"] == "lictor.yaml:2:7"


def test_os_environ_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICTOR_AUDIT__MAX_BATCH", "64")
    assert load_settings().audit.max_batch == 64


def _key(path: str, origin: str) -> str:
    return FileSigner.create(Path(path), origin).vkey


def test_precedence_on_the_command_line_option_env_file_default(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {where: _key(f"{where}.key", f"example.com/{where}") for where in ("option", "env", "file")}
    default = _key("lictor-audit.key", "lictor.local/audit")

    def vkey(*args: str) -> str:
        result = CliRunner().invoke(main, ["audit", "key", *args])
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    assert vkey() == default
    write("audit:\n  key_file: file.key\n")
    assert vkey() == keys["file"]
    monkeypatch.setenv("LICTOR_AUDIT__KEY_FILE", "env.key")
    assert vkey() == keys["env"]
    assert vkey("--key-file", "option.key") == keys["option"]
    write("audit: {key_file: option.key}\n", "other.yaml")
    monkeypatch.delenv("LICTOR_AUDIT__KEY_FILE")
    assert vkey("--config", "other.yaml") == keys["option"]


# --------------------------------------------------------------------------- errors, with their place

FILE_ERRORS = [
    ("databse: sqlite:///x.db\n", "lictor.yaml:1:1", "databse", "unknown setting; did you mean 'database'?"),
    ("audit:\n  durabilty: sync\n", "lictor.yaml:2:3", "audit.durabilty", "did you mean 'audit.durability'?"),
    ("origin: a.example/log\n", "lictor.yaml:1:1", "origin", "did you mean 'audit.origin'?"),
    ("colour: blue\n", "lictor.yaml:1:1", "colour", "unknown setting"),
    ("port: eighty\n", "lictor.yaml:1:7", "port", "expected an integer, got str 'eighty'"),
    ("port: true\n", "lictor.yaml:1:7", "port", "expected an integer"),
    ("port: 70000\n", "lictor.yaml:1:7", "port", "must be between 1 and 65535, got 70000"),
    ("host: ''\n", "lictor.yaml:1:7", "host", "expected a non-empty host"),
    ("default_verdict: DENY\n", "lictor.yaml:1:18", "default_verdict",
     "must be one of ALLOW, LOG, CONSTRAIN, BLOCK, got 'DENY'"),
    ("default_verdict: block\n", "lictor.yaml:1:18", "default_verdict", "did you mean 'BLOCK'?"),
    ("default_risk_tier: critical\n", "lictor.yaml:1:20", "default_risk_tier", "must be one of high, medium, low"),
    ("database: mysql://db/x\n", "lictor.yaml:1:11", "database", "expected a URL starting with sqlite://"),
    ("redis: http://cache\n", "lictor.yaml:1:8", "redis", "expected a URL starting with redis://"),
    ("policies: [a, b]\n", "lictor.yaml:1:11", "policies", "expected a non-empty path, got list"),
    ("audit: 5\n", "lictor.yaml:1:8", "audit", "expected a mapping of audit settings"),
    ("audit:\n  durability: fast\n", "lictor.yaml:2:15", "audit.durability", "must be one of sync, async"),
    ("audit:\n  max_batch: 0\n", "lictor.yaml:2:14", "audit.max_batch", "must be at least 1, got 0"),
    ("audit:\n  max_delay: soon\n", "lictor.yaml:2:14", "audit.max_delay", "expected a duration such as 2ms"),
    ("audit:\n  max_delay: -1s\n", "lictor.yaml:2:14", "audit.max_delay", "expected a duration"),
    ("audit:\n  checkpoint_interval: 0\n", "lictor.yaml:2:24", "audit.checkpoint_interval",
     "must be longer than zero"),
    ("audit:\n  seal_interval: [15m]\n", "lictor.yaml:2:18", "audit.seal_interval", "expected a duration"),
    ("audit:\n  unsafe_fail_open: maybe\n", "lictor.yaml:2:21", "audit.unsafe_fail_open",
     "expected true or false, got str 'maybe'"),
    ("audit:\n  origin: my log\n", "lictor.yaml:2:11", "audit.origin", "may not contain spaces"),
    ("audit:\n  origin: a+b\n", "lictor.yaml:2:11", "audit.origin", "may not contain '+'"),
    ("audit:\n  origin: https://example.com/log\n", "lictor.yaml:2:11", "audit.origin", "without its scheme"),
    ("audit:\n  sample_rates:\n    high: 1.0\n    low: 1.5\n", "lictor.yaml:4:10", "audit.sample_rates.low",
     "a sampling rate is a number from 0 to 1, got float 1.5"),
    ("audit:\n  sample_rates:\n    high: 0.5\n", "lictor.yaml:3:11", "audit.sample_rates.high",
     "must be 1.0: every decision about a high-risk system keeps its full record"),
    ("audit:\n  sample_rates: {hgh: 1.0}\n", "lictor.yaml:2:18", "audit.sample_rates.hgh",
     "unknown risk tier 'hgh'; the tiers are high, medium, low; did you mean 'high'?"),
    ("audit:\n  sample_rates: 0.5\n", "lictor.yaml:2:17", "audit.sample_rates", "expected a mapping, got float"),
    ("systems:\n  credit:\n    risk: extreme\n", "lictor.yaml:3:11", "systems.credit.risk",
     "must be one of high, medium, low, got 'extreme'"),
    ("systems:\n  credit: {rsk: high}\n", "lictor.yaml:2:12", "systems.credit.rsk",
     "unknown field 'rsk'; did you mean 'risk'?"),
    ("systems:\n  credit: {}\n", "lictor.yaml:2:11", "systems.credit", "missing required field 'risk'"),
    ("systems:\n  credit: high\n", "lictor.yaml:2:11", "systems.credit", "expected a mapping such as {risk: high}"),
    ("systems: [credit]\n", "lictor.yaml:1:10", "systems", "expected a mapping, got list"),
    ("port: 1\nport: 2\n", "lictor.yaml:2:1", "port", "given twice"),
    ("1: x\n", "lictor.yaml:1:1", "", "a setting name must be a string, got int 1"),
]


@pytest.mark.parametrize(("text", "where", "path", "message"), FILE_ERRORS, ids=[e[2] or e[3] for e in FILE_ERRORS])
def test_file_errors_name_the_setting_and_its_place(text: str, where: str, path: str, message: str) -> None:
    error = problem(text)
    assert (error.where, error.path) == (where, path), str(error)
    assert message in error.message
    assert str(error).startswith(f"{where}: {path}: " if path else f"{where}: ")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("port: [1\n", "lictor.yaml:2:1", "invalid YAML"),
        ("a: b\n---\nc: d\n", "lictor.yaml:2:1", "invalid YAML: but found another document (expected a single document"),
        ("- database\n", "lictor.yaml:1:1", "expected a mapping of settings, got a list"),
        ("just text\n", "lictor.yaml:1:1", "expected a mapping of settings, got a single value"),
        ("port: !!python/name:os.system 1\n", "lictor.yaml:1:7", "invalid YAML"),
    ],
)
def test_a_file_that_is_not_a_mapping_of_settings(text: str, where: str, message: str) -> None:
    error = problem(text)
    assert error.where == where, str(error)
    assert message in error.message


ENV_ERRORS = [
    ({"LICTOR_PORT": "eighty"}, "LICTOR_PORT", "port", "expected an integer, got 'eighty'"),
    ({"LICTOR_AUDIT__UNSAFE_FAIL_OPEN": "maybe"}, "LICTOR_AUDIT__UNSAFE_FAIL_OPEN", "audit.unsafe_fail_open",
     "expected true or false"),
    ({"LICTOR_AUDIT__MAX_DELAY": "2 ms"}, "LICTOR_AUDIT__MAX_DELAY", "audit.max_delay", "expected a duration"),
    ({"LICTOR_SYSTEMS": "{a: {risk: x}}"}, "LICTOR_SYSTEMS", "systems.a.risk", "must be one of high"),
    ({"LICTOR_SYSTEMS": "{a: [}"}, "LICTOR_SYSTEMS", "systems", "expected a YAML mapping"),
    ({"LICTOR_AUDIT__SAMPLE_RATES": "{high: 0}"}, "LICTOR_AUDIT__SAMPLE_RATES", "audit.sample_rates.high",
     "must be 1.0"),
    ({"LICTOR_DEFAULT_VERDICT": "deny"}, "LICTOR_DEFAULT_VERDICT", "default_verdict", "must be one of ALLOW"),
    ({"LICTOR_AUDIT_DURABILITY": "async"}, "LICTOR_AUDIT_DURABILITY", "",
     "not a setting; did you mean LICTOR_AUDIT__DURABILITY?"),
    ({"LICTOR_AUDIT__DURABILTY": "async"}, "LICTOR_AUDIT__DURABILTY", "",
     "not a setting; did you mean LICTOR_AUDIT__DURABILITY?"),
    ({"LICTOR_AUDIT__NOTHING_LIKE_IT": "1"}, "LICTOR_AUDIT__NOTHING_LIKE_IT", "", "not a setting"),
]


@pytest.mark.parametrize(("env", "where", "path", "message"), ENV_ERRORS, ids=[e[1] for e in ENV_ERRORS])
def test_environment_errors_name_the_variable(env: dict[str, str], where: str, path: str, message: str) -> None:
    error = problem("", env)
    assert (error.where, error.path) == (where, path), str(error)
    assert message in error.message


def test_every_problem_is_reported_at_once_in_order() -> None:
    write("port: 0\naudit:\n  durabilty: x\n  max_batch: -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"LICTOR_HOST": "a b"})
    assert [(p.where, p.path) for p in caught.value.problems] == [
        ("lictor.yaml:1:7", "port"), ("lictor.yaml:3:3", "audit.durabilty"),
        ("lictor.yaml:4:14", "audit.max_batch"), ("LICTOR_HOST", "host")]
    assert str(caught.value).splitlines()[0] == "4 problems in the settings:"
    assert str(caught.value).splitlines()[1:] == [str(p) for p in caught.value.problems]


def test_the_cli_prints_each_problem_and_exits_2() -> None:
    write("audit:\n  durability: fast\nprt: 1\n")
    result = CliRunner().invoke(main, ["audit", "checkpoint"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: lictor.yaml:2:15: audit.durability: must be one of sync, async, got 'fast'",
        "error: lictor.yaml:3:1: prt: unknown setting; did you mean 'port'?"]
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2ms", 0.002), ("10s", 10), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("1.5s", 1.5), ("0s", 0),
     ("2m500ms", 120.5), (10, 10), (0.25, 0.25), ("30", 30), (" 5s ", 5)],
)
def test_durations(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "s", "5", "10 s", "10sec", "1d", "-1s", "1h-5m", "5ss", "nan", "inf",
                                   True, -1, float("inf")])
def test_not_durations(value: Any) -> None:
    if value == "5":
        assert parse_duration(value) == 5  # a bare number is seconds
        return
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@given(st.integers(min_value=0, max_value=10**10))
def test_duration_text_round_trips_to_the_millisecond(ms: int) -> None:
    text = format_duration(ms / 1000)
    assert parse_duration(text) == ms / 1000
    assert format_duration(parse_duration(text)) == text


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["h", "m", "s", "ms"])), min_size=1, max_size=4))
def test_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    size = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == sum(n * size[unit] for n, unit in parts) / 1000


# --------------------------------------------------------------------------- placeholder secrets

TOKEN = Setting("upstream.api_key", None, "An API key, for this test.", secret=True)


@pytest.mark.parametrize("value", ["changeme", "CHANGE_ME", "change-me", "placeholder", "secret", "password",
                                   "xxx", "XXXXXXXX", "***", "...", "<api-key>", "${API_KEY}", "{{ token }}",
                                   "your-api-key", "your_token_here", "api-key-here", "TODO"])
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)
    with pytest.raises(ConfigError, match="looks like a placeholder"):
        TOKEN.parse(value, where="lictor.yaml:3:12")
    assert TOKEN.parse(value, demo=True) == value


def test_an_empty_secret_is_refused_even_in_demo_mode() -> None:
    assert is_placeholder("") and is_placeholder("   ")
    for demo in (False, True):
        with pytest.raises(ConfigError, match="expected a non-empty string"):
            TOKEN.parse(" ", demo=demo)


@pytest.mark.parametrize("value", ["sk-3f9a8b7c6d5e4f3a2b1c", "correct horse battery staple", "s3cr3t!Xq9"])
def test_real_looking_secrets_are_accepted(value: str) -> None:
    assert not is_placeholder(value)
    assert TOKEN.parse(value) == value


def test_a_placeholder_secret_error_names_the_setting_and_place() -> None:
    with pytest.raises(ConfigError) as caught:
        TOKEN.parse_text("changeme", where="LICTOR_UPSTREAM__API_KEY")
    assert str(caught.value).startswith("LICTOR_UPSTREAM__API_KEY: upstream.api_key: the value looks like a "
                                        "placeholder ('changeme')")


def test_a_placeholder_password_in_a_url_is_refused_outside_demo_mode() -> None:
    path = write("database: postgresql://lictor:changeme@db/lictor\n")
    error = problem(path.read_text())
    assert (error.where, error.path) == ("lictor.yaml:1:11", "database")
    assert "password in this URL looks like a placeholder" in error.message
    assert load_settings(path, env={}, demo=True).database == "postgresql://lictor:changeme@db/lictor"
    path.unlink()
    env = {"LICTOR_REDIS": "redis://:<password>@cache:6379/0"}
    with pytest.raises(ConfigError, match="LICTOR_REDIS: redis: the password"):
        load_settings(env=env)
    real = {"LICTOR_DATABASE": "postgresql://lictor:Vb7-q2Lk9x@db/lictor"}
    assert load_settings(env=real).database == real["LICTOR_DATABASE"]


# --------------------------------------------------------------------------- the gateway and the CLI


def test_the_gateway_takes_its_settings(tmp_path: Path) -> None:
    settings = Settings(database="memory://", default_risk_tier="medium",
                        systems={"credit-scoring": SystemSettings("low")},
                        audit=AuditSettings(origin="example.com/log", key_file=tmp_path / "k.key", max_batch=8))
    gateway = Gateway.from_settings(settings, policies=load_policies(EXAMPLES / "policies"))
    try:
        assert gateway.risk_tier("credit-scoring") == "low" and gateway.risk_tier("other") == "medium"
        decision = gateway.decide(Action.from_dict(json.loads((EXAMPLES / "actions" / "credit-large.json").read_text())))
        assert decision.verdict is Verdict.BLOCK and decision.audit is not None
        assert gateway.checkpoint() is not None
        assert FileSigner(tmp_path / "k.key").origin == "example.com/log"
    finally:
        gateway.close()


def test_eval_takes_policies_database_tiers_and_default_verdict_from_the_settings() -> None:
    Path("policies").symlink_to(EXAMPLES / "policies", target_is_directory=True)
    write("database: sqlite:///audit.db\ndefault_verdict: BLOCK\nsystems:\n  credit-scoring: {risk: low}\n"
          "audit: {origin: example.com/credit}\n")
    action = {"system": "credit-scoring", "kind": "tool_call", "name": "unknown_tool"}
    result = CliRunner().invoke(main, ["eval"], input=json.dumps(action))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["verdict"] == "BLOCK" and decision["audit"]["index"] == 1  # default-deny, recorded
    db = sqlite3.connect("audit.db")
    leaves = [json.loads(data) for (data,) in db.execute("SELECT data FROM leaf ORDER BY idx")]
    db.close()
    assert leaves[0]["type"] == "config" and leaves[0]["risk_tiers"] == {"credit-scoring": "low"}
    assert leaves[0]["vkey"].startswith("example.com/credit+")
    assert leaves[1]["risk_tier"] == "low"
    # the command line still wins
    result = CliRunner().invoke(main, ["eval", "--default-verdict", "ALLOW", "--db", "sqlite:///other.db"],
                                input=json.dumps(action))
    assert json.loads(result.stdout)["verdict"] == "ALLOW" and Path("other.db").exists()


def test_eval_without_a_configured_database_records_nothing() -> None:
    Path("policies").symlink_to(EXAMPLES / "policies", target_is_directory=True)
    result = CliRunner().invoke(main, ["eval", str(EXAMPLES / "actions" / "credit-small.json")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["audit"] is None
    assert not Path("lictor.db").exists()


def test_eval_with_no_policies_anywhere_says_how_to_give_them() -> None:
    result = CliRunner().invoke(main, ["eval"], input="{}")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no policies at ./policies: give --policies PATH")
    write("policies: ./rules\n")
    result = CliRunner().invoke(main, ["eval"], input="{}")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: lictor.yaml:1:11: policies: rules does not exist"


def test_audit_commands_refuse_a_key_for_another_origin() -> None:
    _key("lictor-audit.key", "lictor.local/audit")
    write("audit: {origin: example.com/prod}\n")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 2
    assert "the key is for the log 'lictor.local/audit', but audit.origin (lictor.yaml:1:17) is " \
           "'example.com/prod'" in result.stderr


# --------------------------------------------------------------------------- docs/configuration.md


def settings_table() -> list[list[str]]:
    """The rows docs/configuration.md must show, generated from the catalogue."""
    return [[f"`{s.name}`", f"`{s.env}`", s.type, f"`{s.shown_default}`", s.help] for s in SETTINGS]


def test_every_setting_is_documented_and_nothing_else() -> None:
    tables = [(header, rows) for _section, header, rows in parse_tables(DOC) if header[:2] == ["setting", "environment variable"]]
    assert len(tables) == 1, "docs/configuration.md needs one table of settings"
    header, rows = tables[0]
    assert header == ["setting", "environment variable", "type", "default", "meaning"]
    documented = [row[0] for row in rows]
    expected = settings_table()
    missing = [row[0] for row in expected if row[0] not in documented]
    unknown = [name for name in documented if name not in [row[0] for row in expected]]
    assert not missing and not unknown, f"undocumented: {missing}; not settings: {unknown}"
    generated = "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in expected)
    assert rows == expected, f"regenerate the table in {DOC.name}:\n{generated}"


def test_the_complete_example_loads_and_sets_every_setting() -> None:
    blocks = [b for b in parse_blocks(DOC) if b.lang == "yaml" and b.file_name == "lictor.yaml"]
    assert len(blocks) == 1
    write(blocks[0].text)
    settings = load_settings(env={})
    assert [s.name for s in SETTINGS if not settings.is_set(s.name)] == []
    assert settings.default_verdict is Verdict.BLOCK
    assert settings.risk_tiers == {"credit-scoring": "high", "support-bot": "medium", "research-agent": "low"}
    assert settings.audit.max_delay == 0.005


def test_every_setting_has_a_distinct_help_and_the_docs_link_the_page() -> None:
    assert len({s.help for s in SETTINGS}) == len(SETTINGS)
    assert "(configuration.md)" in (ROOT / "docs" / "index.md").read_text()
    assert "(configuration.md)" in (ROOT / "docs" / "cli.md").read_text()
