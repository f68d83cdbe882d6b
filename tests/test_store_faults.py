"""The run store under faults other than a kill: two suites on one store at once, a full disk,
and loading only safe formats. Crash safety is in test_reliability.py."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from suite_runs import ROOT, SUITE, finished, run_all, run_all_command, suite_file


def test_two_suites_on_one_store_never_run_a_run_twice(tmp_path):
    text = SUITE.replace("methods: [zegclip]", "methods: [zegclip, zegclip_dpt, zegclip_baseline_fix]").replace(
        "steps: 6", "steps: 30")
    suite, results = suite_file(tmp_path, text), tmp_path / "results"
    command = run_all_command(suite, results)
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = finished(results)
    assert len(done) == 3
    for result in done:  # a run trained by two processes at once would log its steps twice
        steps = [json.loads(line)["step"] for line in (result.parent / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(30))
    both = "\n".join(outputs)
    assert "another process" in both or "already finished" in both  # the two really met


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

    from zegbench.harness.identity import run_dir_for
    from zegbench.harness.resolve import resolve
    from zegbench.harness.run import run_experiment
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
    suite = suite_file(tmp_path, SUITE.replace("seeds: [0]", "seeds: [0, 1]"))
    results = tmp_path / "results"
    proc = run_all(suite, results, fault="ENOSPC@write:checkpoint.pt")
    assert proc.returncode == 1
    assert proc.stdout.count("FAILED") == 2 and "No space left on device" in proc.stdout  # both runs were tried
    for failed in sorted(results.glob("rel/*/failed.json")):
        assert "checkpoint.pt: No space left on device" in json.loads(failed.read_text())["error"]
    assert len(list(results.glob("rel/*/failed.json"))) == 2 and finished(results) == []
