"""Training loop, schedule, resume and evaluation, end to end on a tiny world."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from zegbench.datasets.catalog import load_dataset_info
from zegbench.datasets.folder import SegmentationFolder
from zegbench.datasets.generate import ensure_world
from zegbench.engine.config import TrainConfig
from zegbench.engine.evaluate import evaluate
from zegbench.engine.train import phase_lr, scheduled_lr, seen_label_map, train
from zegbench.methods import create_method


@pytest.fixture(scope="module")
def tiny_world(tiny_spec, tmp_path_factory):
    root = ensure_world(tiny_spec, tmp_path_factory.mktemp("worlds"))
    info = load_dataset_info("world")

    def make(split):
        return SegmentationFolder(root, f"ImageSets/Segmentation/{split}.txt", 20, img_suffix=".png")
    return info, make("train"), make("val")


def test_schedule_warms_up_linearly_then_decays_to_min_lr():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-6)

    def lr(step):
        return scheduled_lr(step, 1e-3, cfg)
    assert lr(0) == pytest.approx(1e-3 * 1e-6, abs=1e-9)  # warm-up starts at warmup_ratio
    assert lr(5) == pytest.approx(0.5 * ((1e-3 - 1e-6) * 0.95**0.9 + 1e-6), rel=1e-3)
    assert lr(10) == pytest.approx((1e-3 - 1e-6) * 0.9**0.9 + 1e-6, rel=1e-6)
    assert lr(100) == pytest.approx(1e-6)
    assert all(lr(s) >= lr(s + 1) for s in range(10, 99))


def test_min_lr_is_the_same_absolute_floor_for_every_group():
    # mmcv's PolyLrUpdaterHook: (base_lr - min_lr) * (1 - progress)^power + min_lr per group, so a
    # x10 group ends at min_lr too (a floor relative to the base lr left it at 10 x min_lr).
    cfg = TrainConfig(steps=100, warmup=10, lr=2e-5, min_lr=1e-6)
    for peak in (2e-5, 2e-4):
        assert scheduled_lr(100, peak, cfg) == pytest.approx(1e-6, rel=1e-9)
        assert scheduled_lr(50, peak, cfg) == pytest.approx((peak - 1e-6) * 0.5**0.9 + 1e-6, rel=1e-9)


def test_the_last_step_trains_every_group_at_min_lr(tiny_world, tmp_path):
    info, train_set, _ = tiny_world
    method = create_method("zegclip", clip_weights="none", image_size=48, head_lr_mult=10.0, encoder_lr_mult=1.0)
    # power 60: (1 - 1/2)^60 is 1e-18, so the last step's lr is the floor itself
    cfg = TrainConfig(steps=2, batch_size=1, warmup=0, lr=1e-3, min_lr=1e-6, power=60.0)
    train(method, train_set, info, cfg, run_dir=tmp_path)
    groups = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"]
    assert sorted(g["peak_lr"] for g in groups) == pytest.approx([1e-3, 1e-2])
    assert [g["lr"] for g in groups] == pytest.approx([1e-6, 1e-6], rel=1e-6)


def test_transductive_self_training_restarts_the_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, self_training_start=0.5)
    assert phase_lr(49, 1e-3, cfg, True) == scheduled_lr(49, 1e-3, cfg)
    assert phase_lr(50, 1e-3, cfg, True) == pytest.approx(1e-9, abs=1e-9)  # fresh warm-up
    assert phase_lr(60, 1e-3, cfg, True) == pytest.approx(scheduled_lr(10, 1e-3, replace(cfg, steps=50)))
    assert phase_lr(60, 1e-3, cfg, False) == scheduled_lr(60, 1e-3, cfg)


def _autocast_seen(method, info, train_set, **train_keys) -> set:
    """(enabled, dtype) of CPU autocast inside every training forward pass."""
    seen = set()
    method.register_forward_pre_hook(lambda *_: seen.add((torch.is_autocast_enabled("cpu"),
                                                          torch.get_autocast_dtype("cpu"))))
    train(method, train_set, info, TrainConfig(steps=2, batch_size=1, warmup=0, **train_keys))
    return seen


def test_training_is_fp32_by_default_and_bf16_on_request(tiny_world):
    info, train_set, _ = tiny_world

    def method():
        return create_method("zegclip", clip_weights="none", image_size=48)
    default = _autocast_seen(method(), info, train_set)
    assert {enabled for enabled, _ in default} == {False}
    bf16 = _autocast_seen(method(), info, train_set, precision="bf16")
    assert bf16 == {(True, torch.bfloat16)}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_training_is_fp32_by_default(tiny_world, tmp_path):
    # The official code trains in fp32; zegbench used to train under bf16 autocast on CUDA.
    info, train_set, _ = tiny_world
    method, seen = create_method("zegclip", clip_weights="none", image_size=48), set()
    method.register_forward_pre_hook(lambda *_: seen.add(torch.is_autocast_enabled("cuda")))
    train(method, train_set, info, TrainConfig(steps=2, batch_size=1, warmup=0), run_dir=tmp_path, device="cuda")
    assert seen == {False}


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
    assert [row["step"] for row in lines] == [0, 1, 2]
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


def test_precision_is_a_training_key_of_the_resolved_config():
    from zegbench.engine.identity import config_hash
    from zegbench.engine.resolve import resolve

    default = resolve("zegclip", "world_smoke", 0)
    assert default["train"]["precision"] == "fp32"
    bf16 = resolve("zegclip", "world_smoke", 0, {"precision": "bf16"})
    assert bf16["train"]["precision"] == "bf16" and config_hash(bf16) != config_hash(default)


class _Killed(Exception):
    """Stands in for the SIGKILL of ``ZEGBENCH_FAULT=train:<step>`` (real kills: test_reliability.py)."""


def _kill_after(step: int):
    def fault_point(name):
        if name == f"train:{step}":
            raise _Killed(name)
    return fault_point


def _train_and_evaluate(tiny_world, run_dir, name, keys, cfg, workers=0) -> tuple[list[dict], dict]:
    """Train a fresh ``name`` in ``run_dir`` (resuming what is there); its log without wall times, and its metrics."""
    info, train_set, val_set = tiny_world
    run_dir.mkdir(exist_ok=True)
    torch.manual_seed(0)  # as run.py before it builds the method
    method = create_method(name, **keys)
    train(method, train_set, info, cfg, run_dir=run_dir, workers=workers)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows], evaluate(method, val_set, info)


TINY_TWO_STAGE = {"clip_weights": "none", "backbone": "world_cnn", "queries": 4, "hidden": 32, "decoder_layers": 2,
                  "decoder_heads": 4, "decoder_ffn": 64, "mask_dim": 16, "templates": "single",
                  "region_templates": "single"}
ZEGCLIP = {"clip_weights": "none", "image_size": 48}


@pytest.mark.parametrize("name,keys,self_training_start,workers", [
    ("zegclip", ZEGCLIP, 0.5, 1),  # its loader worker draws batches ahead of training
    ("two_stage", TINY_TWO_STAGE, 0.5, 0),
    ("zegclip_transductive", ZEGCLIP, 0.25, 0),  # self-training from step 1: resumed after the switch
    pytest.param("zegclip_transductive", ZEGCLIP, 0.5, 0, marks=pytest.mark.slow),  # from step 2: resumed at it
])
def test_a_resumed_run_equals_an_uninterrupted_one(tiny_world, tmp_path, monkeypatch, name, keys, self_training_start,
                                                   workers):
    cfg = TrainConfig(steps=4, batch_size=2, warmup=1, log_every=1, checkpoint_every=2,
                      self_training_start=self_training_start)
    clean = _train_and_evaluate(tiny_world, tmp_path / "clean", name, keys, cfg, workers)
    monkeypatch.setattr("zegbench.engine.train.fault_point", _kill_after(3))
    with pytest.raises(_Killed):
        _train_and_evaluate(tiny_world, tmp_path / "killed", name, keys, cfg, workers)
    monkeypatch.undo()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 2
    torch.manual_seed(12345)  # whatever the restarted process's generator holds
    resumed = _train_and_evaluate(tiny_world, tmp_path / "killed", name, keys, cfg, workers)
    assert resumed[0] == clean[0]  # every logged loss and lr, step by step
    assert resumed[1] == clean[1]  # every metric and per-class IoU, bit for bit


def test_a_checkpoint_without_generator_states_resumes_with_a_warning(tiny_world, tmp_path, monkeypatch, caplog):
    cfg = TrainConfig(steps=3, batch_size=2, warmup=1, log_every=1, checkpoint_every=1)
    monkeypatch.setattr("zegbench.engine.train.fault_point", _kill_after(1))
    with pytest.raises(_Killed):
        _train_and_evaluate(tiny_world, tmp_path, "zegclip", ZEGCLIP, cfg)
    monkeypatch.undo()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del state["generators"], state["batches_drawn"]  # as written before checkpoints carried them
    torch.save(state, tmp_path / "checkpoint.pt")
    rows, _ = _train_and_evaluate(tiny_world, tmp_path, "zegclip", ZEGCLIP, cfg)
    assert [row["step"] for row in rows] == [0, 1, 2]
    assert "its remaining 2 steps cannot match an uninterrupted run's" in caplog.text
