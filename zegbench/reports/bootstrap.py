"""The paired bootstrap over images: how far a difference between two models moves with the test set.

Two runs evaluated on the same test images (their ``image_counts.npz``) are resampled together:
each resample draws image indices with replacement, the *same* indices for both arms (that is
the pairing: an image that is hard for one model is usually hard for the other, and resampling
it for both cancels that shared difficulty), sums each arm's per-image counts over the drawn
images, recomputes the dataset-level metric from the sums (never a mean of per-image IoUs) and
takes the difference arm - baseline. The 95% percentile interval of 10,000 such differences, drawn
from a fixed seed, is the interval over images.

What it measures: test-set sampling for *these two trained models*. It says nothing about training
variance (another seed trains other models); the interval over seeds does. A claim shows both.
"""
from __future__ import annotations

import numpy as np

from zegbench.store import ImageCounts, scores_from_counts

RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
_CHUNK = 500  # resamples weighed at once: a chunk x images weight matrix (COCO-Stuff's 5,000 images: 20 MB)


def resample_weights(images: int, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED):
    """Chunks of the bootstrap's weight matrix: row r counts how often each image was drawn in resample r
    (``images`` draws with replacement, so each row sums to ``images``)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        rows = min(_CHUNK, resamples - start)
        drawn = rng.integers(0, images, size=(rows, images))
        cells = (drawn + images * np.arange(rows)[:, None]).ravel()  # (resample, image) -> one bin each
        yield np.bincount(cells, minlength=rows * images).reshape(rows, images).astype(np.float64)


def _classes_needed(counts: ImageCounts, key: str) -> np.ndarray:
    """The classes ``key`` is computed from (fewer columns: a faster product for mIoU(U) on 171 classes)."""
    if key == "mIoU_unseen":
        return counts.unseen
    if key == "mIoU_seen":
        return ~counts.unseen
    if key == "pAcc":
        return np.zeros_like(counts.unseen)
    return np.ones_like(counts.unseen)


def _columns(counts: ImageCounts, needed: np.ndarray) -> np.ndarray:
    """Per image: intersection and union of the needed classes, correct and labelled pixels (float64: sums of
    counts stay exact below 2**53)."""
    return np.concatenate([counts.intersection[:, needed], counts.union[:, needed],
                           counts.intersection.astype(np.int64).sum(axis=1, keepdims=True),
                           counts.labelled.reshape(-1, 1)], axis=1).astype(np.float64)


def _metric(totals: np.ndarray, unseen: np.ndarray, key: str) -> np.ndarray:
    """The metric in points for each row of summed columns (``_columns`` order)."""
    k = int(unseen.size)
    scores = scores_from_counts(totals[:, :k], totals[:, k:2 * k], totals[:, 2 * k], totals[:, 2 * k + 1], unseen)
    return 100 * scores[key]


def bootstrap_differences(arm: ImageCounts, baseline: ImageCounts, key: str, resamples: int = RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> tuple[float, np.ndarray]:
    """(the difference arm - baseline on the whole test set, the ``resamples`` paired bootstrap differences),
    in points of result.json metric ``key``; NaN where a resample leaves the metric undefined (e.g. no
    pixel of any unseen class drawn)."""
    if not arm.same_images(baseline):
        raise ValueError("the two arms were not evaluated on the same images, in the same order, over the same "
                         "classes: they cannot be paired")
    needed = _classes_needed(arm, key)
    unseen = arm.unseen[needed]
    both = np.concatenate([_columns(arm, needed), _columns(baseline, needed)], axis=1)
    half = both.shape[1] // 2

    def differences(totals: np.ndarray) -> np.ndarray:
        return _metric(totals[:, :half], unseen, key) - _metric(totals[:, half:], unseen, key)

    observed = float(differences(both.sum(axis=0, keepdims=True))[0])
    draws = [differences(weights @ both) for weights in resample_weights(arm.images, resamples, seed)]
    return observed, np.concatenate(draws)


def paired_bootstrap(arm: ImageCounts, baseline: ImageCounts, key: str, resamples: int = RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> dict:
    """``{"diff", "low", "high", "images", "resamples", "undefined"}``: the difference on the whole test set
    and its percentile interval over images (``low``/``high`` None when no resample defines the metric);
    ``undefined``: resamples left out because the metric was undefined in one arm."""
    observed, draws = bootstrap_differences(arm, baseline, key, resamples, seed)
    defined = draws[~np.isnan(draws)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(defined, [tail, 100 - tail]) if defined.size else (None, None)
    return {"diff": observed, "low": None if low is None else float(low), "high": None if high is None else float(high),
            "images": arm.images, "resamples": resamples, "undefined": int(draws.size - defined.size)}
