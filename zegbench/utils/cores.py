"""How many CPU cores, and how much memory, this process may use."""
from __future__ import annotations

import os
from pathlib import Path


def available_cores() -> int:
    """The cores this process may run on: its affinity mask when the OS has one (``taskset``, Slurm's
    CPU binding, a container's cpuset), else the machine's count.

    ``os.cpu_count()`` counts the whole machine, so a run pinned to 2 of 64 cores would start 64
    torch threads and 16 loader workers and oversubscribe its cores.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes the kernel can give new processes without swapping (``MemAvailable`` in ``/proc/meminfo``:
    free memory plus the caches it can drop), or None where there is no such file (not Linux).

    The machine's figure: a container's memory limit (cgroup) is not read.
    """
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts KiB
    except (OSError, ValueError, IndexError):
        pass
    return None
