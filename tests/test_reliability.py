"""Crash safety and determinism of the run store: a run killed at any point, or a damaged
result, is redone to exactly what an uninterrupted run gives; one killed past a mid-run
checkpoint resumes from it to exactly the same end.

The store's other faults (two suites at once, a full disk) are in test_store_faults.py; the two
files are separate so that pytest-xdist can run them side by side.
"""
from __future__ import annotations

import json

import pytest
import torch

from suite_runs import COMPARED, SUITE, finished, log_without_wall_time, losses, run_all, suite_file


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


def _killed_then_resumed(tmp_path, text: str, fault: str, checkpoint_step: int, *options: str) -> list:
    """The result.json files of suite ``text`` whose runs were killed at ``fault``, then run again."""
    suite, results = suite_file(tmp_path, text), tmp_path / "results"
    killed = run_all(suite, results, *options, fault=fault)
    assert killed.returncode == 1 and finished(results) == []
    for checkpoint in results.glob("rel/*/checkpoint.pt"):  # the rerun resumes there, not at step 0
        assert torch.load(checkpoint, weights_only=True)["step"] == checkpoint_step
    rerun = run_all(suite, results, *options)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    return finished(results)


def _assert_same_run(clean, resumed) -> None:
    """Bit-identical metrics, per-class IoU and training log (every field but the wall time ``seconds``)."""
    a, b = json.loads(clean.read_text()), json.loads(resumed.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert log_without_wall_time(resumed.parent) == log_without_wall_time(clean.parent)


def test_a_run_killed_past_a_checkpoint_resumes_to_exactly_the_uninterrupted_run(tmp_path, clean):
    # The reference is the clean run without mid-run checkpoints: writing one changes nothing either.
    # A loader worker draws batches ahead of training, so the plan's position is not its generator's.
    text = SUITE.replace("log_every: 1", "log_every: 1, checkpoint_every: 2")
    (resumed,) = _killed_then_resumed(tmp_path, text, "train:4", 4, "--workers", "1")  # killed after step 4 of 0-5
    _assert_same_run(clean, resumed)


@pytest.mark.slow
def test_two_stage_and_transductive_runs_killed_past_a_checkpoint_resume_exactly(tmp_path):
    # Transductive: self-training starts at step 3, so the checkpoint at 4 is past the switch.
    text = SUITE.replace("methods: [zegclip]", "methods: [two_stage, zegclip_transductive]").replace(
        "log_every: 1", "log_every: 1, checkpoint_every: 2")
    (tmp_path / "clean").mkdir()
    assert run_all(suite_file(tmp_path / "clean", text), tmp_path / "clean" / "results").returncode == 0
    clean = finished(tmp_path / "clean" / "results")
    resumed = _killed_then_resumed(tmp_path, text, "train:4", checkpoint_step=4)
    assert len(clean) == len(resumed) == 2
    for a, b in zip(clean, resumed, strict=True):
        _assert_same_run(a, b)
