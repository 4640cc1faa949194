"""Runtime of compiled CEL: the value semantics (equality, ordering, arithmetic, conversions, time).

Values are plain Python: int (64-bit checked), float, str, bool, None, list, dict, aware datetime
(timestamp) and timedelta (duration). Every function here either returns a CEL value or raises
:class:`CelEvalError`; generated code calls them for everything it does not inline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

__all__ = ["CelEvalError"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NUM = frozenset({int, float})
SCALARS = frozenset({int, float, str, bool, type(None), datetime, timedelta})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TS = datetime(1, 1, 1, tzinfo=UTC)
MAX_TS = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_DURATION = timedelta(seconds=315576000000)


class CelEvalError(Exception):
    """A CEL runtime error value (no such key, no matching overload, overflow, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def type_name(v: object) -> str:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "double"
    if t is str:
        return "string"
    if v is None:
        return "null_type"
    if t is list:
        return "list"
    if t is dict:
        return "map"
    if t is datetime:
        return "google.protobuf.Timestamp"
    if t is timedelta:
        return "google.protobuf.Duration"
    return t.__name__


def as_error(exc: BaseException) -> CelEvalError:
    """Translate any exception raised while evaluating into a CEL error value."""
    if isinstance(exc, CelEvalError):
        return exc
    if isinstance(exc, KeyError):
        return CelEvalError(f"no such key: {exc.args[0]!r}" if exc.args else "no such key")
    if isinstance(exc, IndexError):
        return CelEvalError("index out of range")
    if isinstance(exc, ZeroDivisionError):
        return CelEvalError("divide by zero")
    if isinstance(exc, (OverflowError, RecursionError)):
        return CelEvalError("value out of range")
    if isinstance(exc, TypeError):
        return CelEvalError(f"no matching overload: {exc}")
    return CelEvalError(f"{type(exc).__name__}: {exc}")


def no_overload(fn: str, *args: object) -> CelEvalError:
    return CelEvalError(f"no matching overload for {fn}({', '.join(type_name(a) for a in args)})")


def check_int(v: int) -> int:
    if INT64_MIN <= v <= INT64_MAX:
        return v
    raise CelEvalError("integer overflow")


def check_ts(v: datetime) -> datetime:
    if MIN_TS <= v <= MAX_TS:
        return v
    raise CelEvalError("timestamp out of range")


def check_dur(v: timedelta) -> timedelta:
    if -MAX_DURATION <= v <= MAX_DURATION:
        return v
    raise CelEvalError("duration out of range")


# --------------------------------------------------------------------------- equality and ordering


def eq(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            if len(a) != len(b):
                return False
            for k, v in a.items():
                found, other = map_get(b, k)
                if not found or not eq(v, other):
                    return False
            return True
        return bool(a == b)
    if ta in NUM and tb in NUM:
        return bool(a == b)
    return False


def map_get(m: dict[Any, Any], key: Any) -> tuple[bool, Any]:
    """Look a key up with CEL's key equality (1 and 1.0 are the same key; true and 1 are not)."""
    tk = type(key)
    if tk is str:
        if key in m:
            return True, m[key]
        return False, None
    if tk is bool or tk in NUM:
        if tk is float and not key.is_integer():
            return False, None
        for stored in m:
            ts = type(stored)
            if (ts is bool) == (tk is bool) and ts in _KEYABLE and stored == key:
                return True, m[stored]
        return False, None
    raise no_overload("_[_]", m, key)


_KEYABLE = frozenset({bool, int, float})
_MISSING = object()

_ORDERED = frozenset({int, float, str, bool, datetime, timedelta})


def compare(op: str, a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if (ta is tb and ta in _ORDERED) or (ta in NUM and tb in NUM):
        pass
    else:
        raise no_overload(op, a, b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def lt(a: Any, b: Any) -> bool:
    return compare("<", a, b)


def le(a: Any, b: Any) -> bool:
    return compare("<=", a, b)


def gt(a: Any, b: Any) -> bool:
    return compare(">", a, b)


def ge(a: Any, b: Any) -> bool:
    return compare(">=", a, b)


def in_(item: Any, container: Any) -> bool:
    """CEL ``item in container`` for lists (element equality) and maps (key presence)."""
    t = type(container)
    if t is list:
        ti = type(item)
        if ti is str:
            return item in container  # a str is equal only to a str, in Python as in CEL
        return any(eq(item, x) for x in container)
    if t is dict:
        if type(item) in (str, bool, int, float):
            return map_get(container, item)[0]
        raise no_overload("@in", item, container)
    raise no_overload("@in", item, container)


# --------------------------------------------------------------------------- access


def select(obj: Any, field: str) -> Any:
    if type(obj) is dict:
        if field in obj:
            return obj[field]
        raise CelEvalError(f"no such key: {field!r}")
    raise CelEvalError(f"type {type_name(obj)} does not support field selection ({field!r})")


def has(obj: Any, field: str) -> bool:
    if type(obj) is dict:
        return field in obj
    raise CelEvalError(f"has() needs a map, got {type_name(obj)}")


def index(obj: Any, key: Any) -> Any:
    t = type(obj)
    if t is list:
        tk = type(key)
        if tk is float and key.is_integer():
            key = int(key)
        elif tk is not int:
            raise no_overload("_[_]", obj, key)
        if 0 <= key < len(obj):
            return obj[key]
        raise CelEvalError(f"index out of range: {key}")
    if t is dict:
        found, value = map_get(obj, key)
        if found:
            return value
        raise CelEvalError(f"no such key: {key!r}")
    raise no_overload("_[_]", obj, key)


def size(v: Any) -> int:
    if type(v) in (str, list, dict):
        return len(v)
    raise no_overload("size", v)


def iter_range(v: Any, macro: str) -> list[Any]:
    if type(v) is list:
        return v
    if type(v) is dict:
        return list(v)
    raise no_overload(macro, v)


def truth(v: Any, what: str) -> bool:
    if v is True or v is False:
        return v
    raise CelEvalError(f"no matching overload: {what} needs a bool, got {type_name(v)}")


# --------------------------------------------------------------------------- arithmetic


def add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return check_int(a + b)
        if ta is float or ta is str:
            return a + b
        if ta is list:
            return a + b
        if ta is timedelta:
            return check_dur(a + b)
    elif ta is datetime and tb is timedelta:
        return _ts_add(a, b)
    elif ta is timedelta and tb is datetime:
        return _ts_add(b, a)
    raise no_overload("_+_", a, b)


def _ts_add(ts: datetime, d: timedelta) -> datetime:
    try:
        return check_ts(ts + d)
    except OverflowError as exc:
        raise CelEvalError("timestamp out of range") from exc


def sub(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return check_int(a - b)
        if ta is float:
            return a - b
        if ta is timedelta:
            return check_dur(a - b)
        if ta is datetime:
            return check_dur(a - b)
    elif ta is datetime and tb is timedelta:
        return _ts_add(a, -b)
    raise no_overload("_-_", a, b)


def mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return check_int(a * b)
        if ta is float:
            return a * b
    raise no_overload("_*_", a, b)


def div(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            if b == 0:
                raise CelEvalError("divide by zero")
            q = abs(a) // abs(b)
            return check_int(q if (a >= 0) == (b >= 0) else -q)
        if ta is float:
            if b == 0.0:
                if a == 0.0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
    raise no_overload("_/_", a, b)


def mod(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        if b == 0:
            raise CelEvalError("modulus by zero")
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    raise no_overload("_%_", a, b)


def neg(a: Any) -> Any:
    t = type(a)
    if t is int:
        return check_int(-a)
    if t is float:
        return -a
    if t is timedelta:
        return -a
    raise no_overload("-_", a)


def not_(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise no_overload("!_", a)


# --------------------------------------------------------------------------- strings


def starts_with(s: Any, p: Any) -> bool:
    if type(s) is str and type(p) is str:
        return s.startswith(p)
    raise no_overload("startsWith", s, p)


def ends_with(s: Any, p: Any) -> bool:
    if type(s) is str and type(p) is str:
        return s.endswith(p)
    raise no_overload("endsWith", s, p)


def str_contains(s: Any, p: Any) -> bool:
    if type(s) is str and type(p) is str:
        return p in s
    raise no_overload("contains", s, p)


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """Compile an RE2 pattern (linear-time, no backtracking) as CEL ``matches`` requires."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise CelEvalError(f"invalid regular expression: {detail}") from None


def matches(s: Any, p: Any) -> bool:
    if type(s) is str and type(p) is str:
        return compile_regex(p).search(s) is not None
    raise no_overload("matches", s, p)


def matcher(pattern: str) -> Callable[[Any], bool]:
    """A ``matches`` with its pattern compiled once (the pattern is a literal)."""
    rx = compile_regex(pattern)

    def match(s: Any) -> bool:
        if type(s) is str:
            return rx.search(s) is not None
        raise no_overload("matches", s, pattern)

    return match


# --------------------------------------------------------------------------- glob


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob (``*`` any run, ``?`` one character, ``[abc]`` a class) to an anchored regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^' if negate else ''}{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def glob_match(text: Any, pattern: Any) -> bool:
    if type(text) is str and type(pattern) is str:
        return glob_regex(pattern).match(text) is not None
    raise no_overload("glob", text, pattern)


def finding_types(findings: Any) -> list[str]:
    if type(findings) is not list:
        raise no_overload("has_finding", findings)
    out = []
    for f in findings:
        if type(f) is dict and type(f.get("type")) is str:
            out.append(f["type"])
        else:
            raise CelEvalError("findings must be maps with a string 'type'")
    return out


def has_finding(findings: Any, pattern: Any) -> bool:
    if type(pattern) is not str:
        raise no_overload("has_finding", pattern)
    rx = glob_regex(pattern)
    return any(rx.match(t) for t in finding_types(findings))


def finding_count(findings: Any, pattern: Any) -> int:
    if type(pattern) is not str:
        raise no_overload("finding_count", pattern)
    rx = glob_regex(pattern)
    return sum(1 for t in finding_types(findings) if rx.match(t))


# --------------------------------------------------------------------------- conversions


def to_int(v: Any) -> int:
    t = type(v)
    if t is int:
        return v  # type: ignore[no-any-return]
    if t is float:
        if math.isnan(v) or not (-(2.0**63) <= v < 2.0**63):
            raise CelEvalError("double out of int range")
        return check_int(int(v))
    if t is str:
        if not re.fullmatch(r"[+-]?[0-9]+", v):
            raise CelEvalError(f"cannot convert {v!r} to int")
        return check_int(int(v))
    if t is datetime:
        return check_int(math.floor((v - EPOCH).total_seconds()))
    raise no_overload("int", v)


def to_double(v: Any) -> float:
    t = type(v)
    if t is float:
        return v  # type: ignore[no-any-return]
    if t is int:
        return float(v)
    if t is str:
        try:
            if re.fullmatch(r"\s*[+-]?(inf(inity)?|nan)\s*", v, re.I) and v.strip().lower() not in (
                "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity", "nan", "-nan", "+nan"):
                raise ValueError
            return float(v)
        except ValueError:
            raise CelEvalError(f"cannot convert {v!r} to double") from None
    raise no_overload("double", v)


def format_double(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant.removesuffix('.0')}e{sign}{digits}"
    return text.removesuffix(".0")


def format_duration(d: timedelta) -> str:
    total_us = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    secs, micros = divmod(total_us, 1_000_000)
    if micros:
        return f"{sign}{secs}.{micros:06d}".rstrip("0") + "s"
    return f"{sign}{secs}s"


def format_timestamp(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    base = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        frac = f"{ts.microsecond:06d}".rstrip("0")
        frac = frac.ljust(3 if len(frac) <= 3 else 6, "0")
        base += "." + frac
    return base + "Z"


def to_string(v: Any) -> str:
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return format_double(v)
    if t is datetime:
        return format_timestamp(v)
    if t is timedelta:
        return format_duration(v)
    raise no_overload("string", v)


def to_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    if type(v) is str:
        if v in ("true", "True", "TRUE", "t", "1"):
            return True
        if v in ("false", "False", "FALSE", "f", "0"):
            return False
        raise CelEvalError(f"cannot convert {v!r} to bool")
    raise no_overload("bool", v)


# --------------------------------------------------------------------------- time

_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


def parse_timestamp(text: Any) -> datetime:
    """RFC 3339 timestamp text to an aware UTC datetime (sub-microsecond digits are truncated)."""
    if type(text) is datetime:
        return text
    if type(text) is not str:
        raise no_overload("timestamp", text)
    m = _TS_RE.match(text)
    if not m:
        raise CelEvalError(f"invalid timestamp {text!r}")
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
    try:
        micros = int((frac or "0")[:6].ljust(6, "0"))
        offset = UTC
        if not zulu:
            delta = timedelta(hours=int(oh), minutes=int(om))
            offset = timezone(-delta if sign == "-" else delta)
        ts = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
                      tzinfo=offset)
        return check_ts(ts.astimezone(UTC))
    except (ValueError, OverflowError):
        raise CelEvalError(f"invalid timestamp {text!r}") from None


_DUR_UNITS = {"h": 3600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1000, "us": 1, "µs": 1,
              "ns": 0.001}
_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")


def parse_duration(text: Any) -> timedelta:
    """Go-style duration text (``1h30m``, ``-1.5s``, ``250ms``) to a timedelta (microsecond precision)."""
    if type(text) is timedelta:
        return text
    if type(text) is not str:
        raise no_overload("duration", text)
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    pos, total = 0, 0.0
    micros: float = 0
    if not s:
        raise CelEvalError(f"invalid duration {text!r}")
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m:
            raise CelEvalError(f"invalid duration {text!r}")
        number, unit = m.groups()
        if "." in number:
            total += float(number) * _DUR_UNITS[unit]
        else:
            micros += int(number) * _DUR_UNITS[unit] if unit != "ns" else int(number) // 1000
        pos = m.end()
    return check_dur(timedelta(microseconds=sign * int(micros + total)))


def _zone(tz: Any) -> tzinfo:
    if type(tz) is not str:
        raise no_overload("timezone", tz)
    m = re.fullmatch(r"([+-])?(\d{1,2}):(\d{2})", tz)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    if tz == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CelEvalError(f"unknown time zone {tz!r}") from None


def _local(ts: Any, tz: Any, fn: str) -> datetime:
    if type(ts) is not datetime:
        raise no_overload(fn, ts)
    return ts.astimezone(_zone(tz) if tz is not None else UTC)


def time_part(fn: str, v: Any, tz: Any = None) -> int:
    if type(v) is timedelta:
        if tz is not None:
            raise no_overload(fn, v, tz)
        total_us = (v.days * 86400 + v.seconds) * 1_000_000 + v.microseconds
        sign = -1 if total_us < 0 else 1
        total_us = abs(total_us)
        if fn == "getHours":
            return sign * (total_us // 3_600_000_000)
        if fn == "getMinutes":
            return sign * (total_us // 60_000_000)
        if fn == "getSeconds":
            return sign * (total_us // 1_000_000)
        if fn == "getMilliseconds":
            return sign * ((total_us // 1000) % 1000)
        raise no_overload(fn, v)
    t = _local(v, tz, fn)
    if fn == "getFullYear":
        return t.year
    if fn == "getMonth":
        return t.month - 1
    if fn == "getDayOfYear":
        return t.timetuple().tm_yday - 1
    if fn == "getDayOfMonth":
        return t.day - 1
    if fn == "getDate":
        return t.day
    if fn == "getDayOfWeek":
        return (t.weekday() + 1) % 7
    if fn == "getHours":
        return t.hour
    if fn == "getMinutes":
        return t.minute
    if fn == "getSeconds":
        return t.second
    if fn == "getMilliseconds":
        return t.microsecond // 1000
    raise no_overload(fn, v)  # pragma: no cover
