"""CEL source to a small typed syntax tree, restricted to the subset Lictor supports.

The grammar is the maintained Lark grammar shipped with ``cel-python``; this module turns its concrete
tree into the nodes below, decodes literals, expands macros (``has``, ``exists``, ``all``,
``exists_one``, ``map``, ``filter``) and rejects everything outside the supported subset with a
:class:`CelCompileError` at the construct's line and column.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lark import Token, Tree

__all__ = [
    "FUNCTIONS",
    "METHODS",
    "And",
    "Binary",
    "Call",
    "CelCompileError",
    "Comprehension",
    "Cond",
    "Has",
    "Ident",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Node",
    "Or",
    "Select",
    "Unary",
    "parse_cel",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Global functions of the subset, with their accepted argument counts.
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "size": (1,),
    "int": (1,),
    "double": (1,),
    "string": (1,),
    "bool": (1,),
    "dyn": (1,),
    "timestamp": (1,),
    "duration": (1,),
    "matches": (2,),
    "has_finding": (1,),
    "finding_count": (1,),
    "glob": (2,),
}

#: Receiver-style functions of the subset, with their accepted argument counts (receiver excluded).
METHODS: dict[str, tuple[int, ...]] = {
    "size": (0,),
    "startsWith": (1,),
    "endsWith": (1,),
    "contains": (1,),
    "matches": (1,),
    "getFullYear": (0, 1),
    "getMonth": (0, 1),
    "getDayOfYear": (0, 1),
    "getDayOfMonth": (0, 1),
    "getDate": (0, 1),
    "getDayOfWeek": (0, 1),
    "getHours": (0, 1),
    "getMinutes": (0, 1),
    "getSeconds": (0, 1),
    "getMilliseconds": (0, 1),
}

MACROS = {"exists": (2,), "all": (2,), "exists_one": (2,), "filter": (2,), "map": (2, 3)}


class CelCompileError(Exception):
    """A CEL expression that does not parse or uses something outside the supported subset."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True, slots=True)
class Has(Node):
    operand: Node
    field: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    target: Node | None
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # + - * / % == != < <= > >= in
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Cond(Node):
    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Comprehension(Node):
    macro: str  # exists, all, exists_one, filter, map
    range: Node
    var: str
    predicate: Node | None  # filter predicate (map with 3 args), or the test for the others
    transform: Node | None  # map only


# --------------------------------------------------------------------------- literals

_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?",
}
_ESCAPE_RE = re.compile(r"\\(?:([abfnrtv\\'\"`?])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-3][0-7]{2})|(.))", re.S)


def _decode_string(token: Token) -> str:
    text = str(token)
    raw = text[0] in "rR"
    if raw:
        text = text[1:]
    quote = text[:3] if text[:3] in ('"""', "'''") else text[0]
    body = text[len(quote):-len(quote)]
    if raw:
        return body

    def replace(m: re.Match[str]) -> str:
        simple, hx, u4, u8, octal, bad = m.groups()
        if simple is not None:
            return _ESCAPES[simple]
        if bad is not None:
            raise CelCompileError(f"invalid escape sequence \\{bad}", token.line or 1, token.column or 1)
        code = int(hx or u4 or u8, 16) if (hx or u4 or u8) else int(octal, 8)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            raise CelCompileError(f"invalid code point in escape \\{m.group(0)[1:]}", token.line or 1,
                                  token.column or 1)
        return chr(code)

    return _ESCAPE_RE.sub(replace, body)


def _literal(token: Token) -> Lit:
    line, col = token.line or 1, token.column or 1
    kind, text = token.type, str(token)
    if kind == "INT_LIT":
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
        value = -value if negative else value
        if not INT64_MIN <= value <= INT64_MAX:
            raise CelCompileError(f"integer literal {text} is outside the 64-bit range", line, col)
        return Lit(line, col, value)
    if kind == "FLOAT_LIT":
        if text.rstrip("0123456789").endswith(".") and not text.endswith(tuple("0123456789")):
            raise CelCompileError(f"invalid number {text}", line, col)
        return Lit(line, col, float(text))
    if kind in ("STRING_LIT", "MLSTRING_LIT"):
        return Lit(line, col, _decode_string(token))
    if kind == "BOOL_LIT":
        return Lit(line, col, text == "true")
    if kind == "NULL_LIT":
        return Lit(line, col, None)
    if kind == "UINT_LIT":
        raise CelCompileError("unsigned integer literals are not supported; use a plain integer", line, col)
    if kind == "BYTES_LIT":
        raise CelCompileError("bytes literals are not supported", line, col)
    raise CelCompileError(f"unsupported literal {text}", line, col)  # pragma: no cover


# --------------------------------------------------------------------------- tree conversion

_BINARY = {
    "relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=",
    "relation_eq": "==", "relation_ne": "!=", "relation_in": "in",
    "addition_add": "+", "addition_sub": "-",
    "multiplication_mul": "*", "multiplication_div": "/", "multiplication_mod": "%",
}


def _pos(tree: Tree[Any] | Token) -> tuple[int, int]:
    if isinstance(tree, Token):
        return tree.line or 1, tree.column or 1
    meta = tree.meta
    if getattr(meta, "empty", True):
        for child in tree.children:
            if isinstance(child, (Tree, Token)):
                return _pos(child)
        return 1, 1
    return meta.line, meta.column


MAX_DEPTH = 64
_PASSTHROUGH = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition",
                          "multiplication", "unary", "member", "primary", "paren_expr"})


class _Converter:
    def __init__(self) -> None:
        self.depth = 0

    def convert(self, tree: Tree[Any] | Token) -> Node:
        passthrough = isinstance(tree, Tree) and len(tree.children) == 1 and tree.data in _PASSTHROUGH
        if not passthrough:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                line, col = _pos(tree)
                raise CelCompileError(f"expression nested more than {MAX_DEPTH} levels deep", line, col)
        try:
            return self._convert(tree)
        finally:
            if not passthrough:
                self.depth -= 1

    def _convert(self, tree: Tree[Any] | Token) -> Node:
        if isinstance(tree, Token):  # pragma: no cover - the grammar wraps tokens
            raise CelCompileError(f"unexpected token {tree}", *_pos(tree))
        data, kids = tree.data, cast(list[Any], tree.children)
        line, col = _pos(tree)
        if data in _PASSTHROUGH and len(kids) == 1:
            return self.convert(kids[0])
        if data == "expr":
            return Cond(line, col, self.convert(kids[0]), self.convert(kids[1]), self.convert(kids[2]))
        if data == "conditionalor":
            return Or(line, col, self.convert(kids[0]), self.convert(kids[1]))
        if data == "conditionaland":
            return And(line, col, self.convert(kids[0]), self.convert(kids[1]))
        if data in ("relation", "addition", "multiplication"):
            op_tree, right = kids
            op = _BINARY[op_tree.data]
            oline, ocol = _pos(op_tree)
            return Binary(oline, ocol, op, self.convert(op_tree.children[0]), self.convert(right))
        if data == "unary":
            # CEL's parser drops pairs of the same unary operator: `!!x` is `x`, `---x` is `-x`.
            ops: list[str] = []
            node = tree
            while node.data == "unary" and len(node.children) == 2:
                ops.append("!" if node.children[0].data == "unary_not" else "-")
                node = node.children[1]
            if len(set(ops)) > 1:
                raise CelCompileError("syntax error: '!' and '-' cannot be combined without parentheses",
                                      line, col)
            inner = self.convert(node)
            runs = [(op, len(list(group))) for op, group in itertools.groupby(ops)]
            for op, count in reversed(runs):
                if count % 2:
                    inner = self._negate(line, col, op, inner)
            return inner
        if data == "literal":
            return _literal(kids[0])
        if data in ("ident", "dot_ident"):
            return Ident(line, col, _identifier(kids[0]))
        if data == "member_dot":
            return Select(*_pos(kids[1]), self.convert(kids[0]), _identifier(kids[1]))
        if data == "member_index":
            return Index(line, col, self.convert(kids[0]), self.convert(kids[1]))
        if data == "list_lit":
            return ListLit(line, col, tuple(self._exprlist(kids)))
        if data == "map_lit":
            items = self._exprlist(kids[0].children) if kids else []
            entries = tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))
            return MapLit(line, col, entries)
        if data == "member_dot_arg":
            target_tree, name_tok = kids[0], kids[1]
            args_trees = kids[2].children if len(kids) > 2 else []
            return self._method(target_tree, name_tok, args_trees)
        if data == "ident_arg":
            name_tok = kids[0]
            args_trees = kids[1].children if len(kids) > 1 else []
            return self._function(name_tok, args_trees)
        if data == "dot_ident_arg":
            return self._function(kids[0], kids[1].children if len(kids) > 1 else [])
        if data == "member_object":
            raise CelCompileError("message construction is not supported", line, col)
        raise CelCompileError(f"unsupported construct {data}", line, col)

    @staticmethod
    def _negate(line: int, col: int, op: str, inner: Node) -> Node:
        if op == "-" and isinstance(inner, Lit) and type(inner.value) in (int, float):
            value = -inner.value
            if not (type(value) is int and value > INT64_MAX):
                return Lit(line, col, value)
        return Unary(line, col, op, inner)

    def _exprlist(self, kids: list[Any]) -> list[Node]:
        out: list[Node] = []
        for kid in kids:
            if isinstance(kid, Tree) and kid.data in ("exprlist", "mapinits"):
                out.extend(self.convert(k) for k in kid.children)
            else:
                out.append(self.convert(kid))
        return out

    def _function(self, name_tok: Token, arg_trees: list[Any]) -> Node:
        name = _identifier(name_tok)
        line, col = _pos(name_tok)
        if name == "has":
            if len(arg_trees) != 1:
                raise CelCompileError("has() takes exactly one field selection", line, col)
            arg = self.convert(arg_trees[0])
            if not isinstance(arg, Select):
                raise CelCompileError("has() needs a field selection such as has(a.b)", line, col)
            return Has(line, col, arg.operand, arg.field)
        if name not in FUNCTIONS:
            raise CelCompileError(f"unknown function {name}()", line, col)
        args = tuple(self.convert(a) for a in arg_trees)
        if len(args) not in FUNCTIONS[name]:
            raise CelCompileError(f"{name}() takes {_counts(FUNCTIONS[name])} argument(s), got {len(args)}",
                                  line, col)
        return Call(line, col, name, None, args)

    def _method(self, target_tree: Any, name_tok: Token, arg_trees: list[Any]) -> Node:
        name = _identifier(name_tok)
        line, col = _pos(name_tok)
        if name in MACROS:
            if len(arg_trees) not in MACROS[name]:
                raise CelCompileError(f"{name}() takes {_counts(MACROS[name])} arguments", line, col)
            var_node = self.convert(arg_trees[0])
            if not isinstance(var_node, Ident):
                raise CelCompileError(f"the first argument of {name}() must be a variable name", line, col)
            rng = self.convert(target_tree)
            body = [self.convert(a) for a in arg_trees[1:]]
            if name == "map":
                pred, transform = (body[0], body[1]) if len(body) == 2 else (None, body[0])
                return Comprehension(line, col, name, rng, var_node.name, pred, transform)
            return Comprehension(line, col, name, rng, var_node.name, body[0], None)
        if name not in METHODS:
            raise CelCompileError(f"unknown method .{name}()", line, col)
        args = tuple(self.convert(a) for a in arg_trees)
        if len(args) not in METHODS[name]:
            raise CelCompileError(f".{name}() takes {_counts(METHODS[name])} argument(s), got {len(args)}",
                                  line, col)
        return Call(line, col, name, self.convert(target_tree), args)


RESERVED = frozenset({"in", "as", "break", "const", "continue", "else", "for", "function", "if", "import",
                      "let", "loop", "package", "namespace", "return", "var", "void", "while", "true",
                      "false", "null"})


def _identifier(token: Token) -> str:
    name = str(token)
    if name in RESERVED:
        raise CelCompileError(f"syntax error: {name!r} is a reserved word", *_pos(token))
    return name


def _counts(counts: tuple[int, ...]) -> str:
    return " or ".join(str(c) for c in counts)


_PARSER: Any = None


#: cel-python's grammar also reads ``1.`` as a float; CEL's does not (``DIGIT* . DIGIT+``), so
#: ``0.startsWith("")`` is a call on the integer 0, not a float followed by an identifier.
_SPEC_FLOAT = 'FLOAT_LIT      : /-?/ DIGIT* "." DIGIT+ EXPONENT? | /-?/ DIGIT+ EXPONENT'
_LOOSE_FLOAT = re.compile(r"^FLOAT_LIT\s*:.*$", re.M)


def _parser() -> Any:
    """The Lark LALR parser of cel-python's CEL grammar, with CEL's own float literal (built once, on
    first use)."""
    global _PARSER
    if _PARSER is None:
        import celpy
        from celpy.celparser import CELParser
        from lark import Lark

        grammar = (Path(celpy.__file__).parent / "cel.lark").read_text(encoding="utf-8")
        grammar = _LOOSE_FLOAT.sub(_SPEC_FLOAT, grammar, count=1)
        _PARSER = Lark(grammar, parser="lalr", start="expr", g_regex_flags=re.M,
                       lexer_callbacks={"IDENT": CELParser.ambiguous_literals}, propagate_positions=True,
                       maybe_placeholders=False, priority="invert")
    return _PARSER


def parse_cel(source: str) -> Node:
    """Parse CEL source into a Node; raises CelCompileError with the 1-based line and column."""
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if not source.strip():
        raise CelCompileError("empty expression", 1, 1)
    try:
        tree = _parser().parse(source)
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            line, col = _end_position(source)
            raise CelCompileError("syntax error: unexpected end of expression", line, col) from None
        raise CelCompileError(f"syntax error: unexpected {str(exc.token)!r}", exc.line or 1, exc.column or 1) from None
    except UnexpectedCharacters as exc:
        raise CelCompileError(f"syntax error: unexpected character {exc.char!r}", exc.line or 1,
                              exc.column or 1) from None
    except UnexpectedEOF:
        line, col = _end_position(source)
        raise CelCompileError("syntax error: unexpected end of expression", line, col) from None
    except LarkError as exc:
        raise CelCompileError(f"syntax error: {str(exc).splitlines()[0]}", 1, 1) from None
    except RecursionError:
        raise CelCompileError("expression nested too deeply", 1, 1) from None
    return _Converter().convert(tree)


def _end_position(source: str) -> tuple[int, int]:
    text = source.rstrip()
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1
