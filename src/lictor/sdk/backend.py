"""Where a Guard sends its actions: the backend port, and the local backend (an in-process Gateway).

A backend turns an :class:`~lictor.model.Action` into a :class:`~lictor.model.Decision`, in a plain
call and in a coroutine. The local one calls :meth:`lictor.runtime.Gateway.decide` (and
:meth:`~lictor.runtime.Gateway.adecide`, which awaits the durable commit) directly; the remote one, in
:mod:`lictor.sdk.remote`, posts the action to a gateway's HTTP API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lictor.model import Action, Decision

if TYPE_CHECKING:
    from lictor.runtime import Gateway

__all__ = ["Backend", "LocalBackend"]


@runtime_checkable
class Backend(Protocol):
    """What a :class:`~lictor.sdk.Guard` needs: a decision for an action, sync and async, waiting
    for a review's outcome, and a close."""

    def decide(self, action: Action) -> Decision: ...

    async def adecide(self, action: Action) -> Decision: ...

    def wait_review(self, review_id: str, timeout: float) -> dict[str, Any]:
        """The review as an agent sees it (``id``, ``status``, ``approvers``, ``expires_at``, ``uses``,
        ``uses_allowed``) once its status changes, or after ``timeout`` seconds."""
        ...

    async def await_review(self, review_id: str, timeout: float) -> dict[str, Any]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class LocalBackend:
    """Decisions from a :class:`~lictor.runtime.Gateway` in this process. With ``owned`` the backend
    closes the gateway when it is closed itself (it does when the Guard opened the gateway)."""

    def __init__(self, gateway: Gateway, *, owned: bool = False) -> None:
        self.gateway = gateway
        self.owned = owned

    def decide(self, action: Action) -> Decision:
        return self.gateway.decide(action)

    async def adecide(self, action: Action) -> Decision:
        # awaits the audit log's group commit on the loop, so concurrent calls share one commit
        return await self.gateway.adecide(action)

    def wait_review(self, review_id: str, timeout: float) -> dict[str, Any]:
        import time

        review = self.gateway.wait_review(review_id, timeout)  # wakes on the desk's steps
        return {**review.summary(time.time()), "uses": review.uses, "uses_allowed": review.uses_allowed}

    async def await_review(self, review_id: str, timeout: float) -> dict[str, Any]:
        import asyncio

        return await asyncio.to_thread(self.wait_review, review_id, timeout)

    def close(self) -> None:
        if self.owned:
            self.owned = False
            self.gateway.close()

    async def aclose(self) -> None:
        import asyncio

        await asyncio.to_thread(self.close)
