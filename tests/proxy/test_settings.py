"""The proxy's settings: upstreams checked with the place of each mistake, keys read from the
environment at start (a missing one stops the start), and the route only where the proxy is set."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import pytest
from fastapi.testclient import TestClient

from lictor.config import ProxySettings, Settings, UpstreamSettings, load_settings
from lictor.errors import ConfigError
from lictor.http import create_app
from lictor.runtime import Gateway


@pytest.mark.parametrize(("upstreams", "at", "message"), [
    ("{a: {base_url: ftp://x}}", "ftp", "proxy.upstreams.a.base_url: expected a URL starting with http:// or https://"),
    ("{a: {base_url: http://x, kind: anthropc}}", "anthropc", "proxy.upstreams.a.kind: must be one of openai, anthropic"),
    ("{a: {base_url: http://x, api_key_env: sk-123}}", "sk-", "proxy.upstreams.a.api_key_env: the name of an environment"),
    ("{a: {base_url: http://x, timout: 5}}", "timout",
     "proxy.upstreams.a.timout: unknown field 'timout'; did you mean 'timeout'?"),
    ("{a: {api_key_env: K}}", "{api", "proxy.upstreams.a: missing required field 'base_url'"),
])
def test_upstream_mistakes_name_the_field_and_the_place(tmp_path: Path, upstreams: str, at: str, message: str) -> None:
    line = f"  upstreams: {upstreams}"
    path = tmp_path / "lictor.yaml"
    path.write_text(f"proxy:\n{line}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, env={})
    assert str(raised.value).startswith(f"{path}:2:{line.index(at) + 1}: {message}")


def test_the_settings_file_configures_the_proxy(tmp_path: Path) -> None:
    path = tmp_path / "lictor.yaml"
    path.write_text("proxy:\n  system: assistant\n  on_blocked_tool_call: replace\n  upstreams:\n"
                    "    claude: {base_url: 'https://api.example.com/v1/', api_key_env: CLAUDE_KEY, kind: anthropic,"
                    " timeout: 30s, models: ['claude-*']}\n    local: {base_url: 'http://127.0.0.1:8000/v1'}\n")
    proxy = load_settings(path, env={"LICTOR_PROXY__STREAM_WINDOW": "0"}).proxy
    assert proxy.system == "assistant" and proxy.on_blocked_tool_call == "replace" and proxy.stream_window == 0
    assert list(proxy.upstreams) == ["claude", "local"]
    assert proxy.upstreams["claude"] == UpstreamSettings(base_url="https://api.example.com/v1",
                                                         api_key_env="CLAUDE_KEY", kind="anthropic", timeout=30.0,
                                                         models=("claude-*",))


def _settings(tmp_path: Path, proxy: ProxySettings) -> Settings:
    settings = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=tmp_path, proxy=proxy)
    return dataclasses.replace(settings, audit=dataclasses.replace(
        settings.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))


def test_an_unset_key_variable_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    settings = _settings(tmp_path, ProxySettings(system="assistant", upstreams=MappingProxyType({
        "main": UpstreamSettings(base_url="http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY_VARIABLE")})))
    gateway = Gateway.from_settings(settings)
    try:
        with pytest.raises(ConfigError) as raised:
            create_app(gateway, keys=gateway.keys, settings=settings)
        assert "proxy.upstreams.main.api_key_env" in str(raised.value)
        assert "NO_SUCH_KEY_VARIABLE" in str(raised.value)
    finally:
        gateway.close()


def test_without_proxy_settings_there_is_no_proxy_route(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ProxySettings())
    gateway = Gateway.from_settings(settings)
    try:
        with TestClient(create_app(gateway, keys=gateway.keys, settings=settings)) as client:
            assert client.post("/v1/chat/completions", json={}).status_code == 404
    finally:
        gateway.close()


def test_lictor_serve_refuses_to_start_without_an_upstreams_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lictor.cli import main

    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "lictor.yaml").write_text(
        "proxy:\n  system: assistant\n  upstreams:\n"
        "    main: {base_url: 'http://127.0.0.1:9/v1', api_key_env: NO_SUCH_KEY_VARIABLE}\n")
    result = CliRunner().invoke(main, ["serve", "--config", "lictor.yaml"])
    assert result.exit_code == 2
    assert "proxy.upstreams.main.api_key_env: the environment variable NO_SUCH_KEY_VARIABLE" in result.output
