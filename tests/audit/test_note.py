"""Signed notes: the published Go ``sumdb/note`` vectors, strict parsing, and tamper vectors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.audit.note import (
    ED25519,
    MAX_SIGNATURES,
    SIGNATURE_PREFIX,
    Signer,
    Verifier,
    generate_key,
    key_id,
    open_note,
    sign_note,
)
from lictor.errors import VerificationError

# The example keys, text and signatures of golang.org/x/mod/sumdb/note (note.go package
# documentation and note_test.go).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
             "pRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33W"
             "Wd1RvMc+QQ=\n")
PETER_NOTE = TEXT + "\n" + PETER_SIG


@pytest.fixture(scope="module")
def peter() -> Verifier:
    return Verifier.from_vkey(PETER_VKEY)


@pytest.fixture(scope="module")
def enoch() -> Verifier:
    return Verifier.from_vkey(ENOCH_VKEY)


# --- known answers -------------------------------------------------------------------------------

def test_go_signer_key_gives_the_published_verifier_key() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert signer.vkey == PETER_VKEY
    assert signer.skey == PETER_SKEY


def test_key_id_is_the_first_four_bytes_of_the_sha256_of_name_newline_type_key(peter: Verifier) -> None:
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + peter.public_key).digest()
    assert key_id("PeterNeumann", peter.public_key) == int.from_bytes(digest[:4], "big") == 0xC74F20A3
    assert ED25519 == 1


def test_signing_reproduces_the_published_note_byte_for_byte() -> None:
    assert sign_note(TEXT, Signer.from_skey(PETER_SKEY)) == PETER_NOTE


def test_the_published_note_opens(peter: Verifier) -> None:
    note = open_note(PETER_NOTE, [peter])
    assert note.text == TEXT
    assert note.verified_by == (peter,)
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]
    assert note.signatures[0].line == PETER_SIG


def test_the_published_doubly_signed_note_opens_with_either_or_both_keys(peter: Verifier,
                                                                        enoch: Verifier) -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(both, [peter, enoch]).verified_by == (peter, enoch)
    assert open_note(both, [enoch]).verified_by == (enoch,)
    only_peter = open_note(both, [peter])
    assert only_peter.verified_by == (peter,)
    assert len(only_peter.signatures) == 2  # the unknown key's line is kept, not trusted


def test_bytes_input_is_accepted(peter: Verifier) -> None:
    assert open_note(PETER_NOTE.encode("utf-8"), [peter]).text == TEXT


# --- key texts -----------------------------------------------------------------------------------

def test_generated_keys_round_trip() -> None:
    skey, vkey = generate_key("log.example/a")
    signer, verifier = Signer.from_skey(skey), Verifier.from_vkey(vkey)
    assert signer.verifier() == verifier
    assert verifier.vkey == vkey
    assert vkey.startswith(f"log.example/a+{verifier.key_id:08x}+")
    assert open_note(sign_note("hello\n", signer), [verifier]).text == "hello\n"
    assert generate_key("log.example/a") != (skey, vkey)


def test_a_key_whose_base64_holds_plus_signs_parses() -> None:
    sumdb = Verifier.from_vkey("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8")
    assert sumdb.name == "sum.golang.org"
    assert sumdb.key_id == 0x033DE0AE


def manglings(text: str) -> list[str]:
    """Every proper substring and every one-character increment of ``text`` (as Go's tests do)."""
    out = {text[i:j] for i in range(len(text) + 1) for j in range(i, len(text) + 1)} - {text}
    out |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1:] for i in range(len(text))}
    return sorted(out)


def test_every_mangled_verifier_key_is_refused() -> None:
    for bad in manglings(PETER_VKEY):
        with pytest.raises(VerificationError):
            Verifier.from_vkey(bad)


def test_every_mangled_signer_key_is_refused() -> None:
    for bad in manglings(PETER_SKEY):
        with pytest.raises(VerificationError):
            Signer.from_skey(bad)


@pytest.mark.parametrize("bad", [
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case key ID
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",  # trailing newline
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # non-canonical base64
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "",
])
def test_malformed_verifier_keys_are_refused_with_a_message(bad: str) -> None:
    with pytest.raises(VerificationError) as info:
        Verifier.from_vkey(bad)
    assert info.value.step == "key" and info.value.message


def test_a_signer_key_that_is_a_verifier_key_is_refused() -> None:
    with pytest.raises(VerificationError, match="PRIVATE"):
        Signer.from_skey(PETER_VKEY)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\nb", "a\x00b"])
def test_invalid_key_names_are_programmer_errors(name: str) -> None:
    with pytest.raises(ValueError):
        generate_key(name)
    with pytest.raises(ValueError):
        Signer(name, bytes(32))


def test_the_private_key_never_shows_in_repr() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    assert "AYEKF" not in repr(signer) and signer.seed.hex() not in repr(signer)
    assert repr(Signer.from_skey(PETER_SKEY).verifier()) == f"Verifier({PETER_VKEY!r})"


# --- signing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["no final newline", "tab\there\n", "cr\r\n", "\u2014 looks like a signature\n",
                                  "ok\n\u2014 x y\n", "lone \ud800 surrogate\n"])
def test_sign_note_refuses_texts_that_cannot_be_a_note(text: str) -> None:
    with pytest.raises(ValueError):
        sign_note(text, Signer.from_skey(PETER_SKEY))


def test_sign_note_needs_distinct_signers() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    with pytest.raises(ValueError):
        sign_note(TEXT)
    with pytest.raises(ValueError):
        sign_note(TEXT, signer, signer)


def test_several_signers_sign_in_order() -> None:
    first, second = Signer("a.example", bytes(32)), Signer("b.example", bytes(range(32)))
    note = sign_note("x\n", first, second)
    lines = note.split("\n")
    assert lines[:2] == ["x", ""] and lines[4:] == [""]
    assert lines[2].startswith(f"{SIGNATURE_PREFIX}a.example ")
    assert lines[3].startswith(f"{SIGNATURE_PREFIX}b.example ")
    opened = open_note(note, [second.verifier(), first.verifier()])
    assert opened.verified_by == (first.verifier(), second.verifier())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=20), min_size=1,
                max_size=5))
def test_any_valid_text_round_trips(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines if not line.startswith(SIGNATURE_PREFIX))
    if not text:
        return
    signer = Signer("prop.example", hashlib.sha256(b"prop").digest())
    assert open_note(sign_note(text, signer), [signer.verifier()]).text == text


# --- opening: strictness -------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
                  "KE6RyyBwJnAM=",
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG + "\n",
    TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG.replace("\n", "\r\n"),
    TEXT + "\n" + PETER_SIG.replace("\u2014 ", "- "),
    TEXT + "\n" + PETER_SIG.replace(" x08go", "  x08go"),
    TEXT + "\n" + PETER_SIG.replace("\n", " \n"),
    TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
    TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),  # unpadded base64
    TEXT + "\n\u2014 PeterNeumann x08go/Y=\n",  # shorter than a key ID and one byte
    TEXT + "\n\u2014 PeterNeumann\n",
    "",
])
def test_malformed_notes_are_refused(peter: Verifier, bad: str) -> None:
    with pytest.raises(VerificationError) as info:
        open_note(bad, [peter])
    assert info.value.message


def test_invalid_utf8_is_refused(peter: Verifier) -> None:
    with pytest.raises(VerificationError, match="UTF-8"):
        open_note(b"\xff" + PETER_NOTE.encode("utf-8"), [peter])


def test_at_most_max_signatures(peter: Verifier) -> None:
    assert open_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [peter]).verified_by == (peter,)
    with pytest.raises(VerificationError, match="at most"):
        open_note(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), [peter])
    with pytest.raises(VerificationError, match="at most"):
        open_note(TEXT + "\n" + ENOCH_SIG * (MAX_SIGNATURES + 1), [peter])


def test_a_text_with_blank_lines_is_split_at_the_last_one() -> None:
    signer = Signer("blank.example", bytes(32))
    text = "a\n\nb\n\n"
    note = sign_note(text, signer)
    assert open_note(note, [signer.verifier()]).text == text


def test_conflicting_verifiers_are_a_programmer_error(peter: Verifier) -> None:
    impostor = Verifier.__new__(Verifier)
    for name, value in (("name", peter.name), ("key_id", peter.key_id), ("public_key", bytes(32)),
                        ("_key", peter._key)):
        object.__setattr__(impostor, name, value)
    with pytest.raises(ValueError, match="two different keys"):
        open_note(PETER_NOTE, [peter, impostor])
    assert open_note(PETER_NOTE, [peter, peter]).verified_by == (peter,)


# --- opening: verification and tamper vectors ----------------------------------------------------

def test_no_known_key_means_rejection(peter: Verifier, enoch: Verifier) -> None:
    with pytest.raises(VerificationError, match="no signature by a known key") as info:
        open_note(PETER_NOTE, [enoch])
    assert info.value.step == "signature"
    with pytest.raises(VerificationError):
        open_note(PETER_NOTE, [])


def test_a_bad_signature_by_a_known_key_rejects_the_whole_note(peter: Verifier, enoch: Verifier) -> None:
    corrupt_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + corrupt_enoch
    assert open_note(note, [peter]).verified_by == (peter,)  # unknown key: ignored
    with pytest.raises(VerificationError, match="invalid signature for key EnochRoot\\+af0cfe78"):
        open_note(note, [peter, enoch])
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(TEXT + "\n" + PETER_SIG + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])


def test_same_name_other_key_id_or_same_id_other_name_is_an_unknown_key(peter: Verifier) -> None:
    raw = base64.b64decode(PETER_SIG.split(" ")[2])
    other_id = base64.b64encode(bytes([raw[0] ^ 1]) + raw[1:]).decode()
    for line in (f"\u2014 PeterNeumann {other_id}\n", PETER_SIG.replace("PeterNeumann", "CarmenSandiego")):
        with pytest.raises(VerificationError, match="no signature by a known key"):
            open_note(TEXT + "\n" + line, [peter])
        assert open_note(TEXT + "\n" + line + PETER_SIG, [peter]).verified_by == (peter,)


def test_flipping_any_byte_of_the_note_is_detected(peter: Verifier) -> None:
    data = PETER_NOTE.encode("utf-8")
    for position in range(len(data)):
        for flip in (0x01, 0x80):
            mutated = data[:position] + bytes([data[position] ^ flip]) + data[position + 1:]
            with pytest.raises(VerificationError):
                open_note(mutated, [peter])


def test_changing_any_character_of_the_text_or_signature_is_detected(peter: Verifier) -> None:
    for position, ch in enumerate(PETER_NOTE):
        if ch == "\n":
            continue
        replacement = "A" if ch != "A" else "B"
        with pytest.raises(VerificationError):
            open_note(PETER_NOTE[:position] + replacement + PETER_NOTE[position + 1:], [peter])


def test_another_key_cannot_stand_in(peter: Verifier) -> None:
    forger = Signer("PeterNeumann", hashlib.sha256(b"forger").digest())
    forged = sign_note(TEXT, forger)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(forged, [peter])
    # Even a forged line that claims Peter's key ID fails, because the key is known.
    claimed = forged.replace(forged.split(" ")[-1], base64.b64encode(
        (0xC74F20A3).to_bytes(4, "big") + base64.b64decode(forged.split(" ")[-1])[4:]).decode() + "\n")
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(claimed, [peter])


def test_a_signature_of_the_text_without_its_final_newline_does_not_verify(peter: Verifier) -> None:
    signer = Signer.from_skey(PETER_SKEY)
    raw = (0xC74F20A3).to_bytes(4, "big") + signer.sign(TEXT[:-1].encode())
    line = f"{SIGNATURE_PREFIX}PeterNeumann {base64.b64encode(raw).decode()}\n"
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(TEXT + "\n" + line, [peter])
