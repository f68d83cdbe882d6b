"""A run's per-image counts (``image_counts.npz``): each evaluated image's per-class intersection and union.

    <run>/image_counts.npz              the evaluation on the run's own dataset (written before result.json)
    <run>/image_counts.<dataset>.npz    a cross-dataset evaluation (``eval_on``), one file each

Counts, not masks: for image i and class c, the pixels of class c predicted as c (``intersection``)
and the pixels that are c in the labels or in the prediction (``union``, a miss included), and each
image's labelled pixels (``labelled``, for pAcc); stored in the smallest unsigned integer type that
holds them, with the dataset, split, class order, unseen classes and image ids they belong to.

The dataset-level metrics are a function of the counts *summed over images* (never a mean of
per-image IoUs): ``scores_from_counts`` is that one formula, shared by evaluation
(``engine/metrics.summarize``, which writes result.json) and readers (the paired bootstrap over
images in ``reports/``), so the two can never disagree. Runs finished before these files existed
have none: ``read_image_counts`` returns None and the readers say so.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zegbench.store.layout import image_counts_name
from zegbench.utils.io import atomic_write_npz

COUNTS_SCHEMA = 1
_ARRAYS = ("intersection", "union", "labelled", "classes", "unseen", "image_ids", "dataset", "split", "config_hash",
           "schema")


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis leaving NaN out; NaN where every value is NaN (no warning)."""
    kept = ~np.isnan(values)
    count = kept.sum(axis=-1)
    total = np.where(kept, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def scores_from_counts(intersection, union, correct, labelled, unseen) -> dict[str, np.ndarray]:
    """Dataset-level metrics (fractions, NaN where undefined) from counts summed over images.

    ``intersection``, ``union``: shape (..., C); ``correct``, ``labelled``: shape (...) (correctly
    predicted and labelled pixels); ``unseen``: C flags. Any leading axes are kept (the bootstrap
    passes one row per resample). A class with an empty union (absent from labels and predictions)
    has IoU NaN and is left out of every mean; hIoU is 0 when mIoU(S) and mIoU(U) are both 0.
    """
    inter, uni = np.asarray(intersection, dtype=np.float64), np.asarray(union, dtype=np.float64)
    unseen = np.asarray(unseen, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(uni > 0, inter / np.where(uni > 0, uni, 1.0), np.nan)
        seen_mean, unseen_mean = _nanmean(iou[..., ~unseen]), _nanmean(iou[..., unseen])
        total = seen_mean + unseen_mean
        harmonic = np.where(total > 0, 2 * seen_mean * unseen_mean / np.where(total > 0, total, 1.0), 0.0)
        harmonic = np.where(np.isnan(seen_mean) | np.isnan(unseen_mean), np.nan, harmonic)
        labelled, correct = np.asarray(labelled, dtype=np.float64), np.asarray(correct, dtype=np.float64)
        pacc = np.where(labelled > 0, correct / np.where(labelled > 0, labelled, 1.0), np.nan)
    return {"pAcc": pacc, "mIoU": _nanmean(iou), "mIoU_seen": seen_mean, "mIoU_unseen": unseen_mean,
            "hIoU": harmonic, "per_class": iou}


@dataclass(frozen=True, eq=False)
class ImageCounts:
    """Per-image counts of one evaluation: ``intersection`` and ``union`` (images x classes), ``labelled``
    (images), with the dataset, split, class order, unseen flags and image ids they belong to."""

    dataset: str
    split: str
    classes: tuple[str, ...]
    unseen: np.ndarray  # bool, one per class
    image_ids: tuple[str, ...]
    intersection: np.ndarray
    union: np.ndarray
    labelled: np.ndarray

    @property
    def images(self) -> int:
        return len(self.image_ids)

    def scores(self) -> dict[str, np.ndarray]:
        """The dataset-level metrics of the summed counts (fractions; ``per_class`` in class order)."""
        inter = self.intersection.astype(np.int64).sum(axis=0)
        return scores_from_counts(inter, self.union.astype(np.int64).sum(axis=0), inter.sum(),
                                  self.labelled.astype(np.int64).sum(), self.unseen)

    def same_images(self, other: ImageCounts) -> bool:
        """Whether ``other`` counts the same images, in the same order, over the same classes (pairable)."""
        return (self.dataset, self.split, self.classes, self.image_ids) == (other.dataset, other.split,
                                                                            other.classes, other.image_ids)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ImageCounts):
            return NotImplemented
        return self.same_images(other) and all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("unseen", "intersection", "union", "labelled"))

    __hash__ = None


def _smallest_unsigned(*arrays: np.ndarray) -> np.dtype:
    """The smallest unsigned integer type holding every value (counts are never negative)."""
    top = max((int(a.max()) for a in arrays if a.size), default=0)
    return np.min_scalar_type(top) if top > 0 else np.dtype(np.uint8)


def write_image_counts(run_dir: Path, counts: ImageCounts, config_hash: str, cross_dataset: str | None = None) -> Path:
    """Write ``counts`` as ``run_dir/image_counts[.<dataset>].npz``, atomically (before result.json:
    a run is finished only once its result.json is there, and then its counts are too)."""
    dtype = _smallest_unsigned(counts.union, counts.labelled)
    return atomic_write_npz(
        run_dir / image_counts_name(cross_dataset), schema=np.int64(COUNTS_SCHEMA), config_hash=np.str_(config_hash),
        dataset=np.str_(counts.dataset), split=np.str_(counts.split), classes=np.array(counts.classes, dtype=str),
        unseen=np.asarray(counts.unseen, dtype=bool), image_ids=np.array(counts.image_ids, dtype=str),
        intersection=counts.intersection.astype(dtype), union=counts.union.astype(dtype),
        labelled=counts.labelled.astype(dtype))


def inspect_image_counts(run_dir: Path, cross_dataset: str | None = None) -> tuple[ImageCounts | None, str | None]:
    """(counts, None) for a sound file; (None, what is wrong) for a damaged one; (None, None) when there is
    none (a run finished before per-image counts were recorded, or not finished)."""
    path = run_dir / image_counts_name(cross_dataset)
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in _ARRAYS if key not in data.files]
            if missing:
                return None, f"key {missing[0]!r} is missing"
            arrays = {key: data[key] for key in _ARRAYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        return None, f"unreadable ({type(err).__name__})"
    if int(arrays["schema"]) != COUNTS_SCHEMA:
        return None, f"schema {int(arrays['schema'])}, not {COUNTS_SCHEMA}"
    if not run_dir.name.endswith(f"-{arrays['config_hash']}"):
        return None, f"config_hash {str(arrays['config_hash'])!r} is not this folder's"
    inter, union, labelled = arrays["intersection"], arrays["union"], arrays["labelled"]
    shape = (len(arrays["image_ids"]), len(arrays["classes"]))
    if inter.shape != shape or union.shape != shape or labelled.shape != shape[:1] or len(arrays["unseen"]) != shape[1]:
        return None, f"arrays of shapes {inter.shape}, {union.shape}, {labelled.shape} do not match {shape}"
    if not all(np.issubdtype(a.dtype, np.integer) for a in (inter, union, labelled)) or (inter > union).any():
        return None, "counts are not integers with intersection <= union"
    return ImageCounts(str(arrays["dataset"]), str(arrays["split"]), tuple(arrays["classes"].tolist()),
                       arrays["unseen"].astype(bool), tuple(arrays["image_ids"].tolist()), inter, union, labelled), None


def read_image_counts(run_dir: Path, cross_dataset: str | None = None) -> ImageCounts | None:
    """A run's per-image counts (of ``cross_dataset``'s evaluation, or its own dataset's), or None when it
    has none or they are damaged (``inspect_image_counts`` says which)."""
    return inspect_image_counts(run_dir, cross_dataset)[0]
