"""Child process of the crash test: append from several threads and print each acknowledgement."""

from __future__ import annotations

import sys
import threading
import time

from lictor.audit.log import AuditLog
from lictor.store import open_store

THREADS = 4
LIMIT_SECONDS = 20.0  # a guard: the parent kills this process long before


def main() -> None:
    url, tag = sys.argv[1], sys.argv[2]
    store = open_store(url)
    log = AuditLog(store=store, signer=None, max_delay=0.001)
    log.start()
    out = threading.Lock()
    deadline = time.monotonic() + LIMIT_SECONDS

    def work(thread: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            leaf = {"v": 1, "type": "decision", "ts": "2020-01-01T00:00:00.000000Z", "verdict": "ALLOW",
                    "run": tag, "thread": thread, "n": n}
            receipt = log.append(leaf)
            with out:
                sys.stdout.write(f"{receipt.index} {receipt.leaf_hash.hex()}\n")
                sys.stdout.flush()
            n += 1

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.close()


if __name__ == "__main__":
    main()
