"""Checkpoints: real sum.golang.org tree heads, a golden signed checkpoint, strict parsing, tampering."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from lictor.audit.checkpoint import (
    HASH_SIZE,
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from lictor.audit.note import Signer, Verifier, open_note
from lictor.errors import VerificationError

DATA = Path(__file__).parent / "data"

# The Go checksum database's verifier key, as built into the go command
# (src/cmd/go/internal/modfetch/key.go in the Go repository).
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_ORIGIN = "go.sum database tree"

# Signed tree heads that sum.golang.org served (quoted in public write-ups of its lookup and latest
# endpoints); that they verify under the key above is what makes them known answers.
SUMDB_CHECKPOINTS = [
    (445646, "jEFFy4AtYgBBNTSZTiNnQrgQqMbcH0mfO2oP2FxR9VU=",
     "Az3grkGho/PqvUmEuTv6+r2g303hUhu60FOD6vLpm19mBwH9UjquWY2OKxNmZ55z0gHrp24AgPC3Q5WO7uZrVdvdCQU="),
    (3784599, "7uvxIZ67TZygcq/AehTD8iHYt81Ih+Zl2Y7vXZbfszQ=",
     "Az3grn972wXskjQrsZhVGc93fTU2uOsmSTiId1Wn1lxDCup5z4ggl1/4gaUqOkMa6cMbYvjB7hn7yemNr7Zqanol/go="),
    (15368405, "/g9am3I6YWNKaZX/jkne1fqd9zEyjss+JXyPXG0WfkY=",
     "Az3grqJGUaSGukG9p8nI2vKgiFn7qGHxn0W+mrwyI6Gz3F0t1J3LzmWk/p96Ybf295EjwdSwlzgijq5WA9d1Ded7owM="),
    (63512409, "F7eHRPqN/cqPtqti14NKdGGaI1Giw8coWP3KxihFZbg=",
     "Az3gri1OBHKT87Xj8UXU8zjoHGy/X+7Nl94f8TZkELVaasolmGApUsWqwVG9vE6hgqYb/ph/w2vdkLIVRH7bMB/FPQ4="),
]

# The example of c2sp.org/tlog-checkpoint (its key is not published, so only the text is checked).
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo"
    "+zyWE+xeMcTOAYQ8=\n"
)

# The golden checkpoint: a fixed key (seed derived below) signs a fixed tree; Ed25519 is
# deterministic, so any change in the bytes we produce shows up as a difference from the file.
GOLDEN_ORIGIN = "lictor.example/audit/golden"
GOLDEN_VKEY = "lictor.example/audit/golden+7114fe9c+ARnd/ykfO7yPQ7GfkhXsEBQ+GpwjwOvjkeKiPHAD8pEQ"
GOLDEN_SIGNER = Signer(GOLDEN_ORIGIN, hashlib.sha256(b"lictor checkpoint golden key").digest())
GOLDEN = Checkpoint(GOLDEN_ORIGIN, 1234567, hashlib.sha256(b"lictor checkpoint golden root").digest())


def sumdb_note(size: int, root: str, signature: str) -> str:
    return f"{SUMDB_ORIGIN}\n{size}\n{root}\n\n\u2014 sum.golang.org {signature}\n"


# --- known answers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "root", "signature"), SUMDB_CHECKPOINTS)
def test_real_sum_golang_org_checkpoints_verify(size: int, root: str, signature: str) -> None:
    checkpoint = open_checkpoint(sumdb_note(size, root, signature), [Verifier.from_vkey(SUMDB_VKEY)],
                                 SUMDB_ORIGIN)
    assert checkpoint == Checkpoint(SUMDB_ORIGIN, size, base64.b64decode(root))


@pytest.mark.parametrize(("size", "root", "signature"), SUMDB_CHECKPOINTS[:1])
def test_real_checkpoint_tampered_fails(size: int, root: str, signature: str) -> None:
    sumdb = [Verifier.from_vkey(SUMDB_VKEY)]
    with pytest.raises(VerificationError, match="invalid signature"):
        open_checkpoint(sumdb_note(size + 1, root, signature), sumdb, SUMDB_ORIGIN)
    other_root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(VerificationError, match="invalid signature"):
        open_checkpoint(sumdb_note(size, other_root, signature), sumdb, SUMDB_ORIGIN)
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(sumdb_note(size, root, signature), sumdb, "sum.golang.org")


def test_the_spec_example_parses_and_an_unknown_key_does_not_verify_it() -> None:
    body = SPEC_EXAMPLE.split("\n\n")[0] + "\n"
    checkpoint = parse_checkpoint(body)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.body() == body
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_checkpoint(SPEC_EXAMPLE, [GOLDEN_SIGNER.verifier()], "example.com/behind-the-sofa")


def test_golden_checkpoint_bytes_are_stable() -> None:
    assert GOLDEN_SIGNER.vkey == GOLDEN_VKEY
    golden = (DATA / "checkpoint_golden.txt").read_bytes().decode("utf-8")
    assert sign_checkpoint(GOLDEN, GOLDEN_SIGNER) == golden
    assert open_checkpoint(golden, [Verifier.from_vkey(GOLDEN_VKEY)], GOLDEN_ORIGIN) == GOLDEN


# --- the body ------------------------------------------------------------------------------------

def test_body_is_origin_size_root_and_extensions() -> None:
    root = bytes(range(32))
    assert Checkpoint("o.example/log", 0, root).body() == f"o.example/log\n0\n{base64.b64encode(root).decode()}\n"
    with_ext = Checkpoint("o", 7, root, ("ext one", "ext two"))
    assert with_ext.body().endswith("\next one\next two\n")
    assert parse_checkpoint(with_ext.body()) == with_ext


@pytest.mark.parametrize("kwargs", [
    {"origin": ""},
    {"origin": "two\nlines"},
    {"origin": "\u2014 dash"},
    {"size": -1},
    {"size": MAX_TREE_SIZE + 1},
    {"size": True},
    {"size": 1.0},
    {"root": bytes(31)},
    {"root": "x" * 32},
    {"extensions": ("",)},
    {"extensions": ("a\nb",)},
    {"extensions": ["list"]},
])
def test_invalid_checkpoints_are_programmer_errors(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"origin": "o", "size": 1, "root": bytes(32), **kwargs}
    with pytest.raises(ValueError):
        Checkpoint(**args)  # type: ignore[arg-type]


# --- strict parsing ------------------------------------------------------------------------------

ROOT = base64.b64encode(bytes(HASH_SIZE)).decode()


@pytest.mark.parametrize("text", [
    f"o\n1\n{ROOT}",  # no final newline
    f"o\n1\n{ROOT}\n\n",  # trailing blank line
    f"o\n1\n{ROOT}\n\nx\n",  # empty extension line
    "o\n1\n",  # too few lines
    "",
    "\n",
    f"\n1\n{ROOT}\n",  # empty origin
    f"o\n01\n{ROOT}\n",  # leading zero
    f"o\n00\n{ROOT}\n",
    f"o\n+1\n{ROOT}\n",
    f"o\n-1\n{ROOT}\n",
    f"o\n 1\n{ROOT}\n",
    f"o\n1 \n{ROOT}\n",
    f"o\n1.0\n{ROOT}\n",
    f"o\n1_000\n{ROOT}\n",
    f"o\n\u0661\n{ROOT}\n",  # ARABIC-INDIC DIGIT ONE
    f"o\n0x10\n{ROOT}\n",
    f"o\n{MAX_TREE_SIZE + 1}\n{ROOT}\n",
    f"o\n{'9' * 5000}\n{ROOT}\n",
    f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n",
    f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n",
    f"o\n1\n{ROOT[:-1]}\n",  # unpadded
    f"o\n1\n{ROOT[:-2]}B=\n",  # non-canonical
    f"o\n1\n{ROOT.replace('A', '-', 1)}\n",
    f"o\n1\n {ROOT}\n",
    f"o\r\n1\r\n{ROOT}\r\n",
    f"o\t\n1\n{ROOT}\n",
])
def test_malformed_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_checkpoint(text)
    assert info.value.step == "checkpoint" and info.value.message


def test_size_zero_and_the_largest_size_parse() -> None:
    empty_root = hashlib.sha256(b"").digest()
    assert parse_checkpoint(Checkpoint("o", 0, empty_root).body()).size == 0
    assert parse_checkpoint(f"o\n{MAX_TREE_SIZE}\n{ROOT}\n").size == MAX_TREE_SIZE


def test_origins_with_spaces_are_allowed() -> None:
    assert parse_checkpoint(f"{SUMDB_ORIGIN}\n5\n{ROOT}\n").origin == SUMDB_ORIGIN


# --- signing and opening -------------------------------------------------------------------------

def test_sign_and_open_round_trip_with_a_cosigner() -> None:
    log = Signer("log.example", bytes(32))
    witness = Signer("witness.example", bytes(range(32)))
    checkpoint = Checkpoint("log.example", 42, hashlib.sha256(b"r").digest())
    note = sign_checkpoint(checkpoint, log, witness)
    assert open_checkpoint(note, [log.verifier()], "log.example") == checkpoint
    assert open_note(note, [log.verifier(), witness.verifier()]).verified_by == (log.verifier(),
                                                                                 witness.verifier())
    with pytest.raises(ValueError):
        sign_checkpoint(checkpoint)


def test_a_signed_note_that_is_not_a_checkpoint_is_refused() -> None:
    from lictor.audit.note import sign_note

    note = sign_note("just\ntwo lines\n", GOLDEN_SIGNER)
    with pytest.raises(VerificationError) as info:
        open_checkpoint(note, [GOLDEN_SIGNER.verifier()], "just")
    assert info.value.step == "checkpoint"


def test_origin_must_match() -> None:
    note = sign_checkpoint(GOLDEN, GOLDEN_SIGNER)
    with pytest.raises(VerificationError, match=r"expected 'lictor\.example/audit/other'") as info:
        open_checkpoint(note, [GOLDEN_SIGNER.verifier()], "lictor.example/audit/other")
    assert info.value.step == "checkpoint"
    with pytest.raises(ValueError):
        open_checkpoint(note, [GOLDEN_SIGNER.verifier()], "")


def test_changing_any_character_of_a_signed_checkpoint_is_detected() -> None:
    note = sign_checkpoint(GOLDEN, GOLDEN_SIGNER)
    verifiers = [GOLDEN_SIGNER.verifier()]
    for position, ch in enumerate(note):
        if ch == "\n":
            continue
        mutated = note[:position] + ("7" if ch != "7" else "8") + note[position + 1:]
        with pytest.raises(VerificationError):
            open_checkpoint(mutated, verifiers, GOLDEN_ORIGIN)


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    impostor = Signer(GOLDEN_ORIGIN, hashlib.sha256(b"impostor").digest())
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_checkpoint(sign_checkpoint(GOLDEN, impostor), [GOLDEN_SIGNER.verifier()], GOLDEN_ORIGIN)
