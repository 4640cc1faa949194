"""Runtime of compiled CEL: the value semantics (errors, equality, ordering, access, arithmetic).

Values are plain Python: int (64-bit checked), float, str, bool, None, list, dict, aware datetime
(timestamp) and timedelta (duration). Every function here either returns a CEL value or raises
:class:`CelEvalError`; generated code calls them for everything it does not inline.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CelEvalError"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NUM = frozenset({int, float})
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
        if a == INT64_MIN and b == -1:
            raise CelEvalError("integer overflow")
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    raise no_overload("_%_", a, b)


def neg(a: Any) -> Any:
    t = type(a)
    if t is int:
        return check_int(-a)
    if t is float:
        return -a
    raise no_overload("-_", a)


def not_(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise no_overload("!_", a)
