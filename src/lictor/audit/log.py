"""The audit log's write path: a group-committing writer thread, seals, signed checkpoints and proofs.

Callers encode and hash their leaf on their own thread and enqueue it; ONE writer thread takes up to
``max_batch`` queued leaves (waiting at most ``max_delay`` after the first one was queued, and no
longer once as many are queued as the previous batch held; and not at all while leaves arrive
further apart on average than half of ``max_delay``, when company is unlikely to come in time and
waiting would only delay a lone leaf; leaves nobody waits for, queued with ``async`` durability,
wait the whole ``max_delay`` while no other is queued), writes them with one ``store.append`` and then resolves
every waiter with its :class:`Receipt`. A receipt is only ever given for a leaf the
store reported durable; a failed batch fails each of its waiters with :class:`AuditUnavailable`.
The queue is bounded: when it is full, appends fail at once instead of growing memory. Coroutines
wait with :meth:`AuditLog.append_async`, settled in one loop callback per batch
(:mod:`lictor.audit.waiters`).

Seals go through the same queue, so they are serialised with the batches: the writer appends a
``seal`` leaf with the counts of leaf types and verdicts since the previous seal (seal leaves
themselves are not counted), asks the signer to sign the tree that ends with it and stores the
signed checkpoint. Counts are kept from the leaves this log writes; leaves that other processes
sharing the store wrote in between, or that a previous process wrote after its last seal, are read
back from the store and counted, so the store stays the source of truth. A seal covers the leaves
from the previous seal's ``size_before`` to its own, wherever that previous seal was written: it is
made under the store's seal lock (:meth:`AuditStore.sealing`), so two logs sharing a store (other
threads, processes or hosts) never interleave their seals and signatures.

:class:`Publisher` runs :meth:`AuditLog.maybe_checkpoint` on a cadence in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from lictor.audit.leaf import LEAF_VERSION, decode_leaf, encode_leaf, leaf_time
from lictor.audit.merkle import Tree, leaf_hash
from lictor.audit.port import AuditStore, Payload, TreeState
from lictor.audit.signer import CheckpointSigner
from lictor.audit.waiters import Deadlines, LoopWaiter, Waiter, settle
from lictor.errors import InputError, InternalError, LictorError

__all__ = ["AuditLog", "AuditUnavailable", "Publisher", "Receipt", "extend_tree"]

#: How many stored leaves are read at a time when catching up (counts, proof cache).
_READ_CHUNK = 4096

#: The weight of the newest gap in the running mean of the gaps between queued leaves.
_GAP_WEIGHT = 0.125


class AuditUnavailable(InternalError):
    """The audit log could not make an entry durable (store failure, full queue, timeout, closed)."""

    code = "audit_unavailable"


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a committed leaf landed: its index and its RFC 6962 leaf hash."""

    index: int
    leaf_hash: bytes


@dataclass(slots=True)
class _Entry:
    """One queued leaf (or, with ``seal`` set, one seal request) and the future of its waiter."""

    data: bytes
    hash: bytes
    payload: Payload | None
    kind: tuple[str, str | None]
    queued_at: float
    future: Waiter = field(default_factory=Future)
    seal: bool = False
    waited: bool = True  # someone waits for its receipt (False: queued only, ``async`` durability)


def _unavailable(message: str, cause: BaseException | None = None) -> AuditUnavailable:
    error = AuditUnavailable(message)
    error.__cause__ = cause
    return error


def _timed_out(timeout: float) -> AuditUnavailable:
    return _unavailable(f"the audit log did not commit the entry within {timeout} s")


def _kind(leaf: Mapping[str, Any]) -> tuple[str, str | None]:
    verdict = leaf.get("verdict") if leaf.get("type") == "decision" else None
    return str(leaf.get("type")), verdict if isinstance(verdict, str) else None


class AuditLog:
    """The append path of one process onto an :class:`~lictor.audit.port.AuditStore`.

    Thread-safe. ``submit``/``append`` start the writer on first use if ``start`` was not called.
    ``close`` stops the writer after flushing the queue; it does not close the store or the signer.

    ``on_batch(size, seconds)``, when set (here or later, as the attribute), is called on the writer
    thread after each batch of leaves the store committed, with the batch's size and how long the
    store took; it must be quick, and what it raises is ignored. :meth:`queue_depth` is how many
    entries wait. Together they let a caller export metrics without this module knowing how.
    """

    def __init__(self, *, store: AuditStore, signer: CheckpointSigner | None, max_batch: int = 256,
                 max_delay: float = 0.002, queue_limit: int = 4096,
                 clock: Callable[[], float] = time.time,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        self._store = store
        self._signer = signer
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._queue_limit = queue_limit
        self._clock = clock
        self.on_batch = on_batch
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Entry] = deque()
        self._closed = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        # writer-thread state: the (type, verdict) of every stored leaf from ``_base`` (where the
        # current seal period starts: the last seal's ``size_before``) up to ``_counted_to``
        self._last_batch = 1
        # the mean gap between queued leaves (an exponentially weighted average), under _cond
        self._gap = 0.0
        self._last_queued: float | None = None
        self._waited = 0  # how many queued entries someone waits for, under _cond
        self._kinds: list[tuple[str, str | None]] = []
        self._base = 0
        self._counted_to: int | None = None
        # checkpoint state (read lazily from the store), guarded by _cp_lock
        self._cp_lock = threading.Lock()
        self._cp_known = False
        self._cp_size: int | None = None
        self._cp_time: float | None = None
        # proof cache
        self._tree_lock = threading.Lock()
        self._tree = Tree()
        # the deadlines of the coroutines waiting in append_async, per event loop
        self._deadlines: dict[asyncio.AbstractEventLoop, Deadlines] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the writer thread (does nothing when it runs already)."""
        with self._cond:
            if self._closed:
                raise _unavailable("the audit log is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lictor-audit-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Refuse new entries, write everything already queued, and stop the writer thread."""
        with self._cond:
            if self._closed and self._thread is None:
                return
            self._closed = True
            if self._thread is None and self._queue:
                self._thread = threading.Thread(target=self._run, name="lictor-audit-writer", daemon=True)
                self._thread.start()
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> AuditLog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def queue_depth(self) -> int:
        """How many entries (leaves and seal requests) wait for the writer now."""
        return len(self._queue)

    # ------------------------------------------------------------------ appending

    def submit(self, leaf: Mapping[str, Any], payload: Payload | None = None, *,
               waited: bool = True) -> Future[Receipt]:
        """Queue one leaf; the future resolves to its Receipt once durable, or fails with
        AuditUnavailable. Raises AuditUnavailable at once when the queue is full or the log closed,
        InputError when the leaf cannot be encoded. ``waited=False`` says nobody waits for the
        receipt (``async`` durability): a batch of such leaves only may wait the whole
        ``max_delay`` for company, since that delays nobody and saves commits."""
        future: Future[Receipt] = Future()
        entry = self._entry(leaf, payload, future)
        entry.waited = waited
        self._enqueue(entry, block=False)
        return future

    def submit_async(self, leaf: Mapping[str, Any], payload: Payload | None = None, *,
                     timeout: float | None = 10.0) -> asyncio.Future[Receipt]:
        """:meth:`submit` for a coroutine: queue the leaf now; the returned future (of the running
        loop) resolves to its Receipt once durable, without a thread waiting for it, or fails with
        AuditUnavailable (after ``timeout`` seconds too). Raises as submit does."""
        loop = asyncio.get_running_loop()
        waiter = LoopWaiter(loop)
        self._enqueue(self._entry(leaf, payload, waiter), block=False)
        if timeout is not None:
            deadlines = self._deadlines.get(loop)
            if deadlines is None:
                for gone in [other for other in self._deadlines if other.is_closed()]:
                    del self._deadlines[gone]
                deadlines = self._deadlines[loop] = Deadlines(loop, _timed_out)
            deadlines.add(waiter.future, timeout)
        return waiter.future

    async def append_async(self, leaf: Mapping[str, Any], payload: Payload | None = None, *,
                           timeout: float | None = 10.0) -> Receipt:
        """:meth:`append` for a coroutine (see :meth:`submit_async`)."""
        return await self.submit_async(leaf, payload, timeout=timeout)

    @staticmethod
    def _entry(leaf: Mapping[str, Any], payload: Payload | None, waiter: Waiter) -> _Entry:
        try:
            data = encode_leaf(leaf)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot encode the leaf: {exc}", path="$.leaf") from exc
        return _Entry(data, leaf_hash(data), payload, _kind(leaf), time.monotonic(), waiter)

    def append(self, leaf: Mapping[str, Any], payload: Payload | None = None, *,
               timeout: float | None = 10.0) -> Receipt:
        """Append one leaf and wait until it is durable; raise AuditUnavailable if it may not be.

        On a timeout the entry is withdrawn if it has not reached the store yet; if it has, it may
        still be committed, but it is never reported as such.
        """
        future = self.submit(leaf, payload)
        try:
            receipt: Receipt = future.result(timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise _unavailable(f"the audit log did not commit the entry within {timeout} s", exc) from exc
        return receipt

    def _enqueue(self, entry: _Entry, *, block: bool, timeout: float | None = None) -> None:
        with self._cond:
            if self._closed:
                raise _unavailable("the audit log is closed")
            if len(self._queue) >= self._queue_limit:
                if not block:
                    raise _unavailable(f"the audit queue is full ({self._queue_limit} entries waiting)")
                deadline = None if timeout is None else time.monotonic() + timeout
                while len(self._queue) >= self._queue_limit and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise _unavailable("the audit queue stayed full")
                    self._cond.wait(remaining)
                if self._closed:
                    raise _unavailable("the audit log is closed")
            self._queue.append(entry)
            self._waited += entry.waited
            if not entry.seal:
                last, self._last_queued = self._last_queued, entry.queued_at
                if last is not None:  # a long pause counts as a few max_delay, so that a burst soon shows
                    gap = min(entry.queued_at - last, 4 * self._max_delay)
                    self._gap += (gap - self._gap) * _GAP_WEIGHT
            self._cond.notify_all()
            started = self._thread is not None
        if not started:
            self.start()

    # ------------------------------------------------------------------ the writer thread

    def _next_batch(self) -> list[_Entry] | None:
        """Wait for work and take one batch (a seal always alone); None when stopping and drained."""
        with self._cond:
            queue = self._queue
            while not queue and not self._stopping:
                self._cond.wait()
            if not queue:
                return None
            if not queue[0].seal and self._max_delay > 0:
                deadline = queue[0].queued_at + self._max_delay
                while len(queue) < self._max_batch and not self._stopping and not queue[-1].seal:
                    # a leaf someone waits for waits for company only when the last batch had some
                    # and leaves come often enough; leaves nobody waits for wait the whole max_delay
                    if self._waited and (len(queue) >= self._last_batch or 2 * self._gap > self._max_delay):
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            batch = [queue.popleft()]
            if not batch[0].seal:
                while queue and len(batch) < self._max_batch and not queue[0].seal:
                    batch.append(queue.popleft())
            self._waited -= sum(entry.waited for entry in batch)
            self._cond.notify_all()  # room in the queue for a blocked seal request
            return batch

    def _run(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                live = [entry for entry in batch if entry.future.set_running_or_notify_cancel()]
                if not live:
                    continue
                if live[0].seal:
                    self._seal(live[0])
                else:
                    self._last_batch = len(live)
                    self._commit(live)
        finally:
            with self._cond:
                self._closed = True
                left = list(self._queue)
                self._queue.clear()
                self._waited = 0
                self._cond.notify_all()
            settle((entry.future, None, _unavailable("the audit log stopped before the entry was written"))
                   for entry in left if entry.future.set_running_or_notify_cancel())

    def _commit(self, batch: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            result = self._store.append([e.data for e in batch], [e.payload for e in batch])
        except Exception as exc:
            error = _unavailable(f"the audit store failed to commit a batch of {len(batch)}: {exc}", exc)
            settle((entry.future, None, error) for entry in batch)
            return
        observer = self.on_batch
        if observer is not None:
            with contextlib.suppress(Exception):  # an observer never costs a record
                observer(len(batch), time.perf_counter() - started)
        first = result.first_index
        try:
            self._count_committed(first, batch)
        finally:
            settle((entry.future, Receipt(first + position, entry.hash), None)
                   for position, entry in enumerate(batch))

    # ------------------------------------------------------------------ counts since the last seal

    def _count_committed(self, first: int, batch: list[_Entry]) -> None:
        try:
            self._catch_up(first)
            if self._counted_to == first and all(entry.kind[0] != "seal" for entry in batch):
                self._kinds.extend(entry.kind for entry in batch)
                self._counted_to = first + len(batch)
        except Exception:
            self._forget()  # the store could not be read back: count again from the last seal next time

    def _forget(self) -> None:
        self._kinds, self._base, self._counted_to = [], 0, None

    def _note_stored(self, index: int, data: bytes) -> None:
        """Record the kind of stored leaf ``index``; a seal starts a new period at its ``size_before``
        (not at itself: leaves other processes slipped in before it belong to the next seal)."""
        if not data:
            self._kinds.append(("pruned", None))  # a pruned leaf's kind is gone with its bytes
            return
        try:
            leaf = decode_leaf(data, index=index)
        except LictorError:
            self._kinds.append(("undecodable", None))
            return
        kind = _kind(leaf)
        if kind[0] == "seal":
            size_before = leaf.get("size_before")
            if isinstance(size_before, int) and not isinstance(size_before, bool) \
                    and self._base <= size_before <= index:
                del self._kinds[:size_before - self._base]
                self._base = size_before
        self._kinds.append(kind)

    def _catch_up(self, end: int) -> None:
        """Note the stored leaves before ``end`` that were not noted yet (written elsewhere)."""
        if self._counted_to is None:
            self._count_back()
        start = self._counted_to
        assert start is not None
        while start < end:
            chunk_end = min(end, start + _READ_CHUNK)
            for index, data in enumerate(self._store.leaves(start, chunk_end), start):
                self._note_stored(index, data)
            start = self._counted_to = chunk_end

    def _count_back(self) -> None:
        """Resume counting where the current seal period starts."""
        base = self._period_start()
        self._kinds, self._base, self._counted_to = [], base, base

    def _period_start(self) -> int:
        """The last seal's ``size_before`` (or just past a pruned leaf, or 0), searching back from
        the end of the log."""
        end = self._store.state().size
        while end > 0:
            start = max(0, end - _READ_CHUNK)
            leaves = self._store.leaves(start, end)
            for offset in range(len(leaves) - 1, -1, -1):
                index, data = start + offset, leaves[offset]
                if not data:
                    return index + 1
                if b'"seal"' not in data:
                    continue
                try:
                    leaf = decode_leaf(data)
                except LictorError:
                    continue
                if leaf.get("type") == "seal":
                    size_before = leaf.get("size_before")
                    if isinstance(size_before, int) and not isinstance(size_before, bool) \
                            and 0 <= size_before <= index:
                        return size_before
                    return index
            end = start
        return 0

    # ------------------------------------------------------------------ seals and checkpoints

    def checkpoint(self, *, timeout: float | None = 30.0) -> str | None:
        """Append a seal leaf, sign the tree ending with it and store the checkpoint; return the note
        (None without a signer, the seal is appended all the same). Raises AuditUnavailable."""
        future: Future[str | None] = Future()
        self._enqueue(_Entry(b"", b"", None, ("seal", None), time.monotonic(), future, seal=True),
                      block=True, timeout=timeout)
        try:
            note = future.result(timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise _unavailable(f"the checkpoint was not made within {timeout} s", exc) from exc
        return note

    def _seal(self, entry: _Entry) -> None:
        try:
            settle([(entry.future, self._make_checkpoint(), None)])
        except AuditUnavailable as exc:
            settle([(entry.future, None, exc)])
        except Exception as exc:
            settle([(entry.future, None, _unavailable(f"the checkpoint failed: {exc}", exc))])

    def _make_checkpoint(self) -> str | None:
        # Under the store's seal lock no other log sharing the store seals, so the period this seal
        # closes (from the last seal's size_before to size_before) is fixed until it is signed.
        with self._store.sealing():
            size_before = self._store.state().size
            self._catch_up(size_before)
            types: dict[str, int] = {}
            verdicts: dict[str, int] = {}
            for kind, verdict in self._kinds[:size_before - self._base]:
                if kind in ("seal", "pruned"):
                    continue
                types[kind] = types.get(kind, 0) + 1
                if verdict is not None:
                    verdicts[verdict] = verdicts.get(verdict, 0) + 1
            now = self._clock()
            seal = {"v": LEAF_VERSION, "type": "seal", "ts": leaf_time(now), "size_before": size_before,
                    "counts": {"types": dict(sorted(types.items())), "verdicts": dict(sorted(verdicts.items()))}}
            data = encode_leaf(seal)
            try:
                result = self._store.append([data], [None])
            except Exception as exc:
                raise _unavailable(f"the audit store failed to commit the seal: {exc}", exc) from exc
            # the seal (and any leaves slipped in before it) are read back by the next catch-up
            state = result.state
            note: str | None = None
            if self._signer is not None:
                try:
                    note = self._signer.sign(state.size, state.root)
                    self._store.add_checkpoint(state.size, note, now)
                except Exception as exc:
                    raise _unavailable(f"the checkpoint of size {state.size} could not be signed and stored: "
                                       f"{exc}", exc) from exc
        with self._cp_lock:
            self._cp_known = True
            self._cp_size = state.size if note is not None else self._cp_size
            self._cp_time = now
        return note

    def _last_checkpoint(self) -> tuple[int | None, float | None]:
        with self._cp_lock:
            if not self._cp_known:
                checkpoints = self._store.checkpoints()
                if checkpoints:
                    self._cp_size = checkpoints[-1].size
                    self._cp_time = checkpoints[-1].published_at
                self._cp_known = True
            return self._cp_size, self._cp_time

    def maybe_checkpoint(self, *, interval: float, seal_interval: float) -> str | None:
        """Checkpoint when the tree grew and ``interval`` passed since the last checkpoint, or when
        ``seal_interval`` passed regardless, or when there was never one; otherwise return None."""
        size, last = self._last_checkpoint()
        if last is None:
            return self.checkpoint()
        elapsed = self._clock() - last
        grown = self._store.state().size > (size or 0)
        if (grown and elapsed >= interval) or elapsed >= seal_interval:
            return self.checkpoint()
        return None

    def run_publisher(self, interval: float, seal_interval: float, stop_event: threading.Event, *,
                      tick: float | None = None,
                      on_error: Callable[[Exception], None] | None = None) -> None:
        """Call maybe_checkpoint every ``tick`` seconds (default: a quarter of the shorter interval)
        until ``stop_event`` is set. Failures go to ``on_error`` and the loop carries on."""
        period = tick if tick is not None else max(0.01, min(interval, seal_interval) / 4)
        while not stop_event.is_set():
            try:
                self.maybe_checkpoint(interval=interval, seal_interval=seal_interval)
            except Exception as exc:
                if on_error is not None:
                    on_error(exc)
            stop_event.wait(period)

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> TreeState:
        """The committed tree state, read from the store."""
        return self._store.state()

    def proof(self, index: int, size: int | None = None) -> tuple[bytes, list[bytes], int]:
        """(leaf hash, inclusion proof, tree size) of leaf ``index`` in the tree of ``size`` leaves
        (default: the latest checkpoint's size), built from the stored leaves."""
        if size is None:
            size, _ = self._last_checkpoint()
            if size is None:
                raise InputError("there is no checkpoint yet to prove against", path="$.size")
        if not 0 <= index < size:
            raise InputError(f"index {index} is not in a tree of {size} leaves", path="$.index")
        with self._tree_lock:
            tree = self._tree
            if tree.size < size:
                stored = self._store.state().size
                if size > stored:
                    raise InputError(f"the log holds only {stored} leaves, not {size}", path="$.size")
                extend_tree(tree, self._store, size)
            return tree.leaf(index), tree.inclusion_proof(index, size), size


def extend_tree(tree: Tree, store: AuditStore, size: int) -> None:
    """Grow ``tree`` with the stored leaf hashes up to ``size`` (kept for pruned leaves too), in chunks."""
    while tree.size < size:
        end = min(size, tree.size + _READ_CHUNK)
        tree.extend(store.leaf_hashes(tree.size, end))


class Publisher(threading.Thread):
    """A daemon thread that checkpoints ``log`` on a cadence until :meth:`stop` is called."""

    def __init__(self, log: AuditLog, *, interval: float, seal_interval: float,
                 tick: float | None = None) -> None:
        super().__init__(name="lictor-audit-publisher", daemon=True)
        self._log = log
        self._interval = interval
        self._seal_interval = seal_interval
        self._tick = tick
        self.stop_event = threading.Event()
        self.errors: list[Exception] = []

    def run(self) -> None:
        self._log.run_publisher(self._interval, self._seal_interval, self.stop_event, tick=self._tick,
                                on_error=self._record)

    def _record(self, exc: Exception) -> None:
        self.errors.append(exc)
        del self.errors[:-16]

    def stop(self, timeout: float | None = None) -> None:
        """Stop the cadence and wait for the thread to end."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout)
