"""Killing a process mid-append loses no acknowledged leaf: every receipt printed is in the store."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from lictor.audit.log import AuditLog
from lictor.audit.merkle import leaf_hash
from lictor.audit.signer import FileSigner
from lictor.audit.verify import verify_log
from lictor.store import open_store

ROOT = Path(__file__).parents[2]
CHILD = Path(__file__).with_name("crash_appender.py")
ORIGIN = "lictor.example/audit/crash-test"
KILL_AFTER = (37, 400, 5, 1500, 120)  # acknowledgements seen before each SIGKILL
WAIT = 15.0  # the longest any single read or wait may take


def pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def one_round(url: str, tag: str, kill_after: int) -> dict[int, bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    child = subprocess.Popen([sys.executable, str(CHILD), url, tag], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert child.stdout is not None and child.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=pump, args=(child.stdout, lines), daemon=True)
    reader.start()
    acked: dict[int, bytes] = {}
    try:
        while len(acked) < kill_after:
            line = lines.get(timeout=WAIT)
            assert line is not None, f"the child ended early: {child.stderr.read()}"
            index, hash_hex = line.split()
            acked[int(index)] = bytes.fromhex(hash_hex)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(WAIT)
    assert child.returncode == -signal.SIGKILL
    while (line := lines.get(timeout=WAIT)) is not None:  # printed before the kill: acknowledged too
        if line.endswith("\n"):
            index, hash_hex = line.split()
            acked[int(index)] = bytes.fromhex(hash_hex)
    reader.join(WAIT)
    child.stdout.close()
    child.stderr.close()
    return acked


def test_acknowledged_leaves_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    acked: dict[int, bytes] = {}
    for round_, kill_after in enumerate(KILL_AFTER):
        landed = one_round(url, f"round{round_}", kill_after)
        assert len(landed) >= kill_after
        assert not set(landed) & set(acked), "an index was handed out twice"
        acked.update(landed)

    store = open_store(url)
    try:
        size = store.state().size
        assert max(acked) < size
        stored = store.leaves(0, size)  # indices are gapless: every index below size is readable
        assert len(stored) == size
        for index, hash_ in acked.items():
            assert leaf_hash(stored[index]) == hash_, f"leaf {index} is not what was acknowledged"

        signer = FileSigner.create(tmp_path / "checkpoint.key", ORIGIN)
        with AuditLog(store=store, signer=signer) as log:
            assert log.checkpoint() is not None
        size = store.state().size
        report = verify_log(store.leaves(0, size), [cp.note for cp in store.checkpoints()],
                            [signer.verifier], origin=ORIGIN)
        assert report.leaves == report.signed_size == size
    finally:
        store.close()
