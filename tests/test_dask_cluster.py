"""A real Dask cluster on localhost: ``dask scheduler`` and ``dask worker`` as processes.

The sweep through the scheduler must give the embedded run's arrays exactly, and
``coherence check --scheduler`` the report of a local check.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from coherence.cli import main
from coherence.diagnostics import CoherenceError
from coherence.sweep import dask_engine
from coherence.sweep.dask_engine import Engine
from coherence.sweep.params import knobs_of, parse_vary
from coherence.sweep.regions import SweepOptions, run_sweep

ROOT = Path(__file__).resolve().parents[1]
HPA = ROOT / "specs" / "conflicts" / "hpa_lag_broken.coh"
RETRY_FIXED = ROOT / "specs" / "conflicts" / "retry_storm_fixed.coh"
DASK = Path(sys.executable).with_name("dask")

pytestmark = pytest.mark.skipif(not DASK.exists(), reason="the `dask` command is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A scheduler and one worker process (one thread) on random free ports."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(DASK),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(DASK),
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    "sweep-test-worker",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        )
        from dask.distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout=5) as client:  # type: ignore[no-untyped-call]
                    if client.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                pytest.fail("the local Dask scheduler and worker did not start")
            time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)


def _transitions(address: str) -> int:
    """Task state transitions the cluster's workers have made so far."""
    from dask.distributed import Client

    with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
        counts = client.run(lambda dask_worker: dask_worker.state.transition_counter)
    return int(sum(counts.values()))


def _sweep(options: SweepOptions, engine: Engine | None = None) -> object:
    text = HPA.read_text()
    ts, knobs = knobs_of(text, str(HPA))
    axes = [
        parse_vary("window=15s..10min", knobs, ts.tick),
        parse_vary("target=0.5..0.9", knobs, ts.tick, "linear"),
    ]
    return run_sweep(text, str(HPA), None, axes, options, engine=engine)


def test_a_sweep_on_a_scheduler_equals_the_run_in_this_process(scheduler: str) -> None:
    here = _sweep(SweepOptions(budget=24, jobs=1, chunk=5))
    there = _sweep(SweepOptions(budget=24, scheduler=scheduler, chunk=5))
    assert "cluster at" in there.where  # type: ignore[attr-defined]
    for attr in ("points", "status", "current_status"):
        assert np.array_equal(getattr(here, attr), getattr(there, attr)), attr
    assert np.array_equal(here.rho, there.rho, equal_nan=True)  # type: ignore[attr-defined]
    assert (there.status == 5).any() and (there.status == 1).any()  # type: ignore[attr-defined]


def test_check_on_a_scheduler_gives_the_local_report(scheduler: str) -> None:
    def check(*extra: str) -> dict[str, object]:
        out, err = io.StringIO(), io.StringIO()
        main(["check", str(HPA), str(RETRY_FIXED), "--no-cache", "--format", "json", "-j", "1",
              *extra], out, err)  # fmt: skip
        data = json.loads(out.getvalue())
        data.pop("timings", None)
        return data

    local = check()
    before = _transitions(scheduler)
    remote = check("--scheduler", scheduler)
    assert _transitions(scheduler) > before  # the pieces ran on the cluster
    verdicts = lambda d: [  # noqa: E731
        (s["name"], v["requirement"], v["status"])
        for f in d["files"]  # type: ignore[attr-defined]
        for s in f["systems"]
        for v in s["verdicts"]
    ]
    findings = lambda d: [  # noqa: E731
        (x["code"], x["message"])
        for f in d["files"]  # type: ignore[attr-defined]
        for s in f["systems"]
        for x in s["findings"]
    ]
    assert verdicts(remote) == verdicts(local) and verdicts(local)
    assert findings(remote) == findings(local) and findings(local)


def test_an_unreachable_scheduler_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 2)
    with pytest.raises(CoherenceError, match="cannot reach the Dask scheduler"):
        _sweep(SweepOptions(budget=4, scheduler=f"tcp://127.0.0.1:{free_port()}"))
