"""Exclusive claims on runs, so two processes sharing a run store never run the same run twice.

A claim is an ``fcntl.flock`` on ``<suite folder>/.locks/<run>.lock``. The
kernel drops it when the holder exits, however it exits (``kill -9``
included), so a stale claim cannot block anyone.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


def _lock_path(run_dir: Path) -> Path:
    return run_dir.parent / ".locks" / f"{run_dir.name}.lock"


def claim(run_dir: Path):
    """An open handle holding ``run_dir``'s claim, or None when another process holds it."""
    path = _lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def is_claimed(run_dir: Path) -> bool:
    """Whether another live process holds ``run_dir``'s claim right now."""
    path = _lock_path(run_dir)
    if not path.is_file():
        return False
    handle = claim(run_dir)
    if handle is None:
        return True
    handle.close()
    return False
