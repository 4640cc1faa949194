"""Lictor: an AI runtime control gateway that decides every action against policy and keeps the proof."""

from lictor.errors import (
    ConfigError,
    Diagnostic,
    GatewayError,
    InputError,
    InternalError,
    LictorError,
    PolicyError,
    VerificationError,
)
from lictor.model import Action, Decision, Finding, Reason, RuleError, Verdict
from lictor.policy import PolicySet, load_policies
from lictor.sdk import Blocked, Guard

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Blocked",
    "ConfigError",
    "Decision",
    "Diagnostic",
    "Finding",
    "GatewayError",
    "Guard",
    "InputError",
    "InternalError",
    "LictorError",
    "PolicyError",
    "PolicySet",
    "Reason",
    "RuleError",
    "Verdict",
    "VerificationError",
    "__version__",
    "load_policies",
]
