"""Background training jobs of the REST API: one at a time, the served model swapped only when a
job succeeds. ``/train``, ``/train/pairs`` and ``/train_model`` all start theirs here."""

from __future__ import annotations

import threading
import traceback
import uuid
from typing import Any, Callable

from fastapi import HTTPException


class Jobs:
    """One job at a time so a job never competes with another for the CPU."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def running(self) -> bool:
        return any(j["status"] in ("queued", "running") for j in self.jobs.values())

    def submit(self, label: str, work: Callable[[str], tuple[Any, dict[str, Any]]],
               swap: Callable[[Any], None], check: Callable[[], None] | None = None) -> str:
        """Queue ``work(job_id)`` (returns the new pipeline and what the job's status reports) on a thread;
        ``swap`` installs the pipeline after success only. ``check`` runs under the lock first (a bad
        request raises its HTTPException there and no job is made); 409 while another job runs."""
        with self.lock:
            if self.running():
                raise HTTPException(409, "a training job is already running")
            if check is not None:
                check()
            job_id = uuid.uuid4().hex[:12]
            self.jobs[job_id] = {"id": job_id, "model": label, "status": "queued"}

        def run() -> None:
            job = self.jobs[job_id]
            job["status"] = "running"
            try:
                pipe, report = work(job_id)
                swap(pipe)  # only after a complete, successful run
                job.update(status="succeeded", **report)
            except Exception as exc:  # a failed job leaves the served model as it was
                job.update(status="failed", error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc(limit=3))

        threading.Thread(target=run, daemon=True, name=f"train-{job_id}").start()
        return job_id
