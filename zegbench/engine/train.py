"""The training loop: AdamW with per-group lr multipliers, warm-up + poly schedule,
gradient accumulation, fp32 (bf16 autocast on request), JSON-lines log, checkpoint and resume.

Inductive training sees seen classes only: labels are re-indexed into the seen
list and unseen pixels become 255. Transductive training switches, after
``self_training_start`` of the schedule, to all classes; the method's
``training_targets`` then puts its pseudo-labels on the pixels whose ground
truth is unseen (ZegCLIP: reference section 3).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from zegbench.datasets.catalog import DatasetInfo
from zegbench.datasets.loader import BatchPlan, training_batches
from zegbench.datasets.transforms import TrainTransform
from zegbench.engine.checkpoint import resume, resume_state
from zegbench.engine.config import TrainConfig
from zegbench.errors import ZegbenchError
from zegbench.methods.base import Method
from zegbench.store.layout import CHECKPOINT_FILE, LOG_FILE
from zegbench.store.tensorboard import RunEvents
from zegbench.utils import distributed
from zegbench.utils.faults import fault_point
from zegbench.utils.io import atomic_torch_save


def autocast_for(precision: str, device: str) -> torch.autocast:
    """The forward pass's autocast context: off for fp32, bf16 on the run's device type for bf16."""
    if precision not in ("fp32", "bf16"):
        raise ZegbenchError(f"training key 'precision' must be fp32 or bf16, not {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def scheduled_lr(step: int, peak_lr: float, cfg: TrainConfig) -> float:
    """One parameter group's lr: linear warm-up from ``warmup_ratio``, then poly decay to ``min_lr``.

    As mmcv's ``PolyLrUpdaterHook`` (``by_epoch=False``) with linear warm-up:
    ``(peak_lr - min_lr) * (1 - step / steps) ** power + min_lr``, the same
    absolute floor for every group (a x10 group ends at ``min_lr`` too, not at
    10 x ``min_lr``); during warm-up that value is scaled up from ``warmup_ratio``.
    """
    poly = (peak_lr - cfg.min_lr) * (1 - step / cfg.steps) ** cfg.power + cfg.min_lr
    if step < cfg.warmup:
        k = (1 - step / cfg.warmup) * (1 - cfg.warmup_ratio)
        return poly * (1 - k)
    return poly


def phase_lr(step: int, peak_lr: float, cfg: TrainConfig, transductive: bool) -> float:
    """``scheduled_lr`` for the run's phase.

    Transductive runs mirror the official two-run recipe: the inductive phase
    follows the first part of a full-length schedule, and self-training then
    restarts with its own warm-up and poly decay over the remaining steps.
    """
    start = int(cfg.self_training_start * cfg.steps)
    if not transductive or step < start:
        return scheduled_lr(step, peak_lr, cfg)
    return scheduled_lr(step - start, peak_lr, replace(cfg, steps=cfg.steps - start))


def seen_label_map(info: DatasetInfo) -> torch.Tensor:
    """Lookup table: dataset label -> index among seen classes (255 for unseen and ignore)."""
    table = torch.full((256,), 255, dtype=torch.long)
    table[list(info.seen_ids)] = torch.arange(len(info.seen_ids))
    return table


def micro_batch_sync(model: torch.nn.Module, last: bool):
    """The context of one micro-batch's backward: DDP all-reduces gradients on the last micro-batch
    of an optimiser step only (``no_sync`` before it); without DDP, nothing."""
    if last or not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


class FiniteCheck:
    """Watches the losses for NaN or infinity without stopping the GPU at every step.

    ``watch`` runs on the device (no host sync); ``raise_if_seen`` reads the verdict on the host
    and is called before anything is written (a log line, a checkpoint), so no NaN is ever stored.
    The error names the first step whose losses were not finite, with their values.
    """

    def __init__(self, names: list[str], device: str):
        self.names = names
        self.first_step = torch.tensor(-1, device=device)
        self.values = torch.zeros(len(names), device=device)

    def watch(self, step: int, parts: torch.Tensor) -> None:
        first_bad = (self.first_step < 0) & ~torch.isfinite(parts).all()
        self.first_step = torch.where(first_bad, step, self.first_step)
        self.values = torch.where(first_bad, parts, self.values)

    def raise_if_seen(self) -> None:
        step = int(self.first_step.item())
        if step >= 0:
            each = ", ".join(f"{k} {v:.4g}" for k, v in zip(self.names, self.values.tolist(), strict=True))
            raise ZegbenchError(f"training loss became {self.values.sum().item()} at step {step} ({each}): "
                                f"lower the learning rate or check the data; the run is stopped")


def group_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each parameter group's current lr, by the name its method gave it (``head``, ``encoder``)."""
    return {group.get("name", f"group{i}"): group["lr"] for i, group in enumerate(optimizer.param_groups)}


def _open_log(path: Path, start_step: int):
    """The training log for appending, without lines past ``start_step`` (a killed run's tail is redone)."""
    kept = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            if json.loads(line).get("step", 0) < start_step:
                kept.append(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    log = path.open("w")
    log.writelines(line + "\n" for line in kept)
    return log


def train(method: Method, dataset, info: DatasetInfo, cfg: TrainConfig, run_dir: str | Path | None = None,
          device: str = "cpu", progress: bool = False, config: dict | None = None, workers: int = 0) -> dict:
    """Train ``method`` on ``dataset`` in place; returns a summary (steps, seconds, last losses).

    With ``run_dir``, appends one JSON object per ``log_every`` steps to
    ``metrics.jsonl``, writes ``checkpoint.pt`` and resumes from it if present.
    ``config`` (the run's resolved config) is stored in the checkpoint so that
    it can be loaded on its own (``zegbench.load``); so are the batch plan's
    position and every rank's generators, so that a resumed run ends exactly as an
    uninterrupted one (``engine/checkpoint.py``). Under torchrun the method
    is wrapped in DistributedDataParallel and only rank 0 writes. ``workers``
    loader processes read and augment the images (``datasets/loader.py``); their
    number changes speed only, never the batches.
    """
    rank, world = distributed.rank(), distributed.world_size()
    torch.manual_seed(cfg.seed + rank)  # per-rank dropout; the data order is shared (see BatchPlan)
    method.to(device).train()
    if not any(p.requires_grad for p in method.parameters()):  # training-free (MaskCLIP)
        return {"steps": 0, "resumed_from": 0, "train_seconds": 0.0, "last_losses": {}, "training_free": True}
    model = method
    if world > 1:  # ZegCLIP's last decoder layer has parameters no loss reaches: find_unused_parameters
        model = torch.nn.parallel.DistributedDataParallel(method, find_unused_parameters=True)
    optimizer = torch.optim.AdamW(method.param_groups(cfg.lr), weight_decay=cfg.weight_decay)
    for group in optimizer.param_groups:
        group["peak_lr"] = group["lr"]
    run_dir = Path(run_dir) if run_dir else None
    start_step, drawn = 0, 0
    if run_dir and (run_dir / CHECKPOINT_FILE).is_file():
        # To the CPU: load_state_dict moves the weights and moments to the parameters' device, and
        # leaves AdamW's `step` counters where they are; on the GPU they would cost a host sync
        # per parameter per step.
        state = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
        drawn = resume(state, rank, device, cfg.accumulate, cfg.steps)  # the batch plan's place, the dropout stream
    rng = np.random.default_rng([cfg.seed, 0])  # the plan's generator; a resumed run's plan skips `drawn` batches
    transform = TrainTransform(info.train_transform) if info.train_transform else None
    plan = BatchPlan(len(dataset), cfg.batch_size, drawn + (cfg.steps - start_step) * cfg.accumulate, rng,
                     augmented=transform is not None, rank=rank, world=world, start=drawn)
    batches = training_batches(dataset, plan, transform, workers, pin_memory=device.startswith("cuda"))
    to_seen = seen_label_map(info).to(device)
    log = _open_log(run_dir / LOG_FILE, start_step) if run_dir and rank == 0 else None
    events = RunEvents(run_dir, start_step) if log else None  # TensorBoard's copy of the log
    autocast = autocast_for(cfg.precision, device)
    started, losses, finite = time.time(), {}, None
    bar = tqdm(range(start_step, cfg.steps), desc="train", disable=not progress or rank != 0, dynamic_ncols=True,
               initial=start_step, total=cfg.steps)
    for step in bar:
        transductive = method.setting == "transductive"
        for group in optimizer.param_groups:
            group["lr"] = phase_lr(step, group["peak_lr"], cfg, transductive)
        start = int(cfg.self_training_start * cfg.steps)
        self_training = transductive and step >= start
        if self_training and step == start and cfg.self_training_optimizer == "fresh":
            optimizer.state.clear()  # AdamW's moments and step counts start again
        class_names = list(info.classes) if self_training else list(info.seen)
        optimizer.zero_grad(set_to_none=True)
        for micro in range(cfg.accumulate):
            images, labels = next(batches)
            images = method.normalize(images.to(device, non_blocking=True))
            labels = labels.to(device, non_blocking=True).long()
            with autocast:
                logits, aux = model(images, class_names)
            if not self_training:  # seen classes only; self-training indexes all classes
                labels = to_seen[labels]
            labels = method.training_targets(logits, labels, list(info.unseen_ids), self_training)
            parts = method.loss(logits, labels, aux)
            total = sum(parts.values())
            # The mean over ranks is logged and checked: every rank sees the same value, so a NaN
            # stops all of them together.
            mean_parts = distributed.all_reduce_sum(torch.stack([v.detach().float() for v in parts.values()])) / world
            finite = finite or FiniteCheck(list(parts), device)
            finite.watch(step, mean_parts)
            with micro_batch_sync(model, last=micro == cfg.accumulate - 1):
                (total / cfg.accumulate).backward()
        if method.grad_clip:  # two-stage recipes clip the full model's gradient norm
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], method.grad_clip)
        optimizer.step()
        done = step + 1
        logged = step % cfg.log_every == 0 or done == cfg.steps
        checkpointed = run_dir and (done == cfg.steps or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0))
        if logged or checkpointed:  # the host reads the losses here only: each read waits for the GPU
            finite.raise_if_seen()
            losses = {k: round(v, 5) for k, v in zip(parts, mean_parts.tolist(), strict=True)}
            bar.set_postfix(loss=f"{sum(losses.values()):.3f}")
        if log and logged:
            log.write(json.dumps({"step": step, "lr": optimizer.param_groups[0]["lr"],
                                  "loss": round(sum(losses.values()), 5), **losses, "self_training": self_training,
                                  "seconds": round(time.time() - started, 2)}) + "\n")
            log.flush()
            events.training_step(step, losses, group_lrs(optimizer))
        if step >= 1:
            fault_point("train")  # the crash tests' kill mid-training
        fault_point(f"train:{step}")  # a kill after this very step (the exact-resume tests)
        if checkpointed:
            exact = resume_state(done, cfg.accumulate, device)  # on every rank: it gathers their generators
            if rank == 0:
                atomic_torch_save({"method": method.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                                   "train_config": asdict(cfg), "config": config, **exact}, run_dir / CHECKPOINT_FILE)
    batches.close()  # ends the loader's worker processes
    if log:
        log.close()
        events.close()
    return {"steps": cfg.steps, "resumed_from": start_step, "train_seconds": round(time.time() - started, 1),
            "last_losses": losses}
