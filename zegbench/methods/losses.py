"""The two losses of ZegCLIP's ablation (reference section 2).

- ``nel`` (non-mutually-exclusive): per-class sigmoid focal loss (alpha 0.25,
  gamma 2) on every class map, plus dice loss on the classes present in each
  image; both divided by the number of (image, present class) pairs.
- ``ce`` (exclusive): softmax over classes, pixel cross-entropy.

``ignore_negatives`` chooses what a 255 pixel means for NEL. The official code
one-hot encodes 255 as "no class", so background, unseen (inductive) and
padding pixels are *negatives* for every class (``False``, the default, as the
reference). ``True`` masks them out of the focal term and the dice sums.
Cross-entropy always ignores them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zegbench.utils import distributed

IGNORE = 255
LOSSES = ("nel", "ce")


def one_hot_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, H, W] labels -> [B, C, H, W] float one-hot; 255 pixels are all-zero.

    Written straight into a float tensor: ``F.one_hot`` builds int64 first, eight bytes a pixel
    per class (4.9 GiB at the COCO-Stuff recipe: 16 x 512 x 512 x 156) before the float copy.
    """
    valid = labels != IGNORE
    b, h, w = labels.shape
    # Classes innermost in memory, as F.one_hot's permuted result was: the loss's sums then add in
    # the same order, so the logged losses keep every digit.
    hot = torch.zeros(b, h, w, num_classes, device=labels.device).permute(0, 3, 1, 2)
    index = (labels.clamp(max=num_classes - 1) * valid).unsqueeze(1).long()
    return hot.scatter_(1, index, valid.unsqueeze(1).float())  # an ignored pixel writes 0 into class 0


def nel_loss(logits: torch.Tensor, labels: torch.Tensor, focal_weight: float = 100.0, dice_weight: float = 1.0,
             ignore_negatives: bool = False, alpha: float = 0.25, gamma: float = 2.0) -> dict[str, torch.Tensor]:
    """Focal + dice on mask logits [B, C, H, W] against labels [B, H, W] (0..C-1, 255)."""
    b, c = logits.shape[:2]
    target = one_hot_targets(labels, c)
    weight = (labels != IGNORE).unsqueeze(1).float() if ignore_negatives else torch.ones_like(target[:, :1])
    present = target.flatten(2).amax(-1) > 0  # [B, C]
    num_masks = distributed.mean_denominator(present.sum()).clamp(min=1)  # global under DDP
    logits = logits.float()
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    focal = ce * (1 - p_t) ** gamma * (alpha * target + (1 - alpha) * (1 - target)) * weight
    focal = focal.flatten(2).sum(-1) / weight.flatten(2).sum(-1).clamp(min=1)  # mean over counted pixels
    p, y = (prob * weight).flatten(2), (target * weight).flatten(2)
    dice = 1 - (2 * (p * y).sum(-1) + 1) / (p.sum(-1) + y.sum(-1) + 1)
    return {"loss_focal": focal_weight * focal.sum() / num_masks,
            "loss_dice": dice_weight * (dice * present).sum() / num_masks}


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Softmax cross-entropy over classes; 255 ignored. A batch with no labelled pixel gives 0.

    Under DDP the mean is over the labelled pixels of the whole global batch.
    """
    valid = labels != IGNORE
    if distributed.world_size() > 1:  # every rank joins the count's all-reduce, labelled pixels or not
        total = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="sum")
        return {"loss_ce": total / distributed.mean_denominator(valid.sum()).clamp(min=1)}
    if not valid.any():
        return {"loss_ce": logits.sum() * 0}
    return {"loss_ce": F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)}
