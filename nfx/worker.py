"""The worker loop: claim a job, run the engine, store the result; repeat.

One job's trouble stays with that job: an engine error (out of memory, an unreadable image)
marks it failed and the loop goes on. SIGTERM/SIGINT stop the engine between iterations and
put the running job back in the queue. A heartbeat thread extends the job's lease; if this
process dies, another worker requeues the job once the lease runs out.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

from PIL import Image

from nfx import queue
from nfx.engine import Engine, Progress
from nfx.errors import Cancelled, NFXError
from nfx.images import load_image, png_bytes, thumbnail_bytes
from nfx.queue import Claim, JobState
from nfx.store import Store, open_store

PREVIEW_EDGE = 512  # previews are for watching, not keeping


@dataclass(frozen=True)
class WorkerOptions:
    device: str = "auto"
    name: str | None = None
    max_jobs: int | None = None  # stop after this many jobs (done, failed or canceled)
    once: bool = False  # stop when nothing is queued or running
    lease: float = queue.DEFAULT_LEASE_SECONDS
    poll: float = queue.DEFAULT_POLL_SECONDS
    preview_every: int = 10  # engine iterations between previews
    progress_interval: float = 0.5  # seconds between progress writes


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def error_message(exc: BaseException) -> str:
    """One line for the job's error column."""
    if isinstance(exc, NFXError):
        return str(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return f"out of memory: {text}"[:500]
    return f"{type(exc).__name__}: {text}"[:500]


def preview_png(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Heartbeat(threading.Thread):
    """Extends the lease every lease/4 seconds and notices cancel requests while the engine
    is busy inside one long iteration."""

    def __init__(self, run: JobRun) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run.claim.job_id}")
        self.run_ = run
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(self.run_.options.lease / 4, 0.05)
        while not self.stopped.wait(interval):
            try:
                self.run_.state = queue.heartbeat(self.run_.store, self.run_.claim,
                                                  self.run_.options.lease)
            except Exception:  # a busy database: try again next beat; the lease has slack
                continue

    def stop(self) -> None:
        self.stopped.set()
        self.join()


class JobRun:
    """One claimed job through the engine and into the store."""

    def __init__(self, store: Store, engine: Engine, claim: Claim, options: WorkerOptions,
                 stop: threading.Event) -> None:
        self.store, self.engine, self.claim = store, engine, claim
        self.options, self.stop = options, stop
        self.state = JobState.OWNED
        self.last_write = 0.0
        self.pending_preview: Image.Image | None = None

    def on_progress(self, progress: Progress) -> bool:
        """Record progress now and then; True (stop) when canceled, lost or shutting down."""
        if progress.preview is not None:
            self.pending_preview = progress.preview
        now = time.monotonic()
        if now - self.last_write >= self.options.progress_interval:
            values = dict(progress=progress.iteration / max(progress.total_iterations, 1),
                          iteration=progress.iteration,
                          total_iterations=progress.total_iterations,
                          losses=dict(progress.losses))
            if self.pending_preview is not None:
                values["preview_png"] = preview_png(self.pending_preview)
                self.pending_preview = None
            self.state = queue.heartbeat(self.store, self.claim, self.options.lease, **values)
            self.last_write = time.monotonic()
        return self.stop.is_set() or self.state is not JobState.OWNED

    def run(self) -> str:
        """Returns the job's outcome: done, failed, canceled, released or lost."""
        try:
            content = load_image(self.store.blob(self.claim.content_sha256), "content image")
            styles = [load_image(self.store.blob(sha), "style image")
                      for sha in self.claim.style_sha256s]
        except NFXError as exc:
            queue.fail(self.store, self.claim, error_message(exc))
            return "failed"
        heartbeat = Heartbeat(self)
        heartbeat.start()
        try:
            result = self.engine.stylize(content, styles, self.claim.settings,
                                         on_progress=self.on_progress,
                                         preview_every=self.options.preview_every)
        except Cancelled:
            return self._stopped()
        except Exception as exc:  # the engine's trouble is this job's, not the worker's
            queue.fail(self.store, self.claim, error_message(exc))
            _free_device_memory()
            return "failed"
        finally:
            heartbeat.stop()
        done = queue.Finished(
            png=png_bytes(result.image, result.settings,
                          {"losses": result.losses, "seconds": result.seconds,
                           "device": result.device, "job_id": self.claim.job_id}),
            thumbnail=thumbnail_bytes(result.image), width=result.image.width,
            height=result.image.height, settings=result.settings, losses=result.losses,
            history=result.history, seconds=result.seconds, device=result.device,
            precision=result.precision)
        return "done" if queue.finish(self.store, self.claim, done) is not None else "lost"

    def _stopped(self) -> str:
        if self.state is JobState.LOST:
            return "lost"
        if self.state is JobState.CANCEL:
            queue.cancelled(self.store, self.claim)
            return "canceled"
        queue.release(self.store, self.claim)  # shutting down: back to the queue
        return "released"


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT ask for a clean stop; a second one stops at once."""

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def run_worker(url: str | None = None, options: WorkerOptions = WorkerOptions(),
               stop: threading.Event | None = None, log=print) -> dict[str, int]:
    """Work the queue until stopped, out of jobs (`once`) or at `max_jobs`; returns how many
    jobs ended each way."""
    stop = stop or threading.Event()
    store = open_store(url)
    engine = Engine(options.device)
    name = options.name or default_name()
    queue.register_worker(store, name, socket.gethostname(), os.getpid(), str(engine.device),
                          options.lease)
    log(f"nfx worker {name}: {store!r} on {engine.device}")
    outcomes: dict[str, int] = {}
    finished = 0
    try:
        while not stop.is_set() and (options.max_jobs is None or finished < options.max_jobs):
            claim = queue.claim_next(store, name, options.lease)
            if claim is None:
                if options.once and not queue.work_remaining(store):
                    break
                queue.worker_seen(store, name)
                stop.wait(options.poll)
                continue
            outcome = JobRun(store, engine, claim, options, stop).run()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            finished += outcome in ("done", "failed", "canceled")
            log(f"nfx worker {name}: job {claim.job_id} {outcome}")
    finally:
        queue.worker_seen(store, name, stopped=True)
        store.close()
    return outcomes
