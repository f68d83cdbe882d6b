"""zegbench's training transform against mmseg 0.24's pipeline as ZegCLIP's VOC config builds it, on the
same draws (issue 31, item 2; docs/fidelity.md, item 19).

The fixture ``tests/data/official_pipeline`` is written by ``tools/official_equivalence/pipeline_fixture.py``
(provenance in its ``draws.json``): four small images through the official pipeline with every numpy draw
forced, sizes scaled by 1/8 (img_scale (256, 64), crop and pad 64). zegbench reads the same PNGs with its
own ``SegmentationFolder`` (VOC's ``reduce_zero_label``), runs ``TrainTransform.apply`` with the same
ratio, crop windows, flip and photometric values (``GivenDraws``), and normalises as ``Method.normalize``
does with the VOC recipe's ImageNet statistics.

Measured (2026-12-06): labels identical at every stage; the rescale differs from cv2's fixed-point
``INTER_LINEAR`` by at most 1 uint8 level on 22-27 % of pixels (0.0175 after normalisation), crop and flip
add nothing, the padding differs by the known 0.0082 (item 11); the photometric saturation and hue steps
differ from OpenCV's 8-bit HSV by up to 7 levels (19 % of pixels by 2 or more where both run). The
comparison found two bugs, fixed the same day (``TRAIN_TRANSFORM_VERSION`` 2): ``TrainTransform`` drew the
photometric distortion but never applied it, and tried 10 crop windows where mmseg tries 11.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from zegbench.datasets.catalog import load_dataset_info
from zegbench.datasets.folder import SegmentationFolder
from zegbench.datasets.transforms import GivenDraws, PhotoMetricDistortion, TrainTransform, TransformSpec
from zegbench.methods.base import IMAGENET_MEAN, IMAGENET_STD, Method

DATA = Path(__file__).parent / "data" / "official_pipeline"
META = json.loads((DATA / "draws.json").read_text())
CASES = {case["id"]: case for case in META["cases"]}
LEVEL = 1 / (255 * min(IMAGENET_STD))  # one uint8 level after ImageNet normalisation: 0.01751
PAD_GAP = 0.0085  # item 11: uint8 (124, 116, 104) normalises to at most 0.0082 where mmseg pads 0 after Normalize


@pytest.fixture(scope="module")
def official():
    with np.load(DATA / "official.npz") as z:
        return {key: z[key] for key in z.files}


@pytest.fixture(scope="module")
def folder():
    return SegmentationFolder(DATA, "split.txt", num_classes=20, img_suffix=".png", reduce_zero_label=True)


def _spec() -> TransformSpec:
    """The VOC recipe's transform with the fixture's sizes (everything else as the recipe says)."""
    spec = load_dataset_info("voc12").train_transform
    assert (spec.crop, spec.scale, spec.ratio_range, spec.cat_max_ratio) == (512, (2048, 512), (0.5, 2.0), 0.75)
    assert (spec.crop // META["crop"], spec.scale[0] // META["img_scale"][0]) == (META["shrink"], META["shrink"])
    return spec.model_copy(update={"crop": META["crop"], "scale": tuple(META["img_scale"])})


def _draws(case: dict, photometric: bool = True) -> GivenDraws:
    lo, hi = _spec().ratio_range  # mmseg's ratio is u * (hi - lo) + lo: the same float
    return GivenDraws(ratio=lo + (hi - lo) * case["u"], crop_offsets=[tuple(o) for o in case["crop"]],
                      flip=case["flip_u"] < 0.5, photometric=case["photometric"] if photometric else None)


def _run(folder, cid: str, photometric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    image, label, _ = folder[folder.ids.index(cid)]
    return TrainTransform(_spec()).apply(image.copy(), label, _draws(CASES[cid], photometric))


def _normalise(image: np.ndarray) -> np.ndarray:
    method = SimpleNamespace(mean=IMAGENET_MEAN, std=IMAGENET_STD)  # the VOC recipe's `normalization: imagenet`
    return Method.normalize(method, torch.from_numpy(image)[None])[0].permute(1, 2, 0).numpy()


def _rgb(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[..., ::-1])


def test_the_fixture_is_what_the_script_says():
    assert META["versions"]["mmsegmentation"] == "0.24.0" and META["versions"]["mmcv"] == "1.4.4"
    assert "9ba4bb5c9b621c04005fb9cef7254e79bb9c9991" in META["official"]
    assert sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file()) < 1_000_000


GEOMETRY = ["landscape", "portrait", "small"]  # oneclass: see the crop-tries test


@pytest.mark.parametrize("cid", GEOMETRY)
def test_rescale_crop_flip_pad_give_the_official_label_and_the_image_within_one_level(official, folder, cid):
    image, label = _run(folder, cid, photometric=False)
    assert np.array_equal(label, official[f"{cid}/label"])  # nearest rescale, crop window, flip, 255 padding
    h, w = official[f"{cid}/flip"].shape[:2]
    diff = np.abs(image[:h, :w].astype(int) - _rgb(official[f"{cid}/flip"]))
    # torchvision's bilinear against cv2's fixed-point INTER_LINEAR: at most one level, on about a quarter
    # of the pixels (measured 22-27 %); the crop and the flip are exact (same window, same pixels).
    assert diff.max() <= 1 and diff.mean() < 0.3


def test_the_small_image_through_the_whole_pipeline_matches_after_normalisation(official, folder):
    # No photometric step is drawn for it, so it is the one whole-pipeline case unaffected by item 19's bug.
    image, label = _run(folder, "small")
    assert np.array_equal(label, official["small/label"])
    ours, theirs = _normalise(image), official["small/img"]
    h, w = official["small/flip"].shape[:2]
    assert (h, w) == (41, 57)  # padded to 64 x 64
    assert np.abs(ours - theirs)[:h, :w].max() <= LEVEL * 1.001
    pad = np.ones(label.shape, bool)
    pad[:h, :w] = False
    assert (theirs[pad] == 0).all() and (label[pad] == 255).all()
    assert np.abs(ours[pad]).max() < PAD_GAP


@pytest.mark.parametrize("cid", ["landscape", "portrait"])
def test_photometric_saturation_and_hue_are_off_by_several_levels(official, cid):
    # zegbench's PhotoMetricDistortion on the official flipped crop, against the official distortion of it.
    p = CASES[cid]["photometric"]
    x = tv_tensors.Image(torch.from_numpy(_rgb(official[f"{cid}/flip"])).permute(2, 0, 1))
    ours = PhotoMetricDistortion().transform(x, p).permute(1, 2, 0).numpy().astype(int)
    diff = np.abs(ours - _rgb(official[f"{cid}/photometric"]))
    # FINDING (docs/fidelity.md, item 19): zegbench's float HSV is not OpenCV's 8-bit HSV; measured max
    # 7 / 6 levels, 19 % / 3 % of pixels off by 2 or more (landscape / portrait). Pinned, not hidden:
    assert diff.max() <= 7 and (diff >= 2).mean() < 0.2
    assert diff.max() > 1  # if this fails, the HSV steps were fixed: tighten the bound above and the docs


@pytest.mark.parametrize("cid", ["landscape", "portrait"])
def test_whole_pipeline_with_photometric_steps(official, folder, cid):
    """The photometric distortion is applied (before 2026-12-06 it was drawn, never applied): the whole
    pipeline is the official one up to the resize's one level and the HSV steps' bound pinned above."""
    image, label = _run(folder, cid)
    assert np.array_equal(label, official[f"{cid}/label"])
    without, _ = _run(folder, cid, photometric=False)
    assert not np.array_equal(image, without)
    diff = np.abs(_normalise(image) - official[f"{cid}/img"])
    assert diff.max() <= 8 * LEVEL * 1.001 and diff.mean() < 1.5 * LEVEL


def test_when_every_window_fails_cat_max_ratio_the_eleventh_is_kept(official, folder):
    """mmseg's RandomCrop: a first window and 10 redraws; the 11th is kept whatever it holds (10 before)."""
    assert len(CASES["oneclass"]["crop"]) == 11  # the fixture script asserts mmseg consumed every scripted window
    _, label = _run(folder, "oneclass")
    assert np.array_equal(label, official["oneclass/label"])


def _outputs_digest() -> str:
    h = hashlib.sha256()
    rng = np.random.default_rng(0)
    for kw in (dict(crop=32), dict(crop=48, scale=(90, 60), photometric=False), dict(crop=64, scale=(256, 64))):
        for shape in ((40, 56), (120, 160), (150, 90)):
            image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            label = rng.integers(0, 4, shape)
            label[:5] = 255
            for seed in range(8):
                img, lab = TrainTransform(TransformSpec(**kw))(image, label, seed)
                h.update(img.tobytes())
                h.update(lab.astype(np.int64).tobytes())
    return h.hexdigest()


def test_seeded_transform_outputs_are_pinned():
    """A digest of 216 seeded outputs (torch 2.14.1 / torchvision 0.29.1). `apply`/`GivenDraws` changed no
    draw and no pixel (the digest held across that refactor: 181eed15...); the photometric fix and the
    11th crop try (TRAIN_TRANSFORM_VERSION 2) changed it on purpose, to this one. A change here changes
    what real-data runs compute: bump TRAIN_TRANSFORM_VERSION with it."""
    assert _outputs_digest() == "d8765eb85d7dd2678e29e119eba445fdc2836223df8adc57a31b8dd96e6f2e98"


def test_given_draws_run_out_loudly():
    image, label = np.zeros((80, 80, 3), np.uint8), np.zeros((80, 80), np.int64)
    with pytest.raises(ValueError, match="ran out"):
        TrainTransform(TransformSpec(crop=32)).apply(image, label, GivenDraws(ratio=1.0, crop_offsets=[(0, 0)],
                                                                              flip=False))
