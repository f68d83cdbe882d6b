"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU(S), mIoU(U), hIoU, pAcc.

The matrix (and each image's counts, ``PerImageCounts``) is accumulated on the predictions'
device (a few ``bincount`` per batch), so evaluation never copies full label maps to the host.
The metrics themselves are ``store.scores_from_counts`` of the summed counts: the one formula the
readers of a run's per-image counts (the paired bootstrap) use too.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from zegbench.store import scores_from_counts


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


class PerImageCounts:
    """Each image's per-class intersection and union, and its labelled pixels (ignore pixels skipped).

    Counted as ``ConfusionMatrix`` counts (a prediction outside the classes is a miss: in the true
    class's union, in no class's intersection), so summed over images they give the matrix's IoUs
    and pixel accuracy exactly. Rows are images by their index in the split: under torchrun each rank
    fills its own and the rows are summed over ranks.
    """

    def __init__(self, num_classes: int, images: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.intersection = torch.zeros(images, num_classes, dtype=torch.int64, device=device)
        self.union = torch.zeros(images, num_classes, dtype=torch.int64, device=device)
        self.labelled = torch.zeros(images, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor, rows: list[int]) -> None:
        """Add a batch of images ``rows``: ``pred`` and ``target`` are integer maps (batch, H, W)."""
        if pred.shape != target.shape or len(rows) != target.shape[0]:
            raise ValueError(f"prediction {tuple(pred.shape)}, target {tuple(target.shape)} and {len(rows)} rows "
                             f"differ")
        c, batch = self.num_classes, target.shape[0]
        valid = target != self.ignore_index
        image = torch.arange(batch, device=target.device).view(-1, *[1] * (target.dim() - 1)).expand_as(target)[valid]
        t, p = target[valid].long(), pred.to(target.device)[valid].long()
        hit = (p >= 0) & (p < c)

        def per_image(cells: torch.Tensor) -> torch.Tensor:  # image * C + class -> (batch, C) pixel counts
            return torch.bincount(cells, minlength=batch * c).view(batch, c)

        labelled = per_image(image * c + t)  # misses included: they are pixels of the true class
        predicted = per_image(image[hit] * c + p[hit])
        inter = per_image((image * c + t)[hit & (p == t)])
        index = torch.as_tensor(rows, device=self.intersection.device)
        self.intersection[index] += inter.to(self.intersection.device)
        self.union[index] += (labelled + predicted - inter).to(self.union.device)
        self.labelled[index] += labelled.sum(dim=1).to(self.labelled.device)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(intersection, union, labelled) on the host."""
        return self.intersection.cpu().numpy(), self.union.cpu().numpy(), self.labelled.cpu().numpy()


def percent(value: float):
    """A metric as result.json holds it: percent rounded to 4 decimals, None when undefined (NaN)."""
    return None if math.isnan(value) else round(100 * float(value), 4)


def summarize(cm: ConfusionMatrix, class_names: Sequence[str], unseen_ids: Sequence[int]) -> dict:
    """Metrics in percent: ``pAcc``, ``mIoU``, ``mIoU_seen``, ``mIoU_unseen``, ``hIoU``, ``per_class``.

    Classes absent from both prediction and ground truth are left out of every
    mean (reported as None per class).
    """
    m = cm.matrix.double().cpu()
    inter = m.diag()
    union = m.sum(0) + m.sum(1) + cm.missed.double().cpu() - inter
    unseen = np.isin(np.arange(cm.num_classes), list(unseen_ids))
    scores = scores_from_counts(inter.numpy(), union.numpy(), float(inter.sum()), float(m.sum() + cm.missed.sum()),
                                unseen)
    return {**{key: percent(scores[key]) for key in ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")},
            "per_class": {name: percent(v) for name, v in zip(class_names, scores["per_class"], strict=False)}}
