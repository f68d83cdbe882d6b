"""Where zegbench keeps generated data: one cache folder, overridable."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$ZEGBENCH_CACHE``, else ``$XDG_CACHE_HOME/zegbench``, else ``~/.cache/zegbench``."""
    if os.environ.get("ZEGBENCH_CACHE"):
        return Path(os.environ["ZEGBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zegbench"
