"""Independent jobs (seeds, tuning studies, OCR chunks) on every CPU core, with results that do
not depend on how many cores ran them.

Small heads gain nothing from a second torch thread (measured: an attention-fusion seed takes
the same time on one thread as on two), so one job per core is nearly twice as fast on two
cores. Every job runs single-threaded, in a worker process or inline alike: a run's numbers
are the same with 1 worker or 16 (torch's reductions depend on the thread count, not on
the process). NumPy's and SciPy's BLAS and OpenMP pools are held to one thread as well
(threadpoolctl): left at one per core, two jobs side by side oversubscribe the cores and
OpenBLAS's spinning threads slow the other job (a TF-IDF fit took 11 s in a stage, 0.24 s alone).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, TypeVar

import torch
from threadpoolctl import threadpool_limits

R = TypeVar("R")


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | str | None, jobs: int, device: str = "cpu") -> int:
    """``auto``: one worker per core on CPU, one on a GPU (the GPU is the shared resource)."""
    if jobs <= 1:
        return 1
    env = os.environ.get("MMSENT_WORKERS")
    if env:
        workers = env
    if workers in (None, "auto"):
        return 1 if str(device).startswith("cuda") else max(1, min(cpu_count(), jobs))
    count = int(workers)
    if count < 1:
        raise ValueError(f"workers must be >= 1 or 'auto', got {workers!r}")
    return min(count, jobs)


def share_bounds(items: int, workers: int | str | None = "auto") -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` shares of ``items``, one per worker (joined back in order)."""
    n = resolve_workers(workers, items)
    bounds = [items * i // n for i in range(n + 1)]
    return list(zip(bounds, bounds[1:]))


def _single_threaded(fn: Callable[..., R], args: tuple) -> R:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return fn(*args)
    finally:
        torch.set_num_threads(threads)


def run_jobs(fn: Callable[..., R], jobs: Iterable[tuple], workers: int = 1) -> list[R]:
    """``[fn(*args) for args in jobs]``, in order, each job single-threaded; in ``workers``
    fresh processes (spawned: forking a process that has started torch's threads can hang)
    when ``workers > 1``. ``fn`` and its arguments must pickle (a module-level function)."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        return [_single_threaded(fn, args) for args in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(_single_threaded, fn, args) for args in jobs]
        return [f.result() for f in futures]  # the first failed job's exception propagates
