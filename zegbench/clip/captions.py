"""Image-caption pairs drawn from the world: the in-house CLIP's "web" pretraining data.

Captions name every class, seen and unseen alike, as web-scale captions name
"sheep": the segmentation split is invisible here. What a caption says is the
world's own (``describe``, ``single_caption`` of its generator module). Most images hold one object;
a quarter hold two, captioned with both, so the image embedding learns to speak
for several objects at once (what ZegCLIP's relation descriptor relies on).

A broad world (v3: its module has ``plan_example``) plans each example (objects and caption)
before drawing it: its batch draws main surfaces over all its ``CONCEPTS``, and
``caption_plans`` gives the stream's captions without drawing a pixel.
"""
from __future__ import annotations

import numpy as np
import torch

STREAM_PRETRAIN = 2
STREAM_ZERO_SHOT = 3
PAIR_FRACTION = 0.25


def caption_batch(world, seed: int, index: int, batch_size: int, image_size: int) -> tuple[np.ndarray, list[str]]:
    """Batch ``index`` of ``world``'s pretraining stream: uint8 images [B, H, W, 3] and captions.

    ``world`` is a generator module (``zegbench.datasets.worlds``). Single-object
    images draw their (class, nuisance) pairs without replacement within a batch,
    so the contrastive loss rarely sees two identical captions as negatives of
    each other.
    """
    if hasattr(world, "plan_example"):
        plans = caption_plans(world, seed, index, batch_size)
        return np.stack([world.draw_plan(plan, image_size, rng) for plan, rng in plans]), [p.caption for p, _ in plans]
    batch_rng = world.sample_rng(seed, STREAM_PRETRAIN, index)
    combos = world.caption_combos()
    order = batch_rng.permutation(len(combos))
    images, captions = [], []
    for i in range(batch_size):
        rng = world.sample_rng(seed, STREAM_PRETRAIN, index * batch_size + i + 1_000_000)
        if rng.uniform() < PAIR_FRACTION:
            img, _, objects = world.render_scene(image_size, rng, num_objects=(2, 2), radius_range=(0.16, 0.26))
            captions.append(" and ".join(f"a {world.describe(o, rng)}" for o in objects))
        else:
            class_name, nuisance = combos[order[i % len(combos)]]
            img, obj = world.render_single(image_size, rng, class_name, nuisance)
            captions.append(world.single_caption(obj, rng))
        images.append(img)
    return np.stack(images), captions


def caption_plans(world, seed: int, index: int, batch_size: int) -> list[tuple[object, np.random.Generator]]:
    """Batch ``index`` of a broad world's stream, planned but not drawn: (plan, the generator that draws it).

    Main surfaces are drawn without replacement within a batch from a permutation of the
    world's ``CONCEPTS``, so the contrastive loss rarely sees one surface twice as a negative, and
    over the stream every concept is a main surface equally often.
    """
    order = world.sample_rng(seed, STREAM_PRETRAIN, index).permutation(len(world.CONCEPTS))
    plans = []
    for i in range(batch_size):
        rng = world.sample_rng(seed, STREAM_PRETRAIN, index * batch_size + i + 1_000_000)
        plans.append((world.plan_example(rng, world.CONCEPTS[order[i % len(order)]]), rng))
    return plans


def zero_shot_images(world, seed: int, per_class: int, image_size: int,
                     names: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out single-object images of ``world`` (a stream pretraining never draws): images and class ids.

    ``names``: the surfaces to draw, by default the world's classes (a broad world: any of its concepts).
    """
    images, labels = [], []
    for c, name in enumerate(names or world.CLASS_NAMES):
        for i in range(per_class):
            img, _ = world.render_single(image_size, world.sample_rng(seed, STREAM_ZERO_SHOT, c * per_class + i), name)
            images.append(img)
            labels.append(c)
    return np.stack(images), np.array(labels)


def to_model_input(images: np.ndarray | torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W] with the model's mean and std."""
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s
