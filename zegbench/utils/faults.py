"""Fault injection for the crash-safety tests: ``ZEGBENCH_FAULT=<point>`` kills the process there.

The points sit where a real crash would hurt most (mid-training, mid-evaluation,
between writing a result's temporary file and renaming it). The variable is read once,
at import (the tests set it for the worker process); unset, a point costs one comparison.
"""
from __future__ import annotations

import os
import signal

_FAULT = os.environ.get("ZEGBENCH_FAULT")


def fault_point(name: str) -> None:
    """SIGKILL this process if ``ZEGBENCH_FAULT`` names this point."""
    if _FAULT == name:
        os.kill(os.getpid(), signal.SIGKILL)
