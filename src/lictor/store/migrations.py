"""The audit store's schema as named, ordered migrations, written once per SQL dialect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lictor.audit.merkle import EMPTY_ROOT

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; ``name`` is recorded in ``schema_migrations`` once it is applied."""

    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


def _initial(blob: str, real: str, integer: str, root: str) -> tuple[str, ...]:
    return (
        # exactly one row; taking its lock is the single-sequencer guarantee
        f"CREATE TABLE tree_state (id SMALLINT PRIMARY KEY CHECK (id = 0), size {integer} NOT NULL,"
        f" root {blob} NOT NULL, frontier {blob} NOT NULL)",
        f"INSERT INTO tree_state (id, size, root, frontier) VALUES (0, 0, {root}, {_empty(blob)})",
        # indices come from tree_state, never from a sequence (sequences can leave gaps)
        f"CREATE TABLE leaf (idx {integer} PRIMARY KEY, data {blob} NOT NULL, hash {blob} NOT NULL)",
        f"CREATE TABLE checkpoint (size {integer} PRIMARY KEY, note TEXT NOT NULL,"
        f" published_at {real} NOT NULL)",
        # the mutable side store: not covered by the tree, erasable
        f"CREATE TABLE payload (leaf_index {integer} PRIMARY KEY, ciphertext {blob}, key_id TEXT NOT NULL,"
        f" erased_at {real})",
        f"CREATE TABLE subject_index (subject_ref {blob} NOT NULL, leaf_index {integer} NOT NULL,"
        f" position INTEGER NOT NULL, PRIMARY KEY (subject_ref, leaf_index))",
        "CREATE INDEX subject_index_leaf ON subject_index (leaf_index)",
    )


def _keys_erasures_retention(blob: str, real: str, integer: str, serial: str) -> tuple[str, ...]:
    return (
        # per-subject payload keys, wrapped by a key kept outside the database; destroyed on erasure
        f"CREATE TABLE subject_key (key_id TEXT PRIMARY KEY, subject_ref {blob} NOT NULL, wrapped {blob},"
        f" created_at {real} NOT NULL, destroyed_at {real})",
        "CREATE UNIQUE INDEX subject_key_current ON subject_key (subject_ref) WHERE destroyed_at IS NULL",
        # the erasure journal: what was destroyed, and the leaf that records it once appended
        f"CREATE TABLE erasure (id {serial} PRIMARY KEY, indices TEXT NOT NULL, erased_at {real} NOT NULL,"
        f" leaf_index {integer})",
        # retention: leaves below this index keep only their hashes
        f"ALTER TABLE tree_state ADD COLUMN pruned_below {integer} NOT NULL DEFAULT 0",
    )


def _empty(blob: str) -> str:
    return "X''" if blob == "BLOB" else "'\\x'::bytea"


#: Every migration, in the order they apply. Append new ones; never edit or reorder applied ones.
MIGRATIONS: Final = (
    Migration(
        name="0001_initial",
        sqlite=_initial("BLOB", "REAL", "INTEGER", f"X'{EMPTY_ROOT.hex()}'"),
        postgres=_initial("BYTEA", "DOUBLE PRECISION", "BIGINT", f"'\\x{EMPTY_ROOT.hex()}'::bytea"),
    ),
    Migration(
        name="0002_subject_keys_erasures_retention",
        sqlite=_keys_erasures_retention("BLOB", "REAL", "INTEGER", "INTEGER"),
        postgres=_keys_erasures_retention("BYTEA", "DOUBLE PRECISION", "BIGINT",
                                          "BIGINT GENERATED ALWAYS AS IDENTITY"),
    ),
)
