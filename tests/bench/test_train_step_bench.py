"""One training step of each arm of ZegCLIP's ablation ladder (the ``ablations`` suite), at one thread.

Each arm is built as the world recipe resolves it (in-house CLIP, 96 px) and trained on the recipe's
batch: the first scenes of the world's training split, rendered in memory, normalised and with labels
mapped to the seen classes, as the training loop hands them to the method. What is timed: forward,
loss, backward and the AdamW step (engine/train.py's loop body); not timed: reading and augmenting
the batch. One thread, because suite runs train side by side with one thread each.

``extra_info``: ``flops`` of one step (forward, loss and backward, ``torch.utils.flop_counter``, a
multiply-add = 2; AdamW's elementwise update is not counted), ``mfu`` (those FLOPs per median step
second over this machine's 1-thread fp32 matmul peak, ``speed.matmul_peak``) and ``seconds``, the
median of each part over the timed rounds.

Run: ``OMP_NUM_THREADS=1 python -m pytest tests/bench/test_train_step_bench.py --benchmark-enable``.
Under ``--benchmark-disable`` (CI) each arm trains one step untimed and its FLOPs are counted.
"""
from __future__ import annotations

import functools
import statistics
import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from zegbench.datasets.catalog import load_dataset_info, world_spec
from zegbench.datasets.generate import STREAMS
from zegbench.engine.config import TrainConfig
from zegbench.engine.resolve import resolve
from zegbench.engine.speed import matmul_peak
from zegbench.engine.train import autocast_for, seen_label_map
from zegbench.harness.suite import load_suite
from zegbench.methods import build_method

LADDER = [m for group in load_suite("ablations").groups for m in group.methods]
PARTS = ("forward", "loss", "backward", "optimizer")
ROUNDS, WARMUP = 10, 2


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def fp32_peak() -> float:  # called inside the tests, under one_thread
    """This machine's fp32 matmul FLOP/s at one thread (``speed.matmul_peak``), measured once per session."""
    return matmul_peak("cpu")


@functools.cache
def world_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The world's first ``batch_size`` training scenes: uint8 images [B, H, W, 3], labels among the
    seen classes [B, H, W] (255 elsewhere) and the seen class names, as the training loop sees them."""
    info = load_dataset_info("world_v2")  # the published step times are v2's (the default world until 2026-12-07)
    spec = world_spec(info)
    scenes = [spec.render_scene(spec.generator.sample_rng(spec.seed, STREAMS["train"], i)) for i in range(batch_size)]
    images = torch.from_numpy(np.stack([img for img, _, _ in scenes]))
    labels = seen_label_map(info)[torch.from_numpy(np.stack([lab for _, lab, _ in scenes])).long()]
    return images, labels, list(info.seen)


@pytest.mark.parametrize("arm", LADDER)
def test_train_step(benchmark, one_thread, arm):
    resolved = resolve(arm, "world_v2", 0)
    cfg = TrainConfig(**resolved["train"])
    torch.manual_seed(0)
    method = build_method(resolved["method_config"]).train()
    optimizer = torch.optim.AdamW(method.param_groups(cfg.lr), weight_decay=cfg.weight_decay)
    images, labels, names = world_batch(cfg.batch_size)
    images = method.normalize(images)
    autocast = autocast_for(cfg.precision, "cpu")
    seconds = {part: [] for part in PARTS}

    def step() -> torch.Tensor:
        start = time.perf_counter()
        with autocast:
            logits, aux = method(images, names)
        forward = time.perf_counter()
        total = sum(method.loss(logits, labels, aux).values())
        scored = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        backward = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        for part, t in zip(PARTS, (forward - start, scored - forward, backward - scored, end - backward), strict=True):
            seconds[part].append(t)
        return total.detach()

    method.text_embeddings(names)  # cached before counting: the frozen text tower runs once per run, not per step
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    first = [p.detach().clone() for p in method.parameters() if p.requires_grad]
    for _ in range(0 if benchmark.disabled else WARMUP):
        step()
    for part in PARTS:
        seconds[part].clear()
    loss = benchmark.pedantic(step, rounds=ROUNDS, iterations=1)
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(first, (p for p in method.parameters() if p.requires_grad),
                                                     strict=True))  # the steps trained
    assert flops > 0
    benchmark.extra_info.update(arm=arm, threads=torch.get_num_threads(), batch=cfg.batch_size,
                                image_size=images.shape[-1], flops=flops)
    if benchmark.stats is not None:  # None under --benchmark-disable: the body ran once, untimed
        median, peak = benchmark.stats.stats.median, fp32_peak()
        benchmark.extra_info.update(
            seconds={part: round(statistics.median(seconds[part]), 5) for part in PARTS},
            matmul_peak_gflops=round(peak / 1e9, 2), achieved_gflops=round(flops / median / 1e9, 2),
            mfu=round(flops / median / peak, 4))
