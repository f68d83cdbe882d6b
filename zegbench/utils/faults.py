"""Fault injection for the crash-safety tests: ``ZEGBENCH_FAULT=<point>`` kills the process there,
``ZEGBENCH_FAULT=<ERRNO>@<point>`` (e.g. ``ENOSPC@write:checkpoint.pt``) raises that OSError there.

The points sit where a real crash would hurt most (mid-training, mid-evaluation,
between writing a result's temporary file and renaming it). Training has two: ``train``
(after step 1) and ``train:<step>`` (after that step, e.g. past a mid-run checkpoint). The variable is read once,
at import (the tests set it for the worker process); unset, a point costs one comparison.
"""
from __future__ import annotations

import errno
import os
import signal

_FAULT = os.environ.get("ZEGBENCH_FAULT")


def fault_point(name: str) -> None:
    """SIGKILL this process, or raise the named OSError, if ``ZEGBENCH_FAULT`` names this point."""
    if _FAULT is None:
        return
    code, _, point = _FAULT.rpartition("@")
    if point != name:
        return
    if not code:
        os.kill(os.getpid(), signal.SIGKILL)
    number = getattr(errno, code)
    raise OSError(number, os.strerror(number))
