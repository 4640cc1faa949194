"""Declarative policies: load (YAML with locations), validate, compile CEL, evaluate, combine.

Pure: no I/O during evaluation, the clock is passed in. ``load_policies`` is the entry point.
"""

from lictor.policy.cel import CelCompileError, CelEvalError, CelProgram, compile_cel
from lictor.policy.document import API_VERSION, CEL_VARIABLES, FIELDS, Policy, PolicyTest, Rule
from lictor.policy.evaluate import PolicySet
from lictor.policy.limits import InMemoryLimitStore, LimitStore
from lictor.policy.load import load_policies, policy_revision
from lictor.policy.testing import CaseResult, run_policy_tests

#: Functions a condition may call, beyond operators and macros.
FUNCTIONS = ("size", "int", "double", "string", "bool", "dyn", "timestamp", "duration", "matches",
             "startsWith", "endsWith", "contains", "has", "has_finding", "finding_count", "glob",
             "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
             "getHours", "getMinutes", "getSeconds", "getMilliseconds")

#: Macros a condition may use on lists and maps.
MACROS = ("exists", "all", "exists_one", "filter", "map")

__all__ = [
    "API_VERSION",
    "CEL_VARIABLES",
    "FIELDS",
    "FUNCTIONS",
    "MACROS",
    "CaseResult",
    "CelCompileError",
    "CelEvalError",
    "CelProgram",
    "InMemoryLimitStore",
    "LimitStore",
    "Policy",
    "PolicySet",
    "PolicyTest",
    "Rule",
    "compile_cel",
    "load_policies",
    "policy_revision",
    "run_policy_tests",
]
