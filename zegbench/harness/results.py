"""A run's ``result.json`` (accuracy runs; speed records have their own): its schema, and the one reader.

A finished run's record is sound when it parses, is schema ``RESULT_SCHEMA`` with status
"finished", its metrics are numbers (or null), it has per-class IoUs, and its config hash is
its folder's. Anything else is damaged: the harness sets it aside and evaluates the run again
(run.py), and the reports leave it out, so a hand-edited or truncated file can never reach a
table, a plot or a verdict. Kept apart from run.py so the reports read results without torch.
"""
from __future__ import annotations

import json
from pathlib import Path

RESULT_SCHEMA = 1
RESULT_METRICS = ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")


def inspect_result(run_dir: Path) -> tuple[dict | None, str | None]:
    """(record, None) for a sound result.json, (None, what is wrong) for a damaged one, (None, None) for none."""
    path = run_dir / "result.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable JSON: {str(err).splitlines()[0]}"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if record.get("schema") != RESULT_SCHEMA or record.get("status") != "finished":
        return None, f"schema {record.get('schema')!r} status {record.get('status')!r}, not {RESULT_SCHEMA} 'finished'"
    for key in RESULT_METRICS:
        value = record.get(key, "missing")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return None, f"key {key!r} is {value!r}, not a number or null"
    if not isinstance(record.get("per_class"), dict):
        return None, "key 'per_class' is missing or not a mapping"
    if not run_dir.name.endswith(f"-{record.get('config_hash')}"):  # copied from, or edited to, another run
        return None, f"config_hash {record.get('config_hash')!r} is not this folder's"
    return record, None


def read_result(run_dir: Path) -> dict | None:
    """The record of a finished run, or None when ``run_dir`` has no sound ``result.json``
    (none yet, or a damaged one: cut short, not JSON, keys missing, of the wrong type or another run's)."""
    return inspect_result(run_dir)[0]
