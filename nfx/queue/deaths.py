"""Tell a poison job from bad luck: the verdict on one worker death.

A worker that dies while it holds a job may have been killed by that job (it ran out of
memory, a native library crashed on its input) or by something else (`kill -9`, an OOM kill
caused by another process, a drained node). Only the first may count against the job: a job
that kills every worker it meets must stop, but an outside kill never fails a job.

The evidence: how the process ended (its signal), whether the kernel's OOM killer killed
anything in the worker's cgroup during its life (`oom_kill` in memory.events, where the
kernel offers it), and the job's last memory reading (its worker's RSS against its limit).
A memory death comes with a remedy: the job runs again with a smaller memory budget, so the
memory plan tiles it (or takes Adam) and the usual poison job, one too big for the machine,
heals itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nfx.planning.budget import GIB, gib
from nfx.settings import Settings

NEAR_LIMIT = 0.85  # an RSS at this fraction of the limit counts as "ran out of memory"
SHRINK = 0.7  # a memory death's next attempt plans for this fraction of the memory it had
NATIVE_CRASHES = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT")


@dataclass(frozen=True)
class Evidence:
    """What is known of one death; None where nothing could be read."""

    cause: str  # "its worker was killed by SIGKILL", "its worker stopped responding"
    signal: str | None = None  # "SIGKILL", from the supervisor that saw the exit
    oom_kills: int | None = None  # OOM kills in the worker's cgroup while it lived
    rss: int | None = None  # the worker's resident memory at the job's last heartbeat
    limit: int | None = None  # what it could grow to: its cgroup's limit or the RAM
    available: int | None = None  # memory left on the machine at that heartbeat
    iteration: int = 0
    scale: int = 0
    scales_kept: int = 0  # finished scales kept with the job: the next attempt resumes there

    def memory_text(self) -> str:
        if self.rss is None:
            return "no memory reading"
        if self.limit is None:
            return f"RSS {gib(self.rss)}"
        return f"RSS {gib(self.rss)} of a {gib(self.limit)} limit"


@dataclass(frozen=True)
class Verdict:
    blames_job: bool  # the evidence points at the job: the death counts against it
    out_of_memory: bool  # ... because it ran out of memory (retry with a smaller budget)
    reason: str  # one line, for the job's record


def judge(evidence: Evidence) -> Verdict:
    memory = evidence.memory_text()
    if evidence.oom_kills:
        return Verdict(True, True, f"the kernel's OOM killer killed it ({memory})")
    if (evidence.rss is not None and evidence.limit
            and evidence.rss >= NEAR_LIMIT * evidence.limit):
        return Verdict(True, True, f"it died near its memory limit ({memory})")
    if evidence.signal in NATIVE_CRASHES:
        return Verdict(True, False, f"it crashed with {evidence.signal} ({memory})")
    how = f"{evidence.signal}, " if evidence.signal else ""
    return Verdict(False, False, f"killed from outside: {how}no sign that the job ran out of "
                                 f"memory ({memory})")


def smaller_budget(settings: Settings, evidence: Evidence) -> float:
    """The memory budget in GiB for the attempt after a memory death: SHRINK of the lesser
    of what it was planned for and what its worker could hold (a budget over the worker's
    limit is the usual poison job: planned for more memory than the machine has)."""
    known = [value for value in (settings.memory_budget * GIB if settings.memory_budget
                                 else None, evidence.limit) if value]
    ceiling = min(known) if known else 4 * GIB
    return max(round(SHRINK * ceiling / GIB, 2), 0.01)


def record(evidence: Evidence, verdict: Verdict, at: str, worker: str | None,
           changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of a job's `deaths` list: the evidence and what was decided."""
    return {**asdict(evidence), "at": at, "worker": worker, "blames_job": verdict.blames_job,
            "out_of_memory": verdict.out_of_memory, "reason": verdict.reason,
            "changes": changes or {}}
