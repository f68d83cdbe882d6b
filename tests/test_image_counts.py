"""Per-image counts: counted as the confusion matrix counts, written before result.json, summing to its metrics."""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch

from zegbench.engine.identity import run_folder_for
from zegbench.engine.metrics import ConfusionMatrix, PerImageCounts, percent, summarize
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.store import (
    ImageCounts,
    RunStore,
    inspect_image_counts,
    read_image_counts,
    read_result,
    write_image_counts,
)

METRICS = ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")


def _summed(counts: ImageCounts) -> dict:
    """The metrics of the summed counts as result.json holds them (percent, 4 decimals, None when undefined)."""
    scores = counts.scores()
    return {**{key: percent(scores[key]) for key in METRICS},
            "per_class": dict(zip(counts.classes, [percent(v) for v in scores["per_class"]], strict=True))}


def test_per_image_counts_sum_to_the_confusion_matrix():
    # 5 classes, ignore pixels, misses (255 predicted: "no prediction") and a class nobody predicts or labels
    generator = torch.Generator().manual_seed(0)
    cm, per_image = ConfusionMatrix(5), PerImageCounts(5, images=6)
    for rows in ([0, 1, 2], [3], [4, 5]):  # batches of different sizes, rows in split order
        target = torch.randint(0, 4, (len(rows), 7, 9), generator=generator)
        pred = torch.randint(0, 4, (len(rows), 7, 9), generator=generator)
        target[:, 0] = 255
        pred[:, :, 0] = 255
        cm.update(pred, target)
        per_image.update(pred, target, rows)
    inter, union, labelled = per_image.arrays()
    counts = ImageCounts("d", "val", tuple("abcde"), np.array([False, False, True, True, False]),
                         tuple(str(i) for i in range(6)), inter, union, labelled)
    assert _summed(counts) == summarize(cm, list("abcde"), [2, 3])
    assert np.isnan(counts.scores()["per_class"][4])  # class e: never labelled nor predicted, left out
    assert labelled.tolist() == [6 * 9] * 6  # each image's labelled pixels: all but the ignored row
    # one image alone, by hand: its union of class c is labelled c + predicted c - both
    t, p = torch.tensor([[[0, 1], [1, 255]]]), torch.tensor([[[0, 0], [255, 1]]])
    alone = PerImageCounts(2, images=1)
    alone.update(p, t, [0])
    assert alone.intersection.tolist() == [[1, 0]] and alone.union.tolist() == [[2, 2]]  # class 1: a miss, a hit


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    """A training-free run (MaskCLIP, which scores every class a little) on the smoke world, also evaluated on
    the smoke world as a cross-dataset evaluation: (run folder, its result.json)."""
    results = tmp_path_factory.mktemp("counts")
    resolve_and_run("maskclip", "world_smoke", 0, {}, store=RunStore(results), suite="s", eval_on=["world_smoke"])
    resolved = resolve("maskclip", "world_smoke", 0, eval_on=["world_smoke"])
    run_dir = run_folder_for(resolved, RunStore(results), "s").path
    return run_dir, json.loads((run_dir / "result.json").read_text())


def test_summing_a_runs_per_image_counts_gives_its_result_exactly(evaluated_run):
    run_dir, result = evaluated_run
    counts = read_image_counts(run_dir)
    assert (counts.dataset, counts.split, counts.images) == ("world_smoke", "val", 24)
    assert counts.classes == tuple(result["per_class"]) and counts.image_ids[0] == "val_000000"
    assert counts.intersection.dtype == np.uint16  # 96 x 96 = 9,216 pixels an image: more than uint8 holds
    summed = _summed(counts)
    assert summed == {key: result[key] for key in (*METRICS, "per_class")}
    assert 0 < result["mIoU_unseen"] and 0 < result["mIoU_seen"]  # not a trivial all-zero case
    cross = read_image_counts(run_dir, "world_smoke")  # its own file
    assert (run_dir / "image_counts.world_smoke.npz").is_file()
    assert {k: summed[k] for k in ("mIoU", "pAcc", "per_class")} == result["cross_dataset"]["world_smoke"]
    assert cross == counts  # the same model on the same images: the same counts, image by image


def test_per_image_counts_are_written_before_the_result(tmp_path, monkeypatch):
    from zegbench.utils import io

    def full(point):  # the disk fills up as result.json is written: the counts are there, the run unfinished
        if point == "write:result.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(io, "fault_point", full)
    with pytest.raises(OSError):
        resolve_and_run("maskclip", "world_smoke", 0, {}, store=RunStore(tmp_path), suite="s")
    run_dir = run_folder_for(resolve("maskclip", "world_smoke", 0), RunStore(tmp_path), "s").path
    assert read_image_counts(run_dir) is not None and read_result(run_dir) is None


def _counts(union_max: int) -> ImageCounts:
    union = np.array([[union_max, 0], [3, 4]])
    return ImageCounts("d", "val", ("a", "b"), np.array([False, True]), ("x", "y"), union // 2, union, union.sum(1))


@pytest.mark.parametrize("union_max, dtype", [(255, np.uint8), (256, np.uint16), (70_000, np.uint32)])
def test_counts_are_stored_in_the_smallest_type_that_holds_them(tmp_path, union_max, dtype):
    run_dir = tmp_path / "m-d-s0-abcd1234"
    run_dir.mkdir()
    write_image_counts(run_dir, _counts(union_max), "abcd1234")
    read = read_image_counts(run_dir)
    assert read.union.dtype == dtype and read == _counts(union_max)


def test_damaged_or_foreign_counts_are_never_read(tmp_path):
    run_dir = tmp_path / "m-d-s0-abcd1234"
    run_dir.mkdir()
    assert inspect_image_counts(run_dir) == (None, None)  # a run from before per-image counts
    write_image_counts(run_dir, _counts(9), "ffff0000")  # copied from another run
    assert "is not this folder's" in inspect_image_counts(run_dir)[1]
    write_image_counts(run_dir, _counts(9), "abcd1234")
    path = run_dir / "image_counts.npz"
    path.write_bytes(path.read_bytes()[:100])  # cut short
    counts, problem = inspect_image_counts(run_dir)
    assert counts is None and problem.startswith("unreadable")
