"""Adaptive micro-batching: requests that arrive together are served by one call, on one worker.

A ``Batcher`` owns one worker thread. Callers ``submit`` an item (for serving: one request's
records) and get a ``concurrent.futures.Future``; the worker takes the first waiting item, gathers
whatever else is already queued, up to ``max_records`` records, and hands the batch to ``run``
once. ``run`` returns one outcome per item, a value or an exception, so a failure in one item
fails only that item's future. A caller that may block uses ``call`` instead: when the worker is
idle and nothing waits, its item is served in its own thread, saving two thread hand-offs.

The wait is adaptive and bounded. Under load, requests queue while the worker is busy and the next
batch forms by itself. The worker waits for more only when one of the last ``HISTORY`` (4) batches
held more than one item (there are concurrent callers), for at most ``max_wait`` seconds and only
until as many items as the largest of them are in hand: a lone caller never waits, and a steady
set of ``n`` concurrent callers is served ``n`` at a time. Remembering only the last batch let
such a set split for good into two halves served in turn (8 clients: batches of 4, 4, 4, ...),
which pays the model call's fixed cost twice as often; remembering a few brings the halves back
together (8 clients: about 1.2x the requests/s, side by side). ``max_wait`` 0 never waits;
``max_records`` 1 serves one item at a time.

``NativeThreads`` keeps a model call of a few rows on one OpenMP thread. A batch of tens of rows
gains nothing from a team of threads, and on a busy machine the team costs much: its threads spin
at every barrier while the others wait for a core, so a call of 20 rows that takes 9 ms on one
thread took 50 ms at the median and over a second at the 99th percentile on two (gradient-boosted
trees of scikit-learn, two cores shared with other work). The limit is OpenMP's per-thread one, so
only the thread making the call is limited, never the rest of the process.

Example::

    >>> batcher = Batcher(lambda items: [sum(item) for item in items], name="sum")
    >>> batcher.submit([1, 2, 3], size=3).result()
    6
    >>> batcher.close()
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from threadpoolctl import ThreadpoolController

from steward.errors import InvalidInputError, StoreError

__all__ = [
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_MAX_WAIT_MS",
    "SINGLE_THREAD_ROWS",
    "Batcher",
    "NativeThreads",
]

logger = logging.getLogger(__name__)

#: The most records one batch gathers (a single larger request is still served, alone).
DEFAULT_MAX_RECORDS = 64
#: The longest the worker waits for more concurrent requests before calling the model.
DEFAULT_MAX_WAIT_MS = 2.0

#: Model calls of at most this many rows run on one OpenMP thread (``NativeThreads``).
SINGLE_THREAD_ROWS = 1000

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    item: Item
    size: int
    future: Future[Result]


_STOP = object()


class Batcher(Generic[Item, Result]):
    """One worker thread that serves queued items in batches through ``run``.

    ``run(items)`` must return one outcome per item, in order: a result, or an exception that
    becomes that item's error. If ``run`` itself raises, every item of the batch gets the error.
    """

    #: Batches the worker remembers: it waits for as many items as the largest of them held.
    HISTORY = 4

    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        name: str,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_wait: float = DEFAULT_MAX_WAIT_MS / 1000,
    ) -> None:
        if max_records < 1 or max_wait < 0:
            raise InvalidInputError(
                f"batching needs max_records >= 1 and max_wait >= 0, got {max_records} and "
                f"{max_wait}; set batch_max_records and batch_max_wait_ms accordingly"
            )
        self.name = name
        self.max_records = max_records
        self.max_wait = max_wait
        self._run = run
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._busy = threading.Lock()  # held while a batch runs: one batch at a time
        self._recent: collections.deque[int] = collections.deque([1], maxlen=self.HISTORY)
        self._worker = threading.Thread(
            target=self._work, name=f"steward-batch-{name}", daemon=True
        )
        self._worker.start()

    def submit(self, item: Item, size: int = 1) -> Future[Result]:
        """Queue ``item`` (``size`` records) for the next batch; its future gets the outcome."""
        if self._closed:
            raise StoreError(f"the batcher of {self.name!r} is closed; the server is stopping")
        future: Future[Result] = Future()
        self._queue.put(_Waiting(item, size, future))
        return future

    def call(self, item: Item, size: int = 1) -> Result:
        """Serve ``item`` and return its result, in the calling thread when the worker is idle.

        A caller that may block (not an event loop) saves the two thread hand-offs of ``submit``
        when nothing else is waiting; otherwise its item joins the next batch. Either way, one
        batch runs at a time.
        """
        if self._busy.acquire(blocking=False):
            try:
                if self._queue.empty() and not self._closed:
                    outcome = self._run([item])[0]
                    if isinstance(outcome, BaseException):
                        raise outcome
                    return outcome
            finally:
                self._busy.release()
        return self.submit(item, size).result()

    def close(self, timeout: float | None = None) -> None:
        """Serve what is queued, then stop the worker (safe to call twice)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._worker.join(timeout)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            with self._busy:
                batch, stopping = self._gather(first)
                self._serve(batch)
            if stopping:
                self._drain()
                return

    def _gather(self, first: _Waiting[Item, Result]) -> tuple[list[_Waiting[Item, Result]], bool]:
        """The first item and those queued behind it, waiting briefly if callers are concurrent."""
        batch, records = [first], first.size
        expected = max(self._recent) if self.max_wait > 0 else 1
        deadline = time.monotonic() + self.max_wait
        while records < self.max_records:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if len(batch) >= expected or remaining <= 0:
                    break
                try:
                    waiting = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if waiting is _STOP:
                return batch, True
            if records + waiting.size > self.max_records:
                self._serve(batch)  # the newcomer would overflow: serve these, start anew
                batch, records = [waiting], waiting.size
                continue
            batch.append(waiting)
            records += waiting.size
        self._recent.append(len(batch))
        return batch, False

    def _drain(self) -> None:
        pending = []
        while True:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                break
            if waiting is not _STOP:
                pending.append(waiting)
        if pending:
            self._serve(pending)

    def _serve(self, batch: list[_Waiting[Item, Result]]) -> None:
        live = [waiting for waiting in batch if waiting.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            outcomes = self._run([waiting.item for waiting in live])
            if len(outcomes) != len(live):
                raise RuntimeError(f"batch of {len(live)} gave {len(outcomes)} outcomes")
        except BaseException as error:  # never let the worker die: every caller hears of it
            logger.exception("batch of %d item(s) on %r failed", len(live), self.name)
            outcomes = [error] * len(live)
        for waiting, outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)


class NativeThreads:
    """Keeps model calls of at most ``SINGLE_THREAD_ROWS`` rows on one OpenMP thread.

    Finding the native libraries takes milliseconds, so it is done once and again after each model
    load (``forget``), since a model may bring an OpenMP runtime of its own. Applying the limit
    then costs microseconds per call. The limit is per calling thread (OpenMP's ``nthreads-var``),
    and a call of more rows keeps the libraries' default team.

    Example::

        threads = NativeThreads()
        with threads.limited(len(frame)):
            model.predict(frame)
    """

    def __init__(self, single_thread_rows: int = SINGLE_THREAD_ROWS) -> None:
        self.single_thread_rows = single_thread_rows
        self._openmp: ThreadpoolController | None = None

    def forget(self) -> None:
        """Find the native libraries again at the next call (a model was loaded)."""
        self._openmp = None

    @contextlib.contextmanager
    def limited(self, rows: int) -> Iterator[None]:
        """One OpenMP thread for the call inside, when it has at most ``single_thread_rows`` rows."""
        if rows > self.single_thread_rows:
            yield
            return
        openmp = self._openmp
        if openmp is None:
            openmp = self._openmp = ThreadpoolController().select(user_api="openmp")
        limiter = openmp.limit(limits=1)
        try:
            yield
        finally:
            limiter.restore_original_limits()
