"""Contrastive pretraining of the in-house CLIP on world image-caption pairs.

Uses open_clip's own ``ClipLoss``; images are drawn fresh every step (the world
is infinite), so there is no epoch and no overfitting to a fixed set. The result
is saved as an fp16 state dict plus a JSON sidecar that records how it was made.
"""
from __future__ import annotations

import hashlib
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


def resume_state_path(out: str | Path) -> Path:
    """The resume state written beside checkpoint ``out`` (``x.pt`` -> ``x.state.pt``); never shipped."""
    out = Path(out)
    return out.with_name(f"{out.stem}.state.pt")


def _evaluate(bundle, world, step: int, seconds: float) -> dict:
    """A mid-run check: 20-class zero-shot as before; a broad world adds full-concept top-1 (G6)."""
    acc = zero_shot_accuracy(bundle, per_class=20)
    row = {"step": step, "seconds": round(seconds, 1), **{k: acc[k] for k in ("acc_all", "acc_unseen")}}
    if hasattr(world, "CONCEPTS"):
        from zegbench.clip.breadth import concept_zero_shot

        row.update(concept_zero_shot(bundle, world, per_concept=4))
    return row


def pretrain(out: str | Path, steps: int = DEFAULTS["steps"], batch_size: int = DEFAULTS["batch_size"],
             lr: float = DEFAULTS["lr"], weight_decay: float = DEFAULTS["weight_decay"],
             warmup: int = DEFAULTS["warmup"], seed: int = DEFAULTS["seed"], eval_every: int = 500,
             workers: int = 1, progress: bool = True, model_name: str = IN_HOUSE, resume: bool = False,
             stop_after: int | None = None) -> dict:
    """Train in-house CLIP ``model_name`` from scratch for ``steps`` steps and save it to ``out``.

    It learns from the captions of the world it belongs to (``worlds.for_clip``).
    Every ``eval_every`` steps it checks zero-shot accuracy and writes the weights so far to
    ``out`` and a resume state (weights, optimiser, step, loss curve; the caption stream is a
    function of the seed and the batch index, so the step is its state) to
    ``resume_state_path(out)``. ``resume=True`` continues from that state, with the same settings
    and caption stream, exactly as the uninterrupted run would have gone on; a finished run removes
    its state. ``stop_after`` ends the session after that many steps in all (the state is written
    there) without finishing the schedule.

    Returns the sidecar record: settings, wall time, the loss curve (one value
    per 10 steps) and the final zero-shot accuracy (a broad world's: G6 breadth too).
    """
    torch.manual_seed(seed)
    world = worlds.for_clip(model_name)
    if world is None:
        raise ZegbenchError(f"{model_name!r} is not an in-house CLIP; known: "
                            f"{', '.join(worlds.generator(v).CLIP_MODEL for v in worlds.MODULES)}")
    settings = {"model": model_name, "steps": steps, "batch_size": batch_size, "lr": lr,
                "weight_decay": weight_decay, "warmup": warmup, "seed": seed}
    # What a resumed run must share with the one it continues: settings, model and caption stream.
    identity = {"settings": settings, "architecture": open_clip.get_model_config(model_name),
                "stream": stream_digest(world, seed)}
    state_path = resume_state_path(out)
    bundle = load_clip(model_name, pretrained="none")
    model, tokenizer = bundle.model, bundle.tokenizer
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    curve, evals, done, spent = [], [], 0, 0.0
    if resume:
        state = _load_state(state_path, identity)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        curve, evals, done, spent = state["curve"], state["evals"], state["step"], state["wall_seconds"]
    elif state_path.exists():  # never overwrite a run in progress by accident
        raise ZegbenchError(f"{state_path} holds a pretraining in progress: pass --resume to continue it, "
                            f"or delete it to start again")
    last = min(steps, stop_after) if stop_after else steps
    loss_fn = ClipLoss()
    pairs = CaptionStream(world.WORLD_VERSION, seed, batch_size, bundle.image_size, done, last)
    loader = torch.utils.data.DataLoader(pairs, batch_size=None, num_workers=workers,
                                         prefetch_factor=4 if workers else None)
    start = time.time() - spent
    bar = tqdm(loader, total=last, initial=done, desc="pretrain", disable=not progress, dynamic_ncols=True)
    for step, (images, captions) in enumerate(bar, start=done):
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
            evals.append(_evaluate(bundle, world, step + 1, time.time() - start))
            model.train()
            bar.write(" ".join(f"{k} {v}" for k, v in evals[-1].items()))
            _save(model, {**settings, "architecture": identity["architecture"], "partial": True, "evals": evals},
                  out)  # a stopped run leaves its latest weights
            _save_state(state_path, model, optimizer, identity, step + 1, curve, evals, time.time() - start)
    if last < steps:  # a session's end, not the run's: leave the state to resume from
        _save_state(state_path, model, optimizer, identity, last, curve, evals, time.time() - start)
        _save(model, {**settings, "architecture": identity["architecture"], "partial": True, "evals": evals}, out)
        return {**settings, "partial": True, "step": last, "loss_every_10_steps": curve, "evals": evals}
    model.eval()
    final = zero_shot_accuracy(bundle)
    record = {
        "model": model_name, "architecture": identity["architecture"], "world_version": world.WORLD_VERSION,
        "steps": steps, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "warmup": warmup, "seed": seed, "wall_seconds": round(time.time() - start, 1),
        "torch": torch.__version__, "open_clip": open_clip.__version__, "threads": torch.get_num_threads(),
        "loss_every_10_steps": curve, "evals": evals,
        "zero_shot": {k: final[k] for k in ("acc_all", "acc_unseen", "acc_seen")},
    }
    if hasattr(world, "CONCEPTS"):
        from zegbench.clip.breadth import measure_breadth

        record["breadth"] = measure_breadth(bundle, stream_seed=seed)
    _save(model, record, out)
    state_path.unlink(missing_ok=True)  # the run is complete: nothing is left to resume
    return record


def stream_digest(world, seed: int) -> str:
    """A fingerprint of ``world``'s caption stream (its first pairs, pixels and text): a resumed run
    must read the stream it started on, so a change to the world's code since is caught."""
    images, captions = caption_batch(world, seed, 0, 32, 32)
    return hashlib.sha1(images.tobytes() + "|".join(captions).encode()).hexdigest()[:12]


def _save_state(path: Path, model, optimizer, identity: dict, step: int, curve: list, evals: list,
                seconds: float) -> None:
    """Everything an exact continuation needs: fp32 weights, AdamW's moments, the step, the record so far."""
    atomic_torch_save({**identity, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "torch_rng": torch.get_rng_state(), "curve": curve, "evals": evals,
                       "wall_seconds": round(seconds, 1)}, path)


def _load_state(path: Path, identity: dict) -> dict:
    """The resume state at ``path``, checked against this invocation's ``identity``."""
    if not path.is_file():
        raise ZegbenchError(f"--resume: no resume state at {path}: start without --resume, or pass the --out "
                            f"of the run to continue")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as err:
        raise ZegbenchError(f"--resume: {path} is unreadable ({type(err).__name__}): delete it and start "
                            f"again without --resume") from None
    settings, name = identity["settings"], identity["settings"]["model"]
    differ = [f"{k}={state['settings'].get(k)!r} (asked {v!r})" for k, v in settings.items()
              if state["settings"].get(k) != v]
    if differ:
        raise ZegbenchError(f"--resume: {path} was made with {', '.join(differ)}: pass the same settings "
                            f"to continue it")
    if state.get("architecture") != identity["architecture"]:
        raise ZegbenchError(f"--resume: {path} was made with another architecture of {name!r} "
                            f"({state.get('architecture')}): restore its model config to continue it")
    if state.get("stream") != identity["stream"]:
        raise ZegbenchError(f"--resume: the caption stream of {name!r} is not the one {path} was trained on "
                            f"(the world's code changed since): resume with the code it started with")
    return state


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
