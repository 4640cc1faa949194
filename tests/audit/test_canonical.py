"""RFC 8785 canonical JSON: the RFC's own examples, error paths, and a differential test against rfc8785."""

from __future__ import annotations

import enum
import json
import math
import struct
from collections import OrderedDict
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.audit.canonical import MAX_SAFE_INTEGER, canonical_json, format_number
from lictor.errors import InputError

# RFC 8785 Appendix B: IEEE 754 binary64 bit patterns and their canonical JSON numbers.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]
# Appendix B's two entries that have no JSON form.
APPENDIX_B_ERRORS = ["7fffffffffffffff", "7ff0000000000000"]


# RFC 8785 §3.2.4: the canonical UTF-8 of the example, as the RFC prints it in hexadecimal.
RFC_3_2_4_HEX = """
7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e
75 6d 62 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30
2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24
5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d
"""


def double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, expected: str) -> None:
    assert format_number(double(bits)) == expected
    assert canonical_json(double(bits)) == expected.encode()
    assert canonical_json([double(bits)]) == f"[{expected}]".encode()


@pytest.mark.parametrize("bits", [*APPENDIX_B_ERRORS, "fff0000000000000"])
def test_appendix_b_values_without_a_json_form(bits: str) -> None:
    with pytest.raises(InputError, match=r"^\$\[0\]"):
        canonical_json([double(bits)])
    with pytest.raises(ValueError):
        format_number(double(bits))


def test_section_3_2_2_and_3_2_4_example() -> None:
    # §3.2.4's input text (numbers as written in §3.2.2.3), parsed the way any JSON reader would.
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")
    # The RFC's hexadecimal dump of the same output.
    assert canonical_json(json.loads(source)) == bytes.fromhex(RFC_3_2_4_HEX)


def test_section_3_2_3_sorting_by_utf16_code_units() -> None:
    source = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(source) == expected.encode("utf-8")


def test_utf16_order_differs_from_code_point_order() -> None:
    # U+10000 sorts before U+FFFF in UTF-16 (D800 DC00 < FFFF) although its code point is larger.
    assert canonical_json({"\uffff": 1, "\U00010000": 2}) == '{"\U00010000":2,"\uffff":1}'.encode()


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        ("\b", "\\b"),
        ("\t", "\\t"),
        ("\n", "\\n"),
        ("\f", "\\f"),
        ("\r", "\\r"),
        ('"', '\\"'),
        ("\\", "\\\\"),
        ("\x00", "\\u0000"),
        ("\x1f", "\\u001f"),
        ("\x0b", "\\u000b"),
        ("/", "/"),
        ("\x7f", "\x7f"),
        ("\u2028", "\u2028"),
        ("\U0001f600", "\U0001f600"),
    ],
)
def test_string_escapes(char: str, escaped: str) -> None:
    assert canonical_json(char) == f'"{escaped}"'.encode()


def test_literals_integers_and_nesting() -> None:
    assert canonical_json(None) == b"null"
    assert canonical_json(True) == b"true"
    assert canonical_json(False) == b"false"
    assert canonical_json(-0.0) == b"0"
    assert canonical_json(1.0) == b"1"
    assert canonical_json(2.0**60) == b"1152921504606847000"
    assert canonical_json(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonical_json(-MAX_SAFE_INTEGER) == b"-9007199254740991"
    assert canonical_json({"b": [], "a": {}, "c": [{"z": 1, "y": [0.5]}]}) == (
        b'{"a":{},"b":[],"c":[{"y":[0.5],"z":1}]}'
    )


def test_subclasses_serialise_as_their_base_type() -> None:
    class Color(enum.IntEnum):
        RED = 1

    class Name(enum.StrEnum):
        A = "a"

    value = OrderedDict([("b", Color.RED), ("a", Name.A)])
    assert canonical_json(value) == b'{"a":"a","b":1}'


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30])
def test_integers_beyond_i_json_are_refused(number: int) -> None:
    with pytest.raises(InputError, match=r"^\$\.n\[1\]: integer beyond"):
        canonical_json({"n": [0, number]})


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ((1, 2), "$"),
        ({"a": {"b": [1, (2,)]}}, "$.a.b[1]"),
        ({"a b": {1.5}}, '$["a b"]'),
        ({"x": [b"raw"]}, "$.x[0]"),
        ({"x": {1: "one"}}, "$.x[1]"),
        ({"x": {"a": 1, 2: "two"}}, "$.x[2]"),
        ({"ö": object()}, '$["ö"]'),
    ],
)
def test_other_types_raise_type_error_naming_the_path(value: object, path: str) -> None:
    with pytest.raises(TypeError) as info:
        canonical_json(value)
    assert str(info.value).startswith(path + ": ")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("\ud800", "$"),
        ({"a": ["ok", "x\udfffy"]}, "$.a[1]"),
        ({"ok": 1, "k\ud83d": 2}, '$["k\\ud83d"]'),
        ({"n": [math.nan]}, "$.n[0]"),
        ({"n": -math.inf}, "$.n"),
    ],
)
def test_values_i_json_cannot_carry_raise_input_error(value: object, path: str) -> None:
    with pytest.raises(InputError) as info:
        canonical_json(value)
    assert info.value.path == path


def test_surrogate_pairs_written_as_escapes_are_one_character() -> None:
    assert canonical_json(json.loads('"\\ud83d\\ude00"')) == '"\U0001f600"'.encode()


# Differential test: the rfc8785 package is an independent implementation of the same RFC.
KEYS = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_same_bytes_as_rfc8785_package(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_and_match_rfc8785(number: float) -> None:
    text = format_number(number)
    assert float(text) == number
    assert text.encode() == rfc8785.dumps(number)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_canonical_form_is_a_fixed_point(value: Any) -> None:
    once = canonical_json(value)
    # Read numbers as doubles, as I-JSON does: 2.0**60 prints as an integer beyond MAX_SAFE_INTEGER.
    assert canonical_json(json.loads(once, parse_int=float)) == once


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, st.integers(0, 9), max_size=12))
def test_members_follow_utf16_code_unit_order(value: dict[str, int]) -> None:
    keys = list(json.loads(canonical_json(value)))

    def units(key: str) -> list[int]:
        raw = key.encode("utf-16-be")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]

    assert keys == sorted(value, key=units)


@given(JSON_VALUES)
def test_the_fast_path_gives_the_full_canonicalisers_bytes_or_defers(value: Any) -> None:
    from lictor.audit.canonical import _fast, _value

    fast = _fast(value)
    if fast is not None:
        assert fast == _value(value).encode("utf-8")


@pytest.mark.parametrize("value", [{"n": math.nan}, [math.inf], (1, 2), {"t": (1,)}, -0.0, {"k": 1e20},
                                   {"🙂": 1, "\uffff": 2}, {1: "x"}])
def test_the_fast_path_defers_what_orjson_writes_its_own_way(value: Any) -> None:
    from lictor.audit.canonical import _fast

    assert _fast(value) is None
