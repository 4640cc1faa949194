"""Run ``lictor serve`` as a real process on a free port, wait until it is ready, and stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Served", "free_port", "serve", "wait_ready"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL and process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, *, deadline: float = 30.0) -> None:
    """Poll ``/readyz`` until it answers 200; fail when the process exits or ``deadline`` passes."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if time.monotonic() > give_up:
            raise AssertionError(f"{url} did not become ready within {deadline} s")
        time.sleep(0.1)


@contextlib.contextmanager
def serve(args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``lictor serve ARGS --port FREE`` in ``cwd`` with no ``LICTOR_*`` variables but ``env``;
    yields once ready; stops the process (and its workers) whatever happens. What it prints goes
    to ``cwd/serve-PORT.log``."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LICTOR_")}
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "lictor", "serve", *args, "--port", str(port)],
                                   cwd=cwd, env={**clean, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        yield Served(url, process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
