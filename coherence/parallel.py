"""Independent pieces of work in worker processes, their results in the order given.

The analyses of a spec are pure functions of its transition system and the options, and
the formal analysis answers piece by piece (each requirement, the conflict search, the
equilibria) in Z3 contexts of their own, so running them in separate processes gives the
same results, in the same order, as running them one after the other. Workers are forked:
they inherit the compiled systems and the pieces, nothing is pickled but the results. Where
``fork`` is not available the pieces run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_TASKS: list[Callable[[], Any]] = []


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


AUTO_MAX = 8  # workers that ``jobs = 0`` starts at most: each holds its own solver's memory


def resolve_jobs(jobs: int) -> int:
    """``jobs`` as a count of worker processes: 0 means one per CPU, at most ``AUTO_MAX``."""
    return min(cpu_count(), AUTO_MAX) if jobs == 0 else max(1, jobs)


_SCHEDULER: list[str] = []


def use_scheduler(address: str | None) -> None:
    """Hand :func:`run_all`'s tasks to the Dask cluster of ``address`` (``coherence check
    --scheduler``); ``None`` goes back to worker processes here."""
    _SCHEDULER[:] = [address] if address else []


def _run(i: int) -> Any:
    return _TASKS[i]()


def run_all(
    tasks: Sequence[Callable[[], Any]],
    jobs: int,
    first: Sequence[int] = (),
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Every task's result, in the order of ``tasks``.

    With ``jobs`` > 1 the tasks run in that many forked workers, those in ``first`` (the
    longest, where the caller can tell) handed out before the rest; an exception in a task
    is raised here, as it would be in a loop. ``on_done(i, result)`` is called in this
    process as each task finishes (in the order they finish; once per task), so that a
    caller can report what is complete while the rest runs.
    """
    seen: set[int] = set()

    def finished(i: int, result: Any) -> Any:
        if on_done is not None and i not in seen:
            seen.add(i)
            on_done(i, result)
        return result

    def in_order() -> list[Any]:
        return [finished(i, t()) for i, t in enumerate(tasks)]

    if _SCHEDULER and len(tasks) > 1:
        from coherence.sweep.dask_engine import run_on_scheduler

        remote = run_on_scheduler(_SCHEDULER[0], tasks)
        return [finished(i, r) for i, r in enumerate(remote)]
    if jobs <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return in_order()
    global _TASKS
    _TASKS = list(tasks)
    order = list(dict.fromkeys([*first, *range(len(tasks))]))
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
            futures = {pool.submit(_run, i): i for i in order}
            results: dict[int, Any] = {}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = finished(i, future.result())
            return [results[i] for i in range(len(tasks))]
    except (OSError, BrokenProcessPool):
        # no processes to be had here (a sandbox, a worker killed for memory): the same
        # pieces, one after the other, give the same results
        return in_order()
    finally:
        _TASKS = []
