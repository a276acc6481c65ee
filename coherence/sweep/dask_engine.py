"""Where the chunks of a sweep run: this process, an embedded Dask cluster, or a scheduler's.

Dask distributed is the engine. By default :class:`Engine` starts a ``LocalCluster`` of
worker *processes*, one per CPU (``-j N`` for N), with one thread each; with
``scheduler="tcp://HOST:PORT"`` it runs the same tasks on an existing cluster (the workers
need the same version of coherence installed). A task is :func:`coherence.sweep.evaluate.
evaluate` of one :class:`~coherence.sweep.evaluate.Chunk`: the spec's text and a block of
points in, plain NumPy arrays out. Each worker compiles the spec once (cached by the text's
hash) and keeps its linear engines and solver contexts; nothing unpicklable travels.

Results do not depend on the workers or the scheduler: how points are chunked depends only
on the spec and the points (:func:`chunk_size`), each chunk's arrays are a pure function of
its contents, and results are put back in submission order.

Dask is imported here only, and only when a cluster is used: ``check`` and ``lint`` never
import it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from coherence.diagnostics import CoherenceError
from coherence.ir.nodes import TransitionSystem
from coherence.sweep.evaluate import BURSTS, Chunk, Verdicts, evaluate

TASK_SECONDS = 1.0  # what one task should take: long enough that Dask's overhead is noise
CONNECT_TIMEOUT = 15  # seconds to reach a scheduler
MAX_CHUNK = 256


def point_seconds(ts: TransitionSystem, analyses: Sequence[str]) -> float:
    """A deterministic estimate of what one point costs (seconds on one core of the
    reference machine), from the system's size and its requirements: the operating point
    and linearization (about 0.2 ms per state or let per hyperperiod tick) and the simulated
    values (25 ns each). Measured with ``python -m benchmarks.sweep_bench``."""
    from coherence.search.equilibria import stay_ticks

    width = len(ts.states) + len(ts.lets)
    est = 0.01
    kinds = {r.kind for r in ts.requirements}
    if "linear" in analyses and "stable" in kinds:
        est += 0.02 + 2e-4 * width * ts.hyperperiod
    if "simulate" in analyses:
        q_free = 60 + 4 * len(ts.inputs)
        for r in ts.requirements:
            if r.kind in ("always", "response", "flapping"):
                est += 25e-9 * q_free * (r.horizon + 1) * width
        if "no_bad_equilibrium" in kinds:
            q = 1 + 6 * len(ts.inputs)
            est += 25e-9 * q * (stay_ticks(ts) + max(BURSTS) + 100) * width
    if "formal" in analyses:
        est += 5.0
    return est


def chunk_size(ts: TransitionSystem, analyses: Sequence[str]) -> int:
    """Points per task: about ``TASK_SECONDS`` of work (a function of the spec only)."""
    return max(1, min(MAX_CHUNK, math.ceil(TASK_SECONDS / point_seconds(ts, analyses))))


Progress = Callable[[int], None]


class Engine:
    """Runs chunks: inline (``jobs == 1``), on an embedded LocalCluster, or on the cluster of
    ``scheduler``. Use as a context manager; the cluster starts on the first :meth:`map`
    that has more than one chunk."""

    def __init__(self, scheduler: str | None = None, jobs: int | None = None) -> None:
        self.scheduler = scheduler
        self.jobs = jobs
        self._client: Any = None
        self._cluster: Any = None
        self.workers = 1
        self.where = "this process"

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def inline(self) -> bool:
        return self.scheduler is None and self.jobs == 1

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise CoherenceError(
                f"Dask distributed is not installed ({e})", "pip install 'dask[distributed]'"
            ) from None
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.scheduler is not None:
            try:
                self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as e:
                raise CoherenceError(
                    f"cannot reach the Dask scheduler at `{self.scheduler}`: {e}",
                    "start one with `dask scheduler` and workers with `dask worker ADDR`",
                ) from None
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
            self.where = f"the cluster at {self.scheduler} ({self.workers} workers)"
            return self._client
        from coherence.parallel import cpu_count

        n = self.jobs if self.jobs and self.jobs > 0 else cpu_count()
        self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        self.workers = n
        self.where = f"an embedded Dask LocalCluster ({n} worker processes)"
        return self._client

    def map(self, chunks: Sequence[Chunk], progress: Progress | None = None) -> list[Verdicts]:
        """Every chunk's verdicts, in the order given."""
        if self.inline or (len(chunks) <= 1 and self.scheduler is None and self._client is None):
            out = []
            for c in chunks:
                out.append(evaluate(c))
                if progress:
                    progress(len(c.points))
            return out
        client = self._connect()
        from dask.distributed import as_completed

        futures = [client.submit(evaluate, c, pure=False) for c in chunks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Verdicts | None] = [None] * len(chunks)
        try:
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                i = index[fut.key]
                results[i] = fut.result()
                if progress:
                    progress(len(chunks[i].points))
        except CoherenceError:
            raise
        except Exception as e:
            for f in futures:
                f.cancel()
            raise CoherenceError(
                f"a sweep task failed on {self.where}: {type(e).__name__}: {e}",
                "check that the workers run the same version of coherence",
            ) from None
        return [r for r in results if r is not None]

    def run_tasks(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Arbitrary picklable tasks (``check --scheduler``), results in order."""
        client = self._connect()
        futures = [client.submit(t, pure=False) for t in tasks]
        return list(client.gather(futures))


def run_on_scheduler(address: str, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """``tasks`` run on the cluster of ``address``; what ``coherence check --scheduler``
    hands its pieces to (:func:`coherence.parallel.run_all`)."""
    with Engine(scheduler=address) as engine:
        return engine.run_tasks(tasks)
