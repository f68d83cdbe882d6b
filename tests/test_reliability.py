"""Crash safety and determinism of the run store: a run killed at any point, or a damaged
result, is redone to exactly what an uninterrupted run gives.

The store's other faults (two suites at once, a full disk) are in test_store_faults.py; the two
files are separate so that pytest-xdist can run them side by side.
"""
from __future__ import annotations

import json

import pytest

from suite_runs import COMPARED, finished, losses, run_all, suite_file


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted run of the suite: the reference every recovered run must equal."""
    tmp = tmp_path_factory.mktemp("clean")
    assert run_all(suite_file(tmp), tmp / "results").returncode == 0
    (result,) = finished(tmp / "results")
    return result


@pytest.mark.parametrize("point", ["train", "before_evaluate", "evaluate", "write:result.json", "write:checkpoint.pt"])
def test_kill_at_any_point_loses_nothing_and_the_rerun_equals_a_clean_run(tmp_path, clean, point):
    suite, results = suite_file(tmp_path), tmp_path / "results"
    killed = run_all(suite, results, fault=point)  # the run's process is SIGKILLed at that point
    assert killed.returncode == 1 and "FAILED" in killed.stdout
    assert finished(results) == []  # nothing half-done is trusted as finished
    rerun = run_all(suite, results)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (result,) = finished(results)
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert losses(clean.parent) == losses(result.parent)  # the log was cut back, not appended to
    assert not list(result.parent.glob(".*.tmp"))  # the interrupted write's temporary file is gone


def test_same_config_and_seed_give_identical_metrics(tmp_path, clean):
    assert run_all(suite_file(tmp_path), tmp_path / "results").returncode == 0
    (result,) = finished(tmp_path / "results")
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}


def test_a_damaged_result_in_the_store_is_set_aside_and_redone_by_the_suite(tmp_path, clean):
    suite, results = suite_file(tmp_path), tmp_path / "results"
    assert run_all(suite, results).returncode == 0
    (result,) = finished(results)
    result.write_text(result.read_text()[:80])  # cut short, as by a full disk outside zegbench or a bad copy
    listed = run_all(suite, results, "--list")
    assert listed.stdout.startswith("damaged") and "1 damaged" in listed.stdout
    rerun = run_all(suite, results)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "was damaged (unreadable JSON" in rerun.stderr
    (kept,) = result.parent.glob("result.json.damaged-*")  # the damaged file is kept, not deleted
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert losses(result.parent) == losses(clean.parent)  # evaluated again from its checkpoint, not retrained
