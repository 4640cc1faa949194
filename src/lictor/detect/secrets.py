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
import bisect
import json
import re
from collections.abc import Iterable, Iterator

from lictor.detect.base import Hit
from lictor.detect.checksums import shannon_entropy
from lictor.detect.triggers import found

__all__ = ["SecretDetector"]

TYPES = ("secret.aws_access_key", "secret.aws_secret_key", "secret.github_token", "secret.gitlab_token",
         "secret.slack_token", "secret.slack_webhook", "secret.stripe_key", "secret.google_api_key",
         "secret.openai_key", "secret.anthropic_key", "secret.private_key", "secret.jwt",
         "secret.url_password", "secret.generic")

_B = r"(?![A-Za-z0-9_-])"  # the token ends here
# (type, markers, pattern): the pattern runs only on a text holding one of its markers; each pattern
# starts with its literal prefix (fast to find) and checks the character before it with a look-behind
_PROVIDERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("secret.aws_access_key", ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
     r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("secret.github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
     r"gh[pousr]_(?<![A-Za-z0-9_]....)[A-Za-z0-9]{36,251}" + _B),
    ("secret.github_token", ("github_pat_",), r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{60,251}" + _B),
    ("secret.gitlab_token", ("glpat-", "glptt-", "gldt-", "glrt-", "glsoat-", "glcbt-", "glft-", "glimt-", "gloas-"),
     r"gl(?<![A-Za-z0-9_-]gl)(?:pat|ptt|dt|rt|soat|cbt|ft|imt|oas)-[A-Za-z0-9_-]{20,64}" + _B),
    ("secret.slack_token", ("xox",), r"xox(?<![A-Za-z0-9_-]xox)[abposre]-(?:\d+-)?[A-Za-z0-9-]{10,250}" + _B),
    ("secret.slack_token", ("xapp-",), r"xapp-(?<![A-Za-z0-9_-]xapp-)\d-[A-Z0-9]{6,20}-\d{6,20}-[a-f0-9]{32,80}" + _B),
    ("secret.slack_webhook", ("hooks.slack.com",),
     r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,200}(?![A-Za-z0-9_/-])"),
    ("secret.stripe_key", ("k_live_", "k_test_"), r"[sr]k_(?<![A-Za-z0-9_]...)(?:live|test)_[A-Za-z0-9]{20,247}" + _B),
    ("secret.stripe_key", ("whsec_",), r"whsec_(?<![A-Za-z0-9_]whsec_)[A-Za-z0-9]{24,64}" + _B),
    ("secret.google_api_key", ("AIza",), r"AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}" + _B),
    ("secret.anthropic_key", ("sk-ant-",),
     r"sk-ant-(?<![A-Za-z0-9_-]sk-ant-)(?:api|admin|sid|oat)\d{2}-[A-Za-z0-9_-]{32,200}" + _B),
    ("secret.openai_key", ("sk-",),
     r"sk-(?<![A-Za-z0-9_-]sk-)(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{32,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"
     r"|[A-Za-z0-9]{48})" + _B),
    ("secret.jwt", ("eyJ",),
     r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{0,1024}" + _B),
    ("secret.private_key", ("PRIVATE KEY",),
     r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP |SSH2 )?PRIVATE KEY(?: BLOCK)?-----"),
)
_COMPILED = tuple((kind, re.compile(pattern)) for kind, _markers, pattern in _PROVIDERS)
#: (marker, index of its provider), flat: one substring test each
_MARKERS = tuple((marker, i) for i, (_kind, markers, _pattern) in enumerate(_PROVIDERS) for marker in markers)

_AWS_SECRET = re.compile(
    r"[\"']?\s{0,5}(?:=|:|=>|:=)\s{0,5}[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")
_AWS_SECRET_NAME = re.compile(r"(?:aws_?secret_?(?:access_?)?key|secret_?access_?key|aws_?secret)")
_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,19}://[^\s:/@?#\"'<>]{1,128}:(?P<v>[^\s/@?#\"'<>]{1,256})@"
    r"[A-Za-z0-9\[]")
#: Names (lower case) whose value is a secret when assigned; found with str.find on the lowered text.
_ASSIGN_WORDS = ("pass", "pwd", "secret", "token", "apikey", "api_key", "api-key", "access_key", "accesskey",
                 "auth_key", "authkey", "private_key", "privatekey", "credential", "signing_key", "encryption_key")
#: Words that hold ``pass`` and name no password.
_NOT_PASSWORDS = ("passport", "passage", "passenger", "passing", "passive", "passion", "passed", "passes", "bypass",
                  "compass", "passthrough", "pass_through")
_NOT_PASSWORD = re.compile("|".join(_NOT_PASSWORDS))
# the letters that continue a name (``password_hash``)
_NAME_TAIL = re.compile(r"\w{0,16}")
_ASSIGNMENT = re.compile(
    r"[\"']?\]?\s{0,5}(?:=|:|=>|:=|\bis\b)\s{0,5}(?P<q>[\"'`]?)(?P<v>[^\s\"'`,;<>(){}\[\]]{8,200})")
_BEARER = re.compile(r"\s{0,2}(?P<v>[A-Za-z0-9._~+/=-]{16,1024})")  # after "Bearer ", "Token ", "Basic "
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
    min_length = 8  # the shortest secret value: shorter strings are not scanned
    types = TYPES

    def __init__(self, *, entropy: float = 3.0, min_length: int = 8) -> None:
        self._entropy = float(entropy)
        self._min_length = int(min_length)
        self.min_length = max(1, min(8, self._min_length))

    def scan(self, text: str) -> Iterable[Hit]:
        providers, words, schemes = _triggered(text)
        hits = list(self._providers(text, providers))
        if "://" in text and "@" in text:
            hits.extend(self._url_passwords(text))
        if words or schemes:
            low = text.lower()
            words = tuple(word for word in words if word in low)  # the set's case folding is wider
            hits.extend(self._assignments(text, low, hits, words, schemes))
        return hits

    @staticmethod
    def _providers(text: str, active: Iterable[int]) -> Iterator[Hit]:
        for i in active:
            kind, pattern = _COMPILED[i]
            yield from SecretDetector._provider(text, kind, pattern)

    @staticmethod
    def _provider(text: str, kind: str, pattern: re.Pattern[str]) -> Iterator[Hit]:
        for m in pattern.finditer(text):
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

    def _assignments(self, text: str, low: str, found: list[Hit], words: tuple[str, ...],
                     schemes: tuple[str, ...]) -> Iterator[Hit]:
        taken = sorted((h.start, h.end) for h in found)
        if "secret" in words:
            for m in _named(text, low, ("secret",), _AWS_SECRET, _AWS_SECRET_NAME):
                start, end = m.span("v")
                if not _overlaps(taken, start, end):
                    _take(taken, start, end)
                    yield Hit("secret.aws_secret_key", start, end, 0.95)
        candidates: list[re.Match[str]] = []
        if words:
            candidates.extend(_named(text, low, words, _ASSIGNMENT, None))
        for scheme in schemes:
            i = text.find(scheme)
            while i != -1:
                if i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"):
                    bearer = _BEARER.match(text, i + len(scheme))
                    if bearer is not None:
                        candidates.append(bearer)
                i = text.find(scheme, i + 1)
        for m in sorted(candidates, key=lambda c: c.start("v")):
            start, end = m.span("v")
            value = m.group("v")
            if m.re is _ASSIGNMENT and not m.group("q"):
                value = value.rstrip(".")
                end = start + len(value)
                if text[end:end + 1] in ("(", "[", ".") or _IDENTIFIER.fullmatch(value):
                    continue  # a call, a lookup or a variable name, not a literal
            if _overlaps(taken, start, end):
                continue
            if len(value) < self._min_length or _PLACEHOLDER.match(value) or not _mixed(value):
                continue
            entropy = shannon_entropy(value)
            if entropy < self._entropy:
                continue
            _take(taken, start, end)
            yield Hit("secret.generic", start, end, round(min(0.95, 0.5 + entropy / 10), 2))


_SCHEMES = ("Bearer ", "Token ", "Basic ")


#: The prefilter's triggers (name, RE2 pattern): every provider prefix, every assignment name in
#: any case, every authorization scheme (see ``lictor.detect.triggers``).
TRIGGERS: tuple[tuple[str, str], ...] = (
    *((f"secrets.marker.{marker}", re.escape(marker)) for marker, _i in _MARKERS),
    *((f"secrets.word.{word}", "(?i)" + re.escape(word)) for word in _ASSIGN_WORDS),
    *((f"secrets.scheme.{scheme}", re.escape(scheme)) for scheme in _SCHEMES),
)
_MARKER_TRIGGERS = tuple((f"secrets.marker.{marker}", i) for marker, i in _MARKERS)
_WORD_TRIGGERS = tuple((f"secrets.word.{word}", word) for word in _ASSIGN_WORDS)
_SCHEME_TRIGGERS = tuple((f"secrets.scheme.{scheme}", scheme) for scheme in _SCHEMES)


def _triggered(text: str) -> tuple[list[int], tuple[str, ...], tuple[str, ...]]:
    """From the prefilter's one pass over ``text``: the providers whose prefixes occur (sorted),
    the assignment names that may occur (any case, in ``_ASSIGN_WORDS`` order) and the schemes
    that occur."""
    present = found(text)
    if not present:
        return [], (), ()
    providers = sorted({i for name, i in _MARKER_TRIGGERS if name in present})
    words = tuple(word for name, word in _WORD_TRIGGERS if name in present)
    schemes = tuple(scheme for name, scheme in _SCHEME_TRIGGERS if name in present)
    return providers, words, schemes


def _named(text: str, low: str, words: tuple[str, ...], rest: re.Pattern[str],
           name: re.Pattern[str] | None) -> Iterator[re.Match[str]]:
    """Matches of ``rest`` right after each occurrence of one of ``words`` (and the letters that
    continue it, ``password_hash`` -> ``_hash``); with ``name``, the whole name must match it."""
    seen: set[int] = set()
    for word in words:
        i = low.find(word)
        while i != -1:
            j = _NAME_TAIL.match(low, i + len(word)).end()  # type: ignore[union-attr]  # may be empty
            head = i
            while head > 0 and i - head < 32 and (low[head - 1].isalnum() or low[head - 1] in "_-."):
                head -= 1
            token = low[head:j]
            if j not in seen and _NOT_PASSWORD.search(token) is None \
                    and (name is None or name.search(token)):
                m = rest.match(text, j)
                if m is not None:
                    seen.add(j)
                    yield m
            i = low.find(word, i + 1)


def _overlaps(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_left(taken, (end, -1)) - 1
    return any(taken[k][1] > start for k in range(max(0, i - 2), i + 1))


def _take(taken: list[tuple[int, int]], start: int, end: int) -> None:
    bisect.insort(taken, (start, end))


def _mixed(value: str) -> bool:
    """At least two kinds of character (lower, upper, digit, other) and not a plain word or path."""
    kinds = (any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
             + any(not c.isalnum() for c in value))
    if kinds < 2:
        return False
    return not (value.startswith(("/", "./", "http")) or value.count("/") > 2 or value.count(".") > 2)
