"""The training data loader: worker processes change speed, never the batches or the results."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from zegbench.cli import main as zegbench_main
from zegbench.datasets.catalog import build_dataset, load_dataset_info
from zegbench.datasets.loader import BatchPlan, training_batches
from zegbench.datasets.transforms import TrainTransform, TransformSpec
from zegbench.engine.identity import run_folder_for
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.errors import ZegbenchError
from zegbench.store import RunStore

from real_layouts import write_voc

TINY = {"steps": 4, "batch_size": 2, "warmup": 1, "log_every": 1}


def _voc_train(tmp_path, **kw):
    write_voc(tmp_path / "data", train=6, **kw)
    return build_dataset("voc12", "train", data_root=tmp_path / "data")


def _batches(dataset, transform, workers, batch_size=2, batches=3, rank=0, world=1, seed=5):
    plan = BatchPlan(len(dataset), batch_size, batches, np.random.default_rng([seed, 0]),
                     augmented=transform is not None, rank=rank, world=world)
    return list(training_batches(dataset, plan, transform, workers))


def test_zero_and_two_workers_give_identical_batches(tmp_path):
    """The VOC recipe's random rescale, crop, flip and photometric distortion, decided by the plan's seeds."""
    data = _voc_train(tmp_path)
    transform = TrainTransform(load_dataset_info("voc12").train_transform)
    inline, workers = _batches(data, transform, 0), _batches(data, transform, 2)
    assert len(inline) == len(workers) == 3
    for (img0, lab0), (img2, lab2) in zip(inline, workers, strict=True):
        assert img0.shape == (2, 512, 512, 3) and lab0.dtype == torch.uint8
        assert torch.equal(img0, img2) and torch.equal(lab0, lab2)
    assert not torch.equal(inline[0][0], inline[1][0])  # the batches do differ from each other


def test_world_flips_are_planned_too(tmp_path):
    data = build_dataset("world_smoke", "train")
    inline, workers = _batches(data, None, 0, batch_size=4), _batches(data, None, 2, batch_size=4)
    for (img0, lab0), (img2, lab2) in zip(inline, workers, strict=True):
        assert torch.equal(img0, img2) and torch.equal(lab0, lab2)


def test_ranks_slice_one_global_batch():
    """Two data-parallel ranks together hold exactly the batch one process draws at twice the batch size."""
    one = BatchPlan(10, 4, 3, np.random.default_rng(1), augmented=True)
    ranks = [BatchPlan(10, 2, 3, np.random.default_rng(1), augmented=True, rank=r, world=2) for r in (0, 1)]
    for whole, first, second in zip(one, *ranks, strict=True):
        assert whole == first + second


def test_loading_leaves_torch_global_generator_alone(tmp_path):
    """Starting a DataLoader draws a seed; from the global generator it would shift training's dropout."""
    data = build_dataset("world_smoke", "train")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _batches(data, None, 0)
    assert torch.equal(torch.rand(3), expected)


def test_a_data_error_in_a_worker_is_the_dataset_own_line(tmp_path):
    data = _voc_train(tmp_path)
    (data.parts[0].img_dir / f"{data.ids[0]}.jpg").write_bytes(b"\xff\xd8 truncated")
    transform = TrainTransform(TransformSpec(crop=32))
    plan = BatchPlan(len(data), len(data), 1, np.random.default_rng(0), augmented=True)  # every image
    with pytest.raises(ZegbenchError) as caught:
        list(training_batches(data, plan, transform, workers=2))
    assert str(caught.value).startswith(str(data.parts[0].img_dir)) and "is corrupt" in str(caught.value)
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


def test_world_run_is_identical_with_0_and_2_workers(tmp_path):
    results = {}
    for workers in (0, 2):
        results[workers] = resolve_and_run("zegclip_baseline_fix", "world_smoke", 0, TINY,
                                           store=RunStore(tmp_path / str(workers)), suite="s", workers=workers)
    resolved = resolve("zegclip_baseline_fix", "world_smoke", 0, TINY)
    run_dirs = {w: run_folder_for(resolved, RunStore(tmp_path / str(w)), "s").path for w in (0, 2)}
    assert run_dirs[0].name == run_dirs[2].name  # workers are not part of the run's identity
    for key in ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "per_class"):
        assert results[0][key] == results[2][key], key
    logs = {w: [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]
            for w, d in run_dirs.items()}
    assert logs[0] == logs[2] and len(logs[0]) == TINY["steps"]
    assert json.loads((run_dirs[2] / "env.json").read_text())["loader_workers"] == 2


def test_workers_option_is_recorded(tmp_path):
    args = ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke", "--results", str(tmp_path),
            "--workers", "1", "--set", "steps=1", "--set", "batch_size=2", "--set", "warmup=1", "--json"]
    assert zegbench_main(args) == 0
    env = json.loads(next(tmp_path.glob("adhoc/*/env.json")).read_text())
    assert env["loader_workers"] == 1


def test_default_workers_follow_the_cores(monkeypatch):
    from zegbench.datasets.loader import WORKERS_ENV, default_workers

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert [default_workers(c) for c in (1, 2, 4, 64)] == [0, 1, 3, 16]
    # A run with more threads leaves fewer cores to its loader: none once its threads fill them.
    assert [default_workers(c, threads=t) for c, t in ((4, 2), (2, 2), (1, 4), (64, 8))] == [2, 0, 0, 16]
    monkeypatch.setenv(WORKERS_ENV, "5")  # run_all.py --workers 5
    assert default_workers(2) == 5



@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_a_process_pinned_to_one_core_sizes_threads_and_workers_for_one(monkeypatch):
    from zegbench.datasets.loader import WORKERS_ENV, default_workers
    from zegbench.utils.cores import available_cores

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})  # as `taskset -c 0`, or Slurm's binding of one CPU
        assert available_cores() == 1 and default_workers() == 0
    finally:
        os.sched_setaffinity(0, allowed)
    assert available_cores() == len(allowed)


def test_run_all_passes_workers_to_its_runs(tmp_path):
    from zegbench.datasets.loader import WORKERS_ENV
    from zegbench.harness.cli import main as run_all_main

    suite = tmp_path / "w.yaml"
    suite.write_text("dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix]\n"
                     "    set: {steps: 1, batch_size: 2, warmup: 1}\n")
    assert run_all_main(["--suite", str(suite), "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "rep"),
                         "--workers", "2"]) == 0
    env = json.loads(next((tmp_path / "r" / "w").glob("*/env.json")).read_text())
    assert env["loader_workers"] == 2
    assert WORKERS_ENV not in os.environ  # this process's environment is as it was


def test_photometric_transform_in_workers_forked_from_a_cuda_parent(tmp_path, monkeypatch):
    """A GPU run initialises CUDA before its loader forks workers, and a forked child cannot touch CUDA
    again. Faked here: the workers inherit a torch.cuda that reports a GPU and raises as a forked child's would."""
    data = _voc_train(tmp_path)

    def forked_cuda(*args, **kwargs):
        raise RuntimeError("Cannot re-initialize CUDA in forked subprocess")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state", forked_cuda)
    monkeypatch.setattr(torch.cuda, "set_rng_state", forked_cuda)
    transform = TrainTransform(TransformSpec(crop=32, photometric=True))
    with_workers = _batches(data, transform, 2)
    monkeypatch.undo()
    inline = _batches(data, transform, 0)
    for (img_w, lab_w), (img_0, lab_0) in zip(with_workers, inline, strict=True):
        assert torch.equal(img_w, img_0) and torch.equal(lab_w, lab_0)
