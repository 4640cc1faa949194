"""The tamper-evident audit log: RFC 8785 leaves, an RFC 6962 Merkle tree, C2SP signed checkpoints.

Built so far: canonical JSON, the Merkle tree with inclusion and consistency proofs, typed leaves
with salted commitments, signed notes and checkpoints, a file-based checkpoint signer, the storage
port (implemented by ``lictor.store``) and the offline log verifier. The write path and the
``lictor audit`` commands come next.
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
from lictor.audit.port import AppendResult, AuditStore, Payload, StoredCheckpoint, TreeState
from lictor.audit.signer import CheckpointSigner, FileSigner
from lictor.audit.verify import EXIT_CODES, LogVerificationError, VerifyReport, verify_log

__all__ = [
    "EMPTY_ROOT",
    "EXIT_CODES",
    "LEAF_TYPES",
    "LEAF_VERSION",
    "AppendResult",
    "AuditStore",
    "Checkpoint",
    "CheckpointSigner",
    "FileSigner",
    "Frontier",
    "LogVerificationError",
    "Payload",
    "Signer",
    "StoredCheckpoint",
    "Tree",
    "TreeState",
    "Verifier",
    "VerifyReport",
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
    "verify_log",
]
