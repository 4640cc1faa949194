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


def _index_and_keys(blob: str, real: str, integer: str) -> tuple[str, ...]:
    return (
        # the decision index, filled from each decision leaf in the transaction that appends it
        f"CREATE TABLE decision (decision_id TEXT PRIMARY KEY, leaf_index {integer} NOT NULL UNIQUE,"
        f" ts TEXT NOT NULL, system TEXT NOT NULL, verdict TEXT NOT NULL, policies TEXT NOT NULL)",
        "CREATE INDEX decision_system ON decision (system, leaf_index)",
        "CREATE INDEX decision_ts ON decision (ts)",
        f"CREATE TABLE decision_policy (policy TEXT NOT NULL, leaf_index {integer} NOT NULL,"
        f" PRIMARY KEY (policy, leaf_index))",
        # which decision answered a client's request id (idempotency), per caller
        "CREATE TABLE decision_request (scope TEXT NOT NULL, request_id TEXT NOT NULL,"
        " decision_id TEXT NOT NULL, PRIMARY KEY (scope, request_id))",
        # API keys: only the SHA-256 of each key is kept
        f"CREATE TABLE api_key (id TEXT PRIMARY KEY, key_hash {blob} NOT NULL UNIQUE, scope TEXT NOT NULL,"
        f" user_id TEXT, roles TEXT NOT NULL, created_at {real} NOT NULL, revoked_at {real})",
    )


#: Index the decision leaves appended before the index existed (pruned leaves have no bytes left).
_BACKFILL_SQLITE = (
    "INSERT OR IGNORE INTO decision (decision_id, leaf_index, ts, system, verdict, policies)"
    " SELECT json_extract(j, '$.decision_id'), idx, json_extract(j, '$.ts'), json_extract(j, '$.system'),"
    " json_extract(j, '$.verdict'), (SELECT json_group_array(DISTINCT json_extract(r.value, '$.policy'))"
    " FROM json_each(j, '$.reasons') r WHERE json_type(r.value, '$.policy') = 'text')"
    " FROM (SELECT idx, CAST(data AS TEXT) AS j FROM leaf WHERE length(data) > 0) WHERE json_valid(j)"
    " AND json_extract(j, '$.type') = 'decision' AND json_type(j, '$.decision_id') = 'text'"
    " AND json_type(j, '$.ts') = 'text' AND json_type(j, '$.system') = 'text'"
    " AND json_type(j, '$.verdict') = 'text'",
    "INSERT OR IGNORE INTO decision_policy (policy, leaf_index) SELECT DISTINCT p.value, d.leaf_index"
    " FROM decision d, json_each(d.policies) p",
)
_BACKFILL_POSTGRES = (
    "INSERT INTO decision (decision_id, leaf_index, ts, system, verdict, policies)"
    " SELECT j->>'decision_id', idx, j->>'ts', j->>'system', j->>'verdict',"
    " (SELECT coalesce(jsonb_agg(DISTINCT r->>'policy'), '[]'::jsonb)::text"
    "  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j->'reasons') = 'array' THEN j->'reasons'"
    "  ELSE '[]'::jsonb END) r WHERE jsonb_typeof(r->'policy') = 'string')"
    " FROM (SELECT idx, convert_from(data, 'UTF8')::jsonb AS j FROM leaf"
    "  WHERE length(data) > 0 AND position('\\x2274797065223a226465636973696f6e22'::bytea IN data) > 0) s"
    " WHERE j->>'type' = 'decision' AND jsonb_typeof(j->'decision_id') = 'string'"
    " AND jsonb_typeof(j->'ts') = 'string' AND jsonb_typeof(j->'system') = 'string'"
    " AND jsonb_typeof(j->'verdict') = 'string' ON CONFLICT DO NOTHING",
    "INSERT INTO decision_policy (policy, leaf_index) SELECT DISTINCT p, d.leaf_index"
    " FROM decision d, jsonb_array_elements_text(d.policies::jsonb) p ON CONFLICT DO NOTHING",
)


def _reviews(real: str) -> tuple[str, ...]:
    return (
        # review requests: the document, plus the columns searched and the one pending per action
        f"CREATE TABLE review (id TEXT PRIMARY KEY, action_hash TEXT NOT NULL, agent_id TEXT NOT NULL,"
        f" system TEXT NOT NULL, status TEXT NOT NULL, created_at {real} NOT NULL, expires_at {real} NOT NULL,"
        f" doc TEXT NOT NULL)",
        "CREATE INDEX review_action ON review (action_hash, agent_id, status)",
        "CREATE INDEX review_created ON review (created_at)",
    )


def _review_escalation(real: str) -> tuple[str, ...]:
    return (
        # when an undecided review escalates (NULL when it never does, or did already): the sweep's index
        f"ALTER TABLE review ADD COLUMN escalate_at {real}",
        "CREATE INDEX review_escalate ON review (escalate_at)",
        "CREATE INDEX review_expiry ON review (status, expires_at)",
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
    Migration(
        name="0003_decision_index_and_api_keys",
        sqlite=(*_index_and_keys("BLOB", "REAL", "INTEGER"), *_BACKFILL_SQLITE),
        postgres=(*_index_and_keys("BYTEA", "DOUBLE PRECISION", "BIGINT"), *_BACKFILL_POSTGRES),
    ),
    Migration(name="0004_reviews", sqlite=_reviews("REAL"), postgres=_reviews("DOUBLE PRECISION")),
    Migration(name="0005_review_escalation", sqlite=_review_escalation("REAL"),
              postgres=_review_escalation("DOUBLE PRECISION")),
)
