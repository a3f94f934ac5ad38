"""Live training jobs: each runs `skiplab.train.train` in a worker thread and can be streamed and cancelled.

A job has an id, a status (running → completed | stopped | diverged |
failed), and the per-epoch metrics the trainer hands to `on_epoch`. Readers
(the server-sent-event stream) poll a job's epochs by index, so a reader that
connects late still receives every epoch. Cancelling sets an event the
trainer polls before every batch (`should_stop`), so a job stops within one
training step. A job nobody watches stops too: when its last event stream
has been gone for `settings.viewer_grace_s` (a closed tab must not hold a
training slot). The manager bounds how many jobs run at once and how many
finished ones it remembers; `jobs` lists them all (a client whose reply to
"start" was lost finds its job there), and `remove` cancels a job and
forgets it at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skiplab.web.settings import WebSettings

# A job's work: given on_epoch(metrics_dict), should_stop() and on_progress(progress_dict) (where it is within
# an epoch, e.g. {"epoch": 1, "step": 3, "steps": 12}), train and return the final status and message.
Work = Callable[[Callable[[dict], None], Callable[[], bool], Callable[[dict], None]], tuple[str, str]]

ACTIVE = ("queued", "running")


class TooManyJobs(RuntimeError):
    """Every live-training slot is taken."""


class UnknownJob(KeyError):
    pass


@dataclass
class Job:
    id: str
    spec: dict  # what was asked for (the request), echoed back to readers
    status: str = "queued"  # queued | running | completed | stopped | diverged | failed
    message: str = ""
    epochs: list[dict] = field(default_factory=list)
    progress: dict | None = None  # the latest within-epoch progress the work reported
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    viewers: int = 0  # event streams open on this job now
    unwatched_since: float = field(default_factory=time.monotonic)  # start, or when the last viewer left

    @property
    def done(self) -> bool:
        return self.status not in ACTIVE

    def watched(self) -> _Viewer:
        """`with job.watched():` around an event stream: the job counts it as a viewer while it is open."""
        return _Viewer(self)

    def unwatched_for(self) -> float:
        """Seconds since the job last had a viewer (since its start if it never had one); 0 while watched."""
        with self.lock:
            return 0.0 if self.viewers else time.monotonic() - self.unwatched_since

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "id": self.id,
                "spec": self.spec,
                "status": self.status,
                "message": self.message,
                "epochs": list(self.epochs),
                "progress": self.progress,
                "cancel_requested": self.cancel.is_set(),
            }


class _Viewer:
    def __init__(self, job: Job) -> None:
        self.job = job

    def __enter__(self) -> Job:
        with self.job.lock:
            self.job.viewers += 1
        return self.job

    def __exit__(self, *exc: object) -> None:
        with self.job.lock:
            self.job.viewers -= 1
            if not self.job.viewers:
                self.job.unwatched_since = time.monotonic()


class JobManager:
    """Starts, tracks and cancels live training jobs, one thread each, at most `settings.max_jobs` at once."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def running(self) -> int:
        """Jobs still training, counting removed ones whose thread has not yet noticed its cancellation."""
        removed = sum(t.is_alive() for job_id, t in self._threads.items() if job_id not in self._jobs)
        return sum(not j.done for j in self._jobs.values()) + removed

    def start(self, spec: dict, work: Work) -> Job:
        with self._lock:
            if self.running() >= self.settings.max_jobs:
                raise TooManyJobs(
                    f"{self.settings.max_jobs} live training job(s) already running; wait for one or cancel it"
                )
            job = Job(id=uuid.uuid4().hex[:12], spec=spec)
            self._jobs[job.id] = job
            self._forget_old()
            thread = threading.Thread(target=self._run, args=(job, work), name=f"job-{job.id}", daemon=True)
            self._threads[job.id] = thread
        thread.start()
        return job

    def _run(self, job: Job, work: Work) -> None:
        def on_epoch(metrics: dict) -> None:
            with job.lock:
                job.epochs.append(metrics)

        def on_progress(progress: dict) -> None:
            with job.lock:
                job.progress = progress

        grace = self.settings.viewer_grace_s
        abandoned = threading.Event()

        def should_stop() -> bool:
            if not job.cancel.is_set() and job.unwatched_for() > grace:
                abandoned.set()
                job.cancel.set()
            return job.cancel.is_set()

        with job.lock:
            job.status = "running"
        try:
            status, message = work(on_epoch, should_stop, on_progress)
        except Exception as e:  # a job's failure is its result: readers see it, the server lives on
            status, message = "failed", f"{type(e).__name__}: {e}"
        if abandoned.is_set():
            message = f"stopped: no one had watched it for {grace:g} s"
        with job.lock:
            job.status, job.message, job.finished = status, message, time.time()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done]
        for j in finished[: max(0, len(finished) - self.settings.job_keep)]:
            del self._jobs[j.id]
            self._threads.pop(j.id, None)
        for job_id, thread in list(self._threads.items()):  # removed jobs whose thread has ended
            if job_id not in self._jobs and not thread.is_alive():
                del self._threads[job_id]

    def jobs(self) -> list[Job]:
        """Every job remembered, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise UnknownJob(job_id) from None

    def cancel(self, job_id: str, wait_s: float = 0.0) -> Job:
        """Ask the job to stop; with `wait_s`, wait up to that long for its thread to end."""
        job = self.get(job_id)
        job.cancel.set()
        thread = self._threads.get(job_id)
        if wait_s and thread is not None:
            thread.join(wait_s)
        return job

    def remove(self, job_id: str, wait_s: float = 0.0) -> Job:
        """Cancel the job if it runs and forget it: `get` raises UnknownJob from now on.

        Its thread, until it notices the cancellation, still counts against `max_jobs` and is waited for
        by `shutdown`; with `wait_s`, wait up to that long for it to end. Returns the job as it ended.
        """
        with self._lock:
            job = self.get(job_id)
            job.cancel.set()
            del self._jobs[job_id]
        thread = self._threads.get(job_id)
        if wait_s and thread is not None:
            thread.join(wait_s)
        return job

    def shutdown(self, wait_s: float | None = None) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()
        deadline = time.monotonic() + (self.settings.cancel_grace_s if wait_s is None else wait_s)
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
