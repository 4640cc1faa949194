"""`lictor keys` and `lictor serve`: keys made on the command line, and a real server deciding over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from lictor.cli import main
from tests.http.conftest import LARGE, POLICY


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "credit.yaml").write_text(POLICY)
    return tmp_path


def test_keys_are_created_listed_and_revoked(workdir: Path) -> None:
    code, out, _ = run("keys", "create", "--scope", "reviewer", "--user", "bob", "--roles", "credit-officer,analyst")
    assert code == 0
    secret = out.strip()
    code, listed, _ = run("keys", "list")
    key_id = listed.split("\t")[0]
    assert secret not in listed and "reviewer\tbob\tcredit-officer,analyst\tlive" in listed
    assert run("keys", "revoke", key_id)[0] == 0
    assert "revoked" in run("keys", "list")[1]
    code, _, err = run("keys", "revoke", "nope")
    assert code == 2 and "no key" in err


def test_serve_refuses_to_run_open(workdir: Path) -> None:
    code, _, err = run("serve", "--port", "1")
    assert code == 2 and "lictor keys create" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_served_gateway_decides_over_http(workdir: Path) -> None:
    assert run("keys", "create", "--scope", "agent")[0] == 0
    agent = run("keys", "create", "--scope", "agent")[1].strip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    server = subprocess.Popen([sys.executable, "-m", "lictor", "serve", "--port", str(port)], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        response = httpx.post(f"http://127.0.0.1:{port}/v1/decide", json=LARGE, timeout=10,
                              headers={"Authorization": f"Bearer {agent}"})
        assert response.status_code == 200 and response.json()["verdict"] == "BLOCK"
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr:
            server.stderr.close()
