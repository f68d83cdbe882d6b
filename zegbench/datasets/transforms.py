"""The real datasets' augmentation and test-time resize (mmseg's pipelines, reference section 3).

Training (``TrainTransform``), on image and label jointly with torchvision
transforms v2 (the label is a ``tv_tensors.Mask``: nearest resize, 255 padding):
random rescale to ``scale`` x a ratio in ``ratio_range`` (aspect kept), a random
``crop`` x ``crop`` window in which no single class covers more than
``cat_max_ratio`` (up to 10 tries), horizontal flip, mmseg's photometric
distortion (``PhotoMetricDistortion`` below, image only), padding to the crop
size. Every random draw comes from a seed the caller passes, so data-parallel
ranks can reproduce one process's batches exactly.

As mmcv 1.4.4's ``imrescale`` (cv2 ``INTER_LINEAR``), the rescale does not
antialias (``antialias``); as mmseg's pipelines (``Normalize`` before ``Pad`` with
0), the padding is the normalisation's mean colour (``pad_colour``). Both are
switches in ``TransformSpec`` (docs/fidelity.md, items 11 and 12).

Test time (``rescale_for_testing``): VOC and COCO-Stuff images get a short side of
exactly 512 and a long side that follows (ZegCLIP's ``Resize(min_size=512)``,
``test_resize: short_side``), or fit within (long, short) (``fit``, mmseg's plain
``keep_ratio``); scores go back to the label's size.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torchvision import tv_tensors
from torchvision.transforms import v2

from zegbench.utils.ranges import Count, Fraction, Positive

IGNORE = 255
# mmseg's img_norm_cfg mean (ImageNet's, in 0-255 levels), set in every official dataset config
# (ZegCLIP's configs/_base_/datasets/*.py:4-5, mmseg's Context configs): the colour of the official
# padding, which is 0 after Normalize. Rounded to uint8: (124, 116, 104).
PIPELINE_MEAN = (123.675, 116.28, 103.53)


class TransformSpec(BaseModel):
    """``train_transform`` in a dataset config."""

    model_config = ConfigDict(extra="forbid")
    crop: Count = 512
    scale: tuple[Count, Count] = (2048, 512)  # (long side, short side) bounds before the ratio
    ratio_range: tuple[Positive, Positive] = (0.5, 2.0)  # the rescale's ratio is drawn between the two
    cat_max_ratio: Fraction = 0.75  # the largest share of a crop one class may cover (1: no check)
    photometric: bool = True
    # mean: pad with the pipeline's normalisation mean (PIPELINE_MEAN), what mmseg's Normalize-then-Pad(0)
    # gives; black: uint8 0, zegbench before issue 31 (-2.1 after ImageNet normalisation).
    pad_colour: Literal["mean", "black"] = "mean"
    antialias: bool = False  # mmcv's imrescale (cv2 INTER_LINEAR) does not; true: zegbench before issue 31


def pad_fill(spec: TransformSpec) -> list[int]:
    """The uint8 RGB that ``TrainTransform`` pads images with (labels are padded with 255)."""
    return [round(v) for v in PIPELINE_MEAN] if spec.pad_colour == "mean" else [0, 0, 0]


def fit_scale(h: int, w: int, scale: tuple[int, int]) -> tuple[int, int]:
    """(H, W) rescaled, aspect kept, so the long side fits scale[0] and the short side scale[1] (mmseg keep_ratio)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


class PhotoMetricDistortion(v2.Transform):
    """mmseg 0.x's ``PhotoMetricDistortion`` on uint8 RGB images (labels pass through untouched).

    In order, each step applied with probability 0.5: brightness (add a value
    in [-32, 32]), contrast (multiply by [0.5, 1.5]) here or as the last step
    (a coin decides), saturation (HSV S channel x [0.5, 1.5]), hue (HSV H
    channel + an integer in [-18, 17] OpenCV units of 2 degrees, modulo 180;
    numpy's ``randint`` excludes its upper bound), then contrast if not done
    first. Every step clips to [0, 255] and truncates to uint8 as mmseg does;
    HSV uses OpenCV's 8-bit ranges (H 0..179, S and V 0..255) in float
    arithmetic, rounded, so a value may differ from OpenCV's fixed-point
    tables by one level. Unlike torchvision's ``RandomPhotometricDistort``
    it never permutes the colour channels: CLIP's colour words depend on them.
    Draws come from torch's global generator (``TrainTransform`` seeds it).
    """

    _transformed_types = (tv_tensors.Image,)  # masks and other inputs pass through unchanged

    def __init__(self, brightness_delta: int = 32, contrast_range: tuple[float, float] = (0.5, 1.5),
                 saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18):
        super().__init__()
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    @staticmethod
    def _maybe(low: float, high: float) -> float | None:
        """With probability 0.5 a uniform draw from [low, high], else None (the step is skipped)."""
        if float(torch.rand(1)) >= 0.5:
            return None
        return low + (high - low) * float(torch.rand(1))

    given_params: dict[str, Any] | None = None  # set by GivenDraws: used instead of drawing

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if self.given_params is not None:
            return dict(self.given_params)
        hue = None
        params = {"brightness": self._maybe(-self.brightness_delta, self.brightness_delta),
                  "contrast_first": bool(torch.rand(1) < 0.5),
                  "contrast": self._maybe(*self.contrast_range),
                  "saturation": self._maybe(*self.saturation_range)}
        if float(torch.rand(1)) < 0.5:
            hue = int(torch.randint(-self.hue_delta, self.hue_delta, (1,)))
        return {**params, "hue": hue}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        x = inpt.as_subclass(torch.Tensor).float()
        if params["brightness"] is not None:
            x = _to_uint8_levels(x + params["brightness"])
        if params["contrast"] is not None and params["contrast_first"]:
            x = _to_uint8_levels(x * params["contrast"])
        if params["saturation"] is not None:
            h, s, v = _rgb_to_hsv8(x)
            x = _hsv8_to_rgb(h, _to_uint8_levels(s * params["saturation"]), v)
        if params["hue"] is not None:
            h, s, v = _rgb_to_hsv8(x)
            x = _hsv8_to_rgb((h + params["hue"]) % 180, s, v)
        if params["contrast"] is not None and not params["contrast_first"]:
            x = _to_uint8_levels(x * params["contrast"])
        return tv_tensors.wrap(x.to(torch.uint8), like=inpt)


def _to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 255] and truncate, as numpy's ``astype(np.uint8)`` after ``np.clip`` (kept as float)."""
    return x.clamp(0, 255).floor()


def _rgb_to_hsv8(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB levels [3, H, W] -> OpenCV 8-bit H (0..179), S, V (0..255), rounded, as floats."""
    r, g, b = rgb.unbind(0)
    v, _ = rgb.max(dim=0)
    diff = v - rgb.min(dim=0).values
    safe = diff.clamp(min=1)
    degrees = torch.where(v == r, 60 * (g - b) / safe,
                          torch.where(v == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe))
    degrees = torch.where(diff == 0, torch.zeros_like(degrees), degrees) % 360
    h = torch.round(degrees / 2) % 180
    s = torch.where(v > 0, torch.round(255 * diff / v.clamp(min=1)), torch.zeros_like(v))
    return h, s, v


def _hsv8_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """OpenCV 8-bit H, S, V -> RGB levels [3, H, W], rounded.

    Channel n (5 for R, 3 for G, 1 for B) is v - v s clamp(min(k, 4 - k), 0, 1)
    with k = (n + h / 30) mod 6 (30 OpenCV units = 60 degrees): the usual
    six-sector formula in one expression.
    """
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device).view(3, 1, 1)
    k = (n + h / 30) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return (v - v * (s / 255) * ramp).round().clamp(0, 255)


class SeededDraws:
    """The random decisions of one ``TrainTransform`` call, drawn from a per-image seed.

    ``TrainTransform.apply`` asks for each decision when it needs it, in this order:
    ``ratio``, ``crop_offsets`` (lazily, one (top, left) pair per try), ``flip``,
    ``photometric``. Every draw comes from one ``torch.Generator`` seeded with
    ``seed``; the photometric values come from torch's global generator, seeded from
    it inside ``fork_rng`` (torchvision v2 draws there).
    """

    def __init__(self, spec: TransformSpec, seed: int):
        self.spec = spec
        self.gen = torch.Generator().manual_seed(seed)

    def ratio(self) -> float:
        lo, hi = self.spec.ratio_range
        return lo + (hi - lo) * float(torch.rand(1, generator=self.gen))

    def crop_offsets(self, h: int, w: int) -> Iterator[tuple[int, int]]:
        c = self.spec.crop
        while True:
            top = int(torch.randint(0, max(h - c, 0) + 1, (1,), generator=self.gen))
            left = int(torch.randint(0, max(w - c, 0) + 1, (1,), generator=self.gen))
            yield top, left

    def flip(self) -> bool:
        return float(torch.rand(1, generator=self.gen)) < 0.5

    @contextmanager
    def photometric(self, transform: PhotoMetricDistortion) -> Iterator[None]:
        """While open, ``transform`` draws its values from a seed taken from this generator."""
        # v2 draws from torch's global generator: seed it from ours. devices=[]: fork the CPU
        # generator only; the default also reads every GPU's, which in a loader worker forked from
        # a parent that has initialised CUDA raises "Cannot re-initialize CUDA in forked subprocess".
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen)))
            yield


class GivenDraws(BaseModel):
    """Fixed decisions for ``TrainTransform.apply`` (tests against the official pipeline).

    ``crop_offsets`` are the candidate (top, left) windows in the order they are tried
    (mmseg's ``RandomCrop`` redraws while one class covers ``cat_max_ratio`` or more);
    ``photometric`` is ``PhotoMetricDistortion``'s parameter dict (None: the spec's
    ``photometric: false``, or every step skipped).
    """

    model_config = ConfigDict(extra="forbid")
    ratio: float
    crop_offsets: list[tuple[int, int]]
    flip: bool
    photometric: dict[str, Any] | None = None

    def crop_offsets_for(self, h: int, w: int) -> Iterator[tuple[int, int]]:
        yield from self.crop_offsets
        raise ValueError(f"the given crop offsets ran out ({len(self.crop_offsets)} tried)")


class _Given:
    """``GivenDraws`` behind ``SeededDraws``'s interface."""

    def __init__(self, given: GivenDraws):
        self.given = given

    def ratio(self) -> float:
        return self.given.ratio

    def crop_offsets(self, h: int, w: int) -> Iterator[tuple[int, int]]:
        return self.given.crop_offsets_for(h, w)

    def flip(self) -> bool:
        return self.given.flip

    @contextmanager
    def photometric(self, transform: PhotoMetricDistortion) -> Iterator[None]:
        """While open, ``transform`` takes the given values instead of drawing them."""
        transform.given_params = self.given.photometric or dict(_NO_PHOTOMETRIC_STEP)
        try:
            yield
        finally:
            transform.given_params = None


_NO_PHOTOMETRIC_STEP = {"brightness": None, "contrast_first": True, "contrast": None, "saturation": None, "hue": None}
# mmseg 0.24's RandomCrop: a first window and up to 10 redraws while one class covers cat_max_ratio or
# more; the 11th is kept whatever it holds (docs/fidelity.md, item 19).
CROP_TRIES = 11
# What the training transform computes, beyond its settings: part of a real dataset's fingerprint, so
# a change to it gives new run folders. 2: the photometric distortion applied (drawn, never applied, in
# 1) and mmseg's 11 crop tries (10 in 1); 2026-12-06.
TRAIN_TRANSFORM_VERSION = 2


class TrainTransform:
    """Image uint8 [H, W, 3] and label int [H, W] -> the augmented crop of both (see module docstring).

    ``__call__(image, label, seed)`` draws every decision from the seed (``SeededDraws``);
    ``apply(image, label, draws)`` runs the same code on given decisions (``GivenDraws``).
    """

    def __init__(self, spec: TransformSpec):
        self.spec = spec
        self.photometric = PhotoMetricDistortion()

    def _crop_box(self, label: torch.Tensor, offsets: Iterator[tuple[int, int]]) -> tuple[int, int]:
        c = self.spec.crop
        if self.spec.cat_max_ratio >= 1:  # mmseg checks nothing then: the first window
            return next(offsets)
        top = left = 0
        for _ in range(CROP_TRIES):  # mmseg's cat_max_ratio: avoid crops that are almost one class
            top, left = next(offsets)
            window = label[..., top:top + c, left:left + c]
            values, counts = torch.unique(window[window != IGNORE], return_counts=True)
            if len(values) > 1 and counts.max() / counts.sum() < self.spec.cat_max_ratio:
                break
        return top, left

    def __call__(self, image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return self.apply(image, label, SeededDraws(self.spec, seed))

    def apply(self, image: np.ndarray, label: np.ndarray,
              draws: SeededDraws | GivenDraws) -> tuple[np.ndarray, np.ndarray]:
        """The transform with its decisions taken from ``draws`` (asked in the order ``SeededDraws`` lists)."""
        if isinstance(draws, GivenDraws):
            draws = _Given(draws)
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(label)).long()[None])  # [1, H, W]
        ratio = draws.ratio()
        size = fit_scale(*img.shape[-2:], (int(self.spec.scale[0] * ratio), int(self.spec.scale[1] * ratio)))
        img = v2.functional.resize(img, list(size), antialias=self.spec.antialias)
        mask = v2.functional.resize(mask, list(size))  # nearest: cv2's INTER_NEAREST picks the same pixels
        top, left = self._crop_box(mask, draws.crop_offsets(*size))
        c = self.spec.crop
        img, mask = img[..., top:top + c, left:left + c], mask[..., top:top + c, left:left + c]
        if draws.flip():
            img, mask = v2.functional.horizontal_flip(img), v2.functional.horizontal_flip(mask)
        if self.spec.photometric:
            # Image again: slicing the crop left a plain tensor, which this v2 transform (Image only)
            # passes through untouched; before 2026-12-06 the distortion was drawn but never applied.
            with draws.photometric(self.photometric):
                img = self.photometric(tv_tensors.Image(img))
        pad_h, pad_w = c - img.shape[-2], c - img.shape[-1]
        if pad_h > 0 or pad_w > 0:
            img = v2.functional.pad(img, [0, 0, pad_w, pad_h], fill=pad_fill(self.spec))
            mask = v2.functional.pad(mask, [0, 0, pad_w, pad_h], fill=IGNORE)
        return img.permute(1, 2, 0).numpy(), mask[0].numpy()


def short_side_scale(h: int, w: int, short: int) -> tuple[int, int]:
    """(H, W) rescaled, aspect kept, to a short side of exactly ``short``, the long side uncapped.

    mmseg 0.24's ``Resize(keep_ratio=True, min_size=short)`` with a (long, short) scale whose
    short bound is ``short``: it replaces the scale by (short x long / short, short) and lets
    mmcv's ``rescale_size`` fit the image in it, so the long bound never binds. The factor and
    rounding are mmcv's (``int(x * factor + 0.5)``).
    """
    bound = (short * h / w, short) if h > w else (short, short * w / h)
    factor = min(max(bound) / max(h, w), min(bound) / min(h, w))
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


def rescale_for_testing(images: torch.Tensor, scale: tuple[int, int] | None,
                        mode: Literal["short_side", "fit"] = "short_side") -> torch.Tensor:
    """Normalised images [B, 3, H, W] rescaled for evaluation (``scale`` None: unchanged).

    ``short_side``: the short side becomes ``min(scale)``, the long side follows
    (``short_side_scale``); ``fit``: the image fits within (long, short) = ``scale``.
    """
    if scale is None:
        return images
    h, w = images.shape[-2:]
    size = short_side_scale(h, w, min(scale)) if mode == "short_side" else fit_scale(h, w, tuple(scale))
    if size == tuple(images.shape[-2:]):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)
