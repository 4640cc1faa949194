"""Compile CEL expressions once into Python functions; evaluation runs no interpreter.

``compile_cel(source)`` parses (celast), then generates the source of one Python function per
expression: common cases (field selection on maps, comparisons with literals, string tests, ``in``
a literal list) are inlined with type guards that keep CEL semantics; everything else calls the
runtime in ``celrt``. CEL errors are exceptions inside the function; ``&&``, ``||``, ``exists`` and
``all`` catch them where CEL's commutative semantics absorb them, so results equal the reference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from lictor.policy import celfuncs, celrt
from lictor.policy.celast import (
    And,
    Binary,
    Call,
    CelCompileError,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Node,
    Or,
    Select,
    Unary,
    parse_cel,
)
from lictor.policy.celrt import CelEvalError

__all__ = ["CelCompileError", "CelEvalError", "CelProgram", "compile_cel"]


@dataclass(frozen=True, slots=True)
class CelProgram:
    """A compiled expression. ``function(activation)`` is the raw hot-path callable (raises any
    exception on a CEL error); ``evaluate`` is the checked entry point that raises CelEvalError."""

    source: str
    function: Callable[[Mapping[str, Any]], Any]
    python: str

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        try:
            return self.function(activation)
        except Exception as exc:  # every failure inside CEL is a CEL error value
            raise celrt.as_error(exc) from None


def _and_fail(a: Any, b: Any) -> CelEvalError:
    for v in (a, b):
        if isinstance(v, CelEvalError):
            return v
    return CelEvalError("no matching overload for _&&_ (operands must be bool)")


def _or_fail(a: Any, b: Any) -> CelEvalError:
    for v in (a, b):
        if isinstance(v, CelEvalError):
            return v
    return CelEvalError("no matching overload for _||_ (operands must be bool)")


def _cond_fail(c: Any) -> CelEvalError:
    return CelEvalError(f"no matching overload for _?_:_ (condition is {celrt.type_name(c)})")


def _make_map(entries: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in entries:
        if type(key) not in (str, int, bool):
            raise CelEvalError(f"unsupported map key type {celrt.type_name(key)}")
        if celrt.map_get(out, key)[0]:
            raise CelEvalError(f"duplicate key in map literal: {key!r}")
        if key in out:  # Python cannot hold both true and 1 as keys of one dict
            raise CelEvalError(f"map literal mixes bool and int keys ({key!r}); not supported")
        out[key] = value
    return out


_RUNTIME: dict[str, Any] = {
    "_E": celrt.as_error,
    "_CelEvalError": CelEvalError,
    "_and_fail": _and_fail,
    "_or_fail": _or_fail,
    "_cond_fail": _cond_fail,
    "_sel": celrt.select,
    "_has": celrt.has,
    "_index": celrt.index,
    "_size": celrt.size,
    "_iter": celrt.iter_range,
    "_not": celrt.not_,
    "_neg": celrt.neg,
    "_add": celrt.add,
    "_sub": celrt.sub,
    "_mul": celrt.mul,
    "_div": celrt.div,
    "_mod": celrt.mod,
    "_eq": celrt.eq,
    "_lt": celrt.lt,
    "_le": celrt.le,
    "_gt": celrt.gt,
    "_ge": celrt.ge,
    "_in": celrt.in_,
    "_NUM": celrt.NUM,
    "_starts": celfuncs.starts_with,
    "_ends": celfuncs.ends_with,
    "_contains": celfuncs.str_contains,
    "_matches": celfuncs.matches,
    "_glob": celfuncs.glob_match,
    "_has_finding": celfuncs.has_finding,
    "_finding_count": celfuncs.finding_count,
    "_int": celfuncs.to_int,
    "_double": celfuncs.to_double,
    "_string": celfuncs.to_string,
    "_bool": celfuncs.to_bool,
    "_timestamp": celfuncs.parse_timestamp,
    "_duration": celfuncs.parse_duration,
    "_time_part": celfuncs.time_part,
    "_make_map": _make_map,
    "_no_overload": celrt.no_overload,
}

_CMP_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_CMP_HELPER = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_ARITH_HELPER = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod"}
_STR_METHODS = {"startsWith": ("startswith", "_starts"), "endsWith": ("endswith", "_ends")}


def _is_num_lit(node: Node) -> bool:
    return isinstance(node, Lit) and type(node.value) in (int, float) and math.isfinite(node.value)


class _Generator:
    """Turns one Node tree into the body of ``def _cel(A):``; statements go to ``self.lines``."""

    def __init__(self, variables: Collection[str] | None) -> None:
        self.variables = variables
        self.lines: list[str] = []
        self.indent = 1
        self.counter = 0
        self.namespace: dict[str, Any] = dict(_RUNTIME)
        self.scopes: list[dict[str, str]] = []

    # -- helpers ----------------------------------------------------------------

    def tmp(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"_{prefix}{self.counter}"

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def const(self, value: Any) -> str:
        name = self.tmp("k")
        self.namespace[name] = value
        return name

    def literal(self, value: Any) -> str:
        t = type(value)
        if t in (int, str, bool) or value is None:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)
        return self.const(value)

    def sub(self, node: Node, extra_indent: int = 1) -> tuple[list[str], str]:
        """Compile ``node`` into a separate block (for code that runs conditionally)."""
        saved = self.lines
        self.lines = []
        self.indent += extra_indent
        try:
            expr = self.expr(node)
            return self.lines, expr
        finally:
            self.lines = saved
            self.indent -= extra_indent

    def guarded(self, node: Node, target: str) -> None:
        """Emit ``try: target = node except: target = error-value`` at the current indent."""
        self.emit("try:")
        stmts, expr = self.sub(node)
        self.lines.extend(stmts)
        self.emit(f"    {target} = {expr}")
        self.emit("except Exception as _e:")
        self.emit(f"    {target} = _E(_e)")

    # -- nodes --------------------------------------------------------------------

    def expr(self, node: Node) -> str:
        method = getattr(self, "_" + type(node).__name__.lower())
        result: str = method(node)
        return result

    def _lit(self, node: Lit) -> str:
        return self.literal(node.value)

    def _ident(self, node: Ident) -> str:
        for scope in reversed(self.scopes):
            if node.name in scope:
                return scope[node.name]
        if self.variables is not None and node.name not in self.variables:
            raise CelCompileError(f"undeclared reference to {node.name!r}", node.line, node.column)
        return f"A[{node.name!r}]"

    def _select(self, node: Select) -> str:
        operand = self.expr(node.operand)
        t = self.tmp()
        return f"({t}[{node.field!r}] if type({t} := {operand}) is dict else _sel({t}, {node.field!r}))"

    def _has(self, node: Has) -> str:
        operand = self.expr(node.operand)
        t = self.tmp()
        return f"({node.field!r} in {t} if type({t} := {operand}) is dict else _has({t}, {node.field!r}))"

    def _index(self, node: Index) -> str:
        return f"_index({self.expr(node.operand)}, {self.expr(node.index)})"

    def _listlit(self, node: ListLit) -> str:
        if all(isinstance(i, Lit) for i in node.items):
            return self.const([i.value for i in node.items if isinstance(i, Lit)])
        return "[" + ", ".join(self.expr(i) for i in node.items) + "]"

    def _maplit(self, node: MapLit) -> str:
        seen: list[Any] = []
        for key, _ in node.entries:
            if isinstance(key, Lit):
                if any(type(k) is type(key.value) and k == key.value for k in seen):
                    raise CelCompileError(f"duplicate key {key.value!r} in map literal", key.line, key.column)
                seen.append(key.value)
        pairs = ", ".join(f"({self.expr(k)}, {self.expr(v)})" for k, v in node.entries)
        return f"_make_map([{pairs}])"

    def _unary(self, node: Unary) -> str:
        operand = self.expr(node.operand)
        if node.op == "!":
            t = self.tmp()
            return f"(False if ({t} := {operand}) is True else True if {t} is False else _not({t}))"
        return f"_neg({operand})"

    def _binary(self, node: Binary) -> str:
        op = node.op
        if op in _ARITH_HELPER:
            return f"{_ARITH_HELPER[op]}({self.expr(node.left)}, {self.expr(node.right)})"
        if op in _CMP_HELPER:
            return self._compare(node)
        if op in ("==", "!="):
            test = self._equals(node.left, node.right)
            return test if op == "==" else f"(not {test})"
        return self._in(node)

    def _compare(self, node: Binary) -> str:
        op, left, right = node.op, node.left, node.right
        if _is_num_lit(right) or _is_num_lit(left):
            lit, other, pyop = (right, left, op) if _is_num_lit(right) else (left, right, _CMP_FLIP[op])
            assert isinstance(lit, Lit)
            k = self.literal(lit.value)
            t = self.tmp()
            helper = _CMP_HELPER[pyop]
            return f"({t} {pyop} {k} if type({t} := {self.expr(other)}) in _NUM else {helper}({t}, {k}))"
        return f"{_CMP_HELPER[op]}({self.expr(left)}, {self.expr(right)})"

    def _equals(self, left: Node, right: Node) -> str:
        if isinstance(left, Lit) and isinstance(right, Lit):
            return f"_eq({self.expr(left)}, {self.expr(right)})"
        if isinstance(left, Lit):
            left, right = right, left
        if isinstance(right, Lit):
            v = right.value
            other = self.expr(left)
            if v is None or type(v) is bool:
                return f"({other} is {v!r})"
            if type(v) is str:
                return f"({other} == {v!r})"
            if type(v) in (int, float) and math.isfinite(v):
                t = self.tmp()
                return f"(({t} := {other}) == {v!r} and type({t}) is not bool)"
        return f"_eq({self.expr(left)}, {self.expr(right)})"

    def _in(self, node: Binary) -> str:
        item = self.expr(node.left)
        right = node.right
        if isinstance(right, ListLit) and right.items and all(
            isinstance(i, Lit) and type(i.value) is str for i in right.items
        ):
            values = [i.value for i in right.items if isinstance(i, Lit)]
            kset, klist = self.const(frozenset(values)), self.const(values)
            t = self.tmp()
            return f"({t} in {kset} if type({t} := {item}) is str else _in({t}, {klist}))"
        return f"_in({item}, {self.expr(right)})"

    def _and(self, node: And) -> str:
        return self._logic(node.left, node.right, absorbing=False)

    def _or(self, node: Or) -> str:
        return self._logic(node.left, node.right, absorbing=True)

    def _logic(self, left: Node, right: Node, *, absorbing: bool) -> str:
        """``&&`` (absorbing False) or ``||`` (absorbing True) with CEL's error semantics."""
        short, other = ("True", "False") if absorbing else ("False", "True")
        fail = "_or_fail" if absorbing else "_and_fail"
        a, b, r = self.tmp("a"), self.tmp("b"), self.tmp("r")
        self.guarded(left, a)
        self.emit(f"if {a} is {short}:")
        self.emit(f"    {r} = {short}")
        self.emit("else:")
        self.indent += 1
        self.guarded(right, b)
        self.emit(f"if {b} is {short}:")
        self.emit(f"    {r} = {short}")
        self.emit(f"elif {a} is {other} and {b} is {other}:")
        self.emit(f"    {r} = {other}")
        self.emit("else:")
        self.emit(f"    raise {fail}({a}, {b})")
        self.indent -= 1
        return r

    def _cond(self, node: Cond) -> str:
        cond = self.expr(node.cond)
        then_stmts, then_expr = self.sub(node.then)
        else_stmts, else_expr = self.sub(node.otherwise)
        c = self.tmp("c")
        if not then_stmts and not else_stmts:
            return (f"({then_expr} if ({c} := {cond}) is True else {else_expr} if {c} is False "
                    f"else _raise(_cond_fail({c})))")
        r = self.tmp("r")
        self.emit(f"{c} = {cond}")
        self.emit(f"if {c} is True:")
        self.lines.extend(then_stmts)
        self.emit(f"    {r} = {then_expr}")
        self.emit(f"elif {c} is False:")
        self.lines.extend(else_stmts)
        self.emit(f"    {r} = {else_expr}")
        self.emit("else:")
        self.emit(f"    raise _cond_fail({c})")
        return r

    def _comprehension(self, node: Comprehension) -> str:
        rng = self.tmp("rng")
        self.emit(f"{rng} = _iter({self.expr(node.range)}, {node.macro!r})")
        var = self.tmp("v")
        self.scopes.append({node.var: var})
        try:
            return getattr(self, "_macro_" + node.macro)(node, rng, var)  # type: ignore[no-any-return]
        finally:
            self.scopes.pop()

    def _quantifier(self, node: Comprehension, rng: str, var: str, *, want: bool) -> str:
        """exists (want=True) and all (want=False): a decisive element wins over errors."""
        assert node.predicate is not None
        res, err, p = self.tmp("res"), self.tmp("err"), self.tmp("p")
        self.emit(f"{res} = {not want}")
        self.emit(f"{err} = None")
        self.emit(f"for {var} in {rng}:")
        self.indent += 1
        self.guarded(node.predicate, p)
        self.emit(f"if {p} is {want}:")
        self.emit(f"    {res} = {want}")
        self.emit("    break")
        self.emit(f"if {p} is not {not want}:")
        self.emit(f"    {err} = {p} if isinstance({p}, _CelEvalError) else _no_overload({node.macro!r}, {p})")
        self.indent -= 1
        self.emit(f"if {res} is {not want} and {err} is not None:")
        self.emit(f"    raise {err}")
        return res

    def _macro_exists(self, node: Comprehension, rng: str, var: str) -> str:
        return self._quantifier(node, rng, var, want=True)

    def _macro_all(self, node: Comprehension, rng: str, var: str) -> str:
        return self._quantifier(node, rng, var, want=False)

    def _strict_test(self, pred: Node, macro: str) -> str:
        """Emit the predicate strictly (errors propagate) and return a name holding True/False."""
        stmts, expr = self.sub(pred, extra_indent=0)
        self.lines.extend(stmts)
        p = self.tmp("p")
        self.emit(f"{p} = {expr}")
        self.emit(f"if {p} is not True and {p} is not False:")
        self.emit(f"    raise _no_overload({macro!r}, {p})")
        return p

    def _macro_exists_one(self, node: Comprehension, rng: str, var: str) -> str:
        assert node.predicate is not None
        n = self.tmp("n")
        self.emit(f"{n} = 0")
        self.emit(f"for {var} in {rng}:")
        self.indent += 1
        p = self._strict_test(node.predicate, "exists_one")
        self.emit(f"if {p}:")
        self.emit(f"    {n} += 1")
        self.indent -= 1
        return f"({n} == 1)"

    def _macro_filter(self, node: Comprehension, rng: str, var: str) -> str:
        assert node.predicate is not None
        out = self.tmp("out")
        self.emit(f"{out} = []")
        self.emit(f"for {var} in {rng}:")
        self.indent += 1
        p = self._strict_test(node.predicate, "filter")
        self.emit(f"if {p}:")
        self.emit(f"    {out}.append({var})")
        self.indent -= 1
        return out

    def _macro_map(self, node: Comprehension, rng: str, var: str) -> str:
        assert node.transform is not None
        out = self.tmp("out")
        self.emit(f"{out} = []")
        self.emit(f"for {var} in {rng}:")
        self.indent += 1
        if node.predicate is not None:
            p = self._strict_test(node.predicate, "map")
            self.emit(f"if {p}:")
            self.indent += 1
        stmts, expr = self.sub(node.transform, extra_indent=0)
        self.lines.extend(stmts)
        self.emit(f"{out}.append({expr})")
        if node.predicate is not None:
            self.indent -= 1
        self.indent -= 1
        return out

    def _call(self, node: Call) -> str:
        fn, target, args = node.function, node.target, node.args
        if target is not None:
            return self._method(node, target)
        if fn == "size":
            return f"_size({self.expr(args[0])})"
        if fn == "dyn":
            return self.expr(args[0])
        if fn in ("int", "double", "string", "bool"):
            return f"_{fn}({self.expr(args[0])})"
        if fn in ("timestamp", "duration"):
            arg = args[0]
            if isinstance(arg, Lit) and type(arg.value) is str:
                try:
                    parse = celfuncs.parse_timestamp if fn == "timestamp" else celfuncs.parse_duration
                    return self.const(parse(arg.value))
                except CelEvalError as exc:
                    raise CelCompileError(exc.message, arg.line, arg.column) from None
            return f"_{fn}({self.expr(args[0])})"
        if fn == "matches":
            return self._matches(args[0], args[1])
        if fn in ("has_finding", "finding_count"):
            findings = self._ident(Ident(node.line, node.column, "findings"))
            return f"_{fn}({findings}, {self.expr(args[0])})"
        if fn == "glob":
            pattern = args[1]
            if isinstance(pattern, Lit) and type(pattern.value) is str:
                match = self.const(celfuncs.compile_glob(pattern.value))
                t = self.tmp()
                return (f"({match}({t}) if type({t} := {self.expr(args[0])}) is str "
                        f"else _glob({t}, {pattern.value!r}))")
            return f"_glob({self.expr(args[0])}, {self.expr(pattern)})"
        raise CelCompileError(f"unknown function {fn}()", node.line, node.column)  # pragma: no cover

    def _method(self, node: Call, target: Node) -> str:
        fn, args = node.function, node.args
        if fn == "size":
            return f"_size({self.expr(target)})"
        if fn in _STR_METHODS:
            pymethod, helper = _STR_METHODS[fn]
            arg = args[0]
            if isinstance(arg, Lit) and type(arg.value) is str:
                t = self.tmp()
                return (f"({t}.{pymethod}({arg.value!r}) if type({t} := {self.expr(target)}) is str "
                        f"else {helper}({t}, {arg.value!r}))")
            return f"{helper}({self.expr(target)}, {self.expr(arg)})"
        if fn == "contains":
            arg = args[0]
            if isinstance(arg, Lit) and type(arg.value) is str:
                t = self.tmp()
                return (f"({arg.value!r} in {t} if type({t} := {self.expr(target)}) is str "
                        f"else _contains({t}, {arg.value!r}))")
            return f"_contains({self.expr(target)}, {self.expr(arg)})"
        if fn == "matches":
            return self._matches(target, args[0])
        # timestamp and duration accessors
        tz = self.expr(args[0]) if args else "None"
        return f"_time_part({fn!r}, {self.expr(target)}, {tz})"

    def _matches(self, text: Node, pattern: Node) -> str:
        if isinstance(pattern, Lit) and type(pattern.value) is str:
            try:
                match = celfuncs.matcher(pattern.value)
            except CelEvalError as exc:
                raise CelCompileError(exc.message, pattern.line, pattern.column) from None
            return f"{self.const(match)}({self.expr(text)})"
        return f"_matches({self.expr(text)}, {self.expr(pattern)})"


def _raise(exc: BaseException) -> Any:
    raise exc


_RUNTIME["_raise"] = _raise


def compile_cel(source: str, *, variables: Collection[str] | None = None) -> CelProgram:
    """Compile CEL ``source`` into a CelProgram.

    ``variables``, when given, is the set of names the activation will bind: any other free name is a
    compile error (so a typo in a policy is caught when it loads, not when it runs).
    """
    tree = parse_cel(source)
    gen = _Generator(variables)
    result = gen.expr(tree)
    body = [*gen.lines, f"    return {result}"]
    python = "def _cel(A):\n" + "\n".join(body) + "\n"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            code = compile(python, "<cel>", "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise CelCompileError("expression too complex to compile", tree.line, tree.column) from exc
    namespace = gen.namespace
    exec(code, namespace)  # the source is generated above from a checked syntax tree, never user text
    return CelProgram(source=source, function=namespace["_cel"], python=python)

