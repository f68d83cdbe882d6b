"""The real datasets' photometric distortion is mmseg's PhotoMetricDistortion: its ranges, no channel swaps."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from zegbench.datasets.transforms import PhotoMetricDistortion, TrainTransform, TransformSpec

NO_STEP = {"brightness": None, "contrast": None, "contrast_first": True, "saturation": None, "hue": None}


def _apply(rgb: tuple[int, int, int], **steps) -> tuple[int, int, int]:
    """One pixel through PhotoMetricDistortion with the given steps (the others skipped)."""
    image = tv_tensors.Image(torch.tensor(rgb, dtype=torch.uint8).view(3, 1, 1))
    out = PhotoMetricDistortion().transform(image, {**NO_STEP, **steps})
    assert isinstance(out, tv_tensors.Image) and out.dtype == torch.uint8
    return tuple(int(c) for c in out.view(3))


def test_a_red_image_stays_red_through_the_training_transform():
    # torchvision's RandomPhotometricDistort permuted the channels with p=0.5 (36 of these 100 seeds
    # turned the image non-red); mmseg's distortion never swaps channels.
    red = np.zeros((60, 90, 3), np.uint8)
    red[..., 0] = 255
    label = np.zeros((60, 90), np.int64)
    transform = TrainTransform(TransformSpec(crop=48, scale=(90, 60), ratio_range=(1.0, 1.0)))
    not_red = 0
    for seed in range(100):
        image, _ = transform(red, label, seed)
        r, g, b = (image[..., c].astype(int) for c in range(3))
        not_red += not ((r > g) & (r > b)).all()
    assert not_red == 0


def test_each_step_as_mmseg_computes_it():
    assert _apply((100, 150, 200), brightness=31.7) == (131, 181, 231)  # additive, truncated
    assert _apply((250, 10, 0), brightness=-20.5) == (229, 0, 0)  # clipped at 0 and 255
    assert _apply((100, 150, 200), contrast=1.5) == (150, 225, 255)  # a plain multiply, clipped
    assert _apply((100, 150, 201), contrast=0.5) == (50, 75, 100)
    assert _apply((128, 128, 128), hue=17, saturation=1.5) == (128, 128, 128)  # grey has no hue or saturation
    # Saturation x0.5 and a hue shift of 10 OpenCV units (20 degrees), against colorsys.
    h, s, v = colorsys.rgb_to_hsv(200 / 255, 100 / 255, 50 / 255)
    expected = colorsys.hsv_to_rgb(h, int(round(s * 255) * 0.5) / 255, v)
    assert _apply((200, 100, 50), saturation=0.5) == pytest.approx(tuple(255 * c for c in expected), abs=1.5)
    shifted = colorsys.hsv_to_rgb((round(h * 180) + 10) % 180 / 180, s, v)
    assert _apply((200, 100, 50), hue=10) == pytest.approx(tuple(255 * c for c in shifted), abs=2.5)
    # Contrast before or after saturation and hue (mmseg's `mode`): the results differ.
    assert _apply((200, 100, 50), contrast=1.5, saturation=0.5, contrast_first=True) != \
        _apply((200, 100, 50), contrast=1.5, saturation=0.5, contrast_first=False)


def test_draws_cover_mmseg_ranges_each_half_the_time():
    torch.manual_seed(0)
    t = PhotoMetricDistortion()
    draws = [t.make_params([]) for _ in range(2000)]
    for key, low, high in (("brightness", -32, 32), ("contrast", 0.5, 1.5), ("saturation", 0.5, 1.5), ("hue", -18, 17)):
        values = [d[key] for d in draws if d[key] is not None]
        assert 0.45 < len(values) / len(draws) < 0.55, key
        assert low <= min(values) and max(values) <= high, key
        assert min(values) < low + 0.05 * (high - low) and max(values) > high - 0.05 * (high - low), key
    assert all(isinstance(d["hue"], int) for d in draws if d["hue"] is not None)  # OpenCV's integer hue
    assert 0.45 < np.mean([d["contrast_first"] for d in draws]) < 0.55


def test_labels_pass_through_untouched():
    mask = tv_tensors.Mask(torch.arange(12).view(1, 3, 4))
    image = tv_tensors.Image(torch.full((3, 3, 4), 90, dtype=torch.uint8))
    torch.manual_seed(3)
    out_image, out_mask = PhotoMetricDistortion()(image, mask)
    assert torch.equal(out_mask, mask)
