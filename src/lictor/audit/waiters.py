"""Waiting for the audit log from an event loop: asyncio futures that the writer thread settles with
one loop callback per committed batch, and one timer per loop for all their deadlines.

A thread waiting for its leaf holds a :class:`concurrent.futures.Future` (a lock and a condition each);
a coroutine holds a :class:`LoopWaiter` instead, whose asyncio future the writer settles through
:func:`settle`: the waiters of one batch on one loop cost a single ``call_soon_threadsafe`` (one
wake-up of the loop) rather than one each. :class:`Deadlines` fails the waiters that wait too long,
with one timer per loop rather than one per entry. A waiter whose future is done (timed out or
cancelled) before the writer takes its entry is withdrawn, as a cancelled thread future is.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

__all__ = ["Deadlines", "LoopWaiter", "Waiter", "settle"]


class LoopWaiter:
    """The waiter of an entry queued from an event loop: an asyncio future of that loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def set_running_or_notify_cancel(self) -> bool:
        """True when someone still waits (the writer goes ahead); False when the waiter gave up."""
        return not self.future.done()


#: What the writer resolves: a thread's future or a loop's waiter.
Waiter = Future[Any] | LoopWaiter


def settle(outcomes: Iterable[tuple[Waiter, Any, BaseException | None]]) -> None:
    """Give each waiter its value (or its error, when not None): thread futures at once, loop waiters
    in one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
    for waiter, value, error in outcomes:
        if isinstance(waiter, LoopWaiter):
            by_loop.setdefault(waiter.loop, []).append((waiter.future, value, error))
        elif error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(value)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            loop.call_soon_threadsafe(_settle_on_loop, items)


def _settle_on_loop(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in items:
        if future.done():  # timed out or cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class Deadlines:
    """The deadlines of one loop's waiters, kept in a heap and checked by one timer: a waiter still
    waiting at its deadline gets the error ``expired(timeout)``. Used from its loop's thread only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expired: Callable[[float], BaseException]) -> None:
        self.loop = loop
        self._expired = expired
        self._heap: list[tuple[float, int, float, asyncio.Future[Any]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def add(self, future: asyncio.Future[Any], timeout: float) -> None:
        """Fail ``future`` unless it is done within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        heapq.heappush(self._heap, (deadline, next(self._order), timeout, future))
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        # the loop's clock is monotonic too, but may be another one: convert by the difference
        self._timer = self.loop.call_at(self.loop.time() + max(0.0, deadline - time.monotonic()), self._check)
        self._timer_at = deadline

    def _check(self) -> None:
        self._timer = None
        heap = self._heap
        now = time.monotonic()
        while heap and (heap[0][3].done() or heap[0][0] <= now):
            _, _, timeout, future = heapq.heappop(heap)
            if not future.done():
                future.set_exception(self._expired(timeout))
        if heap:
            self._arm(heap[0][0])

    def __len__(self) -> int:
        return len(self._heap)
