"""How many CPU cores this process may use."""
from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on: its affinity mask when the OS has one (``taskset``, Slurm's
    CPU binding, a container's cpuset), else the machine's count.

    ``os.cpu_count()`` counts the whole machine, so a run pinned to 2 of 64 cores would start 64
    torch threads and 16 loader workers and oversubscribe its cores.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
