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


def one_hot_masks(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, H, W] labels -> [B, C, H, W] bool one-hot, laid out as the logits; 255 pixels are all-False.

    Laid out as the logits, so every elementwise op of the loss runs on contiguous memory (one
    operand in another layout makes each pass strided and slower). A comparison with the class ids:
    no int64 one-hot (``F.one_hot`` spends eight bytes a pixel per class, 4.9 GiB at the COCO-Stuff
    recipe: 16 x 512 x 512 x 156). A label past the last class counts as the last class, as the
    one-hot of the recorded runs did.
    """
    index = torch.where(labels != IGNORE, labels.clamp(max=num_classes - 1), -1)
    return index.unsqueeze(1) == torch.arange(num_classes, device=labels.device).view(1, -1, 1, 1)


def sum_over_pixels(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C]: the sum over pixels with classes innermost in memory, the order in
    which the recorded runs' focal terms were summed (a class-major sum changes the last bit)."""
    return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).flatten(2).sum(-1)


def nel_loss(logits: torch.Tensor, labels: torch.Tensor, focal_weight: float = 100.0, dice_weight: float = 1.0,
             ignore_negatives: bool = False, alpha: float = 0.25, gamma: float = 2.0) -> dict[str, torch.Tensor]:
    """Focal + dice on mask logits [B, C, H, W] against labels [B, H, W] (0..C-1, 255)."""
    is_target = one_hot_masks(labels, logits.shape[1])
    target = is_target.float()
    logits = logits.float()
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    # With targets exactly 0 or 1, selecting equals the textbook sums p t + (1 - p)(1 - t) and
    # alpha t + (1 - alpha)(1 - t) to the last bit (values and gradients), in fewer passes.
    p_t = torch.where(is_target, prob, 1 - prob)
    focal = ce * (1 - p_t) ** gamma * torch.where(is_target, alpha, 1 - alpha)
    p, y = prob, target
    if ignore_negatives:  # 255 pixels leave the focal mean and the dice sums
        weight = (labels != IGNORE).unsqueeze(1).float()
        focal, p, y = focal * weight, prob * weight, target * weight
    else:
        weight = torch.ones_like(target[:, :1])
    focal = sum_over_pixels(focal) / weight.flatten(2).sum(-1).clamp(min=1)  # mean over counted pixels
    p, y = p.flatten(2), y.flatten(2)
    target_pixels = y.sum(-1)  # [B, C], exact counts
    present = target_pixels > 0
    num_masks = distributed.mean_denominator(present.sum()).clamp(min=1)  # global under DDP
    dice = 1 - (2 * (p * y).sum(-1) + 1) / (p.sum(-1) + target_pixels + 1)
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
