"""Finished runs written by hand for report tests: records the harness's reader accepts as sound."""
from __future__ import annotations

import json
from pathlib import Path

from zegbench.store import RESULT_METRICS, RESULT_SCHEMA


def write_result(run_dir: Path, **fields) -> Path:
    """Write ``run_dir/result.json`` as a finished run's: schema, status, every metric key (None unless
    given), per-class IoUs, and the folder's hash (the part of its name after the last '-')."""
    record = {"schema": RESULT_SCHEMA, "status": "finished", "config_hash": run_dir.name.rsplit("-", 1)[-1],
              **{key: None for key in RESULT_METRICS}, "per_class": {}, **fields}
    path = run_dir / "result.json"
    path.write_text(json.dumps(record))
    return path


def paired_counts(seed: int, images: int = 60, gain: float = 0.1):
    """(arm, baseline) ``store.ImageCounts`` of one seen class (always right) and one unseen class on ``images``
    images of very different difficulty, the arm's unseen IoU higher on each image by up to ``gain``."""
    import numpy as np

    from zegbench.store import ImageCounts

    rng = np.random.default_rng(seed)
    union = rng.integers(50, 500, size=images)
    base_iou = rng.uniform(0.05, 0.9, size=images)
    arm_iou = np.minimum(base_iou + rng.uniform(0.0, gain, size=images), 1)
    ids = tuple(f"i{i}" for i in range(images))

    def counts(iou):
        inter = np.stack([np.full(images, 10), (iou * union).astype(int)], axis=1)
        both = np.stack([np.full(images, 10), union], axis=1)
        return ImageCounts("world", "val", ("seen", "unseen"), np.array([False, True]), ids, inter, both,
                           both.sum(axis=1))
    return counts(arm_iou), counts(base_iou)


def write_counts(run_dir: Path, counts, **fields) -> Path:
    """Write ``counts`` (a ``store.ImageCounts``) as the run's ``image_counts.npz``, and a result.json (with
    ``fields``) whose metrics are those of the summed counts, as a finished run's would be."""
    from zegbench.store import write_image_counts

    scores = counts.scores()

    def percent(value):
        return None if value != value else round(100 * float(value), 4)

    write_result(run_dir, **{key: percent(scores[key]) for key in RESULT_METRICS},
                 per_class=dict(zip(counts.classes, map(percent, scores["per_class"]), strict=True)), **fields)
    return write_image_counts(run_dir, counts, run_dir.name.rsplit("-", 1)[-1])
