"""Tiny copies of the real datasets in their exact on-disk layouts, written by the tests themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (40, 56)  # H, W: not square, as real images are not


def _pair(img_path: Path, seg_path: Path, rng: np.random.Generator, label_values: list[int],
          size: tuple[int, int] = SIZE) -> None:
    img_path.parent.mkdir(parents=True, exist_ok=True)
    seg_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(img_path)
    label = rng.choice(label_values, size=size).astype(np.uint8)
    Image.fromarray(label).save(seg_path)


def write_voc(root: Path, train: int = 3, val: int = 2, seed: int = 0, aug: int | None = None,
              size: tuple[int, int] = SIZE) -> Path:
    """VOCdevkit/VOC2012 as mmseg's voc_aug.py leaves it: VOC train and val lists with labels in
    SegmentationClass, and aug.txt (SBD ids in neither) with labels in SegmentationClassAug.

    ``train`` images in all, ``aug`` of them (default: all but one) from SBD; images of ``size`` (H, W).
    """
    base = root / "VOCdevkit" / "VOC2012"
    rng = np.random.default_rng(seed)
    values = [0, 1, 5, 15, 20, 255]  # background, classes, boundary
    aug = train - 1 if aug is None else aug
    splits = {"train": ([f"2008_{i:06d}" for i in range(train - aug)], "SegmentationClass"),
              "aug": ([f"2010_{i:06d}" for i in range(aug)], "SegmentationClassAug"),
              "val": ([f"2009_{i:06d}" for i in range(val)], "SegmentationClass")}
    for split, (ids, ann) in splits.items():
        for sid in ids:
            _pair(base / "JPEGImages" / f"{sid}.jpg", base / ann / f"{sid}.png", rng, values, size)
        (base / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return base


def write_coco_stuff(root: Path, train: int = 3, val: int = 2, seed: int = 0) -> Path:
    """coco_stuff164k/images/{train,val}2017 and annotations/... *_labelTrainIds.png (0..170, 255)."""
    base = root / "coco_stuff164k"
    rng = np.random.default_rng(seed)
    for split, n in (("train2017", train), ("val2017", val)):
        for i in range(n):
            sid = f"{i:012d}"
            _pair(base / "images" / split / f"{sid}.jpg", base / "annotations" / split / f"{sid}_labelTrainIds.png",
                  rng, [0, 19, 112, 170, 255])
    return base


def write_context(root: Path, train: int = 3, val: int = 2, seed: int = 0) -> Path:
    """VOCdevkit/VOC2010 with SegmentationClassContext (0 = background, 1..59) and SegmentationContext lists."""
    base = root / "VOCdevkit" / "VOC2010"
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        ids = [f"20{split == 'val' and '10' or '08'}_{i:06d}" for i in range(n)]
        for sid in ids:
            _pair(base / "JPEGImages" / f"{sid}.jpg", base / "SegmentationClassContext" / f"{sid}.png", rng,
                  [0, 1, 7, 59])
        (base / "ImageSets" / "SegmentationContext").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "SegmentationContext" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return base


def voc_palette() -> list[int]:
    """PASCAL VOC's colour map (index i -> the RGB VOC draws it in), flattened for ``Image.putpalette``."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def save_palette_png(label: np.ndarray, path: Path) -> None:
    """``label`` (class indices) as a mode 'P' PNG with VOC's palette, as VOC ships its labels."""
    im = Image.fromarray(label.astype(np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(path)


WRITERS = {"voc12": write_voc, "coco_stuff164k": write_coco_stuff, "pascal_context59": write_context,
           "pascal_context60": write_context}
