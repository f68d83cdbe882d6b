"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU(S), mIoU(U), hIoU, pAcc.

The matrix is accumulated on the predictions' device (one ``bincount`` per
batch), so evaluation never copies full label maps to the host.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


class ConfusionMatrix:
    """``matrix[t, p]`` counts pixels of true class ``t`` predicted as ``p``; ignore pixels are skipped.

    A prediction outside ``0..num_classes-1`` (an external method's 255, "no
    prediction") is a miss: counted in ``missed[t]``, so it lowers the true
    class's IoU and the pixel accuracy without counting against any other class.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.missed = torch.zeros(num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` are integer maps of the same shape."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != self.ignore_index
        t, p = target[valid].long(), pred[valid].long().to(target.device)
        hit = (p >= 0) & (p < self.num_classes)
        self.missed += torch.bincount(t[~hit], minlength=self.num_classes).to(self.missed.device)
        idx = t[hit] * self.num_classes + p[hit]
        counts = torch.bincount(idx, minlength=self.num_classes**2).view(self.num_classes, -1)
        self.matrix += counts.to(self.matrix.device)

    def iou(self) -> list[float]:
        """Per-class IoU; NaN for a class absent from both ground truth and predictions."""
        m = self.matrix.double()
        inter = m.diag()
        union = m.sum(0) + m.sum(1) + self.missed.double() - inter
        return [float(i / u) if u > 0 else math.nan for i, u in zip(inter.tolist(), union.tolist(), strict=True)]

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum().item() + self.missed.sum().item()
        return float(self.matrix.diag().sum().item() / total) if total else math.nan


def _nanmean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def harmonic(seen: float, unseen: float) -> float:
    """hIoU = 2 S U / (S + U); 0 when both are 0, NaN when either is undefined."""
    if math.isnan(seen) or math.isnan(unseen):
        return math.nan
    return 2 * seen * unseen / (seen + unseen) if seen + unseen > 0 else 0.0


def summarize(cm: ConfusionMatrix, class_names: Sequence[str], unseen_ids: Sequence[int]) -> dict:
    """Metrics in percent: ``pAcc``, ``mIoU``, ``mIoU_seen``, ``mIoU_unseen``, ``hIoU``, ``per_class``.

    Classes absent from both prediction and ground truth are left out of every
    mean (reported as None per class).
    """
    ious = cm.iou()
    unseen = set(unseen_ids)
    seen_vals = [v for i, v in enumerate(ious) if i not in unseen]
    unseen_vals = [v for i, v in enumerate(ious) if i in unseen]
    s, u = _nanmean(seen_vals), _nanmean(unseen_vals)

    def pct(v: float):
        return None if math.isnan(v) else round(100 * v, 4)

    return {
        "pAcc": pct(cm.pixel_accuracy()), "mIoU": pct(_nanmean(ious)), "mIoU_seen": pct(s),
        "mIoU_unseen": pct(u), "hIoU": pct(harmonic(s, u)),
        "per_class": {name: pct(v) for name, v in zip(class_names, ious, strict=False)},
    }
