"""Run mmseg 0.24's training pipeline, as ZegCLIP's VOC config builds it, on forced draws (not run in CI).

Runs in the scratch environment of README.md here (mmcv 1.4.4, mmsegmentation 0.24.0):

    python tools/official_equivalence/pipeline_fixture.py --official /path/to/ZegCLIP --out DIR

The pipeline is ``data.train.pipeline`` of ZegCLIP's ``configs/_base_/datasets/voc12_20_aug_512x512.py``
(the base of ``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py``), read with mmcv's ``Config``
and built by mmseg's ``Compose``: ``LoadImageFromFile``, ``LoadAnnotations(reduce_zero_label=True)``,
``Resize(img_scale=(2048, 512), ratio_range=(0.5, 2.0))``, ``RandomCrop(crop_size, cat_max_ratio=0.75)``,
``RandomFlip(prob=0.5)``, ``PhotoMetricDistortion``, ``Normalize`` (ImageNet mean and std, to RGB),
``Pad(size=crop_size, pad_val=0, seg_pad_val=255)``. Only the sizes are scaled by ``1 / SHRINK``
(img_scale (256, 64), crop 64, pad 64) so that the fixture stays small; every step's code is the same.
The last two steps (``DefaultFormatBundle``, ``Collect``) only change the layout and are not run.

Every random draw is forced: ``numpy.random``'s ``random_sample``, ``randint``, ``rand`` and ``uniform``
(the only ones these steps call; ``PhotoMetricDistortion`` reaches them as ``from numpy import random``)
are replaced by a script that hands out the case's values in mmseg's order and fails on any call it
does not expect, and every scripted value must be consumed. The order, read in mmseg 0.24's
``mmseg/datasets/pipelines/transforms.py``:

- Resize: ``random_sample()`` u, ratio = u * 1.5 + 0.5;
- RandomCrop: ``randint(0, margin_h + 1)``, ``randint(0, margin_w + 1)`` for a first window, then the
  same pair again for each of at most 10 redraws while one class covers 0.75 or more (255 excluded);
- RandomFlip: ``rand()`` < 0.5 flips;
- PhotoMetricDistortion: ``randint(2)`` and ``uniform(-32, 32)`` brightness, ``randint(2)`` mode
  (1: contrast first), [``randint(2)``, ``uniform(0.5, 1.5)`` contrast if mode 1], ``randint(2)``,
  ``uniform(0.5, 1.5)`` saturation, ``randint(2)``, ``randint(-18, 18)`` hue, [contrast if mode 0];
  a value is drawn only when its coin says 1.

It writes into ``DIR``: the inputs as PNG (``JPEGImages/ID.png`` RGB, ``SegmentationClass/ID.png``, VOC
label values 0..20 and 255) and ``split.txt``, so zegbench can read them with its own ``SegmentationFolder``;
``draws.json`` (the cases' draws and provenance); ``official.npz``: per case the image after each step
(uint8 BGR, as mmseg holds it: ``ID/resize``, ``ID/crop``, ``ID/flip``, ``ID/photometric``), the label
after each geometric step (``ID/label_resize`` ...), and the final ``ID/img`` (float32 RGB HxWx3 after
Normalize and Pad) and ``ID/label`` (uint8 after Pad).

Nothing of the official code is copied: mmseg is imported, the config read from ``--official``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixture import stub_mmcv_ops  # noqa: E402

COMMIT = "9ba4bb5c9b621c04005fb9cef7254e79bb9c9991"
DATASET_CONFIG = "configs/_base_/datasets/voc12_20_aug_512x512.py"
SHRINK = 8  # img_scale (2048, 512) -> (256, 64), crop and pad 512 -> 64
NO_STEP = {"brightness": None, "contrast_first": True, "contrast": None, "saturation": None, "hue": None}

# u: Resize's random_sample; crop: the windows (top, left) in the order RandomCrop draws them; flip_u:
# RandomFlip's rand; photometric: zegbench's PhotoMetricDistortion parameters (None: the step's coin is 0).
CASES = [
    {"id": "landscape", "shape": [120, 160], "u": 0.55, "crop": [[3, 5], [10, 30]], "flip_u": 0.2,
     "photometric": {"brightness": 17.3, "contrast_first": True, "contrast": 1.31, "saturation": 0.72, "hue": 9},
     "note": "downscale (ratio 1.325: 120x160 -> 83x111); the first window is one class (rejected), the second kept"},
    {"id": "portrait", "shape": [150, 90], "u": 0.8, "crop": [[50, 20]], "flip_u": 0.9,
     "photometric": {"brightness": None, "contrast_first": False, "contrast": 0.64, "saturation": 1.38, "hue": -15},
     "note": "upscale (ratio 1.7: 150x90 -> 180x108); contrast last; no flip"},
    {"id": "small", "shape": [40, 56], "u": 0.1, "crop": [[0, 0]], "flip_u": 0.3, "photometric": None,
     "note": "smaller than the crop (ratio 0.65: 40x56 -> 41x57), padded to 64; no photometric step"},
    {"id": "oneclass", "shape": [100, 100], "u": 0.4,
     "crop": [[i % 7, 3 * i % 7] for i in range(11)], "flip_u": 0.7, "photometric": None,
     "note": "one class and 255 only: every window fails cat_max_ratio; mmseg tries 11 and keeps the 11th"},
]


class Script:
    """Stands in for numpy.random's functions; hands out scripted values in order."""

    def __init__(self, calls: list[tuple[str, tuple, float]]):
        self.calls = list(calls)

    def make(self, name: str):
        def draw(*args, **kwargs):
            assert not kwargs, (name, kwargs)
            assert self.calls, f"unexpected extra call numpy.random.{name}{args}"
            want, want_args, value = self.calls.pop(0)
            assert (want, want_args) == (name, args), \
                f"mmseg called {name}{args}, the script expected {want}{want_args}"
            if name in ("randint", "uniform"):  # a forced value must be one the real draw could give
                low, high = args if len(args) == 2 else (0, args[0])
                assert low <= value < high if name == "randint" else low <= value <= high, (name, args, value)
            return value
        return draw


def _margin(size: int, crop: int) -> int:
    return max(size - crop, 0) + 1


def script_for(case: dict, resized_hw: tuple[int, int], crop: int) -> list[tuple[str, tuple, float]]:
    """The numpy.random calls mmseg makes for ``case``, in order, with their values."""
    h, w = resized_hw
    calls = [("random_sample", (), case["u"])]
    for top, left in case["crop"]:
        calls += [("randint", (0, _margin(h, crop)), top), ("randint", (0, _margin(w, crop)), left)]
    calls.append(("rand", (), case["flip_u"]))
    p = case["photometric"] or NO_STEP

    def maybe(value, low, high, kind="uniform"):
        return [("randint", (2,), 0)] if value is None else [("randint", (2,), 1), (kind, (low, high), value)]

    calls += maybe(p["brightness"], -32, 32)
    calls.append(("randint", (2,), int(p["contrast_first"])))
    if p["contrast_first"]:
        calls += maybe(p["contrast"], 0.5, 1.5)
    calls += maybe(p["saturation"], 0.5, 1.5)
    calls += maybe(p["hue"], -18, 18, kind="randint")
    if not p["contrast_first"]:
        calls += maybe(p["contrast"], 0.5, 1.5)
    return calls


def synthetic(case: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured RGB image (gradients, noise, a few rectangles) and a VOC label (0..20, 255 edges)."""
    rng = np.random.default_rng(seed)
    h, w = case["shape"]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([255 * xx / w, 255 * yy / h, 128 + 100 * np.sin(xx / 5 + yy / 7)], -1)
    image = image + rng.normal(0, 25, image.shape)
    label = np.zeros((h, w), np.uint8)  # background: 255 after reduce_zero_label
    if case["id"] == "oneclass":
        label[:] = 12
        label[: h // 5] = 255
    else:
        for _ in range(5):
            t, lft = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            hh, ww = int(rng.integers(8, h // 2 + 8)), int(rng.integers(8, w // 2 + 8))
            cls = int(rng.integers(1, 21))
            label[t:t + hh, lft:lft + ww] = cls
            image[t:t + hh, lft:lft + ww] += rng.normal(0, 40, 3)
            label[t:t + hh, lft] = 255  # VOC's boundary band
        if case["id"] == "landscape":
            label[:100, :100] = 7  # resized to 70x70: the first window (3..67, 5..69) is one class
    return np.clip(image, 0, 255).astype(np.uint8), label


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help="a checkout of ZiqinZhou66/ZegCLIP at " + COMMIT[:7])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    stub_mmcv_ops()
    import cv2
    import mmcv
    import mmseg
    from mmcv import Config
    from mmseg.datasets.pipelines import Compose
    from PIL import Image

    cfg = Config.fromfile(str(args.official / DATASET_CONFIG))
    pipeline = [dict(step) for step in cfg.data.train.pipeline]
    names = [step["type"] for step in pipeline]
    assert names == ["LoadImageFromFile", "LoadAnnotations", "Resize", "RandomCrop", "RandomFlip",
                     "PhotoMetricDistortion", "Normalize", "Pad", "DefaultFormatBundle", "Collect"], names
    pipeline = pipeline[:-2]
    crop = 512 // SHRINK
    resize, rcrop, pad = pipeline[2], pipeline[3], pipeline[7]
    assert tuple(resize["img_scale"]) == (2048, 512) and tuple(rcrop["crop_size"]) == (512, 512)
    resize["img_scale"] = (2048 // SHRINK, 512 // SHRINK)
    rcrop["crop_size"] = pad["size"] = (crop, crop)
    steps = Compose(pipeline).transforms

    out = args.out
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (out / "SegmentationClass").mkdir(exist_ok=True)
    arrays = {}
    for index, case in enumerate(CASES):
        image, label = synthetic(case, seed=index)
        img_path, seg_path = out / "JPEGImages" / f"{case['id']}.png", out / "SegmentationClass" / f"{case['id']}.png"
        Image.fromarray(image).save(img_path)
        Image.fromarray(label).save(seg_path)
        h, w = case["shape"]
        ratio = case["u"] * 1.5 + 0.5
        scale = (int(resize["img_scale"][0] * ratio), int(resize["img_scale"][1] * ratio))
        resized_hw = mmcv.rescale_size((w, h), scale)[::-1]
        script = Script(script_for(case, resized_hw, crop))
        saved = {name: getattr(np.random, name) for name in ("random_sample", "randint", "rand", "uniform")}
        for name in saved:
            setattr(np.random, name, script.make(name))
        try:
            results = {"img_info": {"filename": str(img_path)}, "ann_info": {"seg_map": str(seg_path)},
                       "img_prefix": None, "seg_prefix": None, "seg_fields": []}
            for step, name in zip(steps, names[:len(steps)], strict=True):
                results = step(results)
                stage = {"Resize": "resize", "RandomCrop": "crop", "RandomFlip": "flip",
                         "PhotoMetricDistortion": "photometric"}.get(name)
                if stage:
                    arrays[f"{case['id']}/{stage}"] = results["img"].copy()
                    if stage != "photometric":
                        arrays[f"{case['id']}/label_{stage}"] = results["gt_semantic_seg"].copy()
        finally:
            for name, fn in saved.items():
                setattr(np.random, name, fn)
        assert not script.calls, f"{case['id']}: mmseg left scripted draws unused: {script.calls}"
        assert results["img"].shape[:2] == (crop, crop) and results["img"].dtype == np.float32
        arrays[f"{case['id']}/img"] = results["img"]
        arrays[f"{case['id']}/label"] = results["gt_semantic_seg"].astype(np.uint8)
        case["resized"] = list(arrays[f"{case['id']}/resize"].shape[:2])
    np.savez_compressed(out / "official.npz", **arrays)
    (out / "split.txt").write_text("".join(f"{c['id']}\n" for c in CASES))
    provenance = {
        "official": f"ZiqinZhou66/ZegCLIP@{COMMIT}, {DATASET_CONFIG}: data.train.pipeline",
        "shrink": SHRINK, "img_scale": list(resize["img_scale"]), "crop": crop,
        "ratio_range": list(resize["ratio_range"]), "cat_max_ratio": rcrop["cat_max_ratio"],
        "versions": {"mmcv": mmcv.__version__, "mmsegmentation": mmseg.__version__, "numpy": np.__version__,
                     "opencv": cv2.__version__, "python": platform.python_version()},
        "command": "python tools/official_equivalence/pipeline_fixture.py --official SRC --out DIR",
        "cases": CASES,
    }
    (out / "draws.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"wrote {len(CASES)} cases to {out}")


if __name__ == "__main__":
    main()
