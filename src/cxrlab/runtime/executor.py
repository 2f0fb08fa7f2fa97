"""The batch executor: a local process pool using every core by default.

Every batch stage hands its per-item function to :meth:`Executor.map`; results stream back in input order so
the caller (the single catalog writer) can record them as they arrive. ``workers=1`` runs in the calling process,
which keeps tracebacks simple when debugging.

The function and its extra arguments (a de-identification profile, a key) reach each worker once, when the
pool's processes are forked, and items travel in chunks: per item only the item and its result are pickled, so
thousands of small files per second are not spent in inter-process hand-offs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any, TypeVar

__all__ = ["Executor", "batches", "default_workers"]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: The function and extra arguments of the running map, installed in each worker when it starts.
_TASK: tuple[Callable[..., Any], tuple[Any, ...]] | None = None


def _install(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Pool initializer: remember the function and its extra arguments in the worker process."""
    global _TASK
    _TASK = (fn, args)


def _run_chunk(chunk: list[Any]) -> list[Any]:
    """Worker: apply the installed function to every item of *chunk*."""
    assert _TASK is not None, "worker started without _install"
    fn, args = _TASK
    return [fn(item, *args) for item in chunk]


class Executor:
    """Run a function over many items on a process pool.

    Parameters
    ----------
    workers : int or None
        Processes to use; None means all cores, 1 means in-process.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers or default_workers()

    def describe(self) -> str:
        """What the summary table says about where the work ran."""
        if self.workers == 1:
            return "in-process (1 worker)"
        return f"process pool ({self.workers} workers)"

    def map(
        self, fn: Callable[..., R], items: Iterable[T], *args: Any, chunksize: int = 1
    ) -> Iterator[tuple[T, R]]:
        """Yield ``(item, fn(item, *args))`` in the order of *items*.

        Items go to the workers in chunks of *chunksize* (use more than 1 when one item takes only a few
        milliseconds); *fn* and *args* are handed to each worker once, when it is forked. At most
        ``2 * workers`` chunks are in flight, so memory stays flat on a 100,000-file batch, and results come
        back in input order, so a batch gives the same catalog whatever the timing. *fn* must catch its own
        per-item errors and return them as values: an exception escaping *fn* is a bug and stops the batch.
        """
        if chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, got {chunksize}")
        if self.workers == 1:
            for item in items:
                yield item, fn(item, *args)
            return
        ctx = multiprocessing.get_context("fork")
        source = iter(items)
        with ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=_install, initargs=(fn, args)
        ) as pool:
            pending: deque[tuple[list[T], Future[list[R]]]] = deque()
            while chunk := list(islice(source, chunksize)):
                pending.append((chunk, pool.submit(_run_chunk, chunk)))
                if len(pending) >= 2 * self.workers:
                    yield from self._drain(pending.popleft())
            while pending:
                yield from self._drain(pending.popleft())

    @staticmethod
    def _drain(entry: tuple[list[T], Future[list[R]]]) -> Iterator[tuple[T, R]]:
        chunk, fut = entry
        yield from zip(chunk, fut.result(), strict=True)


def batches(
    items: Iterable[T], size: int, *, total: int, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[list[T]]:
    """Group the streamed *items* (results of :meth:`Executor.map`) into lists of up to *size*: one catalog
    transaction each, so a killed run loses at most the open batch. ``on_progress(done, total)`` is called as
    each item arrives, so the progress bar does not move in steps of *size*."""
    batch: list[T] = []
    for done, item in enumerate(items, start=1):
        batch.append(item)
        if on_progress:
            on_progress(done, total)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
