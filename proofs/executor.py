"""Where ``gicproof check`` runs its obligations: one factory, ``make_executor(jobs)``.

Every obligation of ``check`` is a job: a top-level function of plain, picklable
arguments (file paths, device names, kernel strings, register names, a ``Budget``)
returning a picklable result, submitted to a standard ``concurrent.futures.Executor``
and collected in submission order, so the output does not depend on which job
finishes first.

``jobs == 1`` runs every job in this process, at submission, without a pool (the same
code path through the ``Executor`` interface). More jobs use a ``ProcessPoolExecutor``:
processes, not threads, since Z3 is not thread-safe for this use, and each proof makes
its own Z3 context, so a verdict and its witness do not depend on which process ran it
or on what it ran before.

A cluster executor with the same interface (``submit`` returning a
``concurrent.futures.Future``, ``shutdown``) can be dropped in here: nothing else in
gicproof knows where the jobs run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any


class SerialExecutor(Executor):
    """Runs each job in this process as it is submitted; its future is already done.
    An exception the job raises is kept in the future, as a pool would."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:  # KeyboardInterrupt and SystemExit are not a job's result
            if not isinstance(e, Exception):
                raise
            fut.set_exception(e)
        else:
            fut.set_result(result)
        return fut


def default_jobs() -> int:
    """Every core this process may run on (``os.cpu_count()`` where the affinity mask is
    not available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: let the parent alone handle it (it cancels
    # what is queued and stops the workers), rather than every worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_executor(jobs: int) -> Executor:
    """An executor running up to ``jobs`` jobs at once: in this process for 1, else a
    pool of worker processes (started with ``spawn``: a clean interpreter, not a fork of
    one that may hold Z3 state or threads)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    if jobs == 1:
        return SerialExecutor()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)


def stop(executor: Executor) -> None:
    """Stop now (after Ctrl-C): cancel queued jobs and end the worker processes rather
    than waiting for the running jobs to finish."""
    procs = getattr(executor, "_processes", None)  # ProcessPoolExecutor's; none elsewhere
    processes = list(procs.values()) if isinstance(procs, dict) else []
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()


__all__ = ["SerialExecutor", "default_jobs", "make_executor", "stop"]
