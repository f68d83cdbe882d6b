"""MaskFormer's set prediction loss: bipartite matching, then class + mask losses (reference 6.1).

Targets are per-class binary masks of a semantic label map (one target per
class present; 255 pixels belong to no target). Each target is matched to one
query by the Hungarian algorithm on cost = class + 20 x focal + 1 x dice;
matched queries learn the target's class and mask, the rest learn "no object"
(class weight 0.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from zegbench.utils import distributed

IGNORE = 255


def semantic_targets(label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One label map [H, W] -> (class ids [T], binary masks [T, H, W] float), 255 excluded."""
    classes = torch.unique(label)
    classes = classes[classes != IGNORE]
    return classes, (label[None] == classes[:, None, None]).float()


def focal_cost(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Mean sigmoid focal loss of every prediction [Q, P] against every target [T, P] -> [Q, T]."""
    prob = logits.sigmoid()
    ce_pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    ce_neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    pos = alpha * (1 - prob) ** gamma * ce_pos
    neg = (1 - alpha) * prob ** gamma * ce_neg
    return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]


def dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - dice of every prediction [Q, P] against every target [T, P] -> [Q, T]."""
    prob = logits.sigmoid()
    inter = 2 * prob @ targets.T
    return 1 - (inter + 1) / (prob.sum(-1)[:, None] + targets.sum(-1)[None] + 1)


@torch.no_grad()
def hungarian_match(class_prob: torch.Tensor, mask_logits: torch.Tensor, classes: torch.Tensor,
                    masks: torch.Tensor, class_weight: float = 1.0, mask_weight: float = 20.0,
                    dice_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Query index and target index of each matched pair (one image).

    ``class_prob`` [Q, C+1] softmax over classes, ``mask_logits`` [Q, P] and
    ``masks`` [T, P] flattened at the same resolution, ``classes`` [T].
    """
    cost = (class_weight * -class_prob[:, classes] + mask_weight * focal_cost(mask_logits, masks)
            + dice_weight * dice_cost(mask_logits, masks))
    rows, cols = linear_sum_assignment(cost.float().cpu().numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def set_loss(output: dict, labels: torch.Tensor, no_object_weight: float = 0.1, mask_weight: float = 20.0,
             dice_weight: float = 1.0, alpha: float = 0.25, gamma: float = 2.0) -> dict[str, torch.Tensor]:
    """Class CE, mask focal and dice for one decoder layer's ``output`` against labels [B, H, W].

    Mask logits are upsampled to the label size; the mask terms are averaged
    over the targets of the batch.
    """
    class_logits, mask_logits = output["class_logits"], output["mask_logits"]
    b, q, c1 = class_logits.shape
    mask_logits = F.interpolate(mask_logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    class_target = torch.full((b, q), c1 - 1, dtype=torch.long, device=labels.device)
    matched_logits, matched_masks = [], []
    prob = class_logits.detach().float().softmax(-1)
    for i in range(b):
        classes, masks = semantic_targets(labels[i])
        if len(classes) == 0:
            continue
        flat_logits, flat_masks = mask_logits[i].flatten(1), masks.flatten(1)
        rows, cols = hungarian_match(prob[i], flat_logits.detach().float(), classes, flat_masks)
        class_target[i, rows] = classes[cols]
        matched_logits.append(flat_logits[rows])
        matched_masks.append(flat_masks[cols])
    weight = torch.ones(c1, device=labels.device)
    weight[-1] = no_object_weight
    if distributed.world_size() > 1:  # means over the global batch (see distributed.mean_denominator)
        loss_class = (F.cross_entropy(class_logits.float().transpose(1, 2), class_target, weight=weight,
                                      reduction="sum")
                      / distributed.mean_denominator(weight[class_target].sum()))
        matched = torch.tensor(float(sum(len(m) for m in matched_masks)), device=labels.device)  # NCCL: on the GPU
        n = distributed.mean_denominator(matched).clamp(min=1)
    else:
        loss_class = F.cross_entropy(class_logits.float().transpose(1, 2), class_target, weight=weight)
        n = sum(len(m) for m in matched_masks)
    if not matched_logits:  # no labelled pixel in the batch: only "no object" is learned
        zero = mask_logits.sum() * 0
        return {"loss_class": loss_class, "loss_mask": zero, "loss_dice": zero}
    logits, targets = torch.cat(matched_logits).float(), torch.cat(matched_masks)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    focal = (ce * (1 - p_t) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))).mean(-1).sum() / n
    dice = (1 - (2 * (prob * targets).sum(-1) + 1) / (prob.sum(-1) + targets.sum(-1) + 1)).sum() / n
    return {"loss_class": loss_class, "loss_mask": mask_weight * focal, "loss_dice": dice_weight * dice}
