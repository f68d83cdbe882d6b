"""Image-level zero-shot classification of held-out world objects.

The in-house CLIP's report card: does it name every class, in particular the
segmentation-unseen ones, from its pretraining alone?
"""
from __future__ import annotations

import torch

from zegbench.clip.captions import to_model_input, zero_shot_images
from zegbench.clip.loading import ClipBundle
from zegbench.clip.templates import SINGLE
from zegbench.clip.text_embeddings import encode_class_names
from zegbench.datasets import worlds

EVAL_SEED = 12345


@torch.no_grad()
def zero_shot_accuracy(bundle: ClipBundle, per_class: int = 50, seed: int = EVAL_SEED,
                       batch_size: int = 250) -> dict:
    """Top-1 accuracy over all world classes for ``per_class`` held-out images per class.

    The world is the one whose captions trained ``bundle`` (the default world for
    another CLIP).

    Returns fractions ``acc_all``, ``acc_seen``, ``acc_unseen`` and ``per_class``
    (class name -> accuracy). Images are drawn at the model's input size.
    """
    world = worlds.for_clip(bundle.name) or worlds.generator()
    model = bundle.model
    device = next(model.parameters()).device
    text = encode_class_names(bundle, list(world.CLASS_NAMES), SINGLE).to(device)
    images, labels = zero_shot_images(world, seed, per_class, bundle.image_size)
    preds = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start:start + batch_size], bundle.mean, bundle.std).to(device)
        feats = torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1)
        preds.append((feats @ text.T).argmax(dim=-1).cpu())
    correct = (torch.cat(preds).numpy() == labels)
    unseen = [world.CLASS_NAMES.index(c) for c in world.UNSEEN_CLASSES]
    is_unseen = torch.isin(torch.as_tensor(labels), torch.tensor(unseen)).numpy()
    per = {name: float(correct[labels == c].mean()) for c, name in enumerate(world.CLASS_NAMES)}
    return {"acc_all": float(correct.mean()), "acc_seen": float(correct[~is_unseen].mean()),
            "acc_unseen": float(correct[is_unseen].mean()), "per_class": per}
