"""Exclusive claims on runs, so two processes sharing a run store never run the same run twice.

A claim is a POSIX record lock (``fcntl.lockf``) on ``<suite folder>/.locks/<run>.lock``.
The kernel drops it when the holder exits, however it exits (``kill -9`` included), so a
stale claim cannot block anyone.

Why a record lock and not ``flock``: a ``flock`` belongs to the open file, which every forked
child shares, data loader workers included. After ``kill -9`` of a run, its orphaned workers
held the claim until they noticed their parent was gone (seconds), and a restart was refused
as "being run by another process". A record lock belongs to the process that took it: no child
ever holds it, so the claim dies with the run.

Its two catches, and how this module meets them: a process loses its record lock when it closes
*any* descriptor of the file, and a process never conflicts with its own lock. So the claims
this process holds are remembered (``_held``, by the lock file's inode), and ``claim`` and
``is_claimed`` answer for those without opening the file: a second claim from the same process
is refused, as one from another process is.
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading
import weakref
from pathlib import Path

_held: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # (device, inode) -> this process's Claim
_guard = threading.Lock()  # claim and is_claimed check _held, then lock: one thread at a time


class Claim:
    """A held claim on a run; ``close()`` or the end of a ``with`` block releases it (so does dropping
    the last reference to it)."""

    def __init__(self, handle, key: tuple[int, int]):
        self._handle, self._key = handle, key

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with _guard:
            if _held.get(self._key) is self:
                del _held[self._key]
            self._handle.close()  # closing the descriptor releases the record lock


def _lock_path(run_dir: Path) -> Path:
    return run_dir.parent / ".locks" / f"{run_dir.name}.lock"


def _held_here(path: Path) -> bool:
    """Whether this process holds the claim on lock file ``path`` (checked without opening it)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return (stat.st_dev, stat.st_ino) in _held


def _try_lock(path: Path):
    """``path`` opened and locked, or None when another process holds its lock."""
    handle = open(path, "a+")
    try:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        if err.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    return handle


def claim(run_dir: Path) -> Claim | None:
    """A ``Claim`` on ``run_dir``, or None when a process (this one included) already holds it."""
    path = _lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _guard:
        if _held_here(path):  # checked first: opening the file again, then closing it, would drop our lock
            return None
        handle = _try_lock(path)
        if handle is None:
            return None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        stat = os.fstat(handle.fileno())
        key = (stat.st_dev, stat.st_ino)
        held = Claim(handle, key)
        _held[key] = held
        return held


def is_claimed(run_dir: Path) -> bool:
    """Whether a live process (this one included) holds ``run_dir``'s claim right now."""
    path = _lock_path(run_dir)
    if not path.is_file():
        return False
    with _guard:
        if _held_here(path):
            return True
        handle = _try_lock(path)
        if handle is None:
            return True
        handle.close()
        return False
