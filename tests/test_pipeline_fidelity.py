"""The data pipeline's switches of issue 31 (docs/fidelity.md, items 11-13): padding colour, the training
rescale's antialiasing and the test rescale, each against the official pipeline's behaviour."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zegbench.datasets.catalog import load_dataset_info
from zegbench.datasets.transforms import (
    PIPELINE_MEAN,
    TrainTransform,
    TransformSpec,
    fit_scale,
    rescale_for_testing,
    short_side_scale,
)
from zegbench.methods.base import IMAGENET_MEAN, IMAGENET_STD


def _padded(spec: TransformSpec) -> tuple[np.ndarray, np.ndarray]:
    """A 30x45 image rescaled to 15x22 and padded to 32: rows 15.. and columns 22.. are padding."""
    image = np.full((30, 45, 3), 200, np.uint8)
    label = np.zeros((30, 45), np.int64)
    label[:, 20:] = 1
    return TrainTransform(spec)(image, label, seed=3)


def test_padding_is_the_normalisation_mean_so_it_normalises_to_zero_as_mmseg_pads_after_normalize():
    assert TransformSpec().pad_colour == "mean"  # the official behaviour is the default
    spec = TransformSpec(crop=32, scale=(45, 30), ratio_range=(0.5, 0.5), photometric=False)
    img, lab = _padded(spec)
    assert (lab[15:] == 255).all() and (lab[:, 22:] == 255).all()
    pad = img[20:, 25:].reshape(-1, 3)
    assert (pad == [124, 116, 104]).all()
    # After ImageNet normalisation (ZegCLIP's on the real recipes) the padding is within half a uint8
    # level of mmseg's 0: the closest any uint8 padding can get.
    normalised = (pad[0] / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.abs(normalised).max() < 0.0085
    assert np.allclose(np.array(PIPELINE_MEAN) / 255, IMAGENET_MEAN)
    black, _ = _padded(spec.model_copy(update={"pad_colour": "black"}))
    assert (black[20:, 25:] == 0).all() and (black[:15, :22] == img[:15, :22]).all()


def _stripes() -> np.ndarray:
    """64x128, vertical stripes two columns wide: 0, 0, 255, 255, ..."""
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, 2::4] = image[:, 3::4] = 255
    return image


@pytest.mark.parametrize("antialias", [False, True])
def test_training_rescale_is_cv2_bilinear_without_antialiasing(antialias):
    # An exact 2x reduction: cv2's INTER_LINEAR (mmcv's imrescale) samples at 2x + 0.5, the mean of two
    # columns of one stripe, so only 0 and 255 survive; an antialiased filter spans 4 columns and blurs them.
    spec = TransformSpec(crop=32, scale=(64, 32), ratio_range=(1.0, 1.0), photometric=False, antialias=antialias)
    assert fit_scale(64, 128, spec.scale) == (32, 64)
    img, _ = TrainTransform(spec)(_stripes(), np.zeros((64, 128), np.int64), seed=0)
    values = set(np.unique(img).tolist())
    if antialias:
        assert values - {0, 255}
    else:
        assert values == {0, 255}
    assert TransformSpec().antialias is False  # the official behaviour is the default


def test_test_rescale_sets_the_short_side_and_leaves_the_long_side_uncapped():
    # mmseg 0.24 Resize(keep_ratio=True, min_size=512) under img_scale (2048, 512): a 100 x 4000 panorama
    # becomes 512 x 20480, not 51 x 2048; an ordinary VOC image is the same either way.
    assert short_side_scale(100, 4000, 512) == (512, 20480)
    assert fit_scale(100, 4000, (2048, 512)) == (51, 2048)
    assert short_side_scale(4000, 100, 512) == (20480, 512)
    assert short_side_scale(375, 500, 512) == fit_scale(375, 500, (2048, 512)) == (512, 683)
    assert short_side_scale(600, 600, 512) == (512, 512)
    images = torch.randn(1, 3, 4, 100)
    assert rescale_for_testing(images, (64, 16)).shape[-2:] == (16, 400)
    assert rescale_for_testing(images, (64, 16), "fit").shape[-2:] == (3, 64)
    assert rescale_for_testing(images, None) is images


def test_the_real_recipes_name_the_official_test_rescale_and_their_hashes_cover_the_transforms(monkeypatch):
    from zegbench.engine import identity

    for name in ("voc12", "coco_stuff164k"):  # ZegCLIP's test pipelines: Resize(min_size=512)
        assert load_dataset_info(name).test_resize == "short_side"
    for name in ("pascal_context59", "pascal_context60"):  # mmseg's Context pipelines: no min_size
        assert load_dataset_info(name).test_resize == "fit"
    voc = load_dataset_info("voc12")
    before = identity.dataset_fingerprint(voc)
    # A transform default changed in code, not in the YAML, still changes the fingerprint.
    changed = voc.model_copy(update={"train_transform": voc.train_transform.model_copy(update={"antialias": True})})
    assert identity.dataset_fingerprint(changed) != before
    assert identity.dataset_fingerprint(voc.model_copy(update={"test_resize": "fit"})) != before
