"""Keep N worker processes alive: restart one that dies, and say why it died.

A worker can die in ways it cannot report itself: the OOM killer, a segfault in a native
library, `kill -9`. Its supervisor sees the exit at once, so it records the cause on the
workers table with the evidence it has (the signal; whether the kernel's OOM killer killed
anything in the worker's cgroup since the last death it saw), puts the job that worker held
back in the queue without waiting for its lease (judged on that evidence:
`nfx.queue.deaths`), and starts a new worker.

A worker that had got going (loaded its engine, or claimed a job) is restarted at once,
however many died before it: killed while working is bad luck, not a loop. Only a crash loop
backs off (1 s, 2 s, 4 s … 60 s): a worker that dies before it got going, soon after it
started (a broken install, say), so that it does not spin.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nfx import host_memory
from nfx.queue.queue import Queue
from nfx.queue.workers import Exit

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0  # a worker that lived this long was no crash loop
STOP_GRACE_SECONDS = 10.0


def exit_signal(returncode: int) -> str | None:
    """'SIGKILL' for a process killed by it; None for a plain exit."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


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
    cgroup: Path | None = None  # the worker's memory cgroup, where its OOM kills are counted


class Supervisor:
    """Starts `count` workers with `start()` and keeps them running while `poll()` is called."""

    def __init__(self, count: int, start: Callable[[], subprocess.Popen[bytes]],
                 queue: Queue, log: Callable[[str], None] | None = None) -> None:
        self.slots = [Slot() for _ in range(max(count, 0))]
        self._start, self.queue = start, queue
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.host = socket.gethostname()
        self.oom_kills: dict[Path, int] = {}  # each cgroup's OOM kill count, as last seen

    def start(self) -> None:
        for slot in self.slots:
            self._launch(slot)

    def _launch(self, slot: Slot) -> subprocess.Popen[bytes]:
        """Start a worker in `slot`; returns its process (now the slot's)."""
        slot.process, slot.started = self._start(), time.monotonic()
        slot.cgroup = host_memory.memory_cgroup(slot.process.pid)
        if slot.cgroup is not None and slot.cgroup not in self.oom_kills:
            self.oom_kills[slot.cgroup] = host_memory.oom_kills(slot.cgroup) or 0
        return slot.process

    def _new_oom_kills(self, cgroup: Path | None) -> int | None:
        """OOM kills in `cgroup` since the last death seen there (each is blamed once)."""
        count = host_memory.oom_kills(cgroup)
        if cgroup is None or count is None:
            return None
        new, self.oom_kills[cgroup] = count - self.oom_kills.get(cgroup, 0), count
        return max(new, 0)

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
        cause, signal_name = exit_cause(process.returncode), exit_signal(process.returncode)
        oom_kills = self._new_oom_kills(slot.cgroup) if signal_name == "SIGKILL" else None
        try:
            exit = self.queue.worker_exited(self.host, process.pid, cause, signal_name,
                                            oom_kills)
        except Exception as exc:  # the database is away: the leases will requeue the jobs
            exit = Exit([], False)
            cause = f"{cause} (not recorded: {' '.join(str(exc).split())[:200]})"
        if exit.worked or now - slot.started >= HEALTHY_AFTER_SECONDS:
            slot.backoff, wait = FIRST_BACKOFF_SECONDS, 0.0  # bad luck: at once
        else:  # a crash loop: back off
            wait, slot.backoff = slot.backoff, min(slot.backoff * 2, MAX_BACKOFF_SECONDS)
        slot.process, slot.restart_at = None, now + wait
        if oom_kills:
            cause += " (the kernel's OOM killer)"
        jobs = (f"; job {', '.join(map(str, exit.requeued))} back in the queue"
                if exit.requeued else "")
        when = f"restarting in {wait:g} s (it died while starting)" if wait else "restarting"
        self.log(f"nfx: worker {index + 1} (pid {process.pid}) {cause}{jobs}; {when}")

    def stop(self) -> None:
        """SIGTERM (workers finish or requeue their job), then SIGKILL what is left, and
        record those (a worker that stopped cleanly has recorded itself)."""
        running = [s.process for s in self.slots if s.process and s.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            try:
                self.queue.worker_exited(self.host, process.pid,
                                         exit_cause(process.returncode) + " while stopping",
                                         exit_signal(process.returncode))
            except Exception:  # the database is away: the leases will tell
                pass
