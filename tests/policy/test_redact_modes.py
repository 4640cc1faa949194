"""``redact`` modes: label, mask and hash rewrite each span; mode and replacement exclude each other."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from lictor.errors import PolicyError
from lictor.model import Action, Finding
from lictor.policy import load_policies

HEAD = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: r}
spec:
  rules:
    - name: r
      verdict: CONSTRAIN
      constrain:
"""
ACTION = Action.from_dict({"system": "s", "kind": "message",
                           "args": {"a": "card 4111-1111-1111-1111 ok", "b": "id AB-12", "c": "x"}})
CARD = Finding("pii.credit_card", "args.a", 5, 24)


def _constrained(tmp_path: Path, lines: str, key: bytes | None = None) -> dict[str, object]:
    (tmp_path / "p.yaml").write_text(HEAD + lines, encoding="utf-8")
    policies = load_policies(tmp_path).with_redaction_key(key)
    decision = policies.evaluate(ACTION, findings=[CARD])
    assert decision.action is not None, decision.errors
    args: dict[str, object] = decision.action["args"]
    return args


def test_label_mask_and_hash(tmp_path: Path) -> None:
    args = _constrained(tmp_path, "        - redact: {paths: [args.a], findings: ['pii.*'], mode: label}\n"
                                  "        - redact: {paths: [args.b], pattern: 'AB-[0-9]+', mode: label}\n"
                                  "        - redact: {paths: [args.c], mode: label}\n")
    assert args == {"a": "card [REDACTED:pii.credit_card] ok", "b": "id [REDACTED]", "c": "[REDACTED]"}
    args = _constrained(tmp_path, "        - redact: {paths: [args.a], findings: ['pii.*'], mode: mask}\n"
                                  "        - redact: {paths: [args.b], pattern: 'AB-[0-9]+', mode: mask}\n")
    assert args["a"] == "card ****-****-****-1111 ok" and args["b"] == "id **-**"
    plain = hashlib.sha256(b"4111-1111-1111-1111").hexdigest()[:12]
    lines = "        - redact: {paths: [args.a], findings: ['pii.*'], mode: hash}\n"
    assert _constrained(tmp_path, lines)["a"] == f"card [HASH:pii.credit_card:{plain}] ok"
    keyed = hmac.new(b"k" * 32, b"4111-1111-1111-1111", hashlib.sha256).hexdigest()[:12]
    assert _constrained(tmp_path, lines, b"k" * 32)["a"] == f"card [HASH:pii.credit_card:{keyed}] ok"


@pytest.mark.parametrize(("spec", "message"), [
    ("{paths: [args.a], mode: blur}", "redact.mode must be one of label, mask, hash"),
    ("{paths: [args.a], mode: mask, replacement: x}", "either redact.mode or redact.replacement"),
])
def test_bad_modes_are_diagnosed(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(HEAD + f"        - redact: {spec}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    assert any(message in str(d) for d in caught.value.diagnostics)
