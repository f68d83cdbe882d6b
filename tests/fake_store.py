"""Finished runs written by hand for report tests: records the harness's reader accepts as sound."""
from __future__ import annotations

import json
from pathlib import Path

from zegbench.store import RESULT_METRICS, RESULT_SCHEMA


def write_result(run_dir: Path, **fields) -> Path:
    """Write ``run_dir/result.json`` as a finished run's: schema, status, every metric key (None unless
    given), per-class IoUs, and the folder's hash (the part of its name after the last '-')."""
    record = {"schema": RESULT_SCHEMA, "status": "finished", "config_hash": run_dir.name.rsplit("-", 1)[-1],
              **{key: None for key in RESULT_METRICS}, "per_class": {}, **fields}
    path = run_dir / "result.json"
    path.write_text(json.dumps(record))
    return path
