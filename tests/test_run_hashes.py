"""Run folders of the shipped suites never change by accident.

A run's folder name carries the hash of its resolved config (``<method>-<dataset>-s<seed>-<hash>``),
and its training hash decides which finished checkpoint a variant may evaluate. A refactor that
changes either for the same suite, method and dataset configs would make every user's finished
runs look new (retrained) or, worse, reuse the wrong ones. ``tests/data/run_hashes.json`` records
both for every run of every shipped training suite
(and the record folder of every speed measurement, for one fixed machine); a change to what a run computes must come
with an updated record, written on purpose:

    ZEGBENCH_WRITE_RUN_HASHES=1 python -m pytest tests/test_run_hashes.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from zegbench.store import RunStore

RECORD = Path(__file__).parent / "data" / "run_hashes.json"


# Speed records hash the machine they were measured on too; the record fixes one.
RECORDED_MACHINE = {"device_name": "a recorded machine (2 cores)", "torch": "2.14.1", "threads": 2}


def _current_hashes() -> dict:
    from zegbench.harness.speed_suite import expand_speed
    from zegbench.harness.suite import available, expand, load_suite

    hashes = {}
    for suite in available():
        config = load_suite(suite)
        if config.kind == "runs":
            hashes[suite] = {spec.label: {"run": spec.run_dir.name, "training": spec.training_hash}
                             for spec in expand(suite, store=RunStore("results"))}
        else:
            hashes[suite] = {spec.label: {"record": spec.run_dir.name}
                             for spec in expand_speed(config.targets, suite, RunStore("results"))}
    return hashes


def test_the_shipped_suites_resolve_to_the_recorded_run_folders_and_training_hashes(monkeypatch):
    monkeypatch.setattr("zegbench.harness.speed_suite.machine_key", lambda device: RECORDED_MACHINE)
    current = _current_hashes()
    if os.environ.get("ZEGBENCH_WRITE_RUN_HASHES"):
        RECORD.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(RECORD.read_text())
    assert set(current) == set(recorded), "a suite was added or removed: update the record on purpose"
    for suite, runs in recorded.items():
        changed = {label: (runs.get(label), now) for label, now in current[suite].items() if runs.get(label) != now}
        missing = set(runs) - set(current[suite])
        assert not changed and not missing, f"suite {suite}: changed {changed}, missing {sorted(missing)}"
