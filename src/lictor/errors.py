"""The one error hierarchy of Lictor; every error a caller can see is one of these.

::

    LictorError                     base; never raised itself
    ├── InputError                  bad input from a caller; carries the JSON path (``$.args.amount``)
    ├── PolicyError                 policies that cannot be loaded; carries every Diagnostic at once
    ├── ConfigError                 a setting that is missing or invalid; carries the setting's path
    ├── VerificationError           evidence that does not verify (a proof, a signature, a log)
    ├── GatewayError                a remote gateway refused a request (401, 403, 404) or did not answer
    ├── ReviewError                 a review step the oversight rules refuse (not an approver, four
    │                               eyes, expired, final, used); carries a ``reason`` code
    ├── Blocked                     the SDK refused to run an action the gateway blocked; carries the
    │                               Decision, so it lives beside it in ``lictor.sdk``
    └── InternalError               a bug or an unexpected foreign exception, translated at the boundary

Foreign exceptions (yaml, lark, re2, OSError) are translated where they enter: ``raise PolicyError(...)
from exc``. Verifiers raise; they never return False.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "Diagnostic",
    "GatewayError",
    "InputError",
    "InternalError",
    "LictorError",
    "PolicyError",
    "ReviewError",
    "VerificationError",
]


class LictorError(Exception):
    """Base class of every error Lictor raises on purpose."""

    code = "lictor_error"


class InputError(LictorError, ValueError):
    """Input from a caller is malformed; ``path`` is a JSON path such as ``$.principal.roles[1]``."""

    code = "invalid_input"

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in one source file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PolicyError(LictorError):
    """A policy set that cannot be loaded; ``diagnostics`` lists every problem found, in file order."""

    code = "invalid_policy"

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics) or "invalid policy")


class ConfigError(LictorError):
    """A configuration setting that is missing or invalid; ``path`` names the setting
    (``audit.durability``), ``where`` where its value came from (``lictor.yaml:7:3``, ``LICTOR_PORT``).
    When several settings are wrong at once, ``problems`` holds one ConfigError for each."""

    code = "invalid_config"

    def __init__(self, message: str, *, path: str = "", where: str = "",
                 problems: Iterable[ConfigError] = ()) -> None:
        prefix = ": ".join(part for part in (where, path) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message
        self.path = path
        self.where = where
        self.problems: tuple[ConfigError, ...] = tuple(problems) or (self,)


class VerificationError(LictorError):
    """Evidence that does not verify. ``step`` names the check that failed (``inclusion``,
    ``consistency``, ``signature``, ...); ``index`` is the first bad log index when there is one."""

    code = "verification_failed"

    def __init__(self, message: str, *, step: str = "", index: int | None = None) -> None:
        super().__init__(f"{step}: {message}" if step else message)
        self.message = message
        self.step = step
        self.index = index


class GatewayError(LictorError):
    """A remote gateway that refused a request or could not be reached. ``status`` is the HTTP status
    (None when no answer came at all) and ``problem`` the RFC 9457 body it sent (empty when none)."""

    code = "gateway_error"

    def __init__(self, message: str, *, status: int | None = None,
                 problem: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem: dict[str, object] = dict(problem or {})


class ReviewError(LictorError):
    """A review step refused by the oversight rules. ``reason`` says which rule: ``not_found``,
    ``not_approver``, ``self_approval``, ``already_acted``, ``expired``, ``final``, ``comment_required``,
    ``not_approved``, ``used``, ``action_changed``."""

    code = "review_refused"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class InternalError(LictorError):
    """Something failed that should not have; the decision path turns it into BLOCK."""

    code = "internal_error"
