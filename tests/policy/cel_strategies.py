"""Hypothesis strategies producing (CEL source, activation) pairs.

Every generated expression stays inside the CEL subset supported by
``lictor.policy.cel``; the same pairs are fed to the reference runtime, so
expressions may freely be ill-typed or fail at run time: the differential test
only demands that both sides agree on *whether* a result is an error and, if
not, on the value.

Activations never contain timestamps or durations (the reference runtime does
not accept ``datetime`` / ``timedelta`` inputs); those values are built inside
the expressions with ``timestamp('...')`` / ``duration('...')``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

KINDS = ("int", "double", "string", "bool", "list", "map", "null", "timestamp", "duration")

# Words that cannot follow a '.' in a CEL selection.
RESERVED = frozenset(
    (
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
        "true",
        "false",
        "null",
    )
)

# Map keys used in generated activations: identifiers, a reserved word, and
# keys that need index syntax.
MAP_KEYS = ("a", "b", "amount", "user", "role", "tags", "in", "x-y", "")
MISSING_KEYS = ("zz", "missing", "A", "b ")

TIMEZONES = (
    "UTC",
    "+01:00",
    "-05:30",
    "+00:00",
    "+14:00",
    "-12:00",
    "Europe/Berlin",
    "Asia/Kolkata",
)

# ---------------------------------------------------------------------------
# leaf values
# ---------------------------------------------------------------------------

EDGE_INTS = (
    0,
    1,
    -1,
    2,
    -2,
    3,
    7,
    10,
    100,
    INT64_MAX,
    INT64_MIN,
    INT64_MAX - 1,
    INT64_MIN + 1,
    2**32,
    -(2**31),
    2**62,
)

ints = st.one_of(
    st.integers(-10, 10),
    st.sampled_from(EDGE_INTS),
    st.integers(INT64_MIN, INT64_MAX),
)
small_ints = st.integers(-3, 5)

doubles = st.one_of(
    st.sampled_from(
        (
            0.0,
            -0.0,
            0.5,
            1.0,
            -1.0,
            1.5,
            -2.5,
            3.0,
            100.0,
            1e300,
            -1e300,
            2.0**63,
            9.2e18,
            -9.3e18,
            1e-300,
            float("inf"),
            float("-inf"),
            float("nan"),
        )
    ),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=True, allow_infinity=True),
)

# NUL is left out: the reference runtime truncates input strings at NUL.
_text_alphabet = st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00")
texts = st.one_of(
    st.sampled_from(
        (
            "",
            "a",
            "abc",
            "ab",
            "bc",
            "A",
            "héllo",
            "日本語",
            "😀x",
            "a.b",
            "a b",
            "x-y",
            "42",
            "-7",
            "1.5",
            "true",
            "\n",
            "tab\t",
            "quo'te",
            'dq"x',
            "back\\s",
        )
    ),
    st.text(alphabet=_text_alphabet, max_size=6),
    st.text(alphabet="ab.-_ 01", max_size=5),
)


def _ident_ok(key: str) -> bool:
    return (
        key != ""
        and (key[0].isascii() and (key[0].isalpha() or key[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c == "_") for c in key)
        and key not in RESERVED
    )


# ---------------------------------------------------------------------------
# literal rendering
# ---------------------------------------------------------------------------


def _escape_char(c: str, quote: str, style: int) -> str:
    o = ord(c)
    simple = {
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\v": "\\v",
    }
    if c in simple:
        return simple[c]
    if c == quote:
        return "\\" + c
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}" if style % 2 else f"\\u{o:04x}"
    if o < 0x80:
        return c
    # non-ASCII: literal, or one of the escape forms
    if style == 0:
        return c
    if style == 1 and o <= 0xFF:
        return f"\\{o:03o}"
    if style == 2 and o <= 0xFF:
        return f"\\x{o:02X}"
    if o <= 0xFFFF:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def string_literal(text: str, style: int = 0) -> str:
    """Render *text* as a CEL string literal; *style* picks quoting/escaping."""
    variant = style % 6
    if variant == 4 and not any(ch in text for ch in "'\n\r\\"):
        return "r'" + text + "'"
    if (
        variant == 5
        and "'''" not in text
        and not text.endswith("'")
        and "\\" not in text
        and "\r" not in text
    ):
        return "'''" + text + "'''"
    quote = "'" if variant in (1, 3) else '"'
    return quote + "".join(_escape_char(c, quote, style % 4) for c in text) + quote


def int_literal(value: int, hexa: bool = False) -> str:
    if hexa:
        return f"-0x{-value:x}" if value < 0 else f"0x{value:x}"
    return str(value)


def double_literal(value: float) -> str:
    if value != value:
        return "(0.0 / 0.0)"
    if value == float("inf"):
        return "(1.0 / 0.0)"
    if value == float("-inf"):
        return "(-1.0 / 0.0)"
    text = repr(value)  # e.g. '1.5', '1e+300', '-0.0' (an exponent alone makes a double)
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def literal_of(value: Any, style: int = 0) -> str:
    """CEL literal for a plain Python value (used for list/map literals)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int_literal(value)
    if isinstance(value, float):
        return double_literal(value)
    if isinstance(value, str):
        return string_literal(value, style)
    if isinstance(value, list):
        return "[" + ", ".join(literal_of(v, style) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{literal_of(k, style)}: {literal_of(v, style)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(type(value))


def _p(src: str) -> str:
    return "(" + src + ")"


# ---------------------------------------------------------------------------
# activation
# ---------------------------------------------------------------------------

_scalars = st.one_of(small_ints, ints, doubles, texts, st.booleans(), st.none())


def _nested(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return _scalars
    inner = _nested(depth - 1)
    return st.one_of(
        _scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(MAP_KEYS), inner, max_size=4),
    )


@st.composite
def activations(draw: Callable[..., Any]) -> dict[str, Any]:
    """Activation with a fixed set of variable names and random contents."""
    return {
        "i": draw(ints),
        "j": draw(small_ints),
        "f": draw(doubles),
        "s": draw(texts),
        "b": draw(st.booleans()),
        "nul": None,
        "l": draw(st.lists(small_ints, max_size=4)),
        "ls": draw(st.lists(texts, max_size=3)),
        "lm": draw(st.lists(_scalars, max_size=3)),
        "m": draw(st.dictionaries(st.sampled_from(MAP_KEYS), _nested(1), max_size=4)),
        "im": draw(st.dictionaries(small_ints, texts, max_size=3)),
        "args": draw(
            st.dictionaries(st.sampled_from(MAP_KEYS), _nested(2), min_size=1, max_size=4)
        ),
    }


VAR_KINDS = {
    "i": "int",
    "j": "int",
    "f": "double",
    "s": "string",
    "b": "bool",
    "nul": "null",
    "l": "list",
    "ls": "list",
    "lm": "list",
    "m": "map",
    "im": "map",
    "args": "map",
}
LIST_ELEM = {"l": "int", "ls": "string", "lm": "any"}
MAP_KEY = {"m": "string", "im": "int", "args": "string"}


# ---------------------------------------------------------------------------
# time literals
# ---------------------------------------------------------------------------


@st.composite
def timestamp_texts(draw: Callable[..., Any], nanos: bool = True) -> str:
    if draw(st.integers(0, 39)) == 0:
        return draw(
            st.sampled_from(
                (
                    "2020-01-01",
                    "2020-13-01T00:00:00Z",
                    "2020-01-01 00:00:00Z",
                    "nope",
                    "",
                    "2020-02-30T00:00:00Z",
                    "2020-01-01T24:00:00Z",
                    "2020-01-01T00:00:00",
                    "10000-01-01T00:00:00Z",
                    "0000-01-01T00:00:00Z",
                )
            )
        )
    year = draw(st.integers(1969, 2040))
    if draw(st.integers(0, 7)) == 0:  # near the ends of the supported range
        year = draw(st.sampled_from((1, 2, 1000, 9999)))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    hh, mi, ss = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = ""
    if draw(st.booleans()):
        digits = draw(st.integers(1, 9 if nanos else 6))
        frac = "." + "".join(draw(st.sampled_from("0123456789")) for _ in range(digits))
    zone = draw(st.sampled_from(("Z", "Z", "Z", "+01:00", "-05:30", "+00:00", "-00:00", "+14:00")))
    return f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mi:02d}:{ss:02d}{frac}{zone}"


@st.composite
def duration_texts(draw: Callable[..., Any], nanos: bool = True) -> str:
    if draw(st.integers(0, 29)) == 0:
        return draw(st.sampled_from(("1d", "1", "h", "", "1.s", "--1s", "1 s", "1hh", "s1")))
    units = ["h", "m", "s", "ms", "us"] + (["ns"] if nanos else [])
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 24)) == 0:  # around the +-10000 year limit
            n = draw(st.sampled_from((315576000000, 315576000001, 87660000)))
        else:
            n = draw(st.one_of(st.integers(0, 90), st.sampled_from((3600, 86400, 1000000))))
        num = str(n)
        unit = draw(st.sampled_from(units))
        # without nanos, fractions stay whole microseconds
        if draw(st.integers(0, 3)) == 0 and (nanos or unit not in ("us", "ns")):
            num += "." + str(draw(st.integers(0, 999)))
        parts.append(num + unit)
    sign = "-" if draw(st.integers(0, 3)) == 0 else ""
    return sign + "".join(parts)


# ---------------------------------------------------------------------------
# regexes (RE2 syntax, also accepted by the reference)
# ---------------------------------------------------------------------------

_RE_ATOMS = (
    "a",
    "b",
    ".",
    r"\d",
    r"\w",
    r"\s",
    "[a-c]",
    "[^a]",
    "é",
    "日",
    "(a|b)",
    "x",
    "(ab)",
    r"\.",
    "[0-9]",
)
_RE_QUANT = ("", "", "*", "+", "?", "{1,2}", "*?")
_RE_BAD = ("[", "(", "a{2,1}", "*", "(?=a)", r"\1", "a**", "(?P<n>a", "[z-a]")


@st.composite
def regexes(draw: Callable[..., Any]) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(_RE_BAD))
    body = "".join(
        draw(st.sampled_from(_RE_ATOMS)) + draw(st.sampled_from(_RE_QUANT))
        for _ in range(draw(st.integers(0, 3)))
    )
    if draw(st.integers(0, 3)) == 0:
        body = "^" + body
    if draw(st.integers(0, 3)) == 0:
        body += "$"
    if draw(st.integers(0, 6)) == 0:
        body = "(?i)" + body
    return body


# ---------------------------------------------------------------------------
# expression generator
# ---------------------------------------------------------------------------


class _Gen:
    """Draws one expression for a given activation.

    ``focus`` selects the constructs that are favoured; ``wrong`` is the
    percentage of nodes whose operand kind is replaced by a random other kind.
    """

    def __init__(
        self, draw: Callable[..., Any], act: dict[str, Any], focus: str, wrong: int, nanos: bool
    ) -> None:
        self.draw = draw
        self.act = act
        self.focus = focus
        self.wrong = wrong
        self.nanos = nanos
        self.scope: list[tuple[str, str]] = []
        self.n_bound = 0

    # -- helpers -----------------------------------------------------------
    def pick(self, seq: Any) -> Any:
        return self.draw(st.sampled_from(seq))

    def pct(self, p: int) -> bool:
        return bool(self.draw(st.integers(0, 99)) < p)

    def num(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def kind_of(self, kind: str) -> str:
        if kind == "any":
            return self.pick(KINDS)
        if self.pct(self.wrong):
            return self.pick(KINDS)
        return kind

    def vars_of(self, kind: str) -> list[str]:
        names = [n for n, k in self.scope if k in (kind, "any")]
        names += [n for n, k in VAR_KINDS.items() if k == kind]
        return names

    # -- entry -------------------------------------------------------------
    def expr(self, kind: str, depth: int) -> str:
        kind = self.kind_of(kind)
        if depth <= 0 or self.pct(25):
            return self.leaf(kind)
        return getattr(self, "c_" + kind)(depth - 1)

    def exact(self, kind: str, depth: int) -> str:
        """Like expr() but the top node keeps *kind* (no substitution, no selection)."""
        if depth <= 0 or self.pct(25):
            names = self.vars_of(kind)
            if names and self.pct(45):
                return self.pick(names)
            return getattr(self, "lit_" + kind)()
        return getattr(self, "c_" + kind)(depth - 1)

    def sub(self, kind: str, depth: int) -> str:
        """A sub-expression, parenthesised unless it is obviously atomic."""
        src = self.expr(kind, depth)
        if self.pct(12):  # occasionally rely on the grammar's precedence
            return src
        return _p(src) if not _atomic(src) else src

    # -- leaves ------------------------------------------------------------
    def leaf(self, kind: str) -> str:
        names = self.vars_of(kind)
        if names and self.pct(45):
            return self.pick(names)
        if self.pct(8):
            return self.select_path()
        return getattr(self, "lit_" + kind)()

    def lit_int(self) -> str:
        v = self.draw(ints)
        return int_literal(v, hexa=self.pct(10))

    def lit_double(self) -> str:
        return double_literal(self.draw(doubles))

    def lit_string(self) -> str:
        return string_literal(self.draw(texts), self.num(0, 11))

    def lit_bool(self) -> str:
        return self.pick(("true", "false"))

    def lit_null(self) -> str:
        return "null"

    def lit_list(self) -> str:
        elem = self.pick(("int", "int", "string", "double", "bool", "any"))
        return "[" + ", ".join(self.leaf(self.kind_of(elem)) for _ in range(self.num(0, 3))) + "]"

    def lit_map(self) -> str:
        kk = self.pick(("string", "string", "int", "bool"))
        items = []
        for _ in range(self.num(0, 3)):
            if kk == "string":
                key = string_literal(self.pick(MAP_KEYS + MISSING_KEYS[:1]), self.num(0, 3))
            elif kk == "int":
                key = str(self.num(-2, 3))
            else:
                key = self.pick(("true", "false"))
            if self.pct(4):
                key = self.leaf(self.pick(KINDS))  # invalid / dynamic key types
            items.append(f"{key}: {self.leaf(self.pick(('int', 'string', 'bool', 'double')))}")
        return "{" + ", ".join(items) + "}"

    def lit_timestamp(self) -> str:
        return (
            f"timestamp({string_literal(self.draw(timestamp_texts(self.nanos)), self.num(0, 3))})"
        )

    def lit_duration(self) -> str:
        return f"duration({string_literal(self.draw(duration_texts(self.nanos)), self.num(0, 3))})"

    # -- selections --------------------------------------------------------
    def select_path(self, for_has: bool = False) -> str:
        root = self.pick(("args", "args", "m", "lm", "im"))
        cur: Any = self.act[root]
        src = root
        steps = self.num(1, 3)
        for n in range(steps):
            last = n == steps - 1
            if isinstance(cur, dict) and cur and self.pct(80):
                key = self.pick(sorted(cur, key=repr))
            elif isinstance(cur, list) and cur and self.pct(80) and not (for_has and last):
                key = self.num(0, len(cur) - 1)
            else:
                key = self.pick((*MISSING_KEYS, 0, 5, -1))
            if isinstance(key, str) and _ident_ok(key) and ((for_has and last) or self.pct(75)):
                src += "." + key
            elif for_has and last:
                src += "." + self.pick(("zz", "a", "b"))
                key = None
            elif isinstance(key, int) and not isinstance(key, bool):
                src += f"[{key}]"
            else:
                src += f"[{string_literal(str(key), self.num(0, 3))}]"
            found = (isinstance(cur, dict) and key in cur) or (
                isinstance(cur, list) and isinstance(key, int) and 0 <= key < len(cur)
            )
            cur = cur[key] if found else None
        return src

    # -- compound per kind --------------------------------------------------
    def c_int(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 40:
            op = self.pick(("+", "-", "*", "/", "%", "/", "%"))
            left = self.sub("int", d)
            if op in "/%" and self.pct(30):
                right = self.pick(("0", "-1", "j", "2", "-3"))
            else:
                right = self.sub("int", d)
            return f"{left} {op} {right}"
        if r < 48:
            return "-" + self.sub("int", d)
        if r < 60:
            coll = self.pick(("string", "list", "map"))
            arg = self.sub(coll, d)
            return f"size({arg})" if self.pct(50) else f"{_recv(arg)}.size()"
        if r < 72:
            src = self.pick(("double", "string", "int", "timestamp", "int_text"))
            if src == "int_text":
                txt = self.pick(
                    (
                        "0",
                        "-0",
                        "12",
                        "-12",
                        "9223372036854775807",
                        "-9223372036854775808",
                        "9223372036854775808",
                        "1.5",
                        "abc",
                        "",
                        "0x10",
                        "1e3",
                        str(self.draw(ints)),
                    )
                )
                return f"int({string_literal(txt, self.num(0, 3))})"
            return f"int({self.exact(src, d)})"
        if r < 80:
            return self.index_into(d)
        if r < 88:
            return self.ternary("int", d)
        return self.ts_accessor(d)

    def c_double(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 50:
            op = self.pick(("+", "-", "*", "/"))
            return f"{self.sub('double', d)} {op} {self.sub('double', d)}"
        if r < 58:
            return "-" + self.sub("double", d)
        if r < 80:
            src = self.pick(("int", "double", "string", "dbl_text"))
            if src == "dbl_text":
                txt = self.pick(
                    ("1.5", "-2", "1e3", ".5", "abc", "", "1e400", "-0.0", "inf", "3.25")
                )
                return f"double({string_literal(txt, self.num(0, 3))})"
            return f"double({self.exact(src, d)})"
        if r < 90:
            return self.ternary("double", d)
        return self.index_into(d)

    def c_string(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 40:
            return f"{self.sub('string', d)} + {self.sub('string', d)}"
        if r < 70:
            src = self.pick(("int", "string", "bool", "timestamp", "duration", "int", "double"))
            if src == "double" and self.focus != "conv":
                src = "int"
            return f"string({self.expr(src, d)})"
        if r < 92:
            return self.ternary("string", d)
        return self.index_into(d)

    def c_bool(self, d: int) -> str:
        r = self.num(0, 99)
        if self.focus == "logic":
            r = self.pick((0, 10, 20, 30, 40, 45, 50, 55))
        if r < 15:
            op = self.pick(("&&", "||"))
            return f"{self.sub('bool', d)} {op} {self.sub('bool', d)}"
        if r < 22:
            return "!" + self.sub("bool", d)
        if r < 45:
            return self.comparison(d)
        if r < 55:
            return self.ternary("bool", d)
        if r < 65:
            return self.membership(d)
        if r < 72:
            return f"has({self.select_path(for_has=True)})"
        if r < 84:
            return self.string_method(d)
        return self.macro_bool(d)

    def c_list(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 25:
            elem = self.pick(("int", "string", "double", "bool", "any"))
            return "[" + ", ".join(self.expr(elem, d) for _ in range(self.num(0, 3))) + "]"
        if r < 45:
            return f"{self.sub('list', d)} + {self.sub('list', d)}"
        if r < 85:
            return self.macro_list(d)
        return self.ternary("list", d)

    def c_map(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 60:
            items = []
            for _ in range(self.num(0, 3)):
                key = self.expr(self.pick(("string", "string", "int", "bool")), d)
                items.append(f"{key}: {self.expr('any', d)}")
            return "{" + ", ".join(items) + "}"
        if r < 80:
            return self.select_path()
        return self.ternary("map", d)

    def c_null(self, d: int) -> str:
        return self.ternary("null", d) if self.pct(50) else self.select_path()

    def c_timestamp(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 35:
            return f"{self.sub('timestamp', d)} + {self.sub('duration', d)}"
        if r < 45:
            return f"{self.sub('duration', d)} + {self.sub('timestamp', d)}"
        if r < 75:
            return f"{self.sub('timestamp', d)} - {self.sub('duration', d)}"
        if r < 85:
            return self.ternary("timestamp", d)
        return self.lit_timestamp()

    def c_duration(self, d: int) -> str:
        r = self.num(0, 99)
        if r < 40:
            op = self.pick(("+", "-"))
            return f"{self.sub('duration', d)} {op} {self.sub('duration', d)}"
        if r < 70:
            return f"{self.sub('timestamp', d)} - {self.sub('timestamp', d)}"
        if r < 80:
            return self.ternary("duration", d)
        return self.lit_duration()

    # -- shared constructs ---------------------------------------------------
    def ternary(self, kind: str, d: int) -> str:
        # the middle operand of ?: may not itself be an unparenthesised ternary
        return f"{self.sub('bool', d)} ? {_wrap_rel(self.expr(kind, d))} : {self.sub(kind, d)}"

    def index_into(self, d: int) -> str:
        r = self.num(0, 3)
        if r == 0:
            idx = self.pick(("0", "1", "2", "-1", "j", "i", "0.0", "1.0", "'a'"))
            return f"{_recv(self.pick(('l', 'ls', 'lm')))}[{idx}]"
        if r == 1:
            key = self.pick(("1", "2", "-1", "0", "1.0", "2.5", "true", "'a'", "j"))
            return f"im[{key}]"
        if r == 2:
            return self.select_path()
        return f"{_recv(self.expr('list', d))}[{self.expr('int', d)}]"

    def comparison(self, d: int) -> str:
        op = self.pick(("==", "!=", "<", "<=", ">", ">="))
        r = self.num(0, 9)
        if r < 3:
            a, b = self.pick(
                (("int", "double"), ("double", "int"), ("int", "int"), ("double", "double"))
            )
        elif r < 8:
            a = b = self.pick(KINDS)
        else:
            a, b = self.pick(KINDS), self.pick(KINDS)
        return f"{self.sub(a, d)} {op} {self.sub(b, d)}"

    def membership(self, d: int) -> str:
        if self.pct(50):
            coll = self.pick(("l", "ls", "lm", "[1, 2.0, 'a']", "[]", "[null, true]"))
            coll = coll if self.pct(60) else _p(self.expr("list", d))
            elem = self.expr(self.pick(("int", "double", "string", "any")), d)
        else:
            coll = self.pick(("m", "im", "args", "{'a': 1, 2: 'b'}", "{}"))
            coll = coll if self.pct(70) else _p(self.expr("map", d))
            elem = self.expr(self.pick(("string", "int", "double", "bool")), d)
        return f"{_wrap_rel(elem)} in {coll}"

    def string_method(self, d: int) -> str:
        recv = self.sub("string", d)
        meth = self.pick(("startsWith", "endsWith", "contains", "matches", "matches"))
        if meth == "matches":
            rx = self.draw(regexes())
            arg = string_literal(rx, self.pick((0, 1, 4, 4, 5)))
        elif self.pct(50):
            arg = string_literal(self.draw(texts), self.num(0, 3))
        else:
            arg = self.sub("string", d)
        return f"{_recv(recv)}.{meth}({arg})"

    def ts_accessor(self, d: int) -> str:
        acc = self.pick(
            (
                "getFullYear",
                "getMonth",
                "getDayOfMonth",
                "getDayOfWeek",
                "getHours",
                "getMinutes",
                "getSeconds",
            )
        )
        recv = _recv(self.sub("timestamp", d))
        if self.pct(40):
            tz = self.pick(TIMEZONES) if self.pct(95) else self.pick(("bad/zone", "+1"))
            return f"{recv}.{acc}({string_literal(tz, self.num(0, 3))})"
        return f"{recv}.{acc}()"

    # -- macros --------------------------------------------------------------
    def _range(self, d: int, lists_only: bool = False) -> tuple[str, str]:
        r = self.num(0, 9)
        if r < 4:
            name = self.pick(
                ("l", "ls", "lm") if lists_only else ("l", "ls", "lm", "m", "im", "args")
            )
            if name in LIST_ELEM:
                return name, LIST_ELEM[name]
            return name, MAP_KEY[name]
        if r < 8:
            elem = self.pick(("int", "string", "double", "bool"))
            items = [self.expr(elem, max(d - 1, 0)) for _ in range(self.num(0, 4))]
            return "[" + ", ".join(items) + "]", elem
        return _p(self.exact("list", d)), "any"

    def _bound(self) -> str:
        self.n_bound += 1
        # occasionally shadow an activation variable or an outer bound variable
        if self.pct(10):
            return self.pick(("i", "s", "x"))
        return self.pick(("x", "y", "z", "k", "e", "v"))

    def _with(self, name: str, kind: str, fn: Callable[[], str]) -> str:
        self.scope.append((name, kind))
        try:
            return fn()
        finally:
            self.scope.pop()

    def macro_bool(self, d: int) -> str:
        rng, elem = self._range(d)
        v = self._bound()
        m = self.pick(("exists", "all", "exists_one"))
        body = self._with(v, elem, lambda: self.expr("bool", d))
        return f"{_recv(rng)}.{m}({v}, {body})"

    def macro_list(self, d: int) -> str:
        # map()/filter() over a map yield keys in an unspecified order: lists only
        rng, elem = self._range(d, lists_only=True)
        v = self._bound()
        m = self.pick(("map", "map3", "filter"))
        if m == "filter":
            body = self._with(v, elem, lambda: self.expr("bool", d))
            return f"{_recv(rng)}.filter({v}, {body})"
        out = self.pick(("int", "string", "bool", "double", "any"))
        val = self._with(v, elem, lambda: self.expr(out, d))
        if m == "map3":
            pred = self._with(v, elem, lambda: self.expr("bool", d))
            return f"{_recv(rng)}.map({v}, {pred}, {val})"
        return f"{_recv(rng)}.map({v}, {val})"


def _atomic(src: str) -> bool:
    """True for a bracketed expression, a (dotted) identifier or a digit literal."""
    if src.startswith(("(", "[", "{")):
        return _balanced_outer(src)
    if src.isdigit():
        return True
    return (
        bool(src)
        and (src[0].isalpha() or src[0] == "_")
        and all(c.isascii() and (c.isalnum() or c in "_.") for c in src)
    )


def _balanced_outer(src: str) -> bool:
    """True when the first bracket closes at the very end of *src*."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    depth = 0
    quote = None
    i = 0
    while i < len(src):
        c = src[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in pairs:
            depth += 1
        elif c in pairs.values():
            depth -= 1
            if depth == 0 and i != len(src) - 1:
                return False
        i += 1
    return src[-1] == pairs[src[0]]


def _recv(src: str) -> str:
    """Receiver of a member call: parenthesise unless atomic."""
    if _atomic(src) or (
        src.startswith(("'", '"', "r'")) and " " not in src and src.count(src[-1]) == 2
    ):
        return src
    return _p(src)


def _wrap_rel(src: str) -> str:
    return src if _atomic(src) else _p(src)


# ---------------------------------------------------------------------------
# public strategies
# ---------------------------------------------------------------------------

FOCUS_ROOT = {
    "mixed": "any",
    "arith": ("int", "double", "bool"),
    "logic": "bool",
    "strings": ("string", "bool", "int"),
    "collections": ("list", "map", "bool", "int"),
    "macros": ("bool", "list"),
    "time": ("timestamp", "duration", "bool", "int", "string"),
    "conv": ("string", "int", "double"),
}


@st.composite
def cel_cases(
    draw: Callable[..., Any],
    focus: str = "mixed",
    depth: int = 3,
    wrong: int | None = None,
    nanos: bool = False,
) -> tuple[str, dict[str, Any]]:
    """(expression, activation) pair; *focus* biases the root construct.

    *nanos* allows sub-microsecond times, which Lictor truncates (a documented difference).

    *wrong* is the percentage of nodes given an operand of a random kind.
    """
    if wrong is None:
        wrong = {"strings": 4, "time": 4}.get(focus, 8)
    act = draw(activations())
    gen = _Gen(draw, act, focus, wrong, nanos)
    roots = FOCUS_ROOT[focus]
    if focus == "macros":
        src = gen.macro_bool(depth - 1) if draw(st.booleans()) else gen.macro_list(depth - 1)
    elif focus == "time" and draw(st.booleans()):
        src = gen.pick((gen.ts_accessor, gen.comparison, gen.c_duration, gen.c_timestamp))(
            depth - 1
        )
    elif focus == "collections" and draw(st.booleans()):
        src = gen.pick((gen.membership, gen.index_into, gen.c_map, gen.c_list))(depth - 1)
    elif focus == "strings" and draw(st.booleans()):
        src = gen.string_method(depth - 1)
    elif isinstance(roots, str):
        src = gen.expr(roots, depth)
    else:
        src = gen.expr(gen.pick(roots), depth)
    return src, act


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "Reference",
    "activations",
    "canon",
    "cel_cases",
    "double_literal",
    "duration_texts",
    "int_literal",
    "literal_of",
    "regexes",
    "string_literal",
    "timestamp_texts",
]


# ---------------------------------------------------------------------------
# outcome normalisation shared by the differential and golden tests
# ---------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """A hashable, type-tagged form of a CEL result as a Python value.

    bool/int/float are kept apart, NaN equals NaN, signed zeros differ,
    timestamps must be timezone-aware and are compared as UTC instants.
    """
    import datetime as _dt
    import math

    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("double", "nan")
        return ("double", value, math.copysign(1.0, value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return ("naive-datetime", value)
        return ("timestamp", value.astimezone(_dt.UTC))
    if isinstance(value, _dt.timedelta):
        return ("duration", value)
    if type(value) is list:
        return ("list", tuple(canon(v) for v in value))
    if type(value) is dict:
        return ("map", frozenset((canon(k), canon(v)) for k, v in value.items()))
    return ("unexpected-type", type(value).__name__, repr(value))


class Reference:
    """Thin wrapper around the reference runtime, caching environments."""

    def __init__(self) -> None:
        from cel_expr_python import cel

        self._cel = cel
        self._envs: dict[tuple[str, ...], Any] = {}

    def env(self, names: Any) -> Any:
        key = tuple(sorted(names))
        env = self._envs.get(key)
        if env is None:
            env = self._cel.NewEnv(variables={n: self._cel.Type.DYN for n in key})
            self._envs[key] = env
        return env

    def run(self, src: str, act: dict[str, Any]) -> tuple[str, Any]:
        """('compile_error', msg) | ('error', msg) | ('value', canon(value))."""
        try:
            prog = self.env(act).compile(src, disable_check=True)
        except Exception as exc:
            return "compile_error", str(exc).splitlines()[0]
        try:
            result = prog.eval(data=act)
        except Exception as exc:  # e.g. duplicate map keys surface as exceptions
            return "error", str(exc)
        if result.type().name() == "ERROR":
            return "error", result.plain_value()
        return "value", canon(result.plain_value())

    def check_rejects(self, src: str, act: dict[str, Any]) -> bool:
        """True when the reference's type checker refuses *src*."""
        try:
            self.env(act).compile(src)
        except Exception:
            return True
        return False
