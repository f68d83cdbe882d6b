"""Scale-out: data-parallel runs under torchrun (gloo on CPU) and suites through submitit's Slurm executor."""
from __future__ import annotations

import json

import pytest

from zegbench.engine.identity import run_folder_for
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.harness.cli import main as run_all_main
from zegbench.store import RunStore

from suite_runs import COMPARED, finished, log_without_wall_time, run_all

# Dropout off: ranks seed their dropout differently (as they should), which is the one
# source of difference this comparison must not have.
STEPS = {"steps": 12, "warmup": 1, "dropout": 0.0}


def _suite(tmp_path, method, overrides):
    path = tmp_path / "ddp.yaml"
    path.write_text(f"dataset: world_smoke\nseeds: [0]\ngroups:\n  - methods: [{method}]\n"
                    f"    set: {json.dumps(overrides)}\n")
    return str(path)


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["zegclip", "two_stage"])  # NEL + prompts + RD; the set loss
def test_two_process_ddp_equals_one_process_at_the_same_global_batch(tmp_path, method):
    one = resolve_and_run(method, "world_smoke", 0, {**STEPS, "batch_size": 4}, store=RunStore(tmp_path),
                          suite="one")
    suite = _suite(tmp_path, method, {**STEPS, "batch_size": 2})
    assert run_all_main(["--suite", suite, "--results", str(tmp_path), "--reports", str(tmp_path / "rep"),
                         "--executor", "torchrun", "--nproc", "2"]) == 0
    resolved = resolve(method, "world_smoke", 0, {**STEPS, "batch_size": 2}, world_size=2)
    assert resolved["world_size"] == 2 and "world_size" not in resolve(method, "world_smoke", 0, STEPS)
    ddp_dir = run_folder_for(resolved, RunStore(tmp_path), "ddp").path
    ddp = json.loads((ddp_dir / "result.json").read_text())
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    # Same images, same gradients (losses are means over the global batch): equal up to float summation order.
    for key in ("pAcc", "mIoU_seen", "mIoU_unseen", "hIoU"):
        assert ddp[key] == pytest.approx(one[key], abs=0.05), key
    one_resolved = resolve(method, "world_smoke", 0, {**STEPS, "batch_size": 4})
    one_log = _log(run_folder_for(one_resolved, RunStore(tmp_path), "one").path)
    assert [r["loss"] for r in _log(ddp_dir)] == pytest.approx([r["loss"] for r in one_log], rel=1e-3)
    assert not list(ddp_dir.glob("*.tmp")) and (ddp_dir / "checkpoint.pt").is_file()  # rank 0 alone wrote


@pytest.mark.slow
def test_a_two_process_run_killed_past_a_checkpoint_resumes_exactly(tmp_path):
    # Dropout on: each rank has its own dropout stream, which the checkpoint must carry for both.
    suite = _suite(tmp_path, "zegclip", {"steps": 6, "batch_size": 2, "warmup": 1, "log_every": 1,
                                         "checkpoint_every": 2})
    torchrun = ("--executor", "torchrun", "--nproc", "2")
    assert run_all(suite, tmp_path / "clean", *torchrun).returncode == 0
    killed = run_all(suite, tmp_path / "resumed", *torchrun, fault="train:4")  # both ranks, after step 4
    assert killed.returncode == 1 and finished(tmp_path / "resumed", "ddp") == []
    rerun = run_all(suite, tmp_path / "resumed", *torchrun)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (clean,), (resumed,) = finished(tmp_path / "clean", "ddp"), finished(tmp_path / "resumed", "ddp")
    a, b = json.loads(clean.read_text()), json.loads(resumed.read_text())
    assert a["world_size"] == 2 and {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    assert log_without_wall_time(resumed.parent) == log_without_wall_time(clean.parent)


def test_slurm_executor_runs_a_suite_through_submitit(tmp_path, capsys):
    pytest.importorskip("submitit")
    suite = _suite(tmp_path, "zegclip_baseline_fix", {"steps": 2, "batch_size": 2, "warmup": 1})
    args = ["--suite", suite, "--results", str(tmp_path), "--reports", str(tmp_path / "rep"), "--executor", "slurm",
            "--slurm-cluster", "debug"]
    assert run_all_main(args) == 0
    resolved = resolve("zegclip_baseline_fix", "world_smoke", 0, {"steps": 2, "batch_size": 2, "warmup": 1})
    run_dir = run_folder_for(resolved, RunStore(tmp_path), "ddp").path
    assert (run_dir / "result.json").is_file()  # the same run store, whichever executor ran it
    assert any((tmp_path / "ddp" / ".submitit").iterdir())  # submitit's job folder (logs, pickles)
    capsys.readouterr()
    assert run_all_main(args) == 0 and "0 to run" in capsys.readouterr().out  # finished: no job submitted again


def test_slurm_job_settings_are_shown_before_submitting(tmp_path, capsys):
    pytest.importorskip("submitit")
    suite = _suite(tmp_path, "zegclip", {"steps": 2})
    (tmp_path / "ddp.yaml").write_text((tmp_path / "ddp.yaml").read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    assert run_all_main(["--suite", suite, "--results", str(tmp_path), "--list", "--executor", "slurm",
                         "--nproc", "4", "--slurm-partition", "gpu", "--slurm-gpus", "4", "--slurm-cpus", "32",
                         "--slurm-time", "600", "--slurm-array-parallelism", "8"]) == 0
    out = capsys.readouterr().out
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=32",
                 "#SBATCH --time=600", "#SBATCH --array=0-1%2"):  # 2 runs, at most 8 at once
        assert line in out, line
