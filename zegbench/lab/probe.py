"""Is the world faithful? Frozen vs fine-tuned CLIP under seen-class training.

A deliberately simple patch-text matcher (CLIP patch embeddings through a
learned linear adapter, cosine against frozen class text embeddings, softmax
cross-entropy over the seen classes, 255 and unseen pixels ignored) is trained
on seen classes with the image encoder either frozen or fine-tuned. Reported:
the encoder's image-level zero-shot accuracy on unseen classes before and after
(knowledge kept or lost) and the matcher's mIoU on seen and unseen classes.
In the real benchmark fine-tuning erodes what CLIP knows about unseen classes;
a faithful world shows the same.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from zegbench.clip.captions import to_model_input
from zegbench.clip.loading import load_clip
from zegbench.clip.text_embeddings import class_embeddings
from zegbench.clip.zero_shot import zero_shot_accuracy
from zegbench.datasets.catalog import build_dataset, load_dataset_info, world_spec
from zegbench.engine.metrics import ConfusionMatrix, summarize
from zegbench.engine.train import seen_label_map
from zegbench.methods.encoder import PromptedEncoder


def _load_split(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*[dataset[i][:2] for i in range(len(dataset))], strict=True)
    return np.stack(images), np.stack(labels)


def _pixel_logits(encoder, adapter, images, text, bundle, scale):
    _, patches, grid = encoder(to_model_input(images, bundle.mean, bundle.std))
    feats = F.normalize(adapter(patches), dim=-1)
    logits = (scale * feats @ text.T).transpose(1, 2).reshape(len(images), -1, *grid)  # [B, C, h, w]
    return F.interpolate(logits, size=images.shape[1:3], mode="bilinear", align_corners=False)


def _val_confusion(encoder, adapter, val_x, val_y, text, bundle, scale) -> ConfusionMatrix:
    """The confusion matrix of the probe's argmax over ``text``'s classes on the val split."""
    cm = ConfusionMatrix(len(text))
    with torch.no_grad():
        for s in range(0, len(val_x), 50):
            logits = _pixel_logits(encoder, adapter, val_x[s:s + 50], text, bundle, scale)
            cm.update(logits.argmax(1), torch.from_numpy(val_y[s:s + 50]))
    return cm


def run_probe(tuning: str = "frozen", steps: int = 300, batch_size: int = 16, lr: float = 1e-3,
              encoder_lr: float = 1e-4, seed: int = 0, dataset: str = "world", progress: bool = False,
              classes: str = "seen", eval_at: tuple[int, ...] = (), knowledge: bool = True) -> dict:
    """Train the matcher with the encoder ``frozen`` or ``finetune``d; return the measurements.

    ``classes="seen"`` trains on seen classes only (the zero-shot setting);
    ``"all"`` trains on every class, unseen ones included (an oracle).
    ``eval_at``: also measure val mIoU after these steps (``mIoU_at``). The learning rate is
    constant and the batches are drawn in the same order, so the value at step k is what a
    k-step probe would measure. ``knowledge=False`` skips the zero-shot checks before and after
    (their keys are then None).
    """
    if classes not in ("seen", "all"):
        raise ValueError(f"classes must be 'seen' or 'all', not {classes!r}")
    torch.manual_seed(seed)
    info = load_dataset_info(dataset)
    train_x, train_y = _load_split(build_dataset(dataset, "train", progress=progress))
    val_x, val_y = _load_split(build_dataset(dataset, "val"))
    bundle = load_clip(world_spec(info).generator.CLIP_MODEL, image_size=train_x.shape[1])
    model = bundle.model
    text_all = class_embeddings(bundle, list(info.classes))
    trained_ids = torch.tensor(info.seen_ids if classes == "seen" else range(len(info.classes)))
    # Seen-class training ignores unseen pixels and background; the oracle ignores background only.
    to_trained = seen_label_map(info) if classes == "seen" else torch.arange(256)
    no_check = {"acc_all": None, "acc_unseen": None}
    before = zero_shot_accuracy(bundle, per_class=30) if knowledge else no_check

    dim = text_all.shape[1]
    adapter = torch.nn.Linear(dim, dim)
    with torch.no_grad():
        adapter.weight.copy_(torch.eye(dim))
        adapter.bias.zero_()
    scale = torch.nn.Parameter(torch.tensor(10.0))
    if tuning not in ("frozen", "finetune"):
        raise ValueError(f"tuning must be 'frozen' or 'finetune', not {tuning!r}")
    model.requires_grad_(False)
    encoder = PromptedEncoder(model.visual, tuning)
    groups = [{"params": [*adapter.parameters(), scale], "lr": lr}]
    if tuning == "finetune":
        groups.append({"params": list(model.visual.parameters()), "lr": encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    start = time.time()
    model.visual.train(tuning == "finetune")
    miou_at, eval_seconds = {}, 0.0
    for step in range(1, steps + 1):
        idx = rng.choice(len(train_x), batch_size, replace=False)
        target = to_trained[torch.from_numpy(train_y[idx])]
        logits = _pixel_logits(encoder, adapter, train_x[idx], text_all[trained_ids], bundle, scale)
        loss = F.cross_entropy(logits, target, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step in eval_at and step < steps:
            eval_start = time.time()
            model.visual.train(False)
            miou_at[step] = summarize(_val_confusion(encoder, adapter, val_x, val_y, text_all, bundle, scale),
                                      info.classes, info.unseen_ids)["mIoU"]
            model.visual.train(tuning == "finetune")
            eval_seconds += time.time() - eval_start
    train_seconds = time.time() - start - eval_seconds

    model.eval()
    cm = _val_confusion(encoder, adapter, val_x, val_y, text_all, bundle, scale)
    with torch.no_grad():
        after = zero_shot_accuracy(bundle, per_class=30) if knowledge else no_check
    metrics = summarize(cm, info.classes, info.unseen_ids)
    miou_at[steps] = metrics["mIoU"]
    # Where do unseen pixels go? The share predicted as some seen class.
    m = cm.matrix
    unseen = list(info.unseen_ids)
    to_seen_share = float(m[unseen][:, list(info.seen_ids)].sum() / m[unseen].sum())
    return {
        "tuning": tuning, "classes": classes, "steps": steps, "batch_size": batch_size, "seed": seed,
        "train_seconds": round(train_seconds, 1),
        "zero_shot_unseen_before": before["acc_unseen"], "zero_shot_unseen_after": after["acc_unseen"],
        "zero_shot_all_after": after["acc_all"],
        "mIoU": metrics["mIoU"], "mIoU_seen": metrics["mIoU_seen"], "mIoU_unseen": metrics["mIoU_unseen"],
        "hIoU": metrics["hIoU"], "unseen_pixels_to_seen": round(to_seen_share, 4),
        "image_size": int(train_x.shape[1]), "patch_size": int(model.visual.patch_size[0]),
        "mIoU_at": {k: miou_at[k] for k in sorted(miou_at) if k in eval_at or k == steps},
    }
