"""Where a suite is: runs done of the total, time elapsed, and an estimate of the time left.

The suite runner logs one line per finished run (each run's own progress bar is
its worker's), ending in the suite's position, the same in a terminal and in a
log file::

    [3/6] zegclip [world_smoke] seed 0: mIoU(S) 31.2 ... (41 s); suite: 2 min 3 s in, about 2 min 3 s left
"""
from __future__ import annotations

import math
import threading
import time


def time_left(durations: list[float], remaining: int, parallel: int = 1) -> float | None:
    """Seconds until the suite ends: the finished runs' mean duration times the waves of
    ``remaining`` runs, ``parallel`` at a time. None while no run has finished (no basis)."""
    if remaining <= 0:
        return 0.0
    if not durations:
        return None
    return sum(durations) / len(durations) * math.ceil(remaining / max(1, parallel))


def format_duration(seconds: float) -> str:
    """'45 s', '2 min 3 s', '1 h 5 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class SuiteProgress:
    """Counts the runs of one invocation as they end (from several threads with ``-j N``)."""

    def __init__(self, total: int, parallel: int = 1):
        self.total, self.parallel = total, parallel
        self.started = time.time()
        self.done = 0
        self.durations: list[float] = []  # of runs that finished training and evaluation
        self._lock = threading.Lock()

    def finish(self, seconds: float | None = None) -> tuple[int, str]:
        """Count one more run as ended (``seconds``: its duration, if it finished a training or
        evaluation; copies and failures give none); returns its number and the suite's position."""
        with self._lock:
            self.done += 1
            if seconds is not None:
                self.durations.append(seconds)
            left = time_left(self.durations, self.total - self.done, self.parallel)
            where = f"suite: {format_duration(time.time() - self.started)} in"
            if left is not None:
                where += ", done" if left == 0 else f", about {format_duration(left)} left"
            return self.done, where
