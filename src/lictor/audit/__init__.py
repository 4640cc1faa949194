"""The tamper-evident audit log: RFC 8785 leaves, an RFC 6962 Merkle tree, C2SP signed checkpoints."""
