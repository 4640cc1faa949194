"""The dependency direction of the layers, read from the code's own imports.

kernel (errors, model) <- domain (policy) <- adapters (store, config, webhooks) <- delivery (cli, sdk). Frameworks stay in delivery; the
policy engine imports no I/O framework, no CLI and no storage driver.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "lictor"
STDLIB = set(sys.stdlib_module_names)

# module prefix -> (lictor packages it may import, third-party top-level packages it may import)
RULES: dict[str, tuple[set[str], set[str]]] = {
    "lictor.errors": (set(), set()),
    "lictor.model": ({"lictor.errors"}, set()),
    "lictor.policy": ({"lictor.errors", "lictor.model", "lictor.policy"}, {"yaml", "lark", "celpy", "re2"}),
    "lictor.detect": ({"lictor.errors", "lictor.model", "lictor.detect"}, {"re2", "phonenumbers"}),
    "lictor.audit": ({"lictor.errors", "lictor.model", "lictor.audit"}, {"cryptography", "msgspec", "orjson"}),
    "lictor.access": ({"lictor.errors", "lictor.model"}, set()),
    # a service: kernel, the audit log's canonical JSON and commitments; storage only through its port
    "lictor.oversight": ({"lictor.errors", "lictor.model", "lictor.audit.canonical", "lictor.audit.leaf",
                          "lictor.oversight"}, set()),
    "lictor.store": ({"lictor.errors", "lictor.model", "lictor.policy", "lictor.audit", "lictor.access",
                      "lictor.oversight", "lictor.store"}, {"psycopg", "redis"}),
    # an adapter: the detectors' setting is validated by the detect package's own parser
    "lictor.config": ({"lictor.errors", "lictor.model", "lictor.detect", "lictor.config"}, {"yaml"}),
    "lictor.webhooks": ({"lictor.errors", "lictor.model"}, {"httpx"}),
    "lictor.runtime": ({"lictor"}, set()),
    # the application's side of oversight (wake-ups, the sweep, notifications), built by the runtime
    # delivery: the runtime and domain types, never a concrete store
    # the CLI may start the MCP proxy (``lictor mcp proxy``): the one delivery package it imports
    "lictor.cli": ({"lictor.errors", "lictor.model", "lictor.policy", "lictor.detect", "lictor.audit",
                    "lictor.config", "lictor.runtime", "lictor.access", "lictor.oversight", "lictor.cli",
                    "lictor.mcp"},
                   {"click", "uvicorn"}),
    "lictor.http": ({"lictor.errors", "lictor.model", "lictor.policy", "lictor.audit.index", "lictor.config",
                     "lictor.runtime", "lictor.access", "lictor.oversight", "lictor.http",
                     # the exceptions between delivery packages: the HTTP app mounts the LLM proxy's routes
                     # when `proxy` is configured and the fronted MCP servers when `mcp.servers` is (neither
                     # imports the HTTP app)
                     "lictor.proxy", "lictor.mcp"}, {"fastapi", "starlette", "prometheus_client",
                                                    "orjson"}),
    # delivery: the MCP proxy, on the official MCP SDK (and the Starlette types of its HTTP transport)
    "lictor.mcp": ({"lictor.errors", "lictor.model", "lictor.config", "lictor.runtime", "lictor.access",
                    "lictor.mcp"}, {"mcp", "starlette"}),
    "lictor.proxy": ({"lictor.errors", "lictor.model", "lictor.policy", "lictor.config", "lictor.runtime",
                      "lictor.access", "lictor.oversight", "lictor.proxy"},
                     {"httpx", "fastapi", "starlette", "orjson"}),  # orjson: request and answer bodies
    "lictor.sdk": ({"lictor.errors", "lictor.model", "lictor.config", "lictor.runtime", "lictor.sdk"}, {"httpx"}),
}

# the package root itself (``from lictor import __version__``) re-exports, and may be named by delivery
ROOT_IMPORT_ALLOWED = {"lictor.cli", "lictor.http", "lictor.mcp"}


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def rule_for(name: str) -> tuple[set[str], set[str]] | None:
    matches = [prefix for prefix in RULES if name == prefix or name.startswith(prefix + ".")]
    return RULES[max(matches, key=len)] if matches else None


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m[0] for m in modules()])
def test_imports_respect_the_layers(name: str, path: Path) -> None:
    rule = rule_for(name)
    if rule is None:
        return  # the package root and __main__ re-export and run; they may import any layer
    allowed_lictor, allowed_third = rule
    for target in imports(path):
        top = target.split(".")[0]
        if top == "lictor":
            if target == "lictor" and any(name.startswith(p) for p in ROOT_IMPORT_ALLOWED):
                continue
            assert any(target == a or target.startswith(a + ".") for a in allowed_lictor | {name}), (
                f"{name} imports {target}")
        elif top not in STDLIB and top != "__future__":
            assert top in allowed_third, f"{name} imports third-party {top}"
