"""Crash safety, concurrent suites and determinism of the run store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ("dataset: world_smoke\nseeds: [0]\ngroups:\n"
         "  - methods: [zegclip]\n    set: {steps: 6, batch_size: 2, warmup: 1, log_every: 1}\n")
COMPARED = ("pAcc", "mIoU_seen", "mIoU_unseen", "hIoU", "per_class")


def _suite(tmp_path: Path, text: str = SUITE) -> Path:
    path = tmp_path / "rel.yaml"
    path.write_text(text)
    return path


def _run_all(suite: Path, results: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ZEGBENCH_FAULT"}
    if fault:
        env["ZEGBENCH_FAULT"] = fault
    return subprocess.run([sys.executable, "run_all.py", "--suite", str(suite), "--results", str(results),
                           "--reports", str(results / "reports")], cwd=ROOT, env=env, capture_output=True, text=True)


def _finished(results: Path) -> list[Path]:
    return sorted(results.glob("rel/*/result.json"))


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted run of the suite: the reference every recovered run must equal."""
    tmp = tmp_path_factory.mktemp("clean")
    assert _run_all(_suite(tmp), tmp / "results").returncode == 0
    (result,) = _finished(tmp / "results")
    return result


@pytest.mark.parametrize("point", ["train", "before_evaluate", "evaluate", "write:result.json", "write:checkpoint.pt"])
def test_kill_at_any_point_loses_nothing_and_the_rerun_equals_a_clean_run(tmp_path, clean, point):
    suite, results = _suite(tmp_path), tmp_path / "results"
    killed = _run_all(suite, results, fault=point)  # the run's process is SIGKILLed at that point
    assert killed.returncode == 1 and "FAILED" in killed.stdout
    assert _finished(results) == []  # nothing half-done is trusted as finished
    rerun = _run_all(suite, results)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (result,) = _finished(results)
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert _losses(clean.parent) == _losses(result.parent)  # the log was cut back, not appended to
    assert not list(result.parent.glob(".*.tmp"))  # the interrupted write's temporary file is gone


def test_two_suites_on_one_store_never_run_a_run_twice(tmp_path):
    text = SUITE.replace("methods: [zegclip]", "methods: [zegclip, zegclip_dpt, zegclip_baseline_fix]").replace(
        "steps: 6", "steps: 30")
    suite, results = _suite(tmp_path, text), tmp_path / "results"
    cmd = [sys.executable, "run_all.py", "--suite", str(suite), "--results", str(results),
           "--reports", str(results / "reports")]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    finished = _finished(results)
    assert len(finished) == 3
    for result in finished:  # a run trained by two processes at once would log its steps twice
        steps = [json.loads(line)["step"] for line in (result.parent / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(30))
    both = "\n".join(outputs)
    assert "another process" in both or "already finished" in both  # the two really met


def test_same_config_and_seed_give_identical_metrics(tmp_path, clean):
    assert _run_all(_suite(tmp_path), tmp_path / "results").returncode == 0
    (result,) = _finished(tmp_path / "results")
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}


def test_source_loads_only_safely():
    # Checkpoints with weights_only=True, YAML with safe_load, nothing evaluated from configs.
    import re

    for path in (ROOT / "zegbench").rglob("*.py"):
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"yaml\.(load|unsafe_load|full_load)\(", text), path
        assert not re.search(r"(?<![.\w])(eval|exec)\(", text), path


def test_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_run_resumes(tmp_path, monkeypatch):
    import errno

    import torch

    from zegbench.harness.run import resolve, run_dir_for, run_experiment
    from zegbench.utils import io

    overrides = {"steps": 4, "batch_size": 2, "warmup": 1, "log_every": 1, "checkpoint_every": 2}
    writes = []

    def full_at_the_second_checkpoint(point):
        if point == "write:checkpoint.pt":
            writes.append(point)
            if len(writes) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io, "fault_point", full_at_the_second_checkpoint)
    with pytest.raises(OSError, match="No space left"):
        run_experiment("zegclip", "world_smoke", 0, overrides, results=tmp_path, suite="s")
    run_dir = run_dir_for(resolve("zegclip", "world_smoke", 0, overrides), tmp_path, "s")
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 2  # the previous one, whole
    assert not list(run_dir.glob(".*.tmp"))
    failed = json.loads((run_dir / "failed.json").read_text())
    assert failed["error"].startswith(f"cannot write {run_dir / 'checkpoint.pt'}: No space left on device")
    monkeypatch.undo()  # space freed: the same call resumes at step 2 and finishes
    result = run_experiment("zegclip", "world_smoke", 0, overrides, results=tmp_path, suite="s")
    assert result["status"] == "finished" and not (run_dir / "failed.json").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 3]


def test_a_full_disk_fails_each_run_cleanly_and_the_suite_goes_on(tmp_path):
    suite = _suite(tmp_path, SUITE.replace("seeds: [0]", "seeds: [0, 1]"))
    results = tmp_path / "results"
    proc = _run_all(suite, results, fault="ENOSPC@write:checkpoint.pt")
    assert proc.returncode == 1
    assert proc.stdout.count("FAILED") == 2 and "No space left on device" in proc.stdout  # both runs were tried
    for failed in sorted(results.glob("rel/*/failed.json")):
        assert "checkpoint.pt: No space left on device" in json.loads(failed.read_text())["error"]
    assert len(list(results.glob("rel/*/failed.json"))) == 2 and _finished(results) == []


def test_a_damaged_result_in_the_store_is_set_aside_and_redone_by_the_suite(tmp_path, clean):
    suite, results = _suite(tmp_path), tmp_path / "results"
    assert _run_all(suite, results).returncode == 0
    (result,) = _finished(results)
    result.write_text(result.read_text()[:80])  # cut short, as by a full disk outside zegbench or a bad copy
    listed = subprocess.run([sys.executable, "run_all.py", "--suite", str(suite), "--results", str(results), "--list"],
                            cwd=ROOT, capture_output=True, text=True)
    assert listed.stdout.startswith("damaged") and "1 damaged" in listed.stdout
    rerun = _run_all(suite, results)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "was damaged (unreadable JSON" in rerun.stderr
    (kept,) = result.parent.glob("result.json.damaged-*")  # the damaged file is kept, not deleted
    a, b = json.loads(clean.read_text()), json.loads(result.read_text())
    assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert _losses(result.parent) == _losses(clean.parent)  # evaluated again from its checkpoint, not retrained
