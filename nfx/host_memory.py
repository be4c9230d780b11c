"""What this machine, and the control group a process runs in, say about memory.

Read from /proc and the cgroup files (v2 `memory.max`, `memory.events`; v1
`memory.limit_in_bytes`, `memory.oom_control`); every function answers None where the kernel
offers nothing (macOS, a container without the files), so callers decide without them.

Two users: the memory plan (a run's automatic budget must respect a container's limit, not
only the machine's free RAM) and the queue's evidence when a worker dies (was it killed by
the kernel's OOM killer, and was its job near the limit).
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 60  # v1 writes a huge number where v2 writes "max"


def _meminfo() -> dict[str, int] | None:
    try:
        with open("/proc/meminfo") as meminfo:
            return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in meminfo}
    except (OSError, ValueError, IndexError):
        return None


def mem_available() -> int | None:
    """Bytes the kernel could give without swapping (MemAvailable)."""
    info = _meminfo()
    return None if info is None else info.get("MemAvailable")


def mem_total() -> int | None:
    info = _meminfo()
    return None if info is None else info.get("MemTotal")


def rss_bytes(pid: int | str = "self") -> int | None:
    """A process's resident memory."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def memory_cgroup(pid: int | str = "self") -> Path | None:
    """The folder of the memory cgroup a process is in (v2 unified, or v1's memory
    hierarchy), if it can be read."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if "memory" in controllers.split(","):
            folder = CGROUP_ROOT / "memory" / path.lstrip("/")
            if folder.is_dir():
                return folder
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":
            for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                folder = root / path.lstrip("/")
                if (folder / "memory.max").is_file():
                    return folder
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_limit(folder: Path | None) -> int | None:
    """The cgroup's memory limit in bytes; None when it has none (or none can be read)."""
    if folder is None:
        return None
    for name in ("memory.max", "memory.limit_in_bytes"):
        text = _read(folder / name)
        if text is None:
            continue
        text = text.strip()
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            return None
        return None if value >= NO_LIMIT else value
    return None


def cgroup_usage(folder: Path | None) -> int | None:
    if folder is None:
        return None
    for name in ("memory.current", "memory.usage_in_bytes"):
        text = _read(folder / name)
        if text is not None:
            try:
                return int(text.strip())
            except ValueError:
                return None
    return None


def oom_kills(folder: Path | None) -> int | None:
    """How many processes the kernel's OOM killer has killed in this cgroup so far
    (`oom_kill` of memory.events, or of v1's memory.oom_control)."""
    if folder is None:
        return None
    for name in ("memory.events", "memory.oom_control"):
        text = _read(folder / name)
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                try:
                    return int(value)
                except ValueError:
                    return None
    return None


def memory_limit(pid: int | str = "self") -> int | None:
    """What a process can grow to before something kills it: its cgroup's limit or the
    machine's RAM, whichever is smaller."""
    limits = [v for v in (cgroup_limit(memory_cgroup(pid)), mem_total()) if v is not None]
    return min(limits) if limits else None


def available(pid: int | str = "self") -> int | None:
    """Bytes a process could still take: the machine's MemAvailable, or what is left under
    its cgroup's limit where that is less."""
    folder = memory_cgroup(pid)
    limit, usage = cgroup_limit(folder), cgroup_usage(folder)
    free = [v for v in (mem_available(),
                        None if limit is None or usage is None else max(limit - usage, 0))
            if v is not None]
    return min(free) if free else None
