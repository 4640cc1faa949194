"""The function library of compiled CEL: strings, RE2 regexes, globs, findings, conversions, time.

Each function takes CEL values and returns one or raises :class:`CelEvalError`. Regexes use RE2
(linear time, as the CEL specification requires), compiled once per pattern.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from lictor.policy.celrt import EPOCH, CelEvalError, check_dur, check_int, check_ts, no_overload

__all__ = [
    "compile_glob",
    "compile_regex",
    "glob_match",
    "parse_duration",
    "parse_timestamp",
]


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


def _glob_class(body: str) -> str:
    """A bracket expression's body (``a-c``, ``!xy``) as a regex matching one character."""
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    items, k = [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = body[k], body[k + 2]
            if lo <= hi:
                items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            k += 3
        else:
            items.append(re.escape(body[k]))
            k += 1
    if not items:
        return "." if negate else "(?!)"
    return f"[{'^' if negate else ''}{''.join(items)}]"


def _glob_atoms(pattern: str) -> list[str | None]:
    """The glob as atoms: None for ``*``, else a regex matching exactly one character.

    Brackets follow the shell (and Python's fnmatch): ``[abc]``, ``[a-z]``, ``[!abc]``; a ``]`` right
    after the opening bracket is a member; an unclosed ``[`` is a plain character.
    """
    atoms: list[str | None] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not atoms or atoms[-1] is not None:
                atoms.append(None)
        elif c == "?":
            atoms.append(".")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j == -1:
                atoms.append(re.escape(c))
            else:
                atoms.append(_glob_class(pattern[i + 1:j]))
                i = j
        else:
            atoms.append(re.escape(c))
        i += 1
    return atoms


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for a glob (``*`` any run, ``?`` one character, ``[abc]``/``[!abc]`` a class).

    Linear in the text, whatever the pattern: the pattern is split at its stars into fixed-length
    pieces; the first must match at the start, the last at the end, and each one between at its
    leftmost place after the previous one (which is optimal when only stars sit between them). No
    backtracking regex ever sees untrusted text with more than one unbounded part.
    """
    atoms = _glob_atoms(pattern)
    pieces: list[list[str]] = [[]]
    for atom in atoms:
        if atom is None:
            pieces.append([])
        else:
            pieces[-1].append(atom)
    compiled = [(re.compile("".join(p), re.S), len(p)) for p in pieces]
    if len(compiled) == 1:
        whole, _ = compiled[0]
        return lambda text: whole.fullmatch(text) is not None
    (head, head_len), middle, (tail, tail_len) = compiled[0], compiled[1:-1], compiled[-1]

    def match(text: str) -> bool:
        end = len(text) - tail_len
        if end < head_len or head.match(text) is None or tail.fullmatch(text, end) is None:
            return False
        pos = head_len
        for rx, size in middle:
            if size == 0:
                continue
            found = rx.search(text, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return match


def glob_match(text: Any, pattern: Any) -> bool:
    if type(text) is str and type(pattern) is str:
        return compile_glob(pattern)(text)
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
    match = compile_glob(pattern)
    return any(match(t) for t in finding_types(findings))


def finding_count(findings: Any, pattern: Any) -> int:
    if type(pattern) is not str:
        raise no_overload("finding_count", pattern)
    match = compile_glob(pattern)
    return sum(1 for t in finding_types(findings) if match(t))


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
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", v):
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
    """Shortest round-trip digits, in %g layout: scientific below 1e-4 and from 1e6 (as CEL's runtime)."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return sign + "0"
    digits_tuple, exponent = Decimal(repr(abs(v))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    e10 = len(digits) - 1 + int(exponent)
    if -4 <= e10 < 6:
        return sign + format(Decimal(repr(abs(v))).normalize(), "f")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"


def format_duration(d: timedelta) -> str:
    total_us = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    sign = "-" if total_us < 0 else ""
    secs, micros = divmod(abs(total_us), 1_000_000)
    if not micros:
        return f"{sign}{secs}s"
    frac = f"{micros:06d}"
    return f"{sign}{secs}.{frac[:3] if frac.endswith('000') else frac}s"


def format_timestamp(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    base = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"
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
        leap = second == "60"  # a leap second reads as the first second of the next minute
        ts = datetime(int(year), int(month), int(day), int(hour), int(minute), 59 if leap else int(second),
                      micros, tzinfo=offset)
        if leap:
            ts += timedelta(seconds=1)
        return check_ts(ts.astimezone(UTC))
    except (ValueError, OverflowError):
        raise CelEvalError(f"invalid timestamp {text!r}") from None


MAX_DURATION_NS = 315_576_000_000 * 1_000_000_000 + 999_999_999
_DUR_UNITS_NS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000, "ms": 1_000_000,
                 "us": 1000, "µs": 1000, "ns": 1}
_DUR_PART = re.compile(r"(\d+)(?:\.(\d*))?(h|ms|m|s|us|µs|ns)|\.(\d+)(h|ms|m|s|us|µs|ns)")


def parse_duration(text: Any) -> timedelta:
    """Go-style duration text (``1h30m``, ``-1.5s``, ``250ms``) to a timedelta.

    Exact integer arithmetic in nanoseconds, then truncated toward zero to microseconds (the
    precision of Python's timedelta).
    """
    if type(text) is timedelta:
        return text
    if type(text) is not str:
        raise no_overload("duration", text)
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if not s:
        raise CelEvalError(f"invalid duration {text!r}")
    pos, total_ns = 0, 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m:
            raise CelEvalError(f"invalid duration {text!r}")
        whole, frac, unit = (m.group(1), m.group(2) or "", m.group(3)) if m.group(1) else ("0", m.group(4), m.group(5))
        scale = _DUR_UNITS_NS[unit]
        total_ns += int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
        pos = m.end()
    if total_ns > MAX_DURATION_NS:
        raise CelEvalError(f"duration out of range: {text!r}")
    return check_dur(timedelta(microseconds=sign * (total_ns // 1000)))


def _zone(tz: Any) -> tzinfo:
    if type(tz) is not str:
        raise no_overload("timezone", tz)
    m = re.fullmatch(r"([+-])?(\d{1,2}):(\d{2})", tz)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        if delta >= timedelta(hours=24):
            raise CelEvalError(f"time zone offset out of range: {tz!r}")
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
