"""A cheap proxy for G4: how usable are a frozen in-house CLIP's patch features for dense prediction?

G4 compares training-free dense matching with a trained oracle, which costs a
training run. Choosing a CLIP design needs something cheaper: the MaskCLIP read-out
(``zegbench.methods.maskclip``: the last block's value path, as the world recipe
builds it) scored pixel by pixel on labelled scenes of the world, against the
same CLIP's image-level zero-shot top-1 on single objects of the same classes.
A CLIP whose patches speak as well as its pooled image has a ratio near 1; one
whose knowledge lives only in its pooled token (world v2's: MaskCLIP/oracle 0.19)
has a ratio far below.
"""
from __future__ import annotations

import numpy as np
import torch

from zegbench.clip.captions import to_model_input
from zegbench.clip.loading import load_clip
from zegbench.clip.zero_shot import zero_shot_accuracy
from zegbench.datasets.catalog import load_dataset_info, world_spec
from zegbench.datasets.generate import STREAMS
from zegbench.methods.maskclip import MaskCLIP


@torch.no_grad()
def dense_proxy(dataset: str, clip_weights: str, scenes: int = 200, per_class: int = 50,
                batch_size: int = 50) -> dict:
    """Per-pixel zero-shot top-1 of frozen MaskCLIP over the world's classes on its first ``scenes`` val
    scenes (drawn in memory, as ``world generate`` would), beside image-level zero-shot top-1 over the
    same classes (``per_class`` held-out single objects each, as ``clip zero-shot``).

    Pixels labelled 255 (background, void) are not scored; the argmax runs over every class.
    """
    info = load_dataset_info(dataset)
    spec = world_spec(info)
    world = spec.generator
    recipe = {**info.recipe.method, **info.recipe.per_class.get("maskclip", {})}
    model = MaskCLIP(clip=world.CLIP_MODEL, clip_weights=clip_weights, image_size=spec.image_size,
                     templates=recipe.get("templates", "single"), normalization=recipe.get("normalization", "clip"))
    model.eval()
    classes = list(info.classes)
    correct = total = 0
    class_hits = np.zeros((len(classes), 2))  # per class: pixels right, pixels scored
    for start in range(0, scenes, batch_size):
        drawn = [spec.render_scene(world.sample_rng(spec.seed, STREAMS["val"], i))
                 for i in range(start, min(start + batch_size, scenes))]
        images = np.stack([img for img, _, _ in drawn])
        labels = torch.from_numpy(np.stack([label for _, label, _ in drawn]))
        pred = model.predict(to_model_input(images, model.mean, model.std), classes, []).argmax(1)
        scored = labels != 255
        hits = (pred == labels) & scored
        correct += int(hits.sum())
        total += int(scored.sum())
        for c in range(len(classes)):
            class_hits[c] += [int((hits & (labels == c)).sum()), int((labels == c).sum())]
    image = zero_shot_accuracy(load_clip(world.CLIP_MODEL, clip_weights), per_class=per_class)
    pixel = correct / max(total, 1)
    unseen = [classes.index(c) for c in info.unseen]
    return {"pixel_top1": round(pixel, 4),
            "pixel_top1_unseen": round(float(class_hits[unseen, 0].sum() / max(class_hits[unseen, 1].sum(), 1)), 4),
            "image_top1": round(image["acc_all"], 4),
            "pixel_to_image": round(pixel / image["acc_all"], 4) if image["acc_all"] else None,
            "scenes": scenes, "pixels": total}

