"""Keep N worker processes alive: restart one that dies, with backoff, and say why it died.

A worker can die in ways it cannot report itself: the OOM killer, a segfault in a native
library, `kill -9`. Its supervisor sees the exit at once, so it records the cause on the
workers table, puts the job that worker held back in the queue without waiting for its lease
(or fails it, once the job has killed a worker on every attempt: `nfx.queue.jobs`), and starts
a new worker. Restarts back off (1 s, 2 s, 4 s … 60 s) so that a worker that cannot start at
all (a bad database URL, say) does not spin; a worker that ran a while resets the backoff.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from nfx.queue.queue import Queue

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0  # a worker that lived this long resets the backoff
STOP_GRACE_SECONDS = 10.0


def exit_cause(returncode: int) -> str:
    """'was killed by SIGKILL', 'exited with code 1', ..."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Slot:
    """One worker position: the process now in it, and when to restart it."""

    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float = 0.0
    restarts: int = 0


class Supervisor:
    """Starts `count` workers with `start()` and keeps them running while `poll()` is called."""

    def __init__(self, count: int, start: Callable[[], subprocess.Popen[bytes]],
                 queue: Queue, log: Callable[[str], None] | None = None) -> None:
        self.slots = [Slot() for _ in range(max(count, 0))]
        self._start, self.queue = start, queue
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.host = socket.gethostname()

    def start(self) -> None:
        for slot in self.slots:
            self._launch(slot)

    def _launch(self, slot: Slot) -> subprocess.Popen[bytes]:
        """Start a worker in `slot`; returns its process (now the slot's)."""
        slot.process, slot.started = self._start(), time.monotonic()
        return slot.process

    def poll(self) -> None:
        """Notice dead workers, and restart those whose backoff has passed."""
        now = time.monotonic()
        for index, slot in enumerate(self.slots):
            process = slot.process
            if process is not None and process.poll() is not None:
                self._died(index, slot, process, now)
            if slot.process is None and now >= slot.restart_at:
                slot.restarts += 1
                started = self._launch(slot)
                self.log(f"nfx: worker {index + 1} restarted (pid {started.pid})")

    def _died(self, index: int, slot: Slot, process: subprocess.Popen[bytes], now: float
              ) -> None:
        cause = exit_cause(process.returncode)
        if now - slot.started >= HEALTHY_AFTER_SECONDS:
            slot.backoff = FIRST_BACKOFF_SECONDS
        slot.process, slot.restart_at = None, now + slot.backoff
        try:
            requeued = self.queue.worker_exited(self.host, process.pid, cause)
        except Exception as exc:  # the database is away: the leases will requeue the jobs
            requeued, cause = [], f"{cause} (not recorded: {' '.join(str(exc).split())[:200]})"
        jobs = f"; job {', '.join(map(str, requeued))} back in the queue" if requeued else ""
        self.log(f"nfx: worker {index + 1} (pid {process.pid}) {cause}{jobs}; "
                 f"restarting in {slot.backoff:g} s")
        slot.backoff = min(slot.backoff * 2, MAX_BACKOFF_SECONDS)

    def stop(self) -> None:
        """SIGTERM (workers finish or requeue their job), then SIGKILL what is left."""
        running = [s.process for s in self.slots if s.process and s.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
