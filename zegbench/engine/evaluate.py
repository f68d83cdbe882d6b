"""Evaluation: a method's calibrated predictions over a split -> confusion matrix -> metrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zegbench.datasets.catalog import DatasetInfo
from zegbench.datasets.transforms import rescale_for_testing
from zegbench.engine.metrics import ConfusionMatrix, PerImageCounts, summarize
from zegbench.errors import ZegbenchError
from zegbench.methods.base import Method
from zegbench.store import ImageCounts
from zegbench.utils import distributed
from zegbench.utils.faults import fault_point


@torch.no_grad()
def evaluate(method: Method, dataset, info: DatasetInfo, batch_size: int = 16, device: str = "cpu",
             limit: int | None = None, seen: list[bool] | None = None, split: str = "val") -> dict:
    """mIoU(S), mIoU(U), hIoU, pAcc and per-class IoU of ``method`` on ``dataset`` (all classes), and
    ``image_counts``: each image's per-class intersection and union (a ``store.ImageCounts`` of
    ``split``, which the run writes beside its result.json).

    Images of different sizes are evaluated one at a time; same-size images in batches.
    ``seen`` flags the classes that get the inductive seen-class calibration
    (default: the dataset's seen classes). Under torchrun each rank evaluates
    every world-size-th image and the confusion matrices (and per-image rows) are
    summed, so every rank returns the same metrics.
    """
    method.to(device).eval()
    if seen is None:
        seen = [i not in set(info.unseen_ids) for i in range(len(info.classes))]
    cm = ConfusionMatrix(len(info.classes), device=device)
    scale = info.test_scale  # real datasets: e.g. short side 512 before sliding windows (info.test_resize)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    per_image = PerImageCounts(len(info.classes), count, device=device)
    pending: list[tuple[np.ndarray, np.ndarray, int]] = []

    def flush():
        images = torch.from_numpy(np.stack([p[0] for p in pending])).to(device)
        labels = torch.from_numpy(np.stack([p[1] for p in pending])).to(device)
        images = rescale_for_testing(method.normalize(images), scale, info.test_resize)
        scores = method.predict(images, list(info.classes), seen)
        if scores.shape[-2:] != labels.shape[-2:]:  # metrics at the labels' own resolution
            scores = F.interpolate(scores, size=labels.shape[-2:], mode="bilinear", align_corners=False)
        predicted = scores.argmax(dim=1)
        cm.update(predicted, labels)
        per_image.update(predicted, labels, [p[2] for p in pending])
        pending.clear()
        fault_point("evaluate")

    for i in range(distributed.rank(), count, distributed.world_size()):
        image, label, _ = dataset[i]
        if pending and (image.shape != pending[0][0].shape or len(pending) == batch_size):
            flush()
        pending.append((image, label, i))
    if pending:
        flush()
    for counts in (cm.matrix, cm.missed, per_image.intersection, per_image.union, per_image.labelled):
        distributed.all_reduce_sum(counts)
    ids = getattr(dataset, "ids", None)  # a folder's image ids; else the images' positions in the split
    unseen = np.isin(np.arange(len(info.classes)), list(info.unseen_ids))
    image_counts = ImageCounts(info.name, split, tuple(info.classes), unseen,
                               tuple(str(ids[i]) if ids is not None else str(i) for i in range(count)),
                               *per_image.arrays())
    return {**summarize(cm, info.classes, info.unseen_ids), "image_counts": image_counts}


def official_method(checkpoint: str | Path | dict, dataset: str, method: str | None = None,
                    overrides: dict | None = None, source: str | None = None) -> tuple[Method, dict]:
    """An official ZegCLIP checkpoint (path or loaded) in zegbench's ZegCLIP, built as ``dataset``'s recipe says.

    ``method`` defaults to ``zegclip``, or ``zegclip_transductive`` when the checkpoint's config
    trained with self-training; ``overrides`` replace method keys (e.g. ``clip_weights``, a local
    ViT-B-16 file for the text tower). Returns the method and its resolved config. The checkpoint
    is read before anything is built, so a bad file costs no CLIP download.
    """
    from zegbench.datasets.catalog import load_dataset_info
    from zegbench.engine.resolve import resolve
    from zegbench.methods import build_method
    from zegbench.methods.official_checkpoint import (
        check_meta,
        checkpoint_setting,
        load_official_checkpoint,
        read_checkpoint,
    )
    from zegbench.methods.zegclip import ZegCLIP

    ckpt = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    source = source or str(checkpoint)
    method = method or ("zegclip_transductive" if checkpoint_setting(ckpt["meta"]) == "transductive" else "zegclip")
    config = resolve(method, dataset, 0, overrides)
    classes = list(load_dataset_info(dataset).classes)
    check_meta(ckpt, classes, config["method_config"].get("setting"), source)  # before building: cheap errors first
    model = build_method(config["method_config"])
    if not isinstance(model, ZegCLIP):
        raise ZegbenchError(f"method {method!r} is not a ZegCLIP: an official ZegCLIP checkpoint loads only into "
                            f"zegclip or zegclip_transductive")
    load_official_checkpoint(model, ckpt, classes, source=source)
    return model, config


def evaluate_checkpoint(checkpoint: str | Path, dataset: str, method: str | None = None,
                        overrides: dict | None = None, split: str = "val", data_root: str | Path | None = None,
                        device: str = "cpu", limit: int | None = None) -> dict:
    """Evaluate an official ZegCLIP checkpoint on ``dataset``'s ``split`` (the metrics of ``evaluate``)."""
    from zegbench.datasets.catalog import build_dataset, load_dataset_info

    model, _ = official_method(checkpoint, dataset, method, overrides)
    data = build_dataset(dataset, split, data_root=data_root)
    return evaluate(model, data, load_dataset_info(dataset), device=device, limit=limit, split=split)


def score_prediction_folder(pred_dir: str | Path, dataset: str, split: str = "val",
                            data_root: str | Path | None = None) -> dict:
    """Score label PNGs from any method with the harness's protocol.

    ``pred_dir/<id>.png`` holds class indices in the dataset's class order
    (0..C-1) for every id of the split; 255 means "no prediction" and counts as
    a miss. Returns the same metrics as ``evaluate``.
    """
    from PIL import Image, UnidentifiedImageError

    from zegbench.datasets.catalog import build_dataset, load_dataset_info

    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise ZegbenchError(f"prediction folder {pred_dir} does not exist")
    info = load_dataset_info(dataset)
    data = build_dataset(dataset, split, data_root=data_root)
    missing = [sid for sid in data.ids if not (pred_dir / f"{sid}.png").is_file()]
    if missing:
        raise ZegbenchError(f"{pred_dir} lacks {len(missing)} of the {len(data.ids)} predictions of the {split} "
                            f"split (first: {missing[0]}.png): write one <id>.png per ground-truth label")
    cm = ConfusionMatrix(len(info.classes))
    for index, sid in enumerate(data.ids):
        _, label, _ = data[index]
        path = pred_dir / f"{sid}.png"
        try:
            with Image.open(path) as im:
                pred = np.asarray(im)
        except (UnidentifiedImageError, OSError) as err:
            raise ZegbenchError(f"{path} is not a readable PNG ({type(err).__name__})") from None
        if pred.shape != label.shape:
            raise ZegbenchError(f"{path} is {pred.shape}, its ground truth is {label.shape}: predictions must be "
                                f"single-channel label maps at the image's size")
        bad = (pred != 255) & (pred >= len(info.classes))
        if bad.any():
            raise ZegbenchError(f"{path} has value {int(pred[bad][0])}: use class indices 0..{len(info.classes) - 1} "
                                f"in the order of {info.path}, or 255 for no prediction")
        cm.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(label))
    return summarize(cm, info.classes, info.unseen_ids)
