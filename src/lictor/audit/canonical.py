"""RFC 8785 JSON Canonicalization Scheme: the exact bytes of an audit leaf, the same for every writer.

Two paths give the same bytes. The fast one serialises with orjson (compact, keys sorted by code
point, integers beyond ±(2**53 - 1) refused) and keeps the result only when it is provably RFC
8785 of the value: parsed back, every number with a fraction or an exponent is already in RFC
8785's form (the decoder hands each such literal to a check) and the result equals the value, and
it has no character beyond U+FFFF (where code
point order and RFC 8785's UTF-16 order could differ). Everything else, and every error, takes the full canonicaliser
below, which is the reference; tests/audit/test_canonical.py holds the two paths to each other and
to a second RFC 8785 implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from typing import Final

import msgspec
import orjson

from lictor.errors import InputError

__all__ = ["MAX_SAFE_INTEGER", "canonical_json", "format_number"]

#: I-JSON (RFC 7493 §2.2): integers beyond this magnitude are not exact in a binary64 and are refused.
MAX_SAFE_INTEGER: Final = 2**53 - 1

_FLOAT_SAFE: Final = float(2**53)
_quote: Final[Callable[[str], str]] = encode_basestring  # escapes '"', '\\' and U+0000..U+001F only


class _Fault(Exception):
    """An error found deep in the value; the path is built while the recursion unwinds."""

    def __init__(self, message: str, *, is_type: bool) -> None:
        super().__init__(message)
        self.message = message
        self.is_type = is_type
        self.segments: list[str] = []

    def error(self) -> Exception:
        path = "$" + "".join(reversed(self.segments))
        if self.is_type:
            return TypeError(f"{path}: {self.message}")
        return InputError(self.message, path=path)


#: orjson's options for the fast path: dataclasses and dates go to the full path (which refuses them).
_FAST: Final = (orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER | orjson.OPT_PASSTHROUGH_DATACLASS
                | orjson.OPT_PASSTHROUGH_DATETIME)
_BELOW_FOUR_BYTE_LEAD: Final = bytes(range(0xF0))


class _Fraction(ValueError):
    pass


def _only_canonical_fraction(text: str) -> float:
    """Accept a number literal with a fraction or exponent only if it is already in the form RFC
    8785 gives (ECMAScript's shortest round-trip form)."""
    number = float(text)
    if format_number(number) != text:
        raise _Fraction(text)
    return number


_parse_canonical_numbers: Final = msgspec.json.Decoder(float_hook=_only_canonical_fraction).decode


def _fast(value: object) -> bytes | None:
    """orjson's bytes for ``value`` when they are provably RFC 8785 of exactly ``value``, else None.

    Parsing the bytes back must give numbers already in RFC 8785's form and a value equal to the
    input: that refuses what
    orjson writes in its own way (NaN and infinities as null, tuples, enums and UUIDs as arrays,
    values and strings), which the full path then treats as the contract says."""
    try:
        data = orjson.dumps(value, option=_FAST)
    except TypeError:  # orjson.JSONEncodeError included: a type, a big integer, a surrogate
        return None
    if not data.isascii() and data.translate(None, _BELOW_FOUR_BYTE_LEAD):
        return None
    try:
        same = _parse_canonical_numbers(data) == value
    except (ValueError, RecursionError):
        return None
    return data if same else None


def canonical_json(value: object) -> bytes:
    """Serialise JSON data (dict with str keys, list, str, int, float, bool, None) to RFC 8785 bytes.

    Raises ``TypeError`` naming the JSON path for any other type (tuples included) and
    :class:`~lictor.errors.InputError` (a ``ValueError``) for values I-JSON cannot carry: NaN and
    infinities, integers beyond ±(2**53 - 1), and strings holding lone surrogates.
    """
    data = _fast(value)
    if data is not None:
        return data
    try:
        text = _value(value)
    except _Fault as fault:
        raise fault.error() from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        path = _surrogate_path(value, "$") or "$"
        raise InputError("string holds a lone surrogate", path=path) from None


def format_number(number: float) -> str:
    """The ECMAScript Number::toString form of a finite double (RFC 8785 §3.2.2.3); -0 gives ``0``."""
    if number.is_integer() and -_FLOAT_SAFE <= number <= _FLOAT_SAFE:
        return str(int(number))
    if not math.isfinite(number):
        raise ValueError(f"{number!r} has no JSON form")
    text = repr(number)
    if "e" not in text:
        # repr uses fixed notation for 1e-4 <= |x| < 1e16: shortest digits, as ECMAScript does.
        return text[:-2] if text.endswith(".0") else text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent_text = text.partition("e")
    digits = mantissa.replace(".", "")
    k = len(digits)
    n = int(exponent_text) + 1  # the value is 0.<digits> * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    exponent = n - 1
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequence of UTF-16 code units does.
    return key.encode("utf-16-be", "surrogatepass")


def _value(value: object) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)  # type: ignore[arg-type]
    if kind is dict:
        return _object(value)  # type: ignore[arg-type]
    if kind is list:
        return _array(value)  # type: ignore[arg-type]
    if kind is int:
        return _integer(value)  # type: ignore[arg-type]
    if kind is float:
        return _float(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _subclass(value)


def _subclass(value: object) -> str:
    """Subclasses of the JSON types (IntEnum, StrEnum, OrderedDict, ...) serialise as their base type."""
    if isinstance(value, str):
        return _quote(str.__str__(value))
    if isinstance(value, int):
        return _integer(int(value))
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, dict):
        return _object(dict(value))
    if isinstance(value, list):
        return _array(list(value))
    raise _Fault(f"{type(value).__name__} is not a JSON type", is_type=True)


def _integer(value: int) -> str:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    raise _Fault("integer beyond ±(2**53 - 1) is not exact in I-JSON", is_type=False)


def _float(value: float) -> str:
    if value - value != 0.0:  # NaN or an infinity
        raise _Fault(f"{value!r} has no JSON form", is_type=False)
    return format_number(value)


def _object(value: dict[str, object]) -> str:
    try:
        keys = sorted(value)
        if not "".join(keys).isascii():
            keys.sort(key=_utf16_key)
    except TypeError:
        raise _key_fault(value) from None
    members = []
    try:
        for key in keys:
            members.append(_quote(key) + ":" + _value(value[key]))
    except _Fault as fault:
        fault.segments.append(_member(key))
        raise
    except TypeError:  # a non-string key that sorted with its peers (all ints, say)
        raise _key_fault(value) from None
    return "{" + ",".join(members) + "}"


def _array(value: list[object]) -> str:
    index = 0
    try:
        items = []
        for item in value:
            items.append(_value(item))
            index += 1
    except _Fault as fault:
        fault.segments.append(f"[{index}]")
        raise
    return "[" + ",".join(items) + "]"


def _key_fault(keys: Iterable[object]) -> _Fault:
    for key in keys:
        if not isinstance(key, str):
            fault = _Fault(f"object key {key!r} is not a string", is_type=True)
            fault.segments.append(f"[{key!r}]")
            return fault
    return _Fault("object keys cannot be ordered", is_type=True)  # pragma: no cover


def _member(key: str) -> str:
    if key.isidentifier() and key.isascii():
        return "." + key
    return "[" + _quote(key) + "]"


def _surrogate_path(value: object, path: str) -> str:
    """Find the first string (or key) holding a lone surrogate; only called after encoding failed."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else ""
    if isinstance(value, dict):
        for key, item in value.items():
            member = path + _member(key).encode("utf-8", "backslashreplace").decode("ascii")
            if _has_surrogate(key):
                return member
            found = _surrogate_path(item, member)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{index}]")
            if found:
                return found
    return ""


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)
