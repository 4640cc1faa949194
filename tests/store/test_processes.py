"""Several processes appending to one SQLite file or one PostgreSQL schema at once never share an index."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lictor.audit.merkle import leaf_hash, root_from_leaf_hashes
from tests.store.conftest import Backend

ROOT = Path(__file__).parents[2]
PROCESSES, BATCHES = 3, 20

APPENDER = """
import json, random, sys, time
from lictor.store import open_store

url, tag, start, batches = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
store = open_store(url)  # the openers also race through the migrations
time.sleep(max(0.0, start - time.time()))
rng = random.Random(tag)
out = []
for b in range(batches):
    leaves = [f"{tag} {b} {i}".encode() for i in range(rng.randrange(1, 6))]
    out.append([store.append(leaves, [None] * len(leaves)).first_index, [x.decode() for x in leaves]])
    time.sleep(rng.random() * 0.004)  # as a batcher would between flushes; lets the others in
store.close()
print(json.dumps(out))
"""


def test_processes_appending_at_once_fill_the_indices_without_gaps(durable: Backend) -> None:
    start = time.time() + 2.0  # after every process has imported and opened the store
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, durable.url, f"p{n}",
                               str(start), str(BATCHES)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(PROCESSES)]
    landed: dict[int, bytes] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        for first, leaves in json.loads(out):
            for i, leaf in enumerate(leaves):
                assert first + i not in landed
                landed[first + i] = leaf.encode()
    assert sorted(landed) == list(range(len(landed)))
    ordered = [landed[i] for i in range(len(landed))]
    store = durable.open()
    state = store.state()
    assert state.size == len(ordered)
    assert state.root == root_from_leaf_hashes([leaf_hash(leaf) for leaf in ordered])
    assert store.leaves(0, state.size) == ordered
