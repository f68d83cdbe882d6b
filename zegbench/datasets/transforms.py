"""The real datasets' augmentation and test-time resize (mmseg's pipelines, reference section 3).

Training (``TrainTransform``), on image and label jointly with torchvision
transforms v2 (the label is a ``tv_tensors.Mask``: nearest resize, 255 padding):
random rescale to ``scale`` x a ratio in ``ratio_range`` (aspect kept), a random
``crop`` x ``crop`` window in which no single class covers more than
``cat_max_ratio`` (up to 10 tries), horizontal flip, photometric distortion,
padding to the crop size. Every random draw comes from a seed the caller passes,
so data-parallel ranks can reproduce one process's batches exactly.

Test time (``rescale_for_testing``): the image is rescaled to fit ``scale`` (VOC: short
side 512, long side at most 2048); scores go back to the label's size.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torchvision import tv_tensors
from torchvision.transforms import v2

IGNORE = 255


class TransformSpec(BaseModel):
    """``train_transform`` in a dataset config."""

    model_config = ConfigDict(extra="forbid")
    crop: int = 512
    scale: tuple[int, int] = (2048, 512)  # (long side, short side) bounds before the ratio
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    photometric: bool = True


def fit_scale(h: int, w: int, scale: tuple[int, int]) -> tuple[int, int]:
    """(H, W) rescaled, aspect kept, so the long side fits scale[0] and the short side scale[1] (mmseg keep_ratio)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


class TrainTransform:
    """Image uint8 [H, W, 3] and label int [H, W] -> the augmented crop of both (see module docstring)."""

    def __init__(self, spec: TransformSpec):
        self.spec = spec
        self.photometric = v2.RandomPhotometricDistort(brightness=(0.875, 1.125), contrast=(0.5, 1.5),
                                                       saturation=(0.5, 1.5), hue=(-0.05, 0.05), p=0.5)

    def _crop_box(self, label: torch.Tensor, gen: torch.Generator) -> tuple[int, int]:
        h, w = label.shape[-2:]
        c = self.spec.crop
        top = left = 0
        for _ in range(10):  # mmseg's cat_max_ratio: avoid crops that are almost one class
            top = int(torch.randint(0, max(h - c, 0) + 1, (1,), generator=gen))
            left = int(torch.randint(0, max(w - c, 0) + 1, (1,), generator=gen))
            window = label[..., top:top + c, left:left + c]
            values, counts = torch.unique(window[window != IGNORE], return_counts=True)
            if len(values) > 1 and counts.max() / counts.sum() < self.spec.cat_max_ratio:
                break
        return top, left

    def __call__(self, image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        gen = torch.Generator().manual_seed(seed)
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(label)).long()[None])  # [1, H, W]
        lo, hi = self.spec.ratio_range
        ratio = lo + (hi - lo) * float(torch.rand(1, generator=gen))
        size = fit_scale(*img.shape[-2:], (int(self.spec.scale[0] * ratio), int(self.spec.scale[1] * ratio)))
        img, mask = v2.functional.resize(img, list(size), antialias=True), v2.functional.resize(mask, list(size))
        top, left = self._crop_box(mask, gen)
        c = self.spec.crop
        img, mask = img[..., top:top + c, left:left + c], mask[..., top:top + c, left:left + c]
        if float(torch.rand(1, generator=gen)) < 0.5:
            img, mask = v2.functional.horizontal_flip(img), v2.functional.horizontal_flip(mask)
        if self.spec.photometric:
            with torch.random.fork_rng():  # v2 draws from torch's global generator: seed it from ours
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                img = self.photometric(img)
        pad_h, pad_w = c - img.shape[-2], c - img.shape[-1]
        if pad_h > 0 or pad_w > 0:
            img = v2.functional.pad(img, [0, 0, pad_w, pad_h], fill=0)
            mask = v2.functional.pad(mask, [0, 0, pad_w, pad_h], fill=IGNORE)
        return img.permute(1, 2, 0).numpy(), mask[0].numpy()


def rescale_for_testing(images: torch.Tensor, scale: tuple[int, int] | None) -> torch.Tensor:
    """Normalised images [B, 3, H, W] rescaled to fit ``scale`` (None: unchanged)."""
    if scale is None:
        return images
    size = fit_scale(*images.shape[-2:], tuple(scale))
    if size == tuple(images.shape[-2:]):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)
