"""Evaluation: a method's calibrated predictions over a split -> confusion matrix -> metrics."""
from __future__ import annotations

import numpy as np
import torch

from zegbench.datasets.catalog import DatasetInfo
from zegbench.harness.metrics import ConfusionMatrix, summarize
from zegbench.methods.base import Method


@torch.no_grad()
def evaluate(method: Method, dataset, info: DatasetInfo, batch_size: int = 16, device: str = "cpu",
             limit: int | None = None) -> dict:
    """mIoU(S), mIoU(U), hIoU, pAcc and per-class IoU of ``method`` on ``dataset`` (all classes).

    Images of different sizes are evaluated one at a time; same-size images in batches.
    """
    method.to(device).eval()
    seen = [i not in set(info.unseen_ids) for i in range(len(info.classes))]
    cm = ConfusionMatrix(len(info.classes), device=device)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def flush():
        images = torch.from_numpy(np.stack([p[0] for p in pending])).to(device)
        labels = torch.from_numpy(np.stack([p[1] for p in pending])).to(device)
        scores = method.predict(method.normalize(images), list(info.classes), seen)
        cm.update(scores.argmax(dim=1), labels)
        pending.clear()

    for i in range(count):
        image, label, _ = dataset[i]
        if pending and (image.shape != pending[0][0].shape or len(pending) == batch_size):
            flush()
        pending.append((image, label))
    if pending:
        flush()
    return summarize(cm, info.classes, info.unseen_ids)
