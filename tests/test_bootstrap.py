"""The paired bootstrap over images against a case enumerated by hand, and its pairing."""
from __future__ import annotations

import numpy as np
import pytest

from zegbench.reports.bootstrap import bootstrap_differences, paired_bootstrap, resample_weights
from zegbench.store import ImageCounts

from fake_store import paired_counts


def _counts(unseen_inter, unseen_union, ids=("big", "small")) -> ImageCounts:
    """Images with one seen class (always right: IoU 1) and one unseen class with the given counts."""
    inter = np.array([[10, i] for i in unseen_inter])
    union = np.array([[10, u] for u in unseen_union])
    return ImageCounts("d", "val", ("seen", "unseen"), np.array([False, True]), tuple(ids), inter, union,
                       union[:, 0] + np.array(unseen_union))


# Two images: "big" (unseen union 100) and "small" (union 10). Arm: 80/100 and 1/10; baseline: 50/100 and 1/10.
ARM, BASE = _counts([80, 1], [100, 10]), _counts([50, 1], [100, 10])
# A resample draws 2 images with replacement: {big, big} (p 1/4), {big, small} (p 1/2), {small, small} (p 1/4).
BY_HAND = {"big, big": 100 * (160 / 200 - 100 / 200),  # 30
           "big, small": 100 * (81 / 110 - 51 / 110),  # 27.27: from the summed counts
           "small, small": 100 * (2 / 20 - 2 / 20)}  # 0


def test_the_difference_and_its_interval_match_the_enumeration():
    observed, draws = bootstrap_differences(ARM, BASE, "mIoU_unseen")
    assert observed == pytest.approx(BY_HAND["big, small"], abs=1e-9)
    # A mean of per-image IoUs would say (0.8 + 0.1) / 2 - (0.5 + 0.1) / 2 = 15 points: it is not that.
    values, seen = np.unique(np.round(draws, 9), return_counts=True)
    assert values.tolist() == pytest.approx(sorted(BY_HAND.values()))
    assert (seen / draws.size).tolist() == pytest.approx([1 / 4, 1 / 2, 1 / 4], abs=0.02)  # 10,000 draws
    row = paired_bootstrap(ARM, BASE, "mIoU_unseen")
    # Each extreme holds about a quarter of the mass, far more than the 2.5% tails: the interval is [0, 30].
    assert (row["low"], row["high"]) == pytest.approx((0.0, 30.0), abs=1e-9)
    assert row["resamples"] == 10_000 and row["images"] == 2 and row["undefined"] == 0
    # hIoU: seen IoU is 1 in every resample, so hIoU = 2u / (1 + u) for the resample's unseen IoU u
    h = {u: 200 * u / (1 + u) for u in (0.8, 0.5, 81 / 110, 51 / 110)}
    assert bootstrap_differences(ARM, BASE, "hIoU")[0] == pytest.approx(h[81 / 110] - h[51 / 110], abs=1e-9)
    assert paired_bootstrap(ARM, BASE, "hIoU")["high"] == pytest.approx(h[0.8] - h[0.5], abs=1e-9)


def test_a_resample_without_unseen_pixels_is_undefined_and_left_out():
    arm, base = _counts([8, 0], [10, 0]), _counts([4, 0], [10, 0])  # the second image has no unseen pixel
    row = paired_bootstrap(arm, base, "mIoU_unseen")
    assert 0.2 < row["undefined"] / row["resamples"] < 0.3  # {second, second}: 1/4 of the resamples
    assert (row["low"], row["high"]) == pytest.approx((40.0, 40.0))


def test_the_arms_are_resampled_together():
    arm, base = paired_counts(0)
    paired = paired_bootstrap(arm, base, "mIoU_unseen")
    assert paired["low"] > 0  # each image is better in the arm: the paired interval excludes 0
    order = np.random.default_rng(1).permutation(arm.images)  # the arm's rows no longer line up with the images
    shuffled = ImageCounts(arm.dataset, arm.split, arm.classes, arm.unseen, arm.image_ids, arm.intersection[order],
                           arm.union[order], arm.labelled[order])
    unpaired = paired_bootstrap(shuffled, base, "mIoU_unseen")
    assert unpaired["diff"] == pytest.approx(paired["diff"])  # the same sums on the whole test set
    assert unpaired["high"] - unpaired["low"] > 3 * (paired["high"] - paired["low"])


def test_fixed_seed_and_weights_that_redraw_the_test_set():
    arm, base = paired_counts(2)
    assert paired_bootstrap(arm, base, "hIoU") == paired_bootstrap(arm, base, "hIoU")
    weights = np.concatenate(list(resample_weights(7, resamples=1200)))
    assert weights.shape == (1200, 7) and (weights.sum(axis=1) == 7).all()
    assert not np.array_equal(weights, np.concatenate(list(resample_weights(7, resamples=1200, seed=1))))


def test_runs_on_other_images_are_not_paired():
    arm, base = paired_counts(3)
    other = ImageCounts(base.dataset, base.split, base.classes, base.unseen, base.image_ids[::-1], base.intersection,
                        base.union, base.labelled)
    with pytest.raises(ValueError, match="not evaluated on the same images"):
        paired_bootstrap(arm, other, "hIoU")
