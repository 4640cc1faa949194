"""``Guard``: the SDK's one entry point, which asks a gateway (in this process or over HTTP) to decide
actions, and guards functions with ``@guard.tool``.

Build one per process with :meth:`Guard.local` or :meth:`Guard.remote` and close it when done (or use
it as a context manager, sync or async). The gateway's runtime and the HTTP client are imported when
a Guard is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from lictor.errors import InputError
from lictor.model import Action, Decision, Verdict
from lictor.sdk.backend import Backend, LocalBackend
from lictor.sdk.remote import DEFAULT_RETRIES, DEFAULT_TIMEOUT, RemoteBackend
from lictor.sdk.tool import Blocked, ContextSource, Source, ToolSpec, wrap

if TYPE_CHECKING:
    import httpx

    from lictor.config import Settings
    from lictor.runtime import Gateway

__all__ = ["Guard"]

P = ParamSpec("P")
R = TypeVar("R")


def _action(action: Action | Mapping[str, Any]) -> Action:
    if isinstance(action, Action):
        return action
    if isinstance(action, Mapping):
        return Action.from_dict(dict(action))
    raise InputError(f"expected an Action or its JSON form, got {type(action).__name__}")


class Guard:
    """Decides actions through a :class:`~lictor.sdk.backend.Backend` and guards functions."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # --------------------------------------------------------------------- constructors

    @classmethod
    def local(cls, gateway: Gateway | Settings | None = None, /, **options: Any) -> Guard:
        """A guard deciding in this process. Give it an open :class:`~lictor.runtime.Gateway` (which
        stays yours to close), validated :class:`~lictor.config.Settings`, or the keyword arguments of
        :meth:`Gateway.open <lictor.runtime.Gateway.open>` (``policies=...``, ``database=...``); with
        nothing, the settings are read as the command line reads them (``./lictor.yaml`` and
        ``LICTOR_*`` variables). A gateway the guard opened is closed with the guard."""
        from lictor.config import Settings, load_settings
        from lictor.runtime import Gateway

        if isinstance(gateway, Gateway):
            if options:
                raise TypeError("Guard.local(gateway) takes no options: the gateway is already open")
            return cls(LocalBackend(gateway))
        if isinstance(gateway, Settings):
            return cls(LocalBackend(Gateway.from_settings(gateway, **options), owned=True))
        if gateway is not None:
            raise TypeError(f"Guard.local() takes a Gateway or Settings, got {type(gateway).__name__}")
        if options:
            return cls(LocalBackend(Gateway.open(**options), owned=True))
        return cls(LocalBackend(Gateway.from_settings(load_settings()), owned=True))

    @classmethod
    def remote(cls, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
               retries: int = DEFAULT_RETRIES, backoff: float = 0.05, max_backoff: float = 2.0,
               unsafe_fail_open: bool = False, max_connections: int = 100,
               transport: httpx.BaseTransport | None = None,
               async_transport: httpx.AsyncBaseTransport | None = None,
               sleep: Callable[[float], object] | None = None,
               async_sleep: Callable[[float], Awaitable[object]] | None = None) -> Guard:
        """A guard asking the gateway at ``base_url`` (``POST /v1/decide``) with an agent API key; see
        :class:`~lictor.sdk.remote.RemoteBackend` for the options. When the gateway cannot be reached
        in time the decision is BLOCK (fail closed), unless ``unsafe_fail_open`` is set."""
        waits: dict[str, Any] = {}
        if sleep is not None:
            waits["sleep"] = sleep
        if async_sleep is not None:
            waits["async_sleep"] = async_sleep
        return cls(RemoteBackend(base_url, api_key, timeout=timeout, retries=retries, backoff=backoff,
                                 max_backoff=max_backoff, unsafe_fail_open=unsafe_fail_open,
                                 max_connections=max_connections, transport=transport,
                                 async_transport=async_transport, **waits))

    # --------------------------------------------------------------------- deciding

    def decide(self, action: Action | Mapping[str, Any]) -> Decision:
        """The decision for ``action`` (an :class:`~lictor.model.Action` or its JSON form)."""
        return self.backend.decide(_action(action))

    async def adecide(self, action: Action | Mapping[str, Any]) -> Decision:
        """:meth:`decide`, awaitable."""
        return await self.backend.adecide(_action(action))

    def check(self, action: Action | Mapping[str, Any]) -> Decision:
        """:meth:`decide`, raising :class:`~lictor.sdk.tool.Blocked` when the verdict is BLOCK. On
        CONSTRAIN, run the decision's ``action`` instead of the one asked about."""
        decision = self.decide(action)
        if decision.verdict is Verdict.BLOCK:
            raise Blocked(decision)
        return decision

    async def acheck(self, action: Action | Mapping[str, Any]) -> Decision:
        """:meth:`check`, awaitable."""
        decision = await self.adecide(action)
        if decision.verdict is Verdict.BLOCK:
            raise Blocked(decision)
        return decision

    def tool(self, *, system: str, name: str | None = None, kind: str = "tool_call",
             principal: Source = None, agent: Source = None, resource: Source = None,
             context: ContextSource = None,
             wait_for_approval: float | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Guard a function (sync or async): each call is decided first, as an action of ``system``
        named ``name`` (default: the function's name) whose ``args`` are the call's arguments.
        ``principal``, ``agent`` and ``resource`` are fixed values (the model's object, its JSON form
        or an id) or functions returning one on each call; ``context`` is a dict or a function
        returning one. On BLOCK the function does not run and :class:`~lictor.sdk.tool.Blocked` is
        raised; on CONSTRAIN it runs with the constrained arguments. With ``wait_for_approval``
        (seconds), a BLOCK that holds the call for a review waits up to that long for people to
        decide: approved, the call is submitted again presenting the approval and goes ahead as
        that decision says; otherwise :class:`~lictor.sdk.tool.Blocked` is raised with ``status``
        ``rejected``, ``expired`` or ``timeout``."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            spec = ToolSpec(fn, system=system, name=name, kind=kind, principal=principal, agent=agent,
                            resource=resource, context=context, wait_for_approval=wait_for_approval)
            return cast(Callable[P, R], wrap(spec, self.backend.decide, self.backend.adecide,
                                             self.backend.wait_review, self.backend.await_review))

        return decorate

    # --------------------------------------------------------------------- lifetime

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Guard:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Guard({self.backend!r})"
