"""Structured personal data: e-mail addresses, phone numbers, payment cards, IBANs, US social security
numbers, IP addresses and passport numbers, each found by a linear-time pattern and then validated
(checksums, number plans, ranges) so that order numbers, dates and versions are not reported.

Every pattern starts with a negative look-behind on its own character class and uses bounded
repetition only, so a match attempt starts only at the beginning of a run and costs a bounded number
of steps: scanning is linear in the length of the text, whatever it holds.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from lictor.detect.base import Hit
from lictor.detect.checksums import iban_valid, luhn_valid
from lictor.detect.triggers import found

__all__ = ["PiiDetector"]

_EMAIL = re.compile(
    r"(?<![\w.+%'-])[A-Za-z0-9_][\w.+%'-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24}(?![\w-])")
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "pdf"})

# a run of digits with the separators cards, phones and SSNs use; validation decides what it is
_NUMBER = re.compile(r"(?:\+(?<![\w+.\-/]\+)\(?\d|\((?<![\w+.\-/]\()\d|\d(?<![\d+.\-/]\d))"
                     r"(?:[ \-.()/]{0,2}\d){5,22}(?!\d)")
_SSN = re.compile(r"(\d{3})([- ]?)(\d{2})\2(\d{4})")
_CARD = re.compile(r"\d(?<![\d\-+]\d)(?<!\d[ -]\d)(?:\d{3}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{3}([ -])\d{6}\2\d{4,5}|\d{11,18})"
                   r"(?!\d|[ -]\d{4}|[.,]\d)")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Za-z0-9]){11,32}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![\w:])")
# how national numbers are written in some countries: a candidate of another shape is not parsed
_NATIONAL_SHAPES = {
    "US": re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}"),
    "CA": re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}"),
    "GB": re.compile(r"(?:\(0\d{2,4}\)|0\d{2,4}) ?-?\d{3,4}(?:[ -]?\d{3,4})?"),
}
# the digits of national numbers in some countries (trunk prefix, length): others are not parsed
_NATIONAL_DIGITS = {
    "DE": re.compile(r"0[1-9]\d{4,12}"),
    "FR": re.compile(r"0[1-9]\d{8}"),
    "IN": re.compile(r"0?[6-9]\d{9}|0[1-9]\d{8,9}"),
    "NL": re.compile(r"0[1-9]\d{8}"),
    "ES": re.compile(r"[6-9]\d{8}"),
    "IT": re.compile(r"0\d{5,10}|3\d{8,9}"),
    "AU": re.compile(r"0[2-478]\d{8}"),
}
_NANP_WRITTEN = re.compile(r"(?:\+1[ .-]?|001[ .-]|1[ .-])?(?:\(\d{3}\) ?\d{3}[-.]|\d{3}([-.])\d{3}\1|\d{3} \d{3} )\d{4}")
_NANP_DIGITS = re.compile(r"(?:\+?1)?[2-9]\d{9}")
_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension) ?\d{1,6}(?!\w)", re.I)
#: The prefilter's triggers (name, RE2 pattern; ``\p{Nd}`` is Python's ``\d``), each necessary for
#: what it names: the hints of IPv4 and IPv6 addresses, the start of an IBAN (two capitals after
#: no letter or digit, two digits), a word naming a passport (any case).
TRIGGERS: tuple[tuple[str, str], ...] = (
    ("pii.ipv4", r"\.\p{Nd}{1,3}\.\p{Nd}{1,3}\."),
    ("pii.ipv6", r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"),
    ("pii.iban", r"(?:^|[^A-Za-z0-9])[A-Z][A-Z]\p{Nd}\p{Nd}"),
    ("pii.passport", r"(?i)passport|reisepass|passeport|pasaporte|paspoort"),
    # the words of _PHONE_KEY without its boundaries; U+0130 and U+0131 match "i" in Python's re.I
    ("pii.phone_key", r"(?i)phone|tel|cell|call|fax|whatsapp|sms|text me|contact|mob[i\x{130}\x{131}]le"),
)
_VERSION_BEFORE = re.compile(r"(?:\bv|version|ver\.?|release|build|rv:|[A-Za-z]/)\s{0,3}\Z", re.I)
_PASSPORT_WORDS = ("passport", "reisepass", "passeport", "pasaporte", "paspoort")
_PASSPORT_KEY = re.compile("|".join(_PASSPORT_WORDS), re.I)
_PASSPORT = re.compile(r"(?<![A-Za-z0-9])[A-Z]{0,2}\d{6,9}(?![A-Za-z0-9])|(?<![A-Za-z0-9])[A-Z0-9]{9}(?![A-Za-z0-9])")
_SSN_KEY = re.compile(r"\b(?:ssn|social security|soc\.? sec\.?|ss#|ss no)", re.I)
_CARD_KEY = re.compile(r"\b(?:card|cc|pan|visa|mastercard|amex|maestro|kreditkarte|carte|tarjeta)", re.I)
_PHONE_KEY = re.compile(r"\b(?:phone|tel|telephone|mobile|cell|call|fax|whatsapp|sms|text me|contact)\b", re.I)

#: The countries whose national phone formats are read by default (tried in this order).
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "NL", "ES", "IT", "AU", "CA")

TYPES = ("pii.email", "pii.phone", "pii.credit_card", "pii.iban", "pii.us_ssn", "pii.ip_address", "pii.passport")

# brand prefixes and lengths: (prefix ranges as (low, high) on the first digits, lengths)
_BRANDS: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (1, 4, 4, frozenset({13, 16, 19})),                # Visa
    (2, 51, 55, frozenset({16})),                      # Mastercard
    (4, 2221, 2720, frozenset({16})),                  # Mastercard 2-series
    (2, 34, 34, frozenset({15})), (2, 37, 37, frozenset({15})),  # American Express
    (4, 6011, 6011, frozenset(range(16, 20))), (3, 644, 649, frozenset(range(16, 20))),
    (2, 65, 65, frozenset(range(16, 20))),             # Discover
    (2, 35, 35, frozenset(range(16, 20))),             # JCB (3528-3589, and test ranges around it)
    (4, 2131, 2131, frozenset({15})), (4, 1800, 1800, frozenset({15})),  # JCB, 15 digits
    (3, 300, 305, frozenset(range(14, 20))), (2, 36, 36, frozenset(range(14, 20))),
    (2, 38, 39, frozenset(range(14, 20))),             # Diners Club
    (2, 62, 62, frozenset(range(16, 20))),             # UnionPay
    (2, 50, 50, frozenset(range(12, 20))), (2, 56, 58, frozenset(range(12, 20))),
    (2, 63, 63, frozenset(range(12, 20))), (2, 67, 67, frozenset(range(12, 20))),  # Maestro, Laser
    (4, 2200, 2204, frozenset({16})),                  # Mir
)


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    for width, low, high, lengths in _BRANDS:
        if n in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def _keyword_before(pattern: re.Pattern[str], text: str, start: int, window: int = 40) -> bool:
    return pattern.search(text, max(0, start - window), start) is not None


class PiiDetector:
    """Validated structured PII (types ``pii.email``, ``pii.phone``, ``pii.credit_card``, ``pii.iban``,
    ``pii.us_ssn``, ``pii.ip_address``, ``pii.passport``).

    ``phone_regions``: the countries whose national formats are read (numbers written with ``+`` or
    ``00`` are read whatever their country); ``phone_keywords_only``: report a national-format number
    only when a word such as *phone* or *call* precedes it."""

    name = "pii"
    version = "1"
    min_length = 6  # the shortest e-mail address (a@b.co): shorter strings are not scanned
    types = TYPES

    def __init__(self, *, phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
                 phone_keywords_only: bool = False) -> None:
        self._regions = tuple(str(r).upper() for r in phone_regions)
        self._phone_keywords_only = phone_keywords_only
        self._phone_cache = False

    def scan(self, text: str) -> Iterable[Hit]:
        hits: list[Hit] = []
        if "@" in text:
            hits.extend(self._emails(text))
        present = found(text)
        if "pii.ipv4" in present or "pii.ipv6" in present:
            hits.extend(self._ips(text, present))
        runs = number_runs(text)
        if runs or _has_digit(text):
            ibans = list(self._ibans(text)) if "pii.iban" in present else []
            cards = list(self._cards(text, runs))
            hits.extend(ibans)
            hits.extend(cards)
            hits.extend(self._numbers(text, runs, _Spans(h for h in (*ibans, *cards)), present))
            if "pii.passport" in present:
                low = text.lower()
                if any(word in low for word in _PASSPORT_WORDS):
                    hits.extend(self._passports(text))
        return hits

    # -- e-mail ----------------------------------------------------------------------------------
    @staticmethod
    def _emails(text: str) -> Iterator[Hit]:
        at = text.find("@")
        while at != -1:
            m = _email_at(text, at)
            at = text.find("@", at + 1)
            if m is None:
                continue
            local, _, domain = m.group().rpartition("@")
            if local.startswith(".") or local.endswith(".") or ".." in local:
                continue
            if domain.rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
                continue
            if m.start() and text[m.start() - 1] in ":/" and _in_url(text, m.start()):
                continue  # the user and password of scheme://user:pass@host
            yield Hit("pii.email", m.start(), m.end(), 0.99)

    # -- IP addresses ---------------------------------------------------------------------------
    @staticmethod
    def _ips(text: str, present: frozenset[str]) -> Iterator[Hit]:
        chars = _byte_view(text)
        if "pii.ipv4" in present:  # ".d.d." (the hint of an IPv4 address) occurs
            for m in _ip_matches(text, chars, _IPV4, _IPV4_CLASS, _IPV4_HINT):
                if not all(len(o) == 1 or (o[0] != "0" and int(o) < 256) for o in m.group().split(".")):
                    continue
                if _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):  # 1.2.3.4 of a release, Chrome/1.2.3.4
                    continue
                yield Hit("pii.ip_address", m.start(), m.end(), 0.9)
        if "pii.ipv6" in present:  # "::" or ":h:h:" (the hint of an IPv6 address) occurs
            for m in _ip_matches(text, chars, _IPV6, _IPV6_CLASS, _IPV6_HINT):
                candidate = m.group()
                if candidate.count(":") < 2 or (candidate.count(":") < 7 and "::" not in candidate):
                    continue
                if len(candidate.replace(":", "")) < 2 and candidate != "::1":
                    continue
                try:
                    ipaddress.IPv6Address(candidate)
                except ValueError:
                    continue
                yield Hit("pii.ip_address", m.start(), m.end(), 0.9)

    # -- numbers: cards, SSNs, phones -------------------------------------------------------------
    @staticmethod
    def _cards(text: str, runs: Sequence[tuple[int, int]]) -> Iterator[Hit]:
        for run_start, run_end in runs:
            if run_end - run_start >= 12 and sum(map(str.isdigit, text[run_start:run_end])) >= 12:
                yield from PiiDetector._cards_in(text, run_start, run_end)

    @staticmethod
    def _cards_in(text: str, run_start: int, run_end: int) -> Iterator[Hit]:
        for m in _CARD.finditer(text, run_start, min(len(text), run_end + 5)):
            digits = m.group().replace(" ", "").replace("-", "")
            if len(set(digits)) < 2 or not _card_brand_ok(digits) or not luhn_valid(digits):
                continue
            # an ungrouped run of unusual length (EAN-13 product codes...) needs a word naming a card
            if len(digits) == len(m.group()) and len(digits) not in (15, 16) \
                    and not _keyword_before(_CARD_KEY, text, m.start()):
                continue
            yield Hit("pii.credit_card", m.start(), m.end(), 0.97)

    def _numbers(self, text: str, runs: Sequence[tuple[int, int]], taken: _Spans,
                 present: frozenset[str]) -> Iterator[Hit]:
        for start, end in runs:
            if taken.overlaps(start, end):
                continue  # inside an IBAN or a card number
            if not _bounded(text, start, end) and _EXTENSION.match(text, end) is None:
                continue  # part of a word or reference (AB123456, 12345678Z), unless a phone extension follows
            raw = text[start:end]
            ssn = _SSN.fullmatch(raw)
            if ssn is not None and _ssn_valid(ssn) and (ssn.group(2) or _keyword_before(_SSN_KEY, text, start)):
                yield Hit("pii.us_ssn", start, end, 0.95 if ssn.group(2) else 0.9)
                continue
            score = self._phone(text, start, raw, "pii.phone_key" in present)
            if score:
                yield Hit("pii.phone", start, end, score)

    def _phone(self, text: str, start: int, raw: str, named: bool = True) -> float:
        """The score of ``raw`` at ``start`` as a phone number, 0 if it is none (``named``: a word
        naming a phone may occur in the text)."""
        digits = sum(map(str.isdigit, raw))
        if not 7 <= digits <= 15 or raw.count(".") > 2:
            return 0.0
        international = raw.startswith(("+", "00"))
        separated = digits < len(raw) - raw.startswith("+")
        # a national number without a word naming it must be formatted and have ten digits or more
        plain = not international and (self._phone_keywords_only or not separated or digits < 10)
        keyword = (plain or not international) and named and _keyword_before(_PHONE_KEY, text, start, 32)
        if plain and not keyword:
            return 0.0
        if not international and _looks_like_date(raw):
            return 0.0
        pn = self._lib()
        candidate = "+" + raw[2:] if raw.startswith("00") else raw
        if international:
            regions: tuple[str | None, ...] = (None,)
        else:
            only_digits = "".join(filter(str.isdigit, raw))
            regions = tuple(r for r in self._regions
                            if (r not in _NATIONAL_SHAPES or _NATIONAL_SHAPES[r].fullmatch(raw))
                            and (r not in _NATIONAL_DIGITS or _NATIONAL_DIGITS[r].fullmatch(only_digits)))
        for region in regions:
            try:
                number = pn.parse(candidate, region)
            except pn.NumberParseException:
                continue
            if not pn.is_valid_number(number):
                continue
            if not international and not keyword and separated and _groups(raw) != _groups(
                    pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)):
                continue  # digits grouped unlike this country writes its numbers: a part or case number
            return 0.95 if international or keyword else 0.85
        # written exactly as North American numbers are (555-123-4567, (555) 123-4567, +1 555 123 4567)
        # but outside the number plan (an unassigned area code, a made-up number): still a phone
        # number to anyone reading it, reported with a lower score
        if (international or "US" in self._regions) and (
                _NANP_WRITTEN.fullmatch(raw) or (keyword and _NANP_DIGITS.fullmatch(raw))):
            return 0.6
        return 0.0

    def _lib(self) -> Any:
        import phonenumbers  # loaded on first use: its metadata is large

        if not self._phone_cache:
            # keep its compiled metadata patterns rather than recompile those that drop out of
            # the re module's bounded cache (versions without the switch keep that behaviour)
            enable = getattr(getattr(phonenumbers, "re_util", None), "enable_pattern_cache", None)
            if enable is not None:
                enable()
            self._phone_cache = True
        return phonenumbers

    # -- IBAN --------------------------------------------------------------------------------------
    @staticmethod
    def _ibans(text: str) -> Iterator[Hit]:
        for m in _IBAN.finditer(text):
            raw = m.group()
            compact = raw.replace(" ", "").upper()
            if iban_valid(compact):
                yield Hit("pii.iban", m.start(), m.end(), 0.99)
                continue
            # the run may have swallowed a following word: retry at the country's exact length
            length = _iban_length(compact)
            if length and len(compact) > length:
                kept, count = 0, 0
                for i, ch in enumerate(raw):
                    if ch != " ":
                        count += 1
                    if count == length:
                        kept = i + 1
                        break
                if kept and iban_valid(raw[:kept].replace(" ", "").upper()) and not raw[kept:kept + 1].isalnum():
                    yield Hit("pii.iban", m.start(), m.start() + kept, 0.99)

    # -- passports -----------------------------------------------------------------------------------
    @staticmethod
    def _passports(text: str) -> Iterator[Hit]:
        for key in _PASSPORT_KEY.finditer(text):
            window_end = min(len(text), key.end() + 40)
            m = _PASSPORT.search(text, key.end(), window_end)
            if m is not None and any(ch.isdigit() for ch in m.group()):
                yield Hit("pii.passport", m.start(), m.end(), 0.8)


def _groups(text: str) -> list[int]:
    return [len(g) for g in re.split(r"\D+", text) if g]


def _in_url(text: str, start: int) -> bool:
    window = text[max(0, start - 300):start]
    token = window.rsplit(None, 1)[-1] if window.strip() else ""
    return "://" in token


_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+%'-")


def _email_at(text: str, at: int) -> re.Match[str] | None:
    """The address around the ``@`` at ``at``: the run of local-part characters before it (at most
    64) and a domain after it, matched by the full pattern from the start of that run."""
    start = at
    while start > 0 and at - start < 65 and (text[start - 1] in _LOCAL_CHARS or text[start - 1].isalnum()):
        start -= 1
    if start == at:
        return None
    m = _EMAIL.match(text, start)
    if m is None or m.end() <= at:
        return None
    return m


class _Spans:
    """Spans already taken, for overlap tests in logarithmic time (hits come in text order)."""

    def __init__(self, hits: Iterable[Hit]) -> None:
        spans = sorted((h.start, h.end) for h in hits)
        self._starts = [s for s, _e in spans]
        self._ends = [e for _s, e in spans]
        # the furthest end among the spans up to each index, so one bisect answers
        furthest, acc = [], -1
        for e in self._ends:
            acc = max(acc, e)
            furthest.append(acc)
        self._furthest = furthest

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end) - 1  # the last span starting before ``end``
        return i >= 0 and self._furthest[i] > start


_RUNS_CACHE: list[tuple[str, list[tuple[int, int]]]] = []


def number_runs(text: str) -> list[tuple[int, int]]:
    """The runs of digits (with the separators numbers are written with) that may hold a numeric
    identifier: six digits or more, letters allowed on either side (``X1234567L``, ``DE89…``). Shared by the detectors scanning the same text in turn (the last
    text's runs are kept)."""
    cached = _RUNS_CACHE[0] if _RUNS_CACHE else None
    if cached is not None and cached[0] is text:
        return cached[1]
    runs: list[tuple[int, int]] = []
    if not _has_digit(text):
        pass
    elif text.isascii() or not any(ch.isdecimal() for run in _NON_ASCII.findall(text) for ch in run):
        # one byte per character; what is not ASCII is no digit here, and becomes "?" (class "x")
        classes = text.encode("ascii", "replace").translate(_RUN_CLASS)
        for cluster in _CLUSTER.finditer(classes):
            start, end = cluster.span()
            if (start == 0 or text[start - 1] not in "+(.-/") and classes.count(b"0", start, end) <= 23:
                runs.append((start, end))  # nothing before it that a run may take in or that stops one
            else:  # a run lies inside the cluster, with the "+" or "(" that may open it
                runs.extend(m.span() for m in _NUMBER.finditer(text, max(0, start - 2), end))
    else:
        runs = [m.span() for m in _NUMBER.finditer(text)]
    _RUNS_CACHE[:] = [(text, runs)]
    return runs


# digits ("0"), the separators a run allows between them ("s") and the rest ("x"), byte by byte;
# a cluster is six digits or more with at most two separators between neighbours: every run of
# ``_NUMBER`` lies in one, and the cluster scan has a literal first character (fast to search)
_RUN_CLASS = bytes(0x30 if chr(i) in "0123456789" else 0x73 if chr(i) in " -.()/" else 0x78 for i in range(256))
_CLUSTER = re.compile(rb"0(?:s{0,2}0){5,}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _byte_view(text: str) -> bytes | None:
    """``text`` as one byte per character (what is not ASCII becomes ``?``), or None when a
    character that is not ASCII is a decimal digit (``\\d`` would match it)."""
    if text.isascii():
        return text.encode("ascii")
    if any(ch.isdecimal() for run in _NON_ASCII.findall(text) for ch in run):
        return None
    return text.encode("ascii", "replace")


# IPv4: digits ("d") and dots; IPv6: hex digits and dots ("h") and colons; the rest is " "
_IPV4_CLASS = bytes(0x64 if chr(i) in "0123456789" else 0x2E if i == 0x2E else 0x20 for i in range(256))
_IPV6_CLASS = bytes(0x68 if chr(i) in "0123456789abcdefABCDEF." else 0x3A if i == 0x3A else 0x20
                    for i in range(256))
# in those classes, what every address holds: ".b.c." of a.b.c.d, two colons with hex between
_IPV4_HINT = re.compile(rb"\.d{1,3}\.d{1,3}\.")
_IPV6_HINT = re.compile(rb":h{0,4}:")


def _ip_matches(text: str, chars: bytes | None, pattern: re.Pattern[str], table: bytes,
                hint: re.Pattern[bytes]) -> Iterator[re.Match[str]]:
    """The matches of ``pattern`` in ``text``, found only in the maximal runs of its characters
    that hold ``hint`` (each run searched with the character after it, for the look-ahead):
    every match lies in such a run, and look-behinds see the text before the run."""
    if chars is None:
        yield from pattern.finditer(text)
        return
    classes = chars.translate(table)
    found_hint = hint.search(classes)
    while found_hint is not None:
        start = classes.rfind(b" ", 0, found_hint.start()) + 1
        end = classes.find(b" ", found_hint.end())
        if end == -1:
            end = len(classes)
        yield from pattern.finditer(text, start, min(len(classes), end + 1))
        found_hint = hint.search(classes, end)


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether the run stands alone: no letter, digit or ``_`` touches it, and no ``.``, ``-`` or
    ``/`` followed by a digit continues it."""
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after == "_":
            return False
        if after in ".-/" and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")


def _iban_length(compact: str) -> int:
    from lictor.detect.checksums import IBAN_LENGTHS

    return IBAN_LENGTHS.get(compact[:2], 0)


def _ssn_valid(m: re.Match[str]) -> bool:
    area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


_DATE = re.compile(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])"
                   r"|(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)\d\d"
                   r"|(?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])[-./](?:19|20)\d\d")


def _looks_like_date(raw: str) -> bool:
    return _DATE.fullmatch(raw) is not None
