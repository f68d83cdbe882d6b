"""TensorBoard event files of a run (store/tensorboard.py): the training log's curves and the evaluation,
the same numbers as metrics.jsonl and result.json."""
from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from zegbench.engine.identity import run_folder_for
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.store import RunStore
from zegbench.store.tensorboard import TENSORBOARD_FOLDER

TINY = {"steps": 3, "batch_size": 2, "warmup": 1, "log_every": 1}


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / TENSORBOARD_FOLDER))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_writes_its_losses_lrs_and_metrics_as_tensorboard_scalars(tmp_path):
    result = resolve_and_run("zegclip", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="s")
    run_dir = run_folder_for(resolve("zegclip", "world_smoke", 0, TINY), RunStore(tmp_path), "s").path
    found = scalars(run_dir)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in found["loss/total"]] == [row["step"] for row in log] == [0, 1, 2]
    for part in ("loss_focal", "loss_dice", "total"):
        key = "loss" if part == "total" else part
        assert [v for _, v in found[f"loss/{part}"]] == pytest.approx([row[key] for row in log], rel=1e-6)
    assert {"lr/head", "lr/encoder"} <= set(found)  # one curve per parameter group, by its name
    assert [v for _, v in found["lr/head"]] == pytest.approx([row["lr"] for row in log], rel=1e-6)
    for metric in ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU", "pAcc"):
        assert found[f"val/{metric}"] == [(3, pytest.approx(result[metric], rel=1e-6))]
