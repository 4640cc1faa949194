"""Credentials: provider API keys by their documented formats (AWS, GitHub, GitLab, Slack, Stripe,
Google, OpenAI, Anthropic), PEM private keys, JWTs (whose header must decode to JSON naming an
``alg``), passwords inside URLs, and high-entropy values assigned to names such as ``password``
or ``api_key``.

Each provider format starts with a fixed prefix, so one combined pattern finds every candidate in
one pass; bounded repetition and look-behinds keep every scan linear in the length of the text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator

from lictor.detect.base import Hit
from lictor.detect.checksums import shannon_entropy

__all__ = ["SecretDetector"]

TYPES = ("secret.aws_access_key", "secret.aws_secret_key", "secret.github_token", "secret.gitlab_token",
         "secret.slack_token", "secret.slack_webhook", "secret.stripe_key", "secret.google_api_key",
         "secret.openai_key", "secret.anthropic_key", "secret.private_key", "secret.jwt",
         "secret.url_password", "secret.generic")

_B = r"(?![A-Za-z0-9_-])"  # the token ends here
_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("secret.aws_access_key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("secret.github_token", r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}" + _B),
    ("secret.github_token", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,251}" + _B),
    ("secret.gitlab_token", r"(?<![A-Za-z0-9_-])gl(?:pat|ptt|dt|rt|soat|cbt|ft|imt|oas)-[A-Za-z0-9_-]{20,64}" + _B),
    ("secret.slack_token", r"(?<![A-Za-z0-9_-])xox[abposre]-(?:\d+-)?[A-Za-z0-9-]{10,250}" + _B),
    ("secret.slack_token", r"(?<![A-Za-z0-9_-])xapp-\d-[A-Z0-9]{6,20}-\d{6,20}-[a-f0-9]{32,80}" + _B),
    ("secret.slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,200}"
                             r"(?![A-Za-z0-9_/-])"),
    ("secret.stripe_key", r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}" + _B),
    ("secret.stripe_key", r"(?<![A-Za-z0-9_])whsec_[A-Za-z0-9]{24,64}" + _B),
    ("secret.google_api_key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}" + _B),
    ("secret.anthropic_key", r"(?<![A-Za-z0-9_-])sk-ant-(?:api|admin|sid|oat)\d{2}-[A-Za-z0-9_-]{32,200}" + _B),
    ("secret.openai_key", r"(?<![A-Za-z0-9_-])sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{32,250}" + _B),
    ("secret.openai_key", r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _B),
    ("secret.openai_key", r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9]{48}" + _B),
    ("secret.jwt", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{0,1024}"
                   + _B),
    ("secret.private_key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP |SSH2 )?PRIVATE KEY(?: BLOCK)?-----"),
)
_GROUPS = {f"g{i}": kind for i, (kind, _p) in enumerate(_PROVIDERS)}
_COMBINED = re.compile("|".join(f"(?P<g{i}>{p})" for i, (_k, p) in enumerate(_PROVIDERS)))
# the fixed pieces every provider pattern holds; a text without any of them holds no provider secret
_MARKERS = ("AKIA", "ASIA", "ABIA", "ACCA", "A3T", "gh", "github_pat_", "gl", "xox", "xapp-", "hooks.slack.com",
            "sk_", "rk_", "whsec_", "AIza", "sk-", "eyJ", "PRIVATE KEY")

_AWS_SECRET = re.compile(
    r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key|aws_?secret)[\"']?\s{0,5}(?:=|:|=>|:=)\s{0,5}[\"']?"
    r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,19}://[^\s:/@?#\"'<>]{1,128}:(?P<v>[^\s/@?#\"'<>]{1,256})@"
    r"[A-Za-z0-9\[]")
_ASSIGN_NAMES = (r"(?i:passw(?:or)?d|pwd|pass|secret|token|api_?key|apikey|access_?key|auth_?key|"
                 r"private_?key|client_?secret|credentials?|signing_?key|encryption_?key|bearer)")
_ASSIGN_NAME = re.compile(_ASSIGN_NAMES)
_ASSIGNMENT = re.compile(
    r"[A-Za-z0-9_]{0,12}[\"']?\]?\s{0,5}(?:=|:|=>|:=|\bis\b)\s{0,5}(?P<q>[\"'`]?)(?P<v>[^\s\"'`,;<>(){}\[\]]{8,200})")
_BEARER = re.compile(r"\b(?:Bearer|Token|Basic)\s{1,3}(?P<v>[A-Za-z0-9._~+/=-]{16,1024})")
_PLACEHOLDER = re.compile(r"(?i)^(?:\$\{?|%|\{\{|<|\*{3}|x{4}|\.{3}|your|example|changeme|redacted|placeholder|"
                          r"dummy|none$|null$|true$|false$|process\.env|os\.environ|env\[|getenv|secrets\.)")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_]+)*")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")


def _jwt_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("alg"), str)


class SecretDetector:
    """Credentials (types ``secret.*``). ``entropy``: the least Shannon entropy, in bits per
    character, of a value assigned to a password-like name for ``secret.generic``; ``min_length``
    its least length."""

    name = "secrets"
    version = "1"
    types = TYPES

    def __init__(self, *, entropy: float = 3.0, min_length: int = 8) -> None:
        self._entropy = float(entropy)
        self._min_length = int(min_length)

    def scan(self, text: str) -> Iterable[Hit]:
        hits = list(self._providers(text)) if any(m in text for m in _MARKERS) else []
        if "://" in text and "@" in text:
            hits.extend(self._url_passwords(text))
        hits.extend(self._assignments(text, hits))
        return hits

    @staticmethod
    def _providers(text: str) -> Iterator[Hit]:
        for m in _COMBINED.finditer(text):
            kind = _GROUPS[m.lastgroup or ""]
            start, end = m.span()
            if kind == "secret.jwt" and not _jwt_ok(m.group()):
                continue
            if kind == "secret.private_key":
                close = _PEM_END.search(text, end, min(len(text), end + 16384))
                if close is None:  # a truncated key: its body up to the first blank line
                    blank = text.find("\n\n", end, min(len(text), end + 16384))
                    end = blank if blank != -1 else min(len(text), end + 16384)
                else:
                    end = close.end()
            yield Hit(kind, start, end, 0.99)

    @staticmethod
    def _url_passwords(text: str) -> Iterator[Hit]:
        for m in _URL_PASSWORD.finditer(text):
            value = m.group("v")
            if _PLACEHOLDER.match(value) or set(value) <= {"*", "x", "X"}:
                continue
            yield Hit("secret.url_password", m.start("v"), m.end("v"), 0.95)

    def _assignments(self, text: str, found: list[Hit]) -> Iterator[Hit]:
        taken = [(h.start, h.end) for h in found]
        for pattern, aws in ((_AWS_SECRET, True), (_ASSIGNMENT, False), (_BEARER, False)):
            if not aws and pattern is _ASSIGNMENT and not _maybe_assignment(text):
                continue
            if aws and "ecret" not in text and "ECRET" not in text:
                continue
            for m in _matches(pattern, text):
                start, end = m.span("v")
                value = m.group("v")
                if any(s < end and start < e for s, e in taken):
                    continue
                if aws:
                    yield Hit("secret.aws_secret_key", start, end, 0.95)
                    taken.append((start, end))
                    continue
                if pattern is _ASSIGNMENT and not m.group("q"):
                    value = value.rstrip(".")
                    end = start + len(value)
                    if text[end:end + 1] in ("(", "[", ".") or _IDENTIFIER.fullmatch(value):
                        continue  # a call, a lookup or a variable name, not a literal
                if len(value) < self._min_length or _PLACEHOLDER.match(value) or not _mixed(value):
                    continue
                entropy = shannon_entropy(value)
                if entropy < self._entropy:
                    continue
                taken.append((start, end))
                yield Hit("secret.generic", start, end, round(min(0.95, 0.5 + entropy / 10), 2))


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches of ``pattern``; an assignment is matched from the end of each password-like name."""
    if pattern is not _ASSIGNMENT:
        yield from pattern.finditer(text)
        return
    for name in _ASSIGN_NAME.finditer(text):
        m = _ASSIGNMENT.match(text, name.end())
        if m is not None:
            yield m


_ASSIGN_HINTS = ("ass", "wd", "ecret", "oken", "ey", "uth", "redential", "earer", "ASS", "WD", "ECRET", "OKEN",
                 "EY", "UTH", "REDENTIAL", "EARER", "asic")


def _maybe_assignment(text: str) -> bool:
    return any(h in text for h in _ASSIGN_HINTS)


def _mixed(value: str) -> bool:
    """At least two kinds of character (lower, upper, digit, other) and not a plain word or path."""
    kinds = (any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
             + any(not c.isalnum() for c in value))
    if kinds < 2:
        return False
    return not (value.startswith(("/", "./", "http")) or value.count("/") > 2 or value.count(".") > 2)
