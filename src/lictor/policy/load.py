"""Load a directory of policy files into a PolicySet: read, validate, check names, hash the revision.

Every problem in every file is collected and raised together as one PolicyError, so an author sees
all of them at once, each as ``file:line:column: message``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lictor.errors import Diagnostic, PolicyError
from lictor.model import Verdict
from lictor.policy.document import Policy, PolicyTest, parse_document
from lictor.policy.evaluate import PolicySet
from lictor.policy.limits import LimitStore
from lictor.policy.source import find_policy_files, read_documents

__all__ = ["load_policies", "policy_revision"]


def policy_revision(policies: list[Policy], default_verdict: Verdict) -> str:
    """A content hash of the policy set: independent of file names, order, comments and formatting."""
    body = {
        "default_verdict": default_verdict.name,
        "policies": [p.to_dict() for p in sorted(policies, key=lambda p: p.name)],
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def load_policies(path: str | Path, *, default_verdict: Verdict = Verdict.ALLOW,
                  limits: LimitStore | None = None) -> PolicySet:
    """Read every ``*.yaml``/``*.yml`` under ``path`` (or the single file ``path``) into a PolicySet.

    Raises PolicyError listing every problem found, with file, line and column.
    """
    root = Path(path)
    if not root.exists():
        raise PolicyError([Diagnostic(str(root), 0, 0, "no such file or directory")])
    errors: list[Diagnostic] = []
    policies: list[Policy] = []
    tests: list[PolicyTest] = []
    names: dict[str, Diagnostic] = {}
    for file in find_policy_files(root):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(Diagnostic(str(file), 1, 1, f"cannot read: {exc}"))
            continue
        for doc in read_documents(str(file), text, errors):
            parsed = parse_document(doc, errors)
            if isinstance(parsed, Policy):
                loc = parsed.location
                if parsed.name in names:
                    first = names[parsed.name]
                    errors.append(loc.diagnostic(
                        f"duplicate policy name {parsed.name!r} (first defined at {first.file}:{first.line})"))
                    continue
                names[parsed.name] = loc.diagnostic("")
                policies.append(parsed)
            elif isinstance(parsed, PolicyTest):
                tests.append(parsed)
    if errors:
        order = {name: i for i, name in enumerate(dict.fromkeys(d.file for d in errors))}
        raise PolicyError(sorted(errors, key=lambda d: (order[d.file], d.line, d.column)))
    return PolicySet(policies, revision=policy_revision(policies, default_verdict),
                     default_verdict=default_verdict, tests=tests, limits=limits)
