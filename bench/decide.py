#!/usr/bin/env python3
"""Latency of one in-process policy decision: Lictor against peers doing equivalent work.

For 1, 10, 100 and 1,000 rules this script builds one synthetic but realistic rule set (targets on
systems, kinds, names and roles; conditions on amounts, confidence, environment, roles, resource
classification and labels, agent ids) and expresses it for every engine:

* ``lictor targeted``   -- Lictor policies whose ``target`` narrows the candidate rules (the usual case);
* ``lictor all-cand.``  -- the same rules with each target folded into ``when``, so every condition runs;
* ``cel-expr-python``   -- Google's CEL runtime, the same ``when`` strings, all evaluated, most
                           restrictive verdict combined in Python;
* ``cedarpy``           -- the same rules as Cedar permit/forbid policies (pre-parsed policy set and
                           entity store), one ``is_authorized`` call per decision;
* ``lictor single-cond.`` and ``agt`` -- N single-condition rules, the only shape that the Agent
                           Governance Toolkit's ``PolicyEvaluator`` can express, in both engines.

Each decision is timed on its own with ``time.perf_counter_ns`` (nothing subtracted; the timer's own
cost is printed once). Before timing, every scenario decides each action of a fixed set once (the
warm-up), and the verdicts of each peer are compared with Lictor's: a mismatch is printed and makes
the script exit with status 1, so the figures always compare equivalent work.

    python bench/decide.py [--rules 1,10,100,1000] [--iterations N] [--budget S] [--json out.json]
                           [--actions N] [--seed N] [--only TEXT]
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.metadata
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)

ALLOW, LOG, CONSTRAIN, BLOCK = 0, 1, 2, 3
VERDICT_NAMES = ("ALLOW", "LOG", "CONSTRAIN", "BLOCK")
RULES_PER_POLICY = 4
POLICIES_PER_FILE = 25

# --------------------------------------------------------------------------------------- the world

#: system family -> the noun its tools act on
FAMILIES = {
    "credit": "credit",
    "hr": "employee",
    "support": "ticket",
    "code": "repo",
    "finance": "invoice",
    "marketing": "campaign",
    "legal": "contract",
    "ops": "server",
    "sales": "deal",
    "claims": "claim",
}
FAMILY_NAMES = tuple(FAMILIES)
SUBSYSTEMS = ("api", "agent", "batch", "chat")
SYSTEMS = tuple(f"{fam}-{sub}" for fam in FAMILY_NAMES for sub in SUBSYSTEMS)
VERBS = (
    "approve",
    "read",
    "update",
    "delete",
    "send",
    "export",
    "create",
    "list",
    "refund",
    "search",
)
DATA_VERBS = ("read", "export", "search", "list")
MODELS = ("gpt-4o", "claude-sonnet", "llama-3-70b", "mistral-large")
ALL_TOOLS = tuple(f"{verb}_{noun}" for noun in FAMILIES.values() for verb in VERBS)
KINDS_USED = ("tool_call", "mcp_call", "data_access", "llm_request")

#: principal id -> roles (Cedar keeps these in its entity store, Lictor reads them from the action)
USERS: dict[str, tuple[str, ...]] = {
    "alice": ("analyst",),
    "bob": ("credit-officer",),
    "carol": ("admin",),
    "dave": (),
    "erin": ("analyst", "auditor"),
    "frank": ("support",),
    "grace": ("auditor",),
    "heidi": ("analyst", "support"),
    "ivan": ("engineer",),
    "judy": ("engineer", "admin"),
    "mallory": (),
    "oscar": ("credit-officer", "analyst"),
}
ROLES = tuple(sorted({r for roles in USERS.values() for r in roles}))


def _resources() -> list[tuple[str, str | None, tuple[str, ...]]]:
    classes = (None, "public", "internal", "confidential", "secret")
    label_sets = ((), ("pii",), ("finance",), ("pii", "finance"), ("health", "pii"), ("health",))
    out = []
    for k in range(24):
        out.append(
            (f"crm://records/{k}", classes[k % len(classes)], label_sets[k % len(label_sets)])
        )
    return out


RESOURCES = _resources()
AGENTS = tuple(f"agent-{k}" for k in range(20))


def _action(
    rng: random.Random,
    system: str,
    kind: str,
    name: str | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    noun = FAMILIES[system.split("-", 1)[0]]
    if rng.random() < 0.1:  # a tool of another family, now and then
        noun = FAMILIES[rng.choice(FAMILY_NAMES)]
    if kind in ("tool_call", "mcp_call"):
        name = name or f"{rng.choice(VERBS)}_{noun}"
        args: dict[str, Any] = {"amount": rng.randint(0, 300_000), "note": "customer asked twice"}
    elif kind == "data_access":
        name = name or f"{rng.choice(DATA_VERBS)}_{noun}"
        args = {"rows": rng.randint(1, 100_000)}
    else:
        name = name or rng.choice(MODELS)
        args = {"model": name, "max_tokens": rng.randint(64, 8192)}
    user = user or rng.choice(tuple(USERS))
    action: dict[str, Any] = {
        "system": system,
        "kind": kind,
        "name": name,
        "args": args,
        "agent": {"id": rng.choice(AGENTS)},
        "principal": {"id": user, "roles": list(USERS[user])},
        "context": {
            "confidence": round(rng.uniform(0.2, 1.0), 2),
            "environment": rng.choice(("prod", "prod", "staging")),
        },
    }
    if rng.random() < 0.8:
        rid, classification, labels = rng.choice(RESOURCES)
        resource: dict[str, Any] = {"id": rid, "labels": list(labels)}
        if classification is not None:
            resource["classification"] = classification
        action["resource"] = resource
    return action


def _pick(rng: random.Random, globs: Sequence[str], choices: Sequence[str]) -> str:
    g = rng.choice(globs)
    if not g.endswith("*"):
        return g
    return rng.choice([c for c in choices if c.startswith(g[:-1])])


def make_actions(count: int, seed: int, policies: Sequence[Policy]) -> list[dict[str, Any]]:
    """A deterministic mix of actions, as the JSON an integrator would send.

    Six in ten are aimed at the target of one of ``policies`` (traffic goes to governed tools), the
    rest are spread over every system, kind and tool.
    """
    rng = random.Random(seed)
    actions = []
    for _ in range(count):
        if policies and rng.random() < 0.6:
            target = rng.choice(policies).target
            system = _pick(rng, target.get("systems", ["*"]), SYSTEMS)
            kind = rng.choice(target.get("kinds", KINDS_USED))
            names = target.get("names")
            name = _pick(rng, names, ALL_TOOLS) if names else None
            roles = target.get("roles")
            user = (
                rng.choice([u for u, rs in USERS.items() if set(rs) & set(roles)])
                if roles
                else None
            )
            actions.append(_action(rng, system, kind, name, user))
            continue
        roll = rng.random()
        if roll < 0.45:
            kind = "tool_call"
        elif roll < 0.60:
            kind = "mcp_call"
        elif roll < 0.80:
            kind = "data_access"
        else:
            kind = "llm_request"
        actions.append(_action(rng, rng.choice(SYSTEMS), kind))
    return actions


# ------------------------------------------------------------------------------- rules, engine-free
#
# A rule is a target (systems/kinds/names/roles, any-of globs, all listed fields must match) and a
# conjunction of atoms. Atoms are tuples; each engine gets its own rendering below.
#   ("gt", path, int)            path > int
#   ("has_gt", path, int)        path present and > int
#   ("lt", path, float)          path < float
#   ("eq", path, str)            path == str
#   ("opt_eq", path, str)        path present and == str
#   ("role", r) / ("not_role", r) principal has / lacks role r
#   ("label", l)                 resource carries label l
#   ("prefix", path, p)          path starts with p

Atom = tuple[Any, ...]


@dataclass(frozen=True)
class Rule:
    name: str
    when: tuple[Atom, ...]
    verdict: int


@dataclass(frozen=True)
class Policy:
    name: str
    target: dict[str, list[str]]
    rules: tuple[Rule, ...]


def _tool_rules(j: int) -> list[tuple[tuple[Atom, ...], int]]:
    t = (100_000, 150_000, 200_000, 250_000)[j % 4]
    return [
        ((("gt", "args.amount", t),), BLOCK),
        ((("role", "analyst"), ("prefix", "name", "delete_")), BLOCK),
        ((("lt", "context.confidence", (0.3, 0.4, 0.5, 0.6)[j % 4]),), LOG),
        ((("eq", "context.environment", "prod"), ("gt", "args.amount", t // 2)), LOG),
        ((("role", "admin"),), ALLOW),
        ((("opt_eq", "resource.classification", "confidential"),), LOG),
        ((("label", "pii"), ("eq", "context.environment", "prod")), BLOCK),
        ((("eq", "agent.id", AGENTS[j % len(AGENTS)]),), BLOCK),
    ]


def _data_rules(j: int) -> list[tuple[tuple[Atom, ...], int]]:
    return [
        ((("gt", "args.rows", (10_000, 50_000, 90_000)[j % 3]),), BLOCK),
        ((("label", "pii"), ("not_role", "auditor")), LOG),
        ((("opt_eq", "resource.classification", "secret"),), BLOCK),
        ((("eq", "context.environment", "staging"),), ALLOW),
        ((("role", "auditor"),), ALLOW),
    ]


def _llm_rules(j: int) -> list[tuple[tuple[Atom, ...], int]]:
    return [
        ((("gt", "args.max_tokens", (4096, 6000, 8000)[j % 3]),), BLOCK),
        ((("lt", "context.confidence", 0.5),), LOG),
        ((("eq", "agent.id", AGENTS[(3 * j) % len(AGENTS)]),), LOG),
        ((("eq", "context.environment", "staging"),), ALLOW),
    ]


def targeted_policies(n_rules: int) -> list[Policy]:
    """n_rules rules in policies of four, each policy targeted at a family, a kind and tools."""
    policies = []
    made = 0
    j = 0
    while made < n_rules:
        group = j % 5  # 0-2 tools, 3 data access, 4 LLM requests
        fam = FAMILY_NAMES[(j // 5) % len(FAMILY_NAMES)]
        noun = FAMILIES[fam]
        variant = j // 50
        target: dict[str, list[str]] = {}
        if group <= 2:
            if (j // 5) % 3 == 0:
                target["systems"] = [f"{fam}-{SUBSYSTEMS[variant % len(SUBSYSTEMS)]}"]
            else:
                target["systems"] = [f"{fam}-*"]
            target["kinds"] = ["tool_call", "mcp_call"] if group != 1 else ["tool_call"]
            verb = VERBS[(variant + 3 * group) % len(VERBS)]
            target["names"] = [f"{verb}_{noun}"] if group != 2 else [f"{verb}_*"]
            if group == 2:
                target["systems"] = [f"{fam}-*"]
            if j % 7 == 0:
                target["roles"] = ["analyst", "support"]
            templates = _tool_rules(j)
        elif group == 3:
            target["systems"] = [f"{fam}-*"]
            target["kinds"] = ["data_access"]
            verbs = DATA_VERBS[variant % 2 :: 2]
            target["names"] = [f"{v}_{noun}" for v in verbs]
            templates = _data_rules(j)
        else:
            target["systems"] = [f"{fam}-{SUBSYSTEMS[variant % len(SUBSYSTEMS)]}"]
            target["kinds"] = ["llm_request"]
            templates = _llm_rules(j)
        rules = []
        for i in range(min(RULES_PER_POLICY, n_rules - made)):
            when, verdict = templates[(j + i) % len(templates)]
            rules.append(Rule(f"r{i}", when, verdict))
        policies.append(Policy(f"bench-{j:04d}", target, tuple(rules)))
        made += len(rules)
        j += 1
    return policies


def single_condition_policies(n_rules: int) -> list[Policy]:
    """n_rules untargeted rules of one condition each (what AGT's evaluator can express)."""
    rules = []
    for k in range(n_rules):
        pick = k % 10
        if pick == 0:
            r = Rule(f"r{k}", (("eq", "name", ALL_TOOLS[(7 * k) % len(ALL_TOOLS)]),), BLOCK)
        elif pick == 1:
            r = Rule(f"r{k}", (("has_gt", "args.amount", 200_000 + (997 * k) % 100_000),), BLOCK)
        elif pick == 2:
            r = Rule(
                f"r{k}", (("lt", "context.confidence", (0.2, 0.25, 0.3, 0.35, 0.4)[k % 5]),), LOG
            )
        elif pick == 3:
            r = Rule(f"r{k}", (("eq", "name", ALL_TOOLS[(13 * k + 5) % len(ALL_TOOLS)]),), LOG)
        elif pick == 4:
            r = Rule(f"r{k}", (("role", ("admin", "auditor", "support")[k % 3]),), ALLOW)
        elif pick == 5:
            cls = ("internal", "confidential")[k % 2]
            r = Rule(f"r{k}", (("opt_eq", "resource.classification", cls),), LOG)
        elif pick == 6:
            r = Rule(f"r{k}", (("label", ("health", "finance")[k % 2]),), LOG)
        elif pick == 7:
            r = Rule(f"r{k}", (("prefix", "name", ("delete_", "export_")[k % 2]),), BLOCK)
        elif pick == 8:
            r = Rule(f"r{k}", (("has_gt", "args.rows", 60_000 + (991 * k) % 40_000),), BLOCK)
        else:
            r = Rule(f"r{k}", (("eq", "context.environment", "staging"),), ALLOW)
        rules.append(r)
    return [
        Policy(f"single-{p:04d}", {}, tuple(rules[i : i + RULES_PER_POLICY]))
        for p, i in enumerate(range(0, n_rules, RULES_PER_POLICY))
    ]


def _glob_match(value: str | None, globs: Sequence[str]) -> bool:
    if value is None:
        return False
    for g in globs:
        if g.endswith("*") and "*" not in g[:-1]:
            if value.startswith(g[:-1]):
                return True
        elif value == g:
            return True
    return False


def target_matches(target: dict[str, list[str]], action: dict[str, Any]) -> bool:
    """The benchmark's own reading of a target (only exact names and trailing-* globs are used)."""
    if "systems" in target and not _glob_match(action.get("system"), target["systems"]):
        return False
    if "kinds" in target and not _glob_match(action.get("kind"), target["kinds"]):
        return False
    if "names" in target and not _glob_match(action.get("name"), target["names"]):
        return False
    if "roles" in target:
        roles = action.get("principal", {}).get("roles", [])
        if not any(_glob_match(r, target["roles"]) for r in roles):
            return False
    return True


_MISSING = object()


def _lookup(action: dict[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    value: Any = action.get(head, _MISSING)
    if not rest:
        return value
    if value is _MISSING:
        value = {}
    return value.get(rest, _MISSING)


def _atom_holds(atom: Atom, action: dict[str, Any]) -> bool | None:
    """True, False, or None when the atom cannot be evaluated (a missing field)."""
    op = atom[0]
    if op in ("role", "not_role"):
        has = atom[1] in action.get("principal", {}).get("roles", [])
        return has if op == "role" else not has
    if op == "label":
        return atom[1] in action.get("resource", {}).get("labels", [])
    value = _lookup(action, atom[1])
    if value is _MISSING or value is None:
        return False if op in ("has_gt", "opt_eq") else None
    if op in ("gt", "has_gt"):
        return bool(value > atom[2])
    if op == "lt":
        return bool(value < atom[2])
    if op in ("eq", "opt_eq"):
        return bool(value == atom[2])
    if op == "prefix":
        return bool(value.startswith(atom[2]))
    raise ValueError(atom)


def reference_verdict(policies: list[Policy], action: dict[str, Any]) -> int:
    """The benchmark's own reading of the rule set (CEL's && semantics: false wins over errors)."""
    verdict = ALLOW
    for p in policies:
        if not target_matches(p.target, action):
            continue
        for r in p.rules:
            results = [_atom_holds(a, action) for a in r.when]
            if False in results:
                continue
            if None in results and r.verdict not in (BLOCK, CONSTRAIN):
                continue  # on_error: skip is the default for ALLOW and LOG
            verdict = max(verdict, r.verdict)
    return verdict


# ------------------------------------------------------------------------------------ CEL rendering


def _cel_str(s: str) -> str:
    return json.dumps(s)


def _cel_glob_any(var: str, globs: Sequence[str]) -> str:
    parts = []
    for g in globs:
        if g.endswith("*"):
            parts.append(f"{var}.startsWith({_cel_str(g[:-1])})")
        else:
            parts.append(f"{var} == {_cel_str(g)}")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def cel_atom(atom: Atom) -> str:
    op = atom[0]
    if op == "gt":
        return f"{atom[1]} > {atom[2]}"
    if op == "has_gt":
        return f"has({atom[1]}) && {atom[1]} > {atom[2]}"
    if op == "lt":
        return f"{atom[1]} < {atom[2]!r}"
    if op == "eq":
        return f"{atom[1]} == {_cel_str(atom[2])}"
    if op == "opt_eq":
        return f"has({atom[1]}) && {atom[1]} == {_cel_str(atom[2])}"
    if op == "role":
        return f"{_cel_str(atom[1])} in principal.roles"
    if op == "not_role":
        return f"!({_cel_str(atom[1])} in principal.roles)"
    if op == "label":
        return f"{_cel_str(atom[1])} in resource.labels"
    if op == "prefix":
        return f"{atom[1]}.startsWith({_cel_str(atom[2])})"
    raise ValueError(atom)


def cel_target(target: dict[str, list[str]]) -> list[str]:
    parts = []
    if "systems" in target:
        parts.append(_cel_glob_any("system", target["systems"]))
    if "kinds" in target:
        kinds = target["kinds"]
        parts.append(
            f"kind == {_cel_str(kinds[0])}"
            if len(kinds) == 1
            else "kind in [" + ", ".join(map(_cel_str, kinds)) + "]"
        )
    if "names" in target:
        parts.append(_cel_glob_any("name", target["names"]))
    if "roles" in target:
        roles = target["roles"]
        ors = [f"{_cel_str(r)} in principal.roles" for r in roles]
        parts.append(ors[0] if len(ors) == 1 else "(" + " || ".join(ors) + ")")
    return parts


def cel_when(rule: Rule, target: dict[str, list[str]] | None = None) -> str:
    parts = (cel_target(target) if target else []) + [cel_atom(a) for a in rule.when]
    return " && ".join(parts)


# ---------------------------------------------------------------------------------- Cedar rendering


def _cedar_path(path: str) -> str:
    head, _, rest = path.partition(".")
    if head == "context":  # Lictor's context fields sit at the top of Cedar's context record
        return f"context.{rest}"
    if head in ("args", "agent"):
        return f"context.{path}"
    if head in ("system", "kind", "name"):
        return f"context.{head}"
    if head == "resource":
        return f"resource.{rest}"
    raise ValueError(path)


def _cedar_glob_any(var: str, globs: Sequence[str]) -> str:
    parts = []
    for g in globs:
        parts.append(f"{var} like {_cel_str(g)}" if "*" in g else f"{var} == {_cel_str(g)}")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def cedar_atom(atom: Atom) -> str:
    op = atom[0]
    if op == "gt":
        return f"{_cedar_path(atom[1])} > {atom[2]}"
    if op == "lt":
        return f'{_cedar_path(atom[1])}.lessThan(decimal("{atom[2]:.4f}"))'
    if op == "eq":
        return f"{_cedar_path(atom[1])} == {_cel_str(atom[2])}"
    if op == "opt_eq":
        _, _, attr = atom[1].partition(".")
        return f"resource has {attr} && resource.{attr} == {_cel_str(atom[2])}"
    if op == "role":
        return f"principal in Role::{_cel_str(atom[1])}"
    if op == "not_role":
        return f"!(principal in Role::{_cel_str(atom[1])})"
    if op == "label":
        return f"resource.labels.contains({_cel_str(atom[1])})"
    if op == "prefix":
        return f"{_cedar_path(atom[1])} like {_cel_str(atom[2] + '*')}"
    raise ValueError(atom)


def cedar_policy(policy: Policy, rule: Rule) -> str:
    target = policy.target
    scope_action = "action"
    conds = []
    if "systems" in target:
        conds.append(_cedar_glob_any("context.system", target["systems"]))
    if "kinds" in target:
        conds.append(_cedar_glob_any("context.kind", target["kinds"]))
    if "names" in target:
        names = target["names"]
        if all("*" not in n for n in names):
            ids = [f"Action::{_cel_str(n)}" for n in names]
            scope_action = (
                f"action == {ids[0]}" if len(ids) == 1 else f"action in [{', '.join(ids)}]"
            )
        else:
            conds.append(_cedar_glob_any("context.name", names))
    if "roles" in target:
        ors = [f"principal in Role::{_cel_str(r)}" for r in target["roles"]]
        conds.append(ors[0] if len(ors) == 1 else "(" + " || ".join(ors) + ")")
    conds += [cedar_atom(a) for a in rule.when]
    effect = "forbid" if rule.verdict == BLOCK else "permit"
    return (
        f'@id("{policy.name}/{rule.name}")\n'
        f"{effect}(principal, {scope_action}, resource)\n"
        f"when {{ {' && '.join(conds)} }};"
    )


def cedar_entities() -> list[dict[str, Any]]:
    ents: list[dict[str, Any]] = [
        {"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []} for r in ROLES
    ]
    for user, roles in USERS.items():
        ents.append(
            {
                "uid": {"type": "User", "id": user},
                "attrs": {},
                "parents": [{"type": "Role", "id": r} for r in roles],
            }
        )
    for rid, classification, labels in RESOURCES:
        attrs: dict[str, Any] = {"labels": list(labels)}
        if classification is not None:
            attrs["classification"] = classification
        ents.append({"uid": {"type": "Resource", "id": rid}, "attrs": attrs, "parents": []})
    ents.append({"uid": {"type": "Resource", "id": "none"}, "attrs": {"labels": []}, "parents": []})
    return ents


def cedar_request(action: dict[str, Any]) -> dict[str, Any]:
    ctx = action["context"]
    return {
        "principal": {"type": "User", "id": action["principal"]["id"]},
        "action": {"type": "Action", "id": action["name"]},
        "resource": {"type": "Resource", "id": action.get("resource", {}).get("id", "none")},
        "context": {
            "system": action["system"],
            "kind": action["kind"],
            "name": action["name"],
            "args": action["args"],
            "agent": action["agent"],
            "environment": ctx["environment"],
            "confidence": {"__extn": {"fn": "decimal", "arg": f"{ctx['confidence']:.4f}"}},
        },
    }


# ------------------------------------------------------------------------------------ AGT rendering

AGT_FIELDS = {
    "name": "tool_name",
    "args.amount": "amount",
    "args.rows": "rows",
    "context.confidence": "confidence",
    "context.environment": "environment",
    "resource.classification": "classification",
}
AGT_ACTION = {BLOCK: "deny", LOG: "audit", ALLOW: "allow"}
AGT_VERDICT = {"deny": BLOCK, "block": BLOCK, "audit": LOG, "allow": ALLOW}


def agt_condition(atom: Atom) -> dict[str, Any]:
    op = atom[0]
    if op in ("gt", "has_gt"):
        return {"field": AGT_FIELDS[atom[1]], "operator": "gt", "value": atom[2]}
    if op == "lt":
        return {"field": AGT_FIELDS[atom[1]], "operator": "lt", "value": atom[2]}
    if op in ("eq", "opt_eq"):
        return {"field": AGT_FIELDS[atom[1]], "operator": "eq", "value": atom[2]}
    if op == "role":
        return {"field": "roles", "operator": "contains", "value": atom[1]}
    if op == "label":
        return {"field": "labels", "operator": "contains", "value": atom[1]}
    if op == "prefix":
        return {
            "field": AGT_FIELDS[atom[1]],
            "operator": "matches",
            "value": "^" + re.escape(atom[2]),
        }
    raise ValueError(atom)


def agt_context(action: dict[str, Any]) -> dict[str, Any]:
    args = action["args"]
    resource = action.get("resource", {})
    return {
        "system": action["system"],
        "kind": action["kind"],
        "tool_name": action["name"],
        "amount": args.get("amount"),
        "rows": args.get("rows"),
        "max_tokens": args.get("max_tokens"),
        "confidence": action["context"]["confidence"],
        "environment": action["context"]["environment"],
        "agent_id": action["agent"]["id"],
        "roles": list(action["principal"]["roles"]),
        "classification": resource.get("classification"),
        "labels": list(resource.get("labels", [])),
    }


# --------------------------------------------------------------------------------------- engines


@dataclass
class Scenario:
    name: str
    engine: str  # "lictor", "cel-expr-python", "cedarpy", "agt"
    n_rules: int
    decide: Callable[[Any], Any]
    inputs: list[Any]
    verdict_of: Callable[[Any], int]
    reference: str | None  # scenario whose verdicts must be equal
    setup_s: float
    evaluated: str  # conditions evaluated per decision, for the table
    errors_of: Callable[[Any], int] = lambda _r: 0
    extra: dict[str, Any] = field(default_factory=dict)


def _version(*dists: str) -> str | None:
    for d in dists:
        try:
            return f"{d} {importlib.metadata.version(d)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def import_lictor() -> tuple[Any, str]:
    """Import the project from the environment, else from the source tree."""
    try:
        mod = importlib.import_module("lictor")
        if hasattr(mod, "load_policies"):
            return mod, "installed"
    except ImportError:
        pass
    sys.path.insert(0, str(REPO / "src"))
    for name in [m for m in sys.modules if m == "lictor" or m.startswith("lictor.")]:
        del sys.modules[name]
    try:
        mod = importlib.import_module("lictor")
    except Exception as exc:  # the engine is being written; report, never fake
        return None, f"not importable ({type(exc).__name__}: {exc})"
    if not hasattr(mod, "load_policies"):
        return None, "not importable (lictor.load_policies missing)"
    return mod, f"source tree {REPO / 'src'}"


def write_lictor_policies(directory: Path, policies: list[Policy], *, fold_targets: bool) -> None:
    import yaml

    docs = []
    for p in policies:
        spec: dict[str, Any] = {}
        if p.target and not fold_targets:
            spec["target"] = p.target
        spec["rules"] = [
            {
                "name": r.name,
                "when": cel_when(r, p.target if fold_targets else None),
                "verdict": VERDICT_NAMES[r.verdict],
            }
            for r in p.rules
        ]
        docs.append(
            {
                "apiVersion": "lictor/v1",
                "kind": "Policy",
                "metadata": {"name": p.name},
                "spec": spec,
            }
        )
    directory.mkdir(parents=True, exist_ok=True)
    for f, i in enumerate(range(0, len(docs), POLICIES_PER_FILE)):
        text = yaml.safe_dump_all(docs[i : i + POLICIES_PER_FILE], sort_keys=False, width=1000)
        (directory / f"policies-{f:03d}.yaml").write_text(text)


def lictor_scenario(
    lictor: Any,
    name: str,
    n_rules: int,
    policies: list[Policy],
    actions: list[dict[str, Any]],
    tmp: Path,
    *,
    fold_targets: bool,
    reference: str | None,
    evaluated: str,
) -> Scenario:
    directory = tmp / name.replace(" ", "_") / str(n_rules)
    write_lictor_policies(directory, policies, fold_targets=fold_targets)
    t0 = time.perf_counter()
    ps = lictor.load_policies(str(directory))
    setup = time.perf_counter() - t0
    inputs = [lictor.Action.from_dict(a) for a in actions]
    return Scenario(
        name=name,
        engine="lictor",
        n_rules=n_rules,
        decide=functools.partial(ps.evaluate, now=NOW),
        inputs=inputs,
        verdict_of=lambda d: int(d.verdict),
        reference=reference,
        setup_s=setup,
        evaluated=evaluated,
        errors_of=lambda d: len(d.errors),
        extra={"policy_set": ps},
    )


def cel_scenario(
    cel: Any, n_rules: int, policies: list[Policy], actions: list[dict[str, Any]]
) -> Scenario:
    variables = ("system", "kind", "name", "args", "agent", "principal", "resource", "context")
    t0 = time.perf_counter()
    env = cel.NewEnv(variables={v: cel.Type.DYN for v in variables})
    compiled = []
    for p in policies:
        for r in p.rules:
            compiled.append((env.compile(cel_when(r, p.target)), r.verdict))
    setup = time.perf_counter() - t0
    activation = env.Activation
    fail_closed = (BLOCK, CONSTRAIN)

    def decide(data: dict[str, Any]) -> int:
        act = activation(data=data)
        verdict = ALLOW
        matched = []
        for prog, rule_verdict in compiled:
            value = prog.eval(act).value()
            if value is True or (value is not False and rule_verdict in fail_closed):
                matched.append(rule_verdict)
                if rule_verdict > verdict:
                    verdict = rule_verdict
        return verdict

    inputs = []
    for a in actions:
        data = {
            "system": a["system"],
            "kind": a["kind"],
            "name": a.get("name"),
            "args": a.get("args", {}),
            "agent": {"attrs": {}, **a.get("agent", {})},
            "principal": {"roles": [], "attrs": {}, **a.get("principal", {})},
            "resource": {"labels": [], "attrs": {}, **a.get("resource", {})},
            "context": a.get("context", {}),
        }
        inputs.append(data)
    return Scenario(
        name="cel-expr-python",
        engine="cel-expr-python",
        n_rules=n_rules,
        decide=decide,
        inputs=inputs,
        verdict_of=lambda v: v,
        reference="lictor targeted",
        setup_s=setup,
        evaluated=str(n_rules),
        extra={"env": env, "programs": [p for p, _ in compiled]},
    )


def cedar_scenario(
    cedarpy: Any, n_rules: int, policies: list[Policy], actions: list[dict[str, Any]]
) -> Scenario:
    texts = ['@id("base/allow-by-default")\npermit(principal, action, resource);']
    verdicts = [ALLOW]
    for p in policies:
        for r in p.rules:
            texts.append(cedar_policy(p, r))
            verdicts.append(r.verdict)
    # Cedar names policies policy0, policy1, ... in source order; permits carry ALLOW or LOG.
    permit_verdict = {f"policy{i}": v for i, v in enumerate(verdicts)}
    t0 = time.perf_counter()
    ps = cedarpy.PolicySet.from_str("\n\n".join(texts))
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities()))
    setup = time.perf_counter() - t0
    is_authorized = cedarpy.is_authorized
    deny = cedarpy.Decision.Deny

    def decide(request: dict[str, Any]) -> tuple[int, int]:
        result = is_authorized(request, ps, entities)
        diagnostics = result.diagnostics
        if result.decision is deny:
            return BLOCK, len(diagnostics.errors)
        verdict = ALLOW
        for pid in diagnostics.reasons:
            v = permit_verdict[pid]
            if v > verdict:
                verdict = v
        return verdict, len(diagnostics.errors)

    return Scenario(
        name="cedarpy",
        engine="cedarpy",
        n_rules=n_rules,
        decide=decide,
        inputs=[cedar_request(a) for a in actions],
        verdict_of=lambda r: r[0],
        reference="lictor targeted",
        setup_s=setup,
        evaluated=f"{n_rules}+1",
        errors_of=lambda r: r[1],
        extra={"policy_text": "\n\n".join(texts)},
    )


def agt_scenario(
    agt_evaluator_cls: Any,
    n_rules: int,
    policies: list[Policy],
    actions: list[dict[str, Any]],
    tmp: Path,
) -> Scenario:
    import yaml

    directory = tmp / "agt" / str(n_rules)
    directory.mkdir(parents=True, exist_ok=True)
    for p in policies:
        doc = {
            "version": "1.0",
            "name": p.name,
            "rules": [
                {
                    "name": f"{p.name}/{r.name}",
                    "condition": agt_condition(r.when[0]),
                    "action": AGT_ACTION[r.verdict],
                    # first match wins in AGT; priorities make the first match the most restrictive
                    "priority": r.verdict,
                }
                for r in p.rules
            ],
            "defaults": {"action": "allow"},
        }
        (directory / f"{p.name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    t0 = time.perf_counter()
    evaluator = agt_evaluator_cls()
    evaluator.load_policies(directory)
    setup = time.perf_counter() - t0

    def decide(ctx: dict[str, Any]) -> int:
        return AGT_VERDICT[evaluator.evaluate(ctx).action]

    return Scenario(
        name="agt PolicyEvaluator",
        engine="agt",
        n_rules=n_rules,
        decide=decide,
        inputs=[agt_context(a) for a in actions],
        verdict_of=lambda v: v,
        reference="lictor single-cond.",
        setup_s=setup,
        evaluated=f"<={n_rules}",
    )


# -------------------------------------------------------------------------------------- measuring


def percentile(sorted_ns: Sequence[int], q: float) -> int:
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_ns) - 1, math.ceil(q * len(sorted_ns)) - 1))
    return sorted_ns[k]


def timer_overhead(samples: int = 200_000) -> dict[str, float]:
    pc = time.perf_counter_ns
    d = []
    for _ in range(samples):
        t0 = pc()
        t1 = pc()
        d.append(t1 - t0)
    d.sort()
    return {"min_ns": d[0], "p50_ns": percentile(d, 0.5), "p99_ns": percentile(d, 0.99)}


def warm_up(sc: Scenario, min_decisions: int = 2000, min_s: float = 0.3) -> list[Any]:
    """Decide every input once (the results feed the verdict check), then keep deciding until at
    least ``min_decisions`` decisions or ``min_s`` seconds, whichever comes first, have passed."""
    results = [sc.decide(x) for x in sc.inputs]
    done = len(results)
    deadline = time.perf_counter() + min_s
    while done < min_decisions and time.perf_counter() < deadline:
        sc.decide(sc.inputs[done % len(sc.inputs)])
        done += 1
    return results


def measure(sc: Scenario, iterations: int, budget_s: float) -> dict[str, Any]:
    decide = sc.decide
    inputs = sc.inputs
    n = len(inputs)
    pc = time.perf_counter_ns
    samples = [0] * iterations
    gc.collect()
    deadline = pc() + int(budget_s * 1e9)
    done = 0
    while done < iterations:
        x = inputs[done % n]
        t0 = pc()
        decide(x)
        t1 = pc()
        samples[done] = t1 - t0
        done += 1
        if t1 > deadline and done >= 100:
            break
    taken = sorted(samples[:done])
    mean = statistics.fmean(taken)
    return {
        "samples": done,
        "p50_us": percentile(taken, 0.5) / 1000,
        "p99_us": percentile(taken, 0.99) / 1000,
        "mean_us": mean / 1000,
        "ops_per_s": 1e9 / mean,
    }


def cel_per_expression(sc: Scenario, samples_wanted: int = 20_000) -> dict[str, Any]:
    """Each CEL program timed alone against a pre-built activation, and the activation alone."""
    env = sc.extra["env"]
    programs = sc.extra["programs"]
    data = sc.inputs[:64]
    activations = [env.Activation(data=d) for d in data]
    pc = time.perf_counter_ns
    for act in activations[:8]:  # warm-up
        for prog in programs[:200]:
            prog.eval(act)
    samples = []
    for i in range(samples_wanted):
        prog = programs[i % len(programs)]
        act = activations[(i // len(programs)) % len(activations)]
        t0 = pc()
        prog.eval(act)
        t1 = pc()
        samples.append(t1 - t0)
    samples.sort()
    build = []
    for i in range(2000):
        d = data[i % len(data)]
        t0 = pc()
        env.Activation(data=d)
        t1 = pc()
        build.append(t1 - t0)
    build.sort()
    return {
        "samples": len(samples),
        "p50_us": percentile(samples, 0.5) / 1000,
        "p99_us": percentile(samples, 0.99) / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
        "activation_p50_us": percentile(build, 0.5) / 1000,
    }


def machine() -> dict[str, Any]:
    return describe()


# ------------------------------------------------------------------------------------------ main

ORDER = (
    "lictor targeted",
    "lictor all-cand.",
    "cel-expr-python",
    "cedarpy",
    "lictor single-cond.",
    "agt PolicyEvaluator",
)


def import_peers() -> tuple[Any, Any, Any]:
    try:
        from cel_expr_python import cel
    except ImportError:
        cel = None
    try:
        import cedarpy
    except ImportError:
        cedarpy = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # agent_os warns that it is being renamed
            from agent_os.policies import PolicyEvaluator as agt_cls
    except ImportError:
        agt_cls = None
    return cel, cedarpy, agt_cls


def run_rule_count(
    n: int,
    tmp: Path,
    lictor: tuple[Any, str],
    peers: tuple[Any, Any, Any],
    args: argparse.Namespace,
    failures: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    lictor_mod, lictor_how = lictor
    cel, cedarpy, agt_cls = peers
    targeted = targeted_policies(n)
    single = single_condition_policies(n)
    actions = make_actions(args.actions, args.seed, targeted)
    expected = {
        "targeted": [reference_verdict(targeted, a) for a in actions],
        "single": [reference_verdict(single, a) for a in actions],
    }
    candidates = statistics.fmean(
        sum(len(p.rules) for p in targeted if target_matches(p.target, a)) for a in actions
    )
    partial = functools.partial
    plan: dict[str, tuple[str, Callable[[], Scenario] | str]] = {}
    if lictor_mod is not None:
        plan["lictor targeted"] = (
            "targeted",
            partial(
                lictor_scenario,
                lictor_mod,
                "lictor targeted",
                n,
                targeted,
                actions,
                tmp,
                fold_targets=False,
                reference=None,
                evaluated=f"{candidates:.1f} avg",
            ),
        )
        plan["lictor all-cand."] = (
            "targeted",
            partial(
                lictor_scenario,
                lictor_mod,
                "lictor all-cand.",
                n,
                targeted,
                actions,
                tmp,
                fold_targets=True,
                reference="lictor targeted",
                evaluated=str(n),
            ),
        )
        plan["lictor single-cond."] = (
            "single",
            partial(
                lictor_scenario,
                lictor_mod,
                "lictor single-cond.",
                n,
                single,
                actions,
                tmp,
                fold_targets=False,
                reference=None,
                evaluated=str(n),
            ),
        )
    else:
        for name in ("lictor targeted", "lictor all-cand.", "lictor single-cond."):
            plan[name] = ("", lictor_how)
    plan["cel-expr-python"] = (
        "targeted",
        partial(cel_scenario, cel, n, targeted, actions) if cel else "not installed",
    )
    plan["cedarpy"] = (
        "targeted",
        partial(cedar_scenario, cedarpy, n, targeted, actions) if cedarpy else "not installed",
    )
    plan["agt PolicyEvaluator"] = (
        "single",
        partial(agt_scenario, agt_cls, n, single, actions, tmp) if agt_cls else "not installed",
    )

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    cel_rows: list[dict[str, Any]] = []
    verdicts: dict[str, list[int]] = {}

    def compare(name: str, got: list[int], want: list[int], against: str) -> int:
        bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        for i in bad[:3]:
            failures.append(
                f"{name} vs {against} at {n} rules, action #{i}: {VERDICT_NAMES[got[i]]} != "
                f"{VERDICT_NAMES[want[i]]}: {json.dumps(actions[i])}"
            )
        if bad:
            failures.append(f"{name} vs {against} at {n} rules: {len(bad)} of {len(got)} differ")
        return len(bad)

    for name in ORDER:
        if args.only and not any(text in name for text in args.only):
            continue
        rule_set, build = plan[name]
        if isinstance(build, str):
            rows.append({"scenario": name, "rules": n, "status": build})
            continue
        sc = build()
        results = warm_up(sc)
        got = [sc.verdict_of(r) for r in results]
        verdicts[name] = got
        check: dict[str, Any] = {
            "scenario": name,
            "rules": n,
            "compared": len(got),
            "verdicts": {VERDICT_NAMES[v]: got.count(v) for v in sorted(set(got))},
            "errors": sum(sc.errors_of(r) for r in results),
            "mismatches_vs_spec": compare(name, got, expected[rule_set], "the rule set's meaning"),
        }
        if sc.reference is not None:
            check["reference"] = sc.reference
            check["mismatches_vs_reference"] = (
                compare(name, got, verdicts[sc.reference], sc.reference)
                if sc.reference in verdicts
                else None
            )
        checks.append(check)
        stats = measure(sc, args.iterations, args.budget)
        rows.append(
            {
                "scenario": name,
                "rules": n,
                "status": "ok",
                "evaluated": sc.evaluated,
                "setup_s": sc.setup_s,
                **stats,
            }
        )
        if name == "cel-expr-python":
            cel_rows.append({"rules": n, **cel_per_expression(sc)})
        del sc
    return rows, checks, cel_rows


def print_report(
    counts: list[int],
    rows: list[dict[str, Any]],
    checks: list[dict[str, Any]],
    cel_rows: list[dict[str, Any]],
) -> None:
    header = (
        f"{'scenario':<21} {'rules':>5} {'evaluated':>11} {'p50 us':>9} {'p99 us':>9} "
        f"{'mean us':>9} {'ops/s':>9} {'p50 ratio':>9} {'samples':>7}"
    )
    print(header)
    print("-" * len(header))
    for n in counts:
        for name in ORDER:
            for r in rows:
                if r["rules"] != n or r["scenario"] != name:
                    continue
                if r["status"] != "ok":
                    print(f"{name:<21} {n:>5} {r['status']}")
                    continue
                ratio = r.get("ratio_vs_lictor_targeted")
                ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
                print(
                    f"{name:<21} {n:>5} {r['evaluated']:>11} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} "
                    f"{r['mean_us']:>9.1f} {r['ops_per_s']:>9.0f} {ratio_text:>9} {r['samples']:>7}"
                )
    print("p50 ratio: the row's p50 over lictor targeted's p50 at the same rule count")
    if cel_rows:
        print()
        print("cel-expr-python, one expression timed alone (activation built beforehand):")
        for c in cel_rows:
            print(
                f"  {c['rules']:>5} rules: p50 {c['p50_us']:.2f} us, p99 {c['p99_us']:.2f} us, "
                f"mean {c['mean_us']:.2f} us; building one activation p50 {c['activation_p50_us']:.1f} us"
            )
    print()
    print("verdict check (warm-up pass, every action once):")
    for c in checks:
        ref = c.get("reference")
        against = ""
        if ref:
            m = c.get("mismatches_vs_reference")
            against = f", vs {ref} {'not run' if m is None else m}"
        print(
            f"  {c['scenario']:<21} {c['rules']:>5} rules: mismatches vs rule set "
            f"{c['mismatches_vs_spec']}{against}; errors {c['errors']}; {c['verdicts']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rules", default="1,10,100,1000", help="rule counts (default 1,10,100,1000)")
    ap.add_argument(
        "--iterations", type=int, default=20_000, help="timed decisions per cell, at most (20000)"
    )
    ap.add_argument(
        "--budget", type=float, default=5.0, help="seconds of timed decisions per cell, at most (5)"
    )
    ap.add_argument("--actions", type=int, default=256, help="distinct actions, rotated (256)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the action mix (7)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument(
        "--only",
        action="append",
        help="run only the scenarios whose name contains this (repeatable)",
    )
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.rules.split(",") if x.strip()]

    info = machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['python']}, {info['platform']}")
    overhead = timer_overhead()
    print(
        f"perf_counter_ns back to back: min {overhead['min_ns']} ns, p50 {overhead['p50_ns']} ns, "
        f"p99 {overhead['p99_ns']} ns (not subtracted)"
    )
    lictor, lictor_how = import_lictor()
    peers = import_peers()
    cel, cedarpy, agt_cls = peers
    agt_version = _version("agent-governance-toolkit-core", "agent-governance-toolkit")
    engines = {
        "lictor": f"{_version('lictor') or 'lictor'} ({lictor_how})"
        if lictor
        else f"lictor: {lictor_how}",
        "cel-expr-python": _version("cel-expr-python") if cel else "cel-expr-python: not installed",
        "cedarpy": _version("cedarpy") if cedarpy else "cedarpy: not installed",
        "agt": f"{agt_version or 'agent_os'} (agent_os.policies.PolicyEvaluator)"
        if agt_cls
        else "agent-governance-toolkit: not installed",
    }
    for line in engines.values():
        print("engine:", line)

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    cel_rows: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lictor-bench-") as tmpname:
        for n in counts:
            r, c, e = run_rule_count(n, Path(tmpname), (lictor, lictor_how), peers, args, failures)
            rows += r
            checks += c
            cel_rows += e
            done = ", ".join(f"{x['scenario']} {x['p50_us']:.1f}" for x in r if x["status"] == "ok")
            print(
                f"  {n} rules, p50 us: {done}  [{time.perf_counter() - started:.0f} s]", flush=True
            )

    base = {
        r["rules"]: r["p50_us"]
        for r in rows
        if r["scenario"] == "lictor targeted" and r["status"] == "ok"
    }
    for r in rows:
        if r["status"] == "ok" and r["rules"] in base:
            r["ratio_vs_lictor_targeted"] = r["p50_us"] / base[r["rules"]]
    print()
    print_report(counts, rows, checks, cel_rows)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    load_after = os.getloadavg()
    print(
        f"total {wall:.0f} s wall, {cpu:.0f} s CPU of this process ({100 * cpu / wall:.0f}%); "
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )

    if args.json:
        report = {
            "command": "python bench/decide.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": info,
            "timer_overhead_ns": overhead,
            "engines": engines,
            "actions": args.actions,
            "iterations": args.iterations,
            "budget_s": args.budget,
            "results": rows,
            "cel_per_expression": cel_rows,
            "verdict_checks": checks,
            "failures": failures,
            "wall_s": wall,
            "cpu_s": cpu,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        print("\nVERDICT MISMATCHES:", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
