"""What ``@guard.tool`` does to a function: build an action from each call's arguments, have it
decided, and then run the function as it was called (ALLOW, LOG), with the constrained arguments
(CONSTRAIN), or not at all (BLOCK: :class:`Blocked` is raised).

With ``wait_for_approval=SECONDS``, a BLOCK that opened (or found) a pending review waits for people
to decide it, up to that long: once approved, the same action is submitted again presenting the
review as its ``approval`` and the function runs as that decision says; rejected, expired or still
pending when time runs out, :class:`Blocked` is raised with ``status`` saying which.

The action's ``args`` are the call's bound arguments with defaults applied, by parameter name; a
``*args`` parameter becomes a list under its name and ``**kwargs`` are merged in. A first parameter
named ``self`` or ``cls`` is passed through and left out. Every argument must be JSON data (str, int,
float, bool, None, list, dict with string keys); anything else is refused before the gateway is asked.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lictor.errors import InputError, InternalError, LictorError
from lictor.model import KINDS, Action, Agent, Decision, Principal, Resource, Verdict

__all__ = ["Blocked", "Part", "Source", "ToolSpec", "Waiter", "wrap"]

#: A principal, agent or resource as the decorator takes it: the model's object, its JSON form, or
#: just its id.
Part = Principal | Agent | Resource | Mapping[str, Any] | str | None
#: A fixed value, or a function called on every call that returns one (the current user, say).
Source = Part | Callable[[], Part]
ContextSource = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None
#: How the wrapper waits on a review: (review id, seconds) -> the review as an agent sees it.
Waiter = Callable[[str, float], dict[str, Any]]

_SKIPPED = ("self", "cls")


class Blocked(LictorError):
    """An action the gateway blocked, so the guarded function did not run. ``decision`` is the whole
    Decision; ``reasons`` and ``errors`` say why, and ``review_id`` names the review that may lift the
    block (None when there is none). ``status`` is the review's status (``pending``, or after
    ``wait_for_approval`` its outcome: ``rejected``, ``expired``, or ``timeout`` when nobody decided
    in time); None without a review."""

    code = "blocked"

    def __init__(self, decision: Decision, *, status: str | None = None) -> None:
        self.decision = decision
        self.reasons = decision.reasons
        self.errors = decision.errors
        self.review = decision.review
        review_id = decision.review.get("id") if decision.review else None
        self.review_id: str | None = review_id if isinstance(review_id, str) else None
        given = decision.review.get("status") if decision.review else None
        self.status: str | None = status if status is not None else given if isinstance(given, str) else None
        message = _blocked_message(decision)
        if status == "timeout":
            message += " (no decision on the review in time)"
        super().__init__(message)


def _blocked_message(decision: Decision) -> str:
    why = [f"{r.policy}/{r.rule}: {r.message}" if r.message else f"{r.policy}/{r.rule}"
           for r in decision.reasons if r.verdict is Verdict.BLOCK]
    why += [f"{e.policy}/{e.rule}: {e.message}" if e.policy else e.message
            for e in decision.errors if e.applied]
    if not why:
        why.append("no rule matched and the default verdict is BLOCK")
    text = "blocked: " + "; ".join(why)
    review = decision.review
    if review:
        status = review.get("status", "pending")
        approvers = review.get("approvers")
        who = f", approvers: {', '.join(map(str, approvers))}" if isinstance(approvers, list) and approvers else ""
        text += f" (review {review.get('id')} is {status}{who})"
    elif decision.approval_required:
        approvers = sorted({a for req in decision.approval_required for a in req.approvers})
        text += f" (needs approval by {', '.join(approvers)})"
    return f"{text} [{decision.decision_id}]"


def _part(value: Part, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Principal | Agent | Resource):
        return value.to_dict()
    if isinstance(value, str):
        return {"id": value}
    if isinstance(value, Mapping):
        return dict(value)
    raise InputError(f"expected the {path[2:]} as a {path[2:].title()}, its JSON form or its id, "
                     f"got {type(value).__name__}", path=path)


class ToolSpec:
    """The fixed part of a guarded function's actions, and how to map a call to an action and a
    constrained action back to a call."""

    def __init__(self, fn: Callable[..., Any], *, system: str, name: str | None = None,
                 kind: str = "tool_call", principal: Source = None, agent: Source = None,
                 resource: Source = None, context: ContextSource = None,
                 wait_for_approval: float | None = None) -> None:
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r} (allowed: {', '.join(KINDS)})", path="$.kind")
        if wait_for_approval is not None and (isinstance(wait_for_approval, bool) or not isinstance(
                wait_for_approval, int | float) or not wait_for_approval > 0):
            raise InputError(f"wait_for_approval is a positive number of seconds, got {wait_for_approval!r}",
                             path="wait_for_approval")
        self.wait_for_approval = float(wait_for_approval) if wait_for_approval is not None else None
        self.fn = fn
        self.qualname = getattr(fn, "__qualname__", repr(fn))
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.skipped = params[0].name if params and params[0].name in _SKIPPED and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) else None
        self.system = system
        self.kind = kind
        self.name = name if name is not None else getattr(fn, "__name__", None)
        self.sources: dict[str, Source] = {"principal": principal, "agent": agent, "resource": resource}
        self.context = context
        # refuse a bad fixed part now, where the decorator is written, rather than on the first call
        self._action({}, dynamic=False)

    # --------------------------------------------------------------------- call -> action

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.qualname}(): {exc}") from None
        bound.apply_defaults()
        return bound

    def action(self, bound: inspect.BoundArguments) -> Action:
        arguments: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            if param.name == self.skipped:
                continue
            value = bound.arguments.get(param.name)
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                arguments[param.name] = list(value or ())
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value or {})
            else:
                arguments[param.name] = value
        return self._action(arguments, dynamic=True)

    def _action(self, arguments: dict[str, Any], *, dynamic: bool) -> Action:
        data: dict[str, Any] = {"system": self.system, "kind": self.kind, "args": arguments}
        if self.name is not None:
            data["name"] = self.name
        for key, source in self.sources.items():
            if callable(source):
                if not dynamic:
                    continue
                source = source()
            part = _part(source, f"$.{key}")
            if part is not None:
                data[key] = part
        context = self.context
        if callable(context):
            context = context() if dynamic else None
        if context is not None:
            data["context"] = dict(context)
        try:
            return Action.from_dict(data)
        except InputError as exc:
            if exc.path.startswith("$.args."):
                argument = exc.path[len("$.args."):].split(".")[0].split("[")[0]
                raise InputError(f"argument {argument!r} of {self.qualname}() must be JSON data "
                                 f"(str, int, float, bool, None, list, dict): {exc.message}",
                                 path=exc.path) from exc
            raise

    # --------------------------------------------------------------------- decision -> call

    def call(self, decision: Decision, bound: inspect.BoundArguments, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments to run the function with: those of the call itself (ALLOW, LOG), or those of
        the constrained action (CONSTRAIN); raises :class:`Blocked` on BLOCK."""
        if decision.verdict is Verdict.BLOCK:
            raise Blocked(decision)
        if decision.verdict is not Verdict.CONSTRAIN:
            return args, kwargs
        if decision.action is None or not isinstance(decision.action.get("args", {}), dict):
            raise InternalError(f"a CONSTRAIN decision without its constrained action ({decision.decision_id})")
        return self._constrained(dict(decision.action.get("args") or {}), bound)

    def _constrained(self, args: dict[str, Any],
                     bound: inspect.BoundArguments) -> tuple[tuple[Any, ...], dict[str, Any]]:
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        extra = False
        for param in self.signature.parameters.values():
            if param.name == self.skipped:
                positional.append(bound.arguments[param.name])
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                rest = args.pop(param.name, [])
                if not isinstance(rest, list):
                    raise InputError(f"the constrained {param.name} is not a list", path=f"$.args.{param.name}")
                positional.extend(rest)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                extra = True
            else:
                if param.name in args:
                    value = args.pop(param.name)
                elif param.default is not inspect.Parameter.empty:
                    value = param.default  # a constraint removed it: the function's default applies
                else:
                    raise InputError(f"the constrained action has no value for {self.qualname}()'s "
                                     f"required argument {param.name!r}", path=f"$.args.{param.name}")
                if param.kind is inspect.Parameter.KEYWORD_ONLY:
                    keywords[param.name] = value
                else:
                    positional.append(value)
        if args and not extra:
            raise InputError(f"the constrained action sets {', '.join(map(repr, sorted(args)))}, which "
                             f"{self.qualname}() does not take", path=f"$.args.{sorted(args)[0]}")
        keywords.update(args)
        return tuple(positional), keywords


def _pending_review(spec: ToolSpec, decision: Decision) -> str | None:
    """The id of the pending review a BLOCK decision opened, when the spec waits for approvals."""
    if spec.wait_for_approval is None or decision.verdict is not Verdict.BLOCK or not decision.review:
        return None
    review_id = decision.review.get("id")
    if decision.review.get("status") != "pending" or not isinstance(review_id, str):
        return None
    return review_id


def _outcome(decision: Decision, review: Mapping[str, Any]) -> Blocked:
    """Blocked with the review's outcome (``timeout`` when still pending)."""
    status = str(review.get("status", "pending"))
    summary = {**(decision.review or {}), **{k: v for k, v in review.items()
                                              if k in ("id", "status", "approvers", "expires_at")}}
    return Blocked(dataclasses.replace(decision, review=summary),
                   status="timeout" if status == "pending" else status)


def wrap(spec: ToolSpec, decide: Callable[[Action], Decision],
         adecide: Callable[[Action], Awaitable[Decision]], wait: Waiter | None = None,
         await_: Callable[[str, float], Awaitable[dict[str, Any]]] | None = None) -> Callable[..., Any]:
    """The guarded function: sync or async like the original, with its name, docstring and signature.
    ``wait`` and ``await_`` wait on a review (needed with ``wait_for_approval``)."""
    fn: Callable[..., Any] = spec.fn
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            bound = spec.bind(args, kwargs)
            action = spec.action(bound)
            decision = await adecide(action)
            review_id = _pending_review(spec, decision)
            if review_id is not None and await_ is not None and spec.wait_for_approval is not None:
                deadline = time.monotonic() + spec.wait_for_approval
                review: dict[str, Any] = dict(decision.review or {})
                while review.get("status") == "pending" and (left := deadline - time.monotonic()) > 0:
                    review = await await_(review_id, left)
                if review.get("status") != "approved":
                    raise _outcome(decision, review)
                decision = await adecide(dataclasses.replace(action, approval=review_id))
            call_args, call_kwargs = spec.call(decision, bound, args, kwargs)
            return await fn(*call_args, **call_kwargs)

        return guarded_async

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        bound = spec.bind(args, kwargs)
        action = spec.action(bound)
        decision = decide(action)
        review_id = _pending_review(spec, decision)
        if review_id is not None and wait is not None and spec.wait_for_approval is not None:
            deadline = time.monotonic() + spec.wait_for_approval
            review: dict[str, Any] = dict(decision.review or {})
            while review.get("status") == "pending" and (left := deadline - time.monotonic()) > 0:
                review = wait(review_id, left)
            if review.get("status") != "approved":
                raise _outcome(decision, review)
            decision = decide(dataclasses.replace(action, approval=review_id))
        call_args, call_kwargs = spec.call(decision, bound, args, kwargs)
        return fn(*call_args, **call_kwargs)

    return guarded

