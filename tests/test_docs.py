"""The documentation is executable: these tests fail when a doc example, command or table goes stale.

Conventions the docs follow (docs/*.md):

* A ```yaml block containing ``apiVersion: lictor/v1`` is an example. All such blocks of one ``##``
  section are written together to a directory and loaded with ``lictor.load_policies``; when the
  section holds a ``PolicyTest``, ``lictor policy test`` runs on that directory and every case must
  pass. A block whose first line is ``# file: PATH`` is written to that path, which console examples
  of the same page can then use.
  The page's named blocks are written along with every section's examples.
* A ```yaml invalid block must fail to load; the next ```text block lists the diagnostics it gives
  (or, for a named block, a console example of the page shows them).
* In ```console blocks, lines starting with ``$ lictor`` are run (from a directory where
  ``examples/`` and the page's ``# file:`` blocks exist) and the lines after them, up to the next
  ``$``, are the expected output. A line ``...`` stands for any number of lines, and a line ending
  in ``...`` for any line starting with what comes before; JSON output is
  compared as data, ignoring ``decision_id``, ``timestamp`` and ``duration_us``, and an expected string
  ending in ``...`` matches any string starting with what comes before.
* In docs/policy-language.md, tables with an ``example`` column (or an ``expression`` column next to
  ``why``) hold CEL expressions that are true, without error, for the reference action of the section
  "CEL variables"; ``expression | error`` tables hold expressions that fail at decision time, and
  ``expression | diagnostic`` tables expressions that fail to load, with the diagnostic's message.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
POLICY_LANGUAGE = DOCS / "policy-language.md"
IGNORED_JSON_FIELDS = frozenset({"decision_id", "timestamp", "duration_us"})

# --------------------------------------------------------------------------- what must be documented

#: Every field of a Policy or PolicyTest document, as it appears in the first column of a table in
#: docs/policy-language.md. Replaced by the engine's own list when it exports one (see _engine_fields).
POLICY_FIELDS = [
    "apiVersion", "kind", "metadata", "spec",
    "metadata.name", "metadata.description", "metadata.controls", "metadata.labels",
    "spec.target", "spec.rules",
    "target.systems", "target.kinds", "target.names", "target.agents", "target.roles",
    "rule.name", "rule.when", "rule.verdict", "rule.message", "rule.approval", "rule.constrain",
    "rule.limit", "rule.on_error",
    "approval.approvers", "approval.quorum", "approval.ttl",
    "limit.key", "limit.max", "limit.per",
    "redact", "clamp", "remove", "set",
    "redact.paths", "redact.pattern", "redact.findings", "redact.replacement",
    "redact.mode",
    "clamp.path", "clamp.min", "clamp.max", "set.path", "set.value",
    "spec.now", "spec.cases",
    "case.name", "case.action", "case.findings", "case.repeat", "case.expect",
    "expect.verdict", "expect.rules", "expect.action", "expect.errors",
]

#: Every CEL function, method and macro a policy may use.
CEL_FUNCTIONS = [
    "has", "exists", "all", "exists_one", "filter", "map",
    "size", "int", "double", "string", "bool", "dyn", "timestamp", "duration", "matches",
    "startsWith", "endsWith", "contains",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    "has_finding", "finding_count", "glob",
]

CEL_VARIABLES = ["system", "kind", "name", "args", "agent", "principal", "resource", "content",
                 "context", "findings", "now"]


# --------------------------------------------------------------------------- markdown parsing


@dataclass
class Block:
    doc: Path
    section: str
    info: str
    text: str
    line: int

    @property
    def lang(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def flags(self) -> list[str]:
        return self.info.split()[1:]

    @property
    def file_name(self) -> str | None:
        first = self.text.splitlines()[0] if self.text else ""
        m = re.match(r"#\s*file:\s*(\S+)\s*$", first)
        return m.group(1) if m else None

    def __str__(self) -> str:
        return f"{self.doc.name}:{self.line}"


def parse_blocks(doc: Path) -> list[Block]:
    blocks: list[Block] = []
    section = ""
    fence: str | None = None
    info = ""
    body: list[str] = []
    start = 0
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None:
            m = re.match(r"^(`{3,})(.*)$", line)
            if m:
                fence, info, body, start = m.group(1), m.group(2).strip(), [], number
            elif line.startswith("## "):
                section = line[3:].strip()
        elif line.strip() == fence:
            blocks.append(Block(doc, section, info, "\n".join(body) + "\n", start))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{doc.name}: unclosed code block at line {start}"
    return blocks


def parse_tables(doc: Path) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of a page as (section, header cells, rows of cells); code spans keep backticks."""
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    section = ""
    in_code = False
    current: list[list[str]] | None = None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if current is None:
                current = [cells]
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current is not None:
            tables.append((section, current[0], current[1:]))
            current = None
    if current is not None:
        tables.append((section, current[0], current[1:]))
    return tables


def code_span(cell: str) -> str:
    m = re.fullmatch(r"`(.+)`", cell)
    assert m, f"expected a single code span, got {cell!r}"
    return m.group(1)


DOC_FILES = sorted(DOCS.glob("*.md"))
ALL_BLOCKS = [b for doc in DOC_FILES for b in parse_blocks(doc)]


def _is_example(block: Block) -> bool:
    return block.lang == "yaml" and "apiVersion: lictor/v1" in block.text


def _example_sections() -> list[tuple[Path, str]]:
    seen: list[tuple[Path, str]] = []
    for b in ALL_BLOCKS:
        if _is_example(b) and "invalid" not in b.flags and (b.doc, b.section) not in seen:
            seen.append((b.doc, b.section))
    return seen


def _write_blocks(blocks: list[Block], root: Path) -> None:
    for i, block in enumerate(blocks, 1):
        path = root / (block.file_name or f"example-{i}.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        assert not path.exists(), f"{block}: two blocks write {path.name}"
        path.write_text(block.text, encoding="utf-8")


def run_cli(args: list[str], stdin: str | None = None) -> Any:
    from lictor.cli import main

    return CliRunner().invoke(main, args, input=stdin, prog_name="lictor", catch_exceptions=False)


# --------------------------------------------------------------------------- yaml examples


@pytest.mark.parametrize(
    ("doc", "section"), _example_sections(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_yaml_examples_load_and_their_tests_pass(doc: Path, section: str, tmp_path: Path) -> None:
    import lictor

    valid = [b for b in ALL_BLOCKS if b.doc == doc and _is_example(b) and "invalid" not in b.flags]
    blocks = [b for b in valid if b.section == section]
    # A page's named files form one working tree: a test in one section may use a policy of another.
    blocks += [b for b in valid if b.file_name and b not in blocks]
    _write_blocks(blocks, tmp_path)
    lictor.load_policies(tmp_path)
    if any(re.search(r"^kind: PolicyTest\s*$", b.text, re.M) for b in blocks):
        result = run_cli(["policy", "test", str(tmp_path)])
        assert result.exit_code == 0, result.output
        last = result.output.strip().splitlines()[-1]
        m = re.fullmatch(r"(\d+) passed, 0 failed", last)
        assert m and int(m.group(1)) > 0, result.output


INVALID = [b for b in ALL_BLOCKS if b.lang == "yaml" and "invalid" in b.flags]


@pytest.mark.parametrize("block", INVALID, ids=str)
def test_invalid_examples_give_the_documented_diagnostics(block: Block, tmp_path: Path) -> None:
    import lictor
    from lictor.errors import PolicyError

    name = block.file_name or "policy.yaml"
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(block.text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        lictor.load_policies(tmp_path)
    following = [b for b in ALL_BLOCKS if b.doc == block.doc and b.line > block.line]
    if block.file_name and not (following and following[0].lang == "text"):
        # A named file whose diagnostics a console example of the page shows.
        directory = Path(block.file_name).parts[0]
        assert any(c.block.doc == block.doc and directory in c.argv for c in COMMANDS), block
        return
    assert following and following[0].lang == "text", f"{block}: needs a ```text block after it"
    expected = [line for line in following[0].text.splitlines() if line.strip()]
    # Compared by position: the order in which they are printed is tested on its own below.
    got = sorted((Path(d.file).name, d.line, d.column, d.message) for d in caught.value.diagnostics)
    assert len(got) == len(expected), "\n".join(str(d) for d in caught.value.diagnostics)
    for line, actual in zip(expected, got, strict=True):
        m = re.fullmatch(r"(.+?):(\d+):(\d+): (.+)", line)
        assert m, f"{following[0]}: not a diagnostic: {line!r}"
        assert (m.group(1), int(m.group(2)), int(m.group(3))) == actual[:3], (line, actual)
        assert m.group(4) in actual[3], (line, actual)


def test_diagnostics_are_reported_in_file_order(tmp_path: Path) -> None:
    """docs/policy-language.md (Diagnostics) promises every problem at once, in file order."""
    import lictor
    from lictor.errors import PolicyError

    block = next(b for b in INVALID if b.doc == POLICY_LANGUAGE)
    (tmp_path / "policy.yaml").write_text(block.text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        lictor.load_policies(tmp_path)
    positions = [(d.file, d.line, d.column) for d in caught.value.diagnostics]
    assert len(positions) > 1
    assert positions == sorted(positions)


# --------------------------------------------------------------------------- console examples


@dataclass
class Command:
    block: Block
    argv: list[str]
    stdin_file: str | None
    expected: list[str]


def _commands() -> list[Command]:
    commands: list[Command] = []
    for block in ALL_BLOCKS:
        if block.lang != "console":
            continue
        current: Command | None = None
        for line in block.text.splitlines():
            if line.startswith("$ "):
                current = None
                if line.startswith("$ lictor "):
                    words = shlex.split(line[2:])[1:]
                    stdin_file = None
                    if "<" in words:
                        at = words.index("<")
                        stdin_file = words[at + 1]
                        words = words[:at] + words[at + 2:]
                    current = Command(block, words, stdin_file, [])
                    commands.append(current)
            elif current is not None:
                current.expected.append(line)
    return commands


COMMANDS = _commands()


def _json_values(text: str) -> list[Any] | None:
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        values.append(value)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values or None


def json_matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        keys = set(expected) - IGNORED_JSON_FIELDS
        if keys != set(actual) - IGNORED_JSON_FIELDS:
            return False
        return all(json_matches(expected[k], actual[k]) for k in keys)
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True)))
    if isinstance(expected, str) and expected.endswith("..."):
        return isinstance(actual, str) and actual.startswith(expected[:-3])
    return type(expected) is type(actual) and expected == actual


def lines_match(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(lines_match(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    want = expected[0].rstrip()
    if not actual:
        return False
    same = actual[0].startswith(want[:-3]) if want.endswith("...") else want == actual[0].rstrip()
    return same and lines_match(expected[1:], actual[1:])


@pytest.fixture
def docs_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.block}:{' '.join(c.argv)[:60]}")
def test_console_examples_print_what_the_docs_show(command: Command, docs_workdir: Path) -> None:
    named = [b for b in ALL_BLOCKS if b.doc == command.block.doc and b.file_name]
    for block in named:
        path = docs_workdir / block.file_name  # type: ignore[operator]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
    stdin = Path(command.stdin_file).read_text(encoding="utf-8") if command.stdin_file else None
    result = run_cli(command.argv, stdin)
    actual = result.output.rstrip("\n").splitlines()
    expected = list(command.expected)
    while expected and not expected[-1].strip():
        expected.pop()
    want_json = _json_values("\n".join(expected))
    if want_json is not None:
        got_json = _json_values(result.output)
        assert got_json is not None, result.output
        assert len(got_json) == len(want_json), result.output
        for want, got in zip(want_json, got_json, strict=True):
            assert json_matches(want, got), f"expected\n{json.dumps(want, indent=2)}\ngot\n{json.dumps(got, indent=2)}"
    else:
        assert lines_match(expected, actual), "expected:\n" + "\n".join(expected) + "\n\ngot:\n" + result.output


def test_every_console_block_runs_something() -> None:
    for block in (b for b in ALL_BLOCKS if b.lang == "console"):
        assert any(c.block is block for c in COMMANDS) or "$ lictor" not in block.text, block


# --------------------------------------------------------------------------- the CEL tables


def _reference() -> dict[str, Any]:
    blocks = [b for b in parse_blocks(POLICY_LANGUAGE) if b.section == "CEL variables" and b.lang == "json"]
    assert len(blocks) == 1, "the section 'CEL variables' needs exactly one json block (the reference)"
    data: dict[str, Any] = json.loads(blocks[0].text)
    return data


def _cel_cases() -> dict[str, list[str]]:
    cases: dict[str, list[str]] = {"true": [], "error": [], "compile": []}
    diagnostics: list[str] = []
    for _section, header, rows in parse_tables(POLICY_LANGUAGE):
        names = [h.lower() for h in header]
        for row in rows:
            cell = dict(zip(names, row, strict=True))
            if "example" in cell:
                cases["true"].append(code_span(cell["example"]))
            elif "expression" in cell and "why" in cell:
                cases["true"].append(code_span(cell["expression"]))
            elif "expression" in cell and "error" in cell:
                cases["error"].append(code_span(cell["expression"]))
            elif "expression" in cell and "diagnostic" in cell:
                cases["compile"].append(code_span(cell["expression"]))
                diagnostics.append(cell["diagnostic"])
    cases["diagnostics"] = diagnostics
    return cases


CEL_CASES = _cel_cases()


def _write_rules(root: Path, expressions: list[str], verdict: str, on_error: str | None = None) -> None:
    rules = []
    for i, expression in enumerate(expressions):
        rule = {"name": f"e{i}", "when": expression, "verdict": verdict}
        if on_error:
            rule["on_error"] = on_error
        rules.append(rule)
    doc = {"apiVersion": "lictor/v1", "kind": "Policy", "metadata": {"name": "doc-examples"},
           "spec": {"rules": rules}}
    (root / "examples.yaml").write_text(json.dumps(doc, indent=1), encoding="utf-8")


def _decide(root: Path) -> Any:
    import lictor
    from lictor.model import Action, Finding

    ref = _reference()
    policies = lictor.load_policies(root)
    now = datetime.fromisoformat(ref["now"].replace("Z", "+00:00"))
    findings = [Finding.from_dict(f) for f in ref.get("findings", [])]
    return policies.evaluate(Action.from_dict(ref["action"]), now=now, findings=findings)


def test_cel_examples_are_true_for_the_reference_action(tmp_path: Path) -> None:
    expressions = CEL_CASES["true"]
    assert len(expressions) > 40
    _write_rules(tmp_path, expressions, "LOG")
    decision = _decide(tmp_path)
    errors = {e.rule: e.message for e in decision.errors}
    matched = {r.rule for r in decision.reasons}
    problems = [f"{expr}: {errors.get(f'e{i}', 'false')}"
                for i, expr in enumerate(expressions) if f"e{i}" not in matched]
    assert not problems, "\n".join(problems)


def test_cel_error_examples_fail_at_decision_time(tmp_path: Path) -> None:
    expressions = CEL_CASES["error"]
    assert expressions
    _write_rules(tmp_path, expressions, "LOG", on_error="skip")
    decision = _decide(tmp_path)
    errored = {e.rule for e in decision.errors}
    missing = [expr for i, expr in enumerate(expressions) if f"e{i}" not in errored]
    assert not missing, missing
    assert not decision.reasons


@pytest.mark.parametrize(
    ("expression", "diagnostic"), list(zip(CEL_CASES["compile"], CEL_CASES["diagnostics"], strict=True))
)
def test_cel_compile_error_examples_are_rejected(expression: str, diagnostic: str, tmp_path: Path) -> None:
    import lictor
    from lictor.errors import PolicyError

    _write_rules(tmp_path, [expression], "BLOCK")
    with pytest.raises(PolicyError) as caught:
        lictor.load_policies(tmp_path)
    messages = [d.message for d in caught.value.diagnostics]
    assert any(diagnostic in m for m in messages), messages


# --------------------------------------------------------------------------- completeness


def _first_cells() -> set[str]:
    cells = set()
    for _section, _header, rows in parse_tables(POLICY_LANGUAGE):
        for row in rows:
            m = re.fullmatch(r"`([^`]+)`", row[0])
            if m:
                cells.add(m.group(1))
    return cells


def _engine_fields() -> list[str]:
    """The engine's own list of accepted fields, when it exports one (``lictor.policy.FIELDS``)."""
    import lictor.policy

    exported = getattr(lictor.policy, "FIELDS", None)
    if exported is None:
        return []
    # How the engine's owners are written in the docs' tables.
    prefixes = {"document": "", "policy.spec": "spec", "test.spec": "spec", "constrain": ""}
    if isinstance(exported, dict):
        return [f"{prefixes.get(owner, owner)}.{name}".lstrip(".")
                for owner, names in exported.items() for name in names]
    return [str(name) for name in exported]


def test_every_policy_field_is_documented() -> None:
    cells = _first_cells()
    missing = [f for f in POLICY_FIELDS + _engine_fields() if f not in cells]
    assert not missing, f"not documented in a table of {POLICY_LANGUAGE.name}: {missing}"


def _engine_functions() -> list[str]:
    """Every function the engine accepts (``lictor.policy.FUNCTIONS``; macros are in CEL_FUNCTIONS)."""
    import lictor.policy

    return [str(f) for f in getattr(lictor.policy, "FUNCTIONS", ())]


def test_every_cel_function_is_documented() -> None:
    cells = _first_cells()
    missing = sorted({f for f in CEL_FUNCTIONS + _engine_functions() if f not in cells})
    assert not missing, f"CEL functions not documented in {POLICY_LANGUAGE.name}: {missing}"


def test_every_cel_variable_is_documented() -> None:
    tables = [t for t in parse_tables(POLICY_LANGUAGE) if t[1] and t[1][0] == "variable"]
    assert tables
    documented = {code_span(row[0]) for _s, _h, rows in tables for row in rows}
    assert documented == set(CEL_VARIABLES)
    import lictor.policy

    assert documented == set(getattr(lictor.policy, "CEL_VARIABLES", CEL_VARIABLES))


def test_links_between_pages_resolve() -> None:
    for doc in DOC_FILES:
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_cli_exit_codes_are_documented_and_real(tmp_path: Path) -> None:
    cli_doc = DOCS / "cli.md"
    codes = {}
    for _section, header, rows in parse_tables(cli_doc):
        if header and header[0] == "exit code":
            codes.update({int(code_span(row[0])): row[1] for row in rows})
    assert set(codes) == {0, 1, 2}
    examples = str(REPO / "examples" / "policies")
    assert run_cli(["policy", "check", examples]).exit_code == 0
    (tmp_path / "bad.yaml").write_text("apiVersion: lictor/v1\nkind: Policy\n", encoding="utf-8")
    assert run_cli(["policy", "check", str(tmp_path)]).exit_code == 1
    typo = str(REPO / "examples" / "actions" / "typo.json")
    assert run_cli(["eval", "--policies", examples, typo]).exit_code == 2
    assert run_cli(["eval", "--policies", examples, str(tmp_path / "absent.json")]).exit_code == 2
