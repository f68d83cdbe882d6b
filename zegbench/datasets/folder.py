"""Reader for segmentation datasets laid out as image folder + label folder + split list.

Serves the embedded world and PASCAL VOC alike (and, through its options, the
other mmsegmentation layouts): ``(image uint8 HxWx3, label int64 HxW, meta)``
with 255 = ignore.
"""
from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from zegbench.errors import ZegbenchError


class SegmentationFolder:
    """Pairs ``img_dir/<id><img_suffix>`` with ``ann_dir/<id><seg_suffix>`` for ids in ``split_file``
    (or, without one, for every image in ``img_dir``).

    ``reduce_zero_label`` maps label 0 to 255 and shifts the rest down by one
    (VOC's background becomes ignore). Labels outside ``[0, num_classes)`` other
    than 255 are an error naming the file: a wrong label file must not train.
    """

    def __init__(self, root: str | Path, split_file: str | None, num_classes: int, img_dir: str = "JPEGImages",
                 ann_dir: str = "SegmentationClass", img_suffix: str = ".jpg", seg_suffix: str = ".png",
                 reduce_zero_label: bool = False, ignore_index: int = 255):
        self.root = Path(root)
        self.img_dir, self.ann_dir = self.root / img_dir, self.root / ann_dir
        self.img_suffix, self.seg_suffix = img_suffix, seg_suffix
        self.num_classes, self.reduce_zero_label, self.ignore_index = num_classes, reduce_zero_label, ignore_index
        if split_file is None:  # COCO-Stuff's layout: the split is the image folder
            if not self.img_dir.is_dir():
                raise ZegbenchError(f"image folder {self.img_dir} is missing: check --data-root, or run "
                                    f"`zegbench data verify` for what the layout should be")
            self.ids = sorted(p.name[:-len(img_suffix)] for p in self.img_dir.iterdir() if p.name.endswith(img_suffix))
            return
        split_path = self.root / split_file
        if not split_path.is_file():
            raise ZegbenchError(f"split list {split_path} is missing: check --data-root, or run "
                                f"`zegbench data verify` for what the layout should be")
        self.ids = [line.strip() for line in split_path.read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.ids)

    def _open(self, path: Path, mode: str) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert(mode) if mode == "RGB" else im)
        except FileNotFoundError:
            raise ZegbenchError(f"{path} is listed in the split but missing: restore it or "
                                f"remove its id from the split list") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ZegbenchError(f"{path} is corrupt ({type(err).__name__}): re-extract or "
                                f"regenerate it") from None

    def paths(self, index: int) -> tuple[Path, Path]:
        """The image file and the label file of item ``index``."""
        sid = self.ids[index]
        return self.img_dir / f"{sid}{self.img_suffix}", self.ann_dir / f"{sid}{self.seg_suffix}"

    def decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` decoded from its files: the image (uint8 [H, W, 3]) and the label file's values [H, W]."""
        img_path, seg_path = self.paths(index)
        image = self._open(img_path, "RGB")
        raw = self._open(seg_path, "L")
        if raw.ndim != 2 or raw.shape != image.shape[:2]:
            raise ZegbenchError(f"{seg_path} is {raw.shape}, its image is {image.shape[:2]}: "
                                f"labels must be single-channel and the image's size")
        return image, raw

    def item(self, index: int, image: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(image, label int64 [H, W], meta)`` of item ``index`` from what ``decode`` gives for it.

        Separate from ``decode`` so that a reader of already decoded arrays (``datasets/decoded.py``)
        assembles its items with this same code: the same labels, checks and meta as from the files.
        """
        img_path, seg_path = self.paths(index)
        label = raw.astype(np.int64)
        if self.reduce_zero_label:
            label = np.where(label == 0, 255, label - 1)
            label[label == 254] = 255  # 255 (VOC boundary) stays ignore after the shift
        bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
        if bad.any():
            raise ZegbenchError(f"{seg_path} has label value {int(label[bad][0])} outside 0..{self.num_classes - 1} "
                                f"and {self.ignore_index}: check the dataset's class list or its conversion")
        return image, label, {"id": self.ids[index], "image_path": str(img_path), "label_path": str(seg_path)}

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        return self.item(index, *self.decode(index))


class ConcatFolders:
    """Several ``SegmentationFolder`` parts read as one split, in order (VOC's train + SBD aug).

    Ids must be unique across parts: an id listed twice would be trained on twice and, in
    an evaluation split, counted twice (``zegbench data verify`` reports duplicates).
    """

    def __init__(self, parts: list[SegmentationFolder]):
        self.parts = parts
        self.ids = [sid for part in parts for sid in part.ids]
        self._ends = list(np.cumsum([len(part) for part in parts]))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        if not 0 <= index < len(self.ids):
            raise IndexError(index)
        which = bisect.bisect_right(self._ends, index)
        start = self._ends[which - 1] if which else 0
        return self.parts[which][index - start]
