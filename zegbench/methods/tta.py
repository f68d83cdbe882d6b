"""Test-time augmentation: scores averaged over rescaled and flipped views, as mmseg's ``aug_test``.

Papers and mmsegmentation's model zoo report single-scale and multi-scale + flip
mIoU side by side. ZegCLIP's reported numbers are single scale (its ``test.py``
has ``--aug-test``, unused for the paper), so ``none`` is the default and any
other mode is a row of its own.

Each view is the image resized by a ratio (bilinear, the rounded size), and its
horizontal mirror when flipping. The method scores a view the way it scores any
image (whole or sliding windows), the scores are resized back to the image's
size and flipped back, and the views' scores are averaged (mmseg averages the
per-class softmax outputs the same way).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

TTA_MODES = ("none", "flip", "ms_flip")
# mmseg's multi-scale test ratios (its configs' ``img_ratios``), applied to the test scale.
MS_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def views(mode: str, ratios: tuple[float, ...] = MS_RATIOS) -> list[tuple[float, bool]]:
    """The (ratio, flipped) views of ``mode``."""
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, not {mode!r}")
    if mode == "none":
        return [(1.0, False)]
    return [(ratio, flipped) for ratio in (ratios if mode == "ms_flip" else (1.0,)) for flipped in (False, True)]


def augmented_scores(score: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str,
                     ratios: tuple[float, ...] = MS_RATIOS) -> torch.Tensor:
    """Per-class scores [B, C, H, W] of ``images`` [B, 3, H, W], averaged over the views of ``mode``.

    ``score`` maps images of any size to scores at that size. With ``none`` it is
    called once on the images themselves, so the result is exactly the method's
    single-scale scores.
    """
    height, width = images.shape[-2:]
    total = None
    chosen = views(mode, ratios)
    for ratio, flipped in chosen:
        size = (max(round(height * ratio), 1), max(round(width * ratio), 1))
        view = images if size == (height, width) else F.interpolate(images, size=size, mode="bilinear",
                                                                     align_corners=False)
        scores = score(view.flip(-1) if flipped else view)
        if flipped:
            scores = scores.flip(-1)
        if scores.shape[-2:] != (height, width):
            scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
        total = scores if total is None else total + scores
    return total if len(chosen) == 1 else total / len(chosen)
