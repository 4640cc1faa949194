"""National identity numbers with their check rules: UK National Insurance number (format and
prefix rules), Dutch BSN (11-proof), Spanish DNI and NIE (control letter), Indian Aadhaar (Verhoeff),
French NIR (mod 97 key) and German tax id (ISO 7064 mod 11,10 and its digit-repetition rule).

Numbers whose check is weak against random digits (BSN, German tax id, unspaced Aadhaar) are
reported only after a keyword naming them, so that order numbers are not taken for them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from lictor.detect.base import Hit
from lictor.detect.checksums import dni_letter, eleven_proof, mod11_10_valid, verhoeff_valid
from lictor.detect.pii import number_runs
from lictor.detect.triggers import found

__all__ = ["NationalIdDetector"]

TYPES = ("pii.national_id.uk_nino", "pii.national_id.nl_bsn", "pii.national_id.es_dni",
         "pii.national_id.es_nie", "pii.national_id.in_aadhaar", "pii.national_id.fr_nir",
         "pii.national_id.de_tax_id")

_NINO = re.compile(r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])"
                   r"(?![A-Za-z0-9])")
_UPPER = re.compile(r"[A-Z]")
_DIGIT_LETTER = re.compile(r"\d-?[A-Za-z]")
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_DNI = re.compile(r"(\d(?<![A-Za-z0-9]\d)\d{7})-?([A-Za-z])(?![A-Za-z0-9])")
_NIE = re.compile(r"(?<![A-Za-z0-9])([XYZ])-?(\d{7})-?([A-Za-z])(?![A-Za-z0-9])")
_AADHAAR = re.compile(r"[2-9](?<![\w-][2-9])(?<!\d [2-9])\d{3}([ -]?)\d{4}\1\d{4}(?![\w]|[-. ]\d)")
_NIR = re.compile(r"([12])(?<!\w[12]) ?(\d{2}) ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})"
                  r"(?![\w])")
_NINE = re.compile(r"\d(?<![\w.-]\d)(?:\d{3}\.?\d{2}\.?\d{3}|\d{2}[ .]\d{3}[ .]\d{3})(?![\w]|[.-]\d)")
_ELEVEN = re.compile(r"[1-9](?<![\w./-][1-9])(?:\d(?: ?\d{3}){3}|\d{10})(?![\w]|[./-]\d)")
_BSN_WORDS = ("bsn", "burgerservicenummer", "sofi", "citizen service number")
_AADHAAR_WORDS = ("aadhaar", "aadhar", "uidai", "uid")
_DE_TAX_WORDS = ("steuer", "idnr", "tax id", "tin", "identifikationsnummer")
#: The prefilter's triggers (name, RE2 pattern): the words that let BSN and German tax ids be
#: reported, in any case.
TRIGGERS: tuple[tuple[str, str], ...] = (
    ("national.bsn", "(?i)" + "|".join(_BSN_WORDS)),
    ("national.de_tax", "(?i)" + "|".join(_DE_TAX_WORDS)),
)
_BSN_KEY = re.compile(r"\b(?:bsn|burgerservicenummer|sofi(?:nummer)?|citizen service number)\b", re.I)
_AADHAAR_KEY = re.compile(r"\b(?:aadhaar|aadhar|uidai|uid)\b", re.I)
_DE_TAX_KEY = re.compile(r"\b(?:steuer-?id(?:entifikationsnummer)?|steuerliche identifikationsnummer|idnr|"
                         r"tax id|tin|identifikationsnummer)\b", re.I)


def _keyword_before(pattern: re.Pattern[str], text: str, start: int, window: int = 40) -> bool:
    return pattern.search(text, max(0, start - window), start) is not None


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _de_tax_ok(digits: str) -> bool:
    if len(digits) != 11 or digits[0] == "0" or not mod11_10_valid(digits):
        return False
    counts = sorted(Counter(digits[:10]).values(), reverse=True)
    # since 2016: exactly one digit occurs twice or three times (never three in a row), the rest once
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] != 1):
        return False
    return not any(digits[i] == digits[i + 1] == digits[i + 2] for i in range(8))


class NationalIdDetector:
    """National identity numbers of several countries, each validated by its check rule (types
    ``pii.national_id.*``)."""

    name = "national_id"
    version = "1"
    min_length = 6  # six digits at least: shorter strings are not scanned
    types = TYPES

    def scan(self, text: str) -> Iterable[Hit]:
        runs = number_runs(text)  # every number here has six digits or more
        if not runs:
            return ()
        present = found(text)
        bsn = de_tax = False
        if "national.bsn" in present or "national.de_tax" in present:
            low = text.lower()
            bsn = any(w in low for w in _BSN_WORDS)
            de_tax = any(w in low for w in _DE_TAX_WORDS)
        hits: list[Hit] = []
        nie = any(c in text for c in "XYZ")
        for start, end in runs:
            # each pattern is tried around this run only: a letter or two may sit before or after it,
            # and only a pattern whose digits the window can hold (a match lies inside the window)
            lo, hi = max(0, start - 3), min(len(text), end + 4)
            digits = sum(map(str.isdecimal, text[lo:hi]))
            # a NINO holds capitals; a DNI or NIE a letter right after its digits (a NIE a capital too)
            upper = _UPPER.search(text, lo, hi) is not None
            if upper:
                hits.extend(self._nino(text, lo, hi))  # six digits: every run has them
            if digits >= 7 and _DIGIT_LETTER.search(text, lo, hi) is not None:
                hits.extend(self._dni(text, lo, hi, nie and upper, digits >= 8))
            if digits >= 12:
                hits.extend(self._aadhaar(text, lo, hi))
            if digits >= 13:
                hits.extend(self._nir(text, lo, hi))
            if bsn and digits >= 9:
                hits.extend(self._bsn(text, lo, hi))
            if de_tax and digits >= 11:
                hits.extend(self._de_tax(text, lo, hi))
        if len(hits) < 2:
            return hits
        return sorted(set(hits), key=lambda h: (h.start, h.end, h.type))

    @staticmethod
    def _nino(text: str, lo: int, hi: int) -> Iterator[Hit]:
        for m in _NINO.finditer(text, lo, hi):
            prefix = m.group(1)
            if prefix in _NINO_BAD_PREFIXES or prefix[1] == "O":
                continue
            yield Hit("pii.national_id.uk_nino", m.start(), m.end(), 0.9)

    @staticmethod
    def _dni(text: str, lo: int, hi: int, nie: bool, dni: bool = True) -> Iterator[Hit]:
        for m in _DNI.finditer(text, lo, hi) if dni else ():
            if dni_letter(int(m.group(1))) == m.group(2).upper():
                yield Hit("pii.national_id.es_dni", m.start(), m.end(), 0.95)
        for m in _NIE.finditer(text, lo, hi) if nie else ():
            number = int("XYZ".index(m.group(1)).__str__() + m.group(2))
            if dni_letter(number) == m.group(3).upper():
                yield Hit("pii.national_id.es_nie", m.start(), m.end(), 0.95)

    @staticmethod
    def _aadhaar(text: str, lo: int, hi: int) -> Iterator[Hit]:
        for m in _AADHAAR.finditer(text, lo, hi):
            digits = _digits(m.group())
            if len(set(digits)) < 3 or not verhoeff_valid(digits):
                continue
            if m.group(1) or _keyword_before(_AADHAAR_KEY, text, m.start()):
                yield Hit("pii.national_id.in_aadhaar", m.start(), m.end(), 0.9)

    @staticmethod
    def _nir(text: str, lo: int, hi: int) -> Iterator[Hit]:
        for m in _NIR.finditer(text, lo, hi):
            dept = m.group(4)
            body = m.group(1) + m.group(2) + m.group(3) + dept + m.group(5) + m.group(6)
            number = int(body.replace("2A", "19").replace("2B", "18"))
            if 97 - number % 97 == int(m.group(7)):
                yield Hit("pii.national_id.fr_nir", m.start(), m.end(), 0.95)

    @staticmethod
    def _bsn(text: str, lo: int, hi: int) -> Iterator[Hit]:
        for m in _NINE.finditer(text, lo, hi):
            if _keyword_before(_BSN_KEY, text, m.start()) and eleven_proof(_digits(m.group())):
                yield Hit("pii.national_id.nl_bsn", m.start(), m.end(), 0.9)

    @staticmethod
    def _de_tax(text: str, lo: int, hi: int) -> Iterator[Hit]:
        for m in _ELEVEN.finditer(text, lo, hi):
            if _keyword_before(_DE_TAX_KEY, text, m.start()) and _de_tax_ok(_digits(m.group())):
                yield Hit("pii.national_id.de_tax_id", m.start(), m.end(), 0.9)
