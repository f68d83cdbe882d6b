"""Fault injection for the crash-safety tests: ``ZEGBENCH_FAULT=<point>`` kills the process there.

The points sit where a real crash would hurt most (mid-training, mid-evaluation,
between writing a result's temporary file and renaming it). Unset, they cost
one environment lookup.
"""
from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    """SIGKILL this process if ``ZEGBENCH_FAULT`` names this point."""
    if os.environ.get("ZEGBENCH_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
