"""Contrastive pretraining of the in-house CLIP on world image-caption pairs.

Uses open_clip's own ``ClipLoss``; images are drawn fresh every step (the world
is infinite), so there is no epoch and no overfitting to a fixed set. The result
is saved as an fp16 state dict plus a JSON sidecar that records how it was made.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import open_clip
import torch
from open_clip.loss import ClipLoss
from tqdm import tqdm

from zegbench.clip.captions import caption_batch, to_model_input
from zegbench.clip.loading import IN_HOUSE, load_clip
from zegbench.clip.zero_shot import zero_shot_accuracy
from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError
from zegbench.utils.io import atomic_torch_save, atomic_write_json

DEFAULTS = dict(steps=7000, batch_size=128, lr=1e-3, weight_decay=0.1, warmup=300, seed=0)


class CaptionStream(torch.utils.data.IterableDataset):
    """Batches ``start, start+1, ...`` of the caption stream, drawn in a worker process."""

    def __init__(self, world_version: int, seed: int, batch_size: int, image_size: int, start: int, stop: int):
        self.world_version, self.seed, self.batch_size, self.image_size = world_version, seed, batch_size, image_size
        self.start, self.stop = start, stop

    def __iter__(self):
        for index in range(self.start, self.stop):
            images, captions = caption_batch(worlds.generator(self.world_version), self.seed, index,
                                             self.batch_size, self.image_size)
            yield torch.from_numpy(images), captions


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def pretrain(out: str | Path, steps: int = DEFAULTS["steps"], batch_size: int = DEFAULTS["batch_size"],
             lr: float = DEFAULTS["lr"], weight_decay: float = DEFAULTS["weight_decay"],
             warmup: int = DEFAULTS["warmup"], seed: int = DEFAULTS["seed"], eval_every: int = 500,
             workers: int = 1, progress: bool = True, model_name: str = IN_HOUSE) -> dict:
    """Train in-house CLIP ``model_name`` from scratch for ``steps`` steps and save it to ``out``.

    It learns from the captions of the world it belongs to (``worlds.for_clip``).

    Returns the sidecar record: settings, wall time, the loss curve (one value
    per 10 steps) and the final zero-shot accuracy.
    """
    torch.manual_seed(seed)
    world = worlds.for_clip(model_name)
    if world is None:
        raise ZegbenchError(f"{model_name!r} is not an in-house CLIP; known: "
                            f"{', '.join(worlds.generator(v).CLIP_MODEL for v in worlds.MODULES)}")
    bundle = load_clip(model_name, pretrained="none")
    model, tokenizer = bundle.model, bundle.tokenizer
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    loss_fn = ClipLoss()
    stream = CaptionStream(world.WORLD_VERSION, seed, batch_size, bundle.image_size, 0, steps)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    curve, evals, start = [], [], time.time()
    bar = tqdm(loader, total=steps, desc="pretrain", disable=not progress, dynamic_ncols=True)
    for step, (images, captions) in enumerate(bar):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        out_dict = model(to_model_input(images, bundle.mean, bundle.std), tokenizer(captions))
        loss = loss_fn(out_dict["image_features"], out_dict["text_features"], out_dict["logit_scale"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # as in CLIP: keep the temperature below 100
            model.logit_scale.clamp_(0, math.log(100))
        if step % 10 == 0:
            curve.append(round(loss.item(), 4))
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            model.eval()
            acc = zero_shot_accuracy(bundle, per_class=20)
            model.train()
            evals.append({"step": step + 1, "seconds": round(time.time() - start, 1),
                          **{k: acc[k] for k in ("acc_all", "acc_unseen")}})
            bar.write(f"step {step + 1}: zero-shot acc_all {acc['acc_all']:.3f} acc_unseen {acc['acc_unseen']:.3f}")
            _save(model, {"partial": True, "evals": evals}, out)  # a stopped run still leaves its latest weights
    model.eval()
    final = zero_shot_accuracy(bundle)
    record = {
        "model": model_name, "world_version": world.WORLD_VERSION, "steps": steps, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "warmup": warmup, "seed": seed, "wall_seconds": round(time.time() - start, 1),
        "torch": torch.__version__, "open_clip": open_clip.__version__, "threads": torch.get_num_threads(),
        "loss_every_10_steps": curve, "evals": evals,
        "zero_shot": {k: final[k] for k in ("acc_all", "acc_unseen", "acc_seen")},
    }
    _save(model, record, out)
    return record


def shippable_state(model: torch.nn.Module) -> dict:
    """The shipped format: fp16 weights, except positional embeddings in fp32.

    open_clip resizes positional embeddings with antialiased bicubic
    interpolation, which has no fp16 kernel on CPU.
    """
    return {k: v.float() if "positional_embedding" in k else v.half() if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


def _save(model: torch.nn.Module, record: dict, out: str | Path) -> None:
    """The shippable state dict plus its JSON record, both written atomically."""
    out = Path(out)
    atomic_torch_save(shippable_state(model), out)
    atomic_write_json(record, out.with_suffix(".json"))
