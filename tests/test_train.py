"""Training loop, schedule, resume and evaluation, end to end on a tiny world."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from zegbench.datasets.catalog import load_dataset_info
from zegbench.datasets.folder import SegmentationFolder
from zegbench.datasets.generate import ensure_world
from zegbench.harness.evaluate import evaluate
from zegbench.harness.train import TrainConfig, lr_factor, scheduled_lr_factor, seen_label_map, train
from zegbench.methods import create_method


@pytest.fixture(scope="module")
def tiny_world(tiny_spec, tmp_path_factory):
    root = ensure_world(tiny_spec, tmp_path_factory.mktemp("worlds"))
    info = load_dataset_info("world")
    make = lambda split: SegmentationFolder(root, f"ImageSets/Segmentation/{split}.txt", 20, img_suffix=".png")
    return info, make("train"), make("val")


def test_schedule_warms_up_linearly_then_decays_to_min_lr():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-6)
    assert lr_factor(0, cfg) == pytest.approx(1e-6, abs=1e-6)
    assert lr_factor(5, cfg) == pytest.approx(0.5 * (1 - 0.05) ** 0.9, rel=1e-3)
    assert lr_factor(10, cfg) == pytest.approx((1 - 1e-3) * 0.9**0.9 + 1e-3, rel=1e-6)
    assert lr_factor(100, cfg) == pytest.approx(1e-3)  # min_lr / lr
    assert all(lr_factor(s, cfg) >= lr_factor(s + 1, cfg) for s in range(10, 99))


def test_transductive_self_training_restarts_the_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, self_training_start=0.5)
    assert scheduled_lr_factor(49, cfg, True) == lr_factor(49, cfg)
    assert scheduled_lr_factor(50, cfg, True) == pytest.approx(1e-6, abs=1e-6)  # fresh warm-up
    assert scheduled_lr_factor(60, cfg, True) == pytest.approx(lr_factor(10, replace(cfg, steps=50)))
    assert scheduled_lr_factor(60, cfg, False) == lr_factor(60, cfg)


def test_inductive_labels_hide_unseen_classes():
    info = load_dataset_info("world")
    table = seen_label_map(info)
    assert table[list(info.unseen_ids)].eq(255).all()
    assert table[list(info.seen_ids)].tolist() == list(range(15))
    assert table[255] == 255


def test_train_logs_checkpoints_resumes_and_evaluates(tiny_world, tmp_path):
    info, train_set, val_set = tiny_world
    method = create_method("zegclip", clip_weights="none", image_size=48)
    cfg = TrainConfig(steps=3, batch_size=2, accumulate=2, warmup=1, log_every=1)
    first = train(method, train_set, info, cfg, run_dir=tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [0, 1, 2]
    assert {"loss_focal", "loss_dice", "lr"} <= set(lines[0])
    assert first["resumed_from"] == 0
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    resumed = create_method("zegclip", clip_weights="none", image_size=48)
    more = train(resumed, train_set, info, TrainConfig(steps=5, batch_size=2, warmup=1, log_every=1), run_dir=tmp_path)
    assert more["resumed_from"] == 3
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]
    metrics = evaluate(resumed, val_set, info)
    assert set(metrics) >= {"pAcc", "mIoU_seen", "mIoU_unseen", "hIoU", "per_class"}
    assert 0 <= metrics["pAcc"] <= 100


def test_transductive_training_switches_to_all_classes(tiny_world, tmp_path):
    info, train_set, _ = tiny_world
    method = create_method("zegclip_transductive", clip_weights="none", image_size=48)
    train(method, train_set, info, TrainConfig(steps=4, batch_size=2, warmup=1, log_every=1), run_dir=tmp_path)
    flags = [json.loads(line)["self_training"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert flags == [False, False, True, True]


@pytest.mark.parametrize("optimizer,adam_steps", [("fresh", 2), ("continue", 4)])
def test_self_training_starts_a_fresh_optimizer_as_the_official_second_run(tiny_world, tmp_path, optimizer, adam_steps):
    info, train_set, _ = tiny_world
    method = create_method("zegclip_transductive", clip_weights="none", image_size=48)
    cfg = TrainConfig(steps=4, batch_size=2, warmup=1, self_training_optimizer=optimizer)
    train(method, train_set, info, cfg, run_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["optimizer"]["state"]
    assert {int(s["step"]) for s in state.values()} == {adam_steps}  # AdamW steps since its (re)start
