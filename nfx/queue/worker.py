"""The worker loop: claim a job, run the engine, store the result; repeat.

One job's trouble stays with that job: an engine error (out of memory, an unreadable image)
marks it failed and the loop goes on. SIGTERM/SIGINT stop the engine between iterations and
put the running job back in the queue. A heartbeat thread extends the job's lease and reports
the worker's memory (the evidence if it dies: nfx.queue.deaths); if this process dies, its
supervisor (`nfx app`, `nfx workers`) requeues the job at once, and otherwise any process that
looks at the queue does once the lease runs out. Each finished scale is kept with the job, so
a requeued job resumes at the next scale.

The database's trouble is waited out, never a job's failure: while it is unreachable (a
server restart, a long write lock) a running job keeps running and every call into the queue
is retried (`Patience`); when it refuses to store a result (a full disk, read-only) the job is
released with the reason and the worker pauses, then tries again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from PIL import Image

from nfx import host_memory
from nfx.errors import Canceled, DatabaseUnavailable, NFXError, StorageRefused
from nfx.feedforward.runs import feedforward_run
from nfx.images import color_profile, load_image, thumbnail_bytes
from nfx.regions import RegionInput
from nfx.run_record import InputRef, RunRecord, ScaleImage, run_png
from nfx.planning.work import WorkModel
from nfx.queue.patience import Patience
from nfx.queue.queue import Queue, open_queue
from nfx.queue.jobs import DEFAULT_LEASE_SECONDS, DEFAULT_POLL_SECONDS, Claim, Ownership
from nfx.status import JobStatus, WorkerState

if TYPE_CHECKING:
    from nfx.engine import Engine, Progress


@dataclass(frozen=True)
class WorkerOptions:
    device: str = "auto"
    name: str | None = None
    max_jobs: int | None = None  # stop after this many jobs (done, failed or canceled)
    once: bool = False  # stop when nothing is queued or running
    lease: float = DEFAULT_LEASE_SECONDS
    poll: float = DEFAULT_POLL_SECONDS
    preview_every: int = 10  # engine iterations between previews
    progress_interval: float = 0.5  # seconds between progress writes
    calibrate: bool = True  # measure the device's speed at start, once per host and device


LOG = logging.getLogger("nfx.worker")
LOST = "lost"  # how a job ends for a worker whose lease ran out: it went on elsewhere
RELEASED = "released"  # the database would not store the result: back in the queue
PAUSE_FIRST_SECONDS, PAUSE_MAX_SECONDS = 2.0, 60.0  # pauses while it refuses to store


def memory_reading() -> dict[str, int | None]:
    """This process's memory, for the job's heartbeat columns."""
    return {"rss_bytes": host_memory.rss_bytes(), "memory_limit_bytes":
            host_memory.memory_limit(), "available_bytes": host_memory.available()}


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


def plain_png(image: Image.Image) -> bytes:
    """A quick PNG: previews (the engine downscales them) and scale checkpoints."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
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
        patience = self.run_.patience
        while not self.stopped.wait(interval):
            try:
                self.run_.state = self.run_.queue.heartbeat(self.run_.claim,
                                                            self.run_.options.lease,
                                                            **memory_reading())
            except (DatabaseUnavailable, StorageRefused) as exc:  # next beat (the lease has
                patience.failed(exc)                                 # slack)
                continue
            except Exception as exc:  # never let the beat die: the lease would run out
                LOG.warning("heartbeat of job %s failed (%s); retrying every %.1f s",
                            self.run_.claim.job_id, error_message(exc), interval)
                continue
            patience.worked()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


KEEP_PIXELS = 4_000_000  # inputs larger than this are decoded per job, not kept


@dataclass(frozen=True)
class Picture:
    """An input decoded (and converted to sRGB), with the profile it was converted from."""

    image: Image.Image
    profile: str | None


class Pictures:
    """The worker's last few inputs, decoded: a batch of previews reuses its photos and
    paintings job after job, and reading and decoding them again cost as much as a
    feed-forward render (bench/bench_previews.py). Keyed by sha256, so never stale."""

    def __init__(self, queue: Queue, keep: int = 16) -> None:
        self.queue, self.keep = queue, keep
        self.decoded: dict[str, Picture] = {}

    def get(self, sha256: str, role: str) -> Picture:
        if sha256 in self.decoded:
            return self.decoded[sha256]
        data = self.queue.store.blob(sha256)
        picture = Picture(load_image(data, role), color_profile(data))
        if picture.image.width * picture.image.height <= KEEP_PIXELS:  # big ones: once
            if len(self.decoded) >= self.keep:
                self.decoded.pop(next(iter(self.decoded)))
            self.decoded[sha256] = picture
        return picture


class JobRun:
    """One claimed job through the engine and into the store."""

    def __init__(self, queue: Queue, engine: Engine, claim: Claim, options: WorkerOptions,
                 stop: threading.Event, pictures: Pictures | None = None,
                 patience: Patience | None = None) -> None:
        self.queue, self.engine, self.claim = queue, engine, claim
        self.pictures = pictures or Pictures(queue)
        self.patience = patience or Patience(print, stop)
        self.options, self.stop = options, stop
        self.state = Ownership.OWNED
        self.last_write = 0.0
        self.pending_preview: Image.Image | None = None
        self.first_progress: tuple[float, float] | None = None  # (time, fraction) this attempt
        self.refusal: str | None = None  # why the database would not store the result
        self.refs: list[InputRef] = []  # the inputs as the PNG's record names them
        self.regions: RegionInput | None = None

    def seconds_left(self, fraction: float, now: float) -> float | None:
        """This attempt's pace so far, applied to the work left (None until it has one)."""
        if self.first_progress is None:
            self.first_progress = (now, fraction)
            return None
        started, first = self.first_progress
        if fraction <= first:
            return None
        return (now - started) / (fraction - first) * (1.0 - fraction)

    def on_progress(self, progress: Progress) -> bool:
        """Record progress now and then; True (stop) when canceled, lost or shutting down."""
        if progress.preview is not None:
            self.pending_preview = progress.preview
        now = time.monotonic()
        seconds_left = self.seconds_left(progress.fraction, now)
        if now - self.last_write >= self.options.progress_interval:
            # Any: the job's columns to update, each of its own type
            values: dict[str, Any] = dict(
                progress=progress.fraction, iteration=progress.iteration,
                total_iterations=progress.total_iterations, seconds_left=seconds_left,
                losses=dict(progress.losses))
            if self.pending_preview is not None:
                values["preview_png"] = plain_png(self.pending_preview)
                self.pending_preview = None
            try:
                self.state = self.queue.heartbeat(self.claim, self.options.lease,
                                                  **values, **memory_reading())
            except (DatabaseUnavailable, StorageRefused) as exc:  # run on; the heartbeat
                self.patience.failed(exc)                            # thread keeps trying
            else:
                self.patience.worked()
            self.last_write = time.monotonic()
        return self.stop.is_set() or self.state is not Ownership.OWNED

    def on_scale_done(self, scale: ScaleImage) -> None:
        """Keep the finished scale with the job: after a crash it resumes from here (a
        checkpoint the database cannot take now is skipped: it only saves time)."""
        try:
            self.queue.save_checkpoint(self.claim, scale.scales_done, plain_png(scale.image),
                                       scale.history)
        except (DatabaseUnavailable, StorageRefused) as exc:
            LOG.warning("job %s: scale %d not kept (%s)", self.claim.job_id, scale.scales_done,
                        exc)

    def _regions(self, content: Image.Image, style_count: int) -> RegionInput | None:
        """The job's mask and assignments, checked against its photo (None: no regions)."""
        mask, regions = self.claim.mask, self.claim.regions
        if mask is None or regions is None:
            return None
        picture = self.patience(self.pictures.get, mask.sha256, "mask").image
        return RegionInput.checked(picture, mask.sha256, regions, content.size, style_count,
                                   mask.name)

    def _resume_point(self) -> ScaleImage | None:
        checkpoint = self.claim.checkpoint
        if checkpoint is None:
            return None
        image = load_image(self.patience(self.queue.store.blob, checkpoint.image_sha256),
                           "checkpoint")
        return ScaleImage(checkpoint.scales_done, image, checkpoint.history)

    def run(self) -> JobStatus | str:
        """How the job ended for this worker: done, failed, canceled, queued (this worker is
        stopping: back in the queue), RELEASED (the database would not store the result) or
        LOST."""
        rendered = self.render()
        return self.store(rendered) if isinstance(rendered, RunRecord) else rendered

    def render(self) -> RunRecord | JobStatus | str:
        """The job's run, or how the job ended without one (failed, canceled, ...)."""
        queue, patience = self.queue, self.patience
        try:
            inputs = [patience(self.pictures.get, ref.sha256, role) for ref, role in
                      [(self.claim.content, "content image")]
                      + [(ref, "style image") for ref in self.claim.styles]]
            content, styles = inputs[0].image, [picture.image for picture in inputs[1:]]
            # what the PNG's record says of each input: the colour profile converted
            self.refs = [replace(ref, profile=picture.profile) for ref, picture in
                         zip((self.claim.content, *self.claim.styles), inputs)]
            self.regions = self._regions(content, len(styles))
            resume = self._resume_point()
        except (DatabaseUnavailable, StorageRefused):
            raise
        except NFXError as exc:
            patience(queue.fail, self.claim, error_message(exc))
            return JobStatus.FAILED
        heartbeat = Heartbeat(self)
        heartbeat.start()
        try:
            if self.claim.settings.method == "feedforward":  # a second: no VGG, no progress
                return feedforward_run(content, styles, self.claim.settings)
            return self.engine.stylize(content, styles, self.claim.settings,
                                       on_progress=self.on_progress,
                                       preview_every=self.options.preview_every,
                                       resume=resume, on_scale_done=self.on_scale_done,
                                       regions=self.regions)
        except Canceled:
            return self._stopped()
        except Exception as exc:  # the engine's trouble is this job's, not the worker's
            patience(queue.fail, self.claim, error_message(exc))
            _free_device_memory()
            return JobStatus.FAILED
        finally:
            heartbeat.stop()

    def store(self, run: RunRecord) -> JobStatus | str:
        """The run's PNG and thumbnail into the gallery: DONE, LOST (the job went on
        elsewhere) or RELEASED (the database would not store it: the job goes back, with
        why; nothing was written)."""
        png = run_png(run, self.refs[0], self.refs[1:], self.regions, job_id=self.claim.job_id)
        try:
            result_id = self.patience(self.queue.finish, self.claim, run, png,
                                      thumbnail_bytes(run.image))
        except StorageRefused as exc:
            self.refusal = str(exc)
            try:
                self.patience(self.queue.release, self.claim, self.refusal)
            except StorageRefused:  # not even that: its lease runs out and requeues it
                pass
            return RELEASED
        return JobStatus.DONE if result_id is not None else LOST

    def _stopped(self) -> JobStatus | str:
        if self.state is Ownership.LOST:
            return LOST
        if self.state is Ownership.CANCEL:
            self.queue.canceled(self.claim)
            return JobStatus.CANCELED
        self.queue.release(self.claim)  # shutting down: back to the queue
        return JobStatus.QUEUED


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT ask for a clean stop; a second one stops at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def work_model(queue: Queue, engine: Engine, name: str, log: Callable[[str], None]
               ) -> tuple[WorkModel | None, bool]:
    """(this device's speed for time estimates, whether that is settled): measured once per
    host and device (a few seconds of real runs), then reused by the workers that start
    after. Measured when the worker first finds nothing to do, not at start: a worker
    restarted into a busy queue works at once, and a measurement cut short by a kill is
    not redone on every restart. Not settled while another worker here is measuring."""
    known, measure = queue.begin_calibration(name, socket.gethostname(), str(engine.device))
    if not measure:
        return known, known is not None
    log("nfx worker: measuring this device's speed for time estimates (a few seconds)")
    try:
        return engine.calibrate(), True
    except Exception as exc:  # estimates are a nicety: never a reason not to work
        log(f"nfx worker: could not measure this device's speed: {error_message(exc)}")
        return None, True


class StoreBehind:
    """Stores a finished feed-forward job (its PNG, thumbnail and transaction) on a second
    thread while the next job renders: in a batch of previews that overhead is a third of
    each job (bench/bench_previews.py). One job in flight at a time; an optimisation is
    stored in line (its store is nothing beside its run, and its image may be large)."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nfx-store")
        self.pending: tuple[Claim, JobRun, Future[JobStatus | str]] | None = None

    def submit(self, claim: Claim, job: JobRun, run: RunRecord) -> None:
        assert self.pending is None, "take() the job in flight first"
        self.pending = (claim, job, self.executor.submit(job.store, run))

    def take(self) -> tuple[Claim, JobRun, JobStatus | str] | None:
        """The job in flight, once stored (its StorageRefused, DatabaseUnavailable raise
        here), or None."""
        if self.pending is None:
            return None
        claim, job, future = self.pending
        self.pending = None
        return claim, job, future.result()

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def run_worker(url: str | None = None, options: WorkerOptions = WorkerOptions(),
               stop: threading.Event | None = None, log: Callable[[str], None] = print
               ) -> dict[str, int]:
    """Work the queue until stopped, out of jobs (`once`) or at `max_jobs`; returns how many
    jobs ended each way."""
    return WorkerLoop(url, options, stop or threading.Event(), log).run()


class WorkerLoop:
    """One worker process's life: register, load the engine, then claim and run jobs, measure
    the device when first idle, pause while the database will not store."""

    def __init__(self, url: str | None, options: WorkerOptions, stop: threading.Event,
                 log: Callable[[str], None]) -> None:
        self.options, self.stop, self.log = options, stop, log
        self.queue = open_queue(url)
        self.patience = Patience(log, stop)
        self.name = options.name or default_name()
        self.outcomes: dict[str, int] = {}
        self.pictures = Pictures(self.queue)
        self.behind = StoreBehind()
        self.finished, self.calibrate = 0, options.calibrate
        self.pause = PAUSE_FIRST_SECONDS

    def run(self) -> dict[str, int]:
        queue, patience, name, options = self.queue, self.patience, self.name, self.options
        # Registered before the network loads, so the Queue page says "starting", not that
        # no worker runs, for the seconds that loading and calibrating take.
        patience(queue.register_worker, name, socket.gethostname(), os.getpid(),
                 options.device, options.lease, state=WorkerState.STARTING)
        from nfx.engine import Engine  # torch: seconds to import

        self.engine = Engine(options.device)
        patience(queue.worker_ready, name, str(self.engine.device), None)
        self.log(f"nfx worker {name}: {queue.store!r} on {self.engine.device}")
        try:
            while not self.stop.is_set() and not self._at_max_jobs():
                try:
                    if not self._step():
                        break
                except StorageRefused as exc:  # a claim or a job's end could not be written
                    self._paused(str(exc))
        except DatabaseUnavailable:  # asked to stop while the database was away
            pass
        finally:
            with contextlib.suppress(NFXError):
                self._settle()
            self.behind.close()
            with contextlib.suppress(NFXError):
                queue.worker_seen(name, stopped=True)
            queue.store.close()
        return self.outcomes

    def _at_max_jobs(self) -> bool:
        in_flight = self.behind.pending is not None
        return self.options.max_jobs is not None and (self.finished + in_flight
                                                      >= self.options.max_jobs)

    def _step(self) -> bool:
        """Claim and run one job (or idle a moment); False when it is time to stop."""
        queue, patience, name = self.queue, self.patience, self.name
        claim = patience(queue.claim_next, name, self.options.lease, **memory_reading())
        if claim is None:
            self._settle()  # the job in flight first: the queue must see it done
            if self.calibrate:  # idle: the moment to measure the device, once
                work, settled = patience(work_model, queue, self.engine, name, self.log)
                if settled:
                    self.calibrate = False
                    patience(queue.worker_ready, name, str(self.engine.device), work)
                    return True
            if self.options.once and not patience(queue.work_remaining):
                return False
            patience(queue.worker_seen, name)
            self.stop.wait(self.options.poll)
            return True
        resumed = (f" (resuming after scale {claim.checkpoint.scales_done})"
                   if claim.checkpoint else "")
        self.log(f"nfx worker {name}: job {claim.job_id} attempt {claim.attempt}{resumed}")
        job = JobRun(queue, self.engine, claim, self.options, self.stop, self.pictures,
                     patience)
        rendered = job.render()
        self._settle()
        if not isinstance(rendered, RunRecord):
            self._ended(claim, job, rendered)
        elif claim.settings.method == "feedforward":
            self.behind.submit(claim, job, rendered)
        else:
            self._ended(claim, job, job.store(rendered))
        return True

    def _settle(self) -> None:
        """Wait for the job being stored behind, and count how it ended."""
        stored = self.behind.take()
        if stored is not None:
            self._ended(*stored)

    def _ended(self, claim: Claim, job: JobRun, outcome: JobStatus | str) -> None:
        self.outcomes[str(outcome)] = self.outcomes.get(str(outcome), 0) + 1
        self.finished += outcome in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELED)
        self.log(f"nfx worker {self.name}: job {claim.job_id} {outcome}")
        if outcome == RELEASED:
            self._paused(f"the database would not store job {claim.job_id}'s result "
                         f"({job.refusal})")
        else:
            self.pause = PAUSE_FIRST_SECONDS

    def _paused(self, reason: str) -> None:
        """The database will not store (a full disk): say so, wait, then try again."""
        self.log(f"nfx worker {self.name}: {reason}; paused {self.pause:g} s")
        with contextlib.suppress(NFXError):  # recorded where the database still can
            self.queue.worker_seen(self.name, state=WorkerState.PAUSED, problem=reason[:500])
        self.stop.wait(self.pause)
        self.pause = min(self.pause * 2, PAUSE_MAX_SECONDS)
