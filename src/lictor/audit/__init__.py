"""The tamper-evident audit log: RFC 8785 leaves, an RFC 6962 Merkle tree, C2SP signed checkpoints.

Built so far: canonical JSON, the Merkle tree with inclusion and consistency proofs, typed leaves
with salted commitments, signed notes and checkpoints, and a file-based checkpoint signer. The
store, the write path and the verifier CLI come next.
"""

from lictor.audit.canonical import canonical_json
from lictor.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from lictor.audit.leaf import (
    LEAF_TYPES,
    LEAF_VERSION,
    commit,
    decision_leaf,
    decode_leaf,
    encode_leaf,
)
from lictor.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    Tree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from lictor.audit.note import Signer, Verifier, generate_key, open_note, sign_note
from lictor.audit.signer import CheckpointSigner, FileSigner

__all__ = [
    "EMPTY_ROOT",
    "LEAF_TYPES",
    "LEAF_VERSION",
    "Checkpoint",
    "CheckpointSigner",
    "FileSigner",
    "Frontier",
    "Signer",
    "Tree",
    "Verifier",
    "canonical_json",
    "commit",
    "decision_leaf",
    "decode_leaf",
    "encode_leaf",
    "generate_key",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]
