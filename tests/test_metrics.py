"""Metrics against hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from zegbench.engine.metrics import ConfusionMatrix, summarize
from zegbench.store import scores_from_counts


def test_iou_with_ignore_and_absent_class():
    # 4 classes; class 3 is absent from both prediction and truth.
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 1]])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    # class 0: tp 1, fp 1 (the 2 at (1,1)), fn 1 -> 1/3; class 1: tp 2, fp 1, fn 0 -> 2/3;
    # class 2: tp 1, fn 1 -> 1/2; class 3: predicted only on an ignored pixel -> absent.
    iou = cm.iou()
    assert iou[:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(iou[3])
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)


def test_summary_splits_seen_and_unseen_and_skips_absent_classes():
    cm = ConfusionMatrix(4)
    cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
    out = summarize(cm, ["a", "b", "c", "d"], unseen_ids=[2, 3])
    # a: 1; b: 1/2; c: 1/2; d absent -> seen mean 0.75, unseen mean 0.5 (d excluded)
    assert out["mIoU_seen"] == pytest.approx(75.0)
    assert out["mIoU_unseen"] == pytest.approx(50.0)
    assert out["hIoU"] == pytest.approx(100 * 2 * 0.75 * 0.5 / 1.25)
    assert out["per_class"]["d"] is None
    assert out["mIoU"] == pytest.approx(100 * (1 + 0.5 + 0.5) / 3)


def test_accumulates_over_batches():
    one, two = ConfusionMatrix(3), ConfusionMatrix(3)
    p, t = torch.randint(0, 3, (2, 5, 5)), torch.randint(0, 3, (2, 5, 5))
    one.update(p, t)
    two.update(p[:1], t[:1])
    two.update(p[1:], t[1:])
    assert torch.equal(one.matrix, two.matrix)


def _harmonic(seen_iou: float, unseen_iou: float) -> float:
    """hIoU of one seen and one unseen class with these IoUs (NaN: the class is absent, union 0)."""
    inter = [0.0 if math.isnan(v) else v for v in (seen_iou, unseen_iou)]
    union = [0.0 if math.isnan(v) else 1.0 for v in (seen_iou, unseen_iou)]
    return float(scores_from_counts(inter, union, 0, 1, [False, True])["hIoU"])


def test_harmonic_mean_edge_cases():
    assert _harmonic(0.0, 0.0) == 0.0
    assert math.isnan(_harmonic(math.nan, 0.5))
    assert _harmonic(0.8, 0.4) == pytest.approx(2 * 0.32 / 1.2)


def test_no_prediction_pixels_are_misses_not_ignored():
    # 255 in a prediction (an external method abstaining) costs the true class, and nothing else.
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 255], [1, 1]]), torch.tensor([[0, 0], [1, 1]]))
    # class 0: tp 1, missed 1 -> 1/2; class 1: tp 2, no fp (the miss is not a prediction of 1) -> 1.
    assert cm.iou() == pytest.approx([0.5, 1.0])
    assert cm.pixel_accuracy() == pytest.approx(3 / 4)
