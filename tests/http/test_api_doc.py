"""docs/api.md runs: every ``$ curl`` line of its ```console blocks is sent, in page order, to one
real app (the example policies, SQLite) and its answer compared with the lines that follow it.

Conventions of those examples:

* ``$AGENT_KEY``, ``$REVIEWER_KEY``, ``$ADMIN_KEY`` and ``$AUDITOR_KEY`` are keys of those scopes;
  ``$DECISION_ID`` is the ``decision_id`` of the latest decision an example answered (the last of
  a batch), ``$REVIEW_ID`` the review id of the latest decision that carried one; the reviewer key
  has the role ``credit-officer``. A line ending
  in ``\\`` continues on the next. The host is ignored.
* With ``-i`` the answer starts with its status line (``HTTP/1.1 422 ...``, compared by status code)
  and the headers worth showing (each must be there, its value starting with the one shown; a
  ``...`` line stands for the others), then a blank line and the body. Without ``-i`` the status
  must be 2xx.
* A JSON body is compared as a shape: each field shown must be there with that value (other fields
  may follow), ``"..."`` stands for any value and a string ending in ``...`` for any string
  starting with what comes before; a list ending in ``"..."`` may go on. A text body is compared line
  by line, with ``...`` lines as in the other docs.
* The log is checkpointed before each request that reads the record, as ``lictor serve``'s
  publisher would have done by then.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lictor.access import SCOPES
from lictor.config import Settings
from lictor.http import create_app
from lictor.runtime import Gateway
from tests.sdk.conftest import EXAMPLES
from tests.test_docs import DOCS, lines_match, parse_blocks

API_DOC = DOCS / "api.md"
ANY = "..."


@dataclasses.dataclass
class Curl:
    line: int
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    include: bool
    expected: list[str]


def parse_curl(command: str, line: int, expected: list[str]) -> Curl:
    words = shlex.split(command)
    assert words[0] == "curl", f"api.md:{line}: only curl is run"
    method, url, body, include = "", "", None, False
    headers: dict[str, str] = {}
    rest = iter(words[1:])
    for word in rest:
        if word in ("-X", "--request"):
            method = next(rest)
        elif word in ("-H", "--header"):
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw"):
            body = next(rest)
        elif word == "-i":
            include = True
        elif word in ("-s", "--silent", "-sS", "-S"):
            pass
        elif word.startswith("-"):
            raise AssertionError(f"api.md:{line}: the doc test does not know curl's {word}")
        else:
            url = word
    path = re.sub(r"^https?://[^/]+", "", url)
    return Curl(line, method or ("POST" if body is not None else "GET"), path, headers, body, include, expected)


def curls() -> list[Curl]:
    found: list[Curl] = []
    for block in parse_blocks(API_DOC):
        if block.lang != "console":
            continue
        command: list[str] = []
        current: tuple[str, int, list[str]] | None = None
        for number, text in enumerate(block.text.splitlines(), block.line + 1):
            if command:
                command.append(text.rstrip("\\").strip())
                if not text.endswith("\\"):
                    current = (" ".join(command), number, [])
                    command = []
            elif text.startswith("$ "):
                if current is not None:
                    found.append(parse_curl(*current))
                current = None
                if text.endswith("\\"):
                    command = [text[2:].rstrip("\\").strip()]
                else:
                    current = (text[2:], number, [])
            elif current is not None:
                current[2].append(text)
        if current is not None:
            found.append(parse_curl(*current))
    return found


def shape_matches(expected: Any, actual: Any) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and shape_matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        open_ended = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if open_ended else expected
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return False
        return all(shape_matches(e, a) for e, a in zip(items, actual, strict=False))
    if isinstance(expected, str) and expected.endswith(ANY):
        return isinstance(actual, str) and actual.startswith(expected[:-3])
    return type(expected) is type(actual) and expected == actual


@dataclasses.dataclass
class Site:
    client: TestClient
    gateway: Gateway
    variables: dict[str, str]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    base = Settings(database=f"sqlite:///{tmp_path / 'lictor.db'}", policies=EXAMPLES / "policies")
    settings = dataclasses.replace(base, audit=dataclasses.replace(
        base.audit, key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key"))
    gateway = Gateway.from_settings(settings)
    try:
        variables = {f"{scope.upper()}_KEY": gateway.keys.create(
            scope, user=f"{scope}-1", roles=["credit-officer"] if scope == "reviewer" else [])[1] for scope in SCOPES}
        with TestClient(create_app(gateway, keys=gateway.keys, settings=settings)) as client:
            yield Site(client, gateway, variables)
    finally:
        gateway.close()


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$([A-Z_]+)", lambda m: variables.get(m.group(1), m.group(0)), text)


def check(curl: Curl, status: int, headers: dict[str, str], text: str) -> None:
    where = f"api.md:{curl.line}: {curl.method} {curl.path}"
    expected = list(curl.expected)
    while expected and not expected[-1].strip():
        expected.pop()
    if curl.include:
        assert expected and expected[0].startswith("HTTP/"), f"{where}: -i shows the status line first"
        assert status == int(expected[0].split()[1]), f"{where}: answered {status}\n{text}"
        end = expected.index("") if "" in expected else len(expected)
        for shown in expected[1:end]:
            if shown.strip() == ANY:
                continue
            name, _, value = shown.partition(":")
            assert headers.get(name.strip().lower(), "").startswith(value.strip().rstrip(".")), f"{where}: {shown}"
        expected = expected[end + 1:]
    else:
        assert 200 <= status < 300, f"{where}: answered {status}\n{text}"
    if not expected:
        return
    try:
        want = json.loads("\n".join(expected))
    except ValueError:
        assert lines_match(expected, text.splitlines()), f"{where}: expected\n" + "\n".join(expected) + f"\ngot\n{text}"
        return
    got = json.loads(text)
    assert shape_matches(want, got), f"{where}: expected the shape\n{json.dumps(want, indent=1)}\ngot\n{text}"


def test_the_api_examples_answer_as_documented(site: Site) -> None:
    examples = curls()
    assert len(examples) >= 10
    for curl in examples:
        if curl.path.startswith(("/v1/audit", "/v1/decisions/")):
            site.gateway.checkpoint()
        body = expand(curl.body, site.variables) if curl.body is not None else None
        headers = {name: expand(value, site.variables) for name, value in curl.headers.items()}
        response = site.client.request(curl.method, expand(curl.path, site.variables), headers=headers,
                                       content=body.encode() if body is not None else None)
        curl = dataclasses.replace(curl, expected=[expand(line, site.variables) for line in curl.expected])
        check(curl, response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.text)
        if curl.path.startswith("/v1/decide") and response.status_code == 200:
            answer = response.json()
            site.variables["DECISION_ID"] = (answer["decisions"][-1] if "decisions" in answer else answer)["decision_id"]
            latest = answer["decisions"][-1] if "decisions" in answer else answer
            if isinstance(latest.get("review"), dict):
                site.variables["REVIEW_ID"] = latest["review"]["id"]
