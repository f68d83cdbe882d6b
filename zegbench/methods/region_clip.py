"""Stage 2 of a two-stage method: CLIP classifies each proposal's region; the ensemble (reference 6.1-6.2).

Region geometry (zsseg ``MASK_FILL: mean`` / ZegFormer ``cropmask``): threshold
the proposal's mask at 0.5, take its tight box, crop the box from the
CLIP-normalised image with ``roi_align`` straight to CLIP's input size, and set
the pixels outside the (equally cropped) mask to 0, which in normalised space
is CLIP's mean colour. Empty masks are not cropped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes, roi_align

ENSEMBLES = ("zsseg", "zegformer")


def region_crops(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops [K, 3, size, size] of the non-empty binary ``masks`` [B, Q, H, W] and their flags [B, Q].

    ``images`` [B, 3, H, W] are already normalised with CLIP's mean and std.
    """
    b, q = masks.shape[:2]
    valid = masks.flatten(2).any(-1)
    flat = masks.flatten(0, 1)[valid.flatten()].float()  # [K, H, W]
    if len(flat) == 0:
        return images.new_zeros(0, 3, size, size), valid
    boxes = masks_to_boxes(flat)
    boxes[:, 2:] += 1  # inclusive pixel indices -> continuous box edges
    owner = torch.arange(b, device=masks.device).repeat_interleave(q)[valid.flatten()]
    rois = torch.cat([owner[:, None].to(boxes.dtype), boxes], dim=1)
    crops = roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    mask_rois = torch.cat([torch.arange(len(flat), device=masks.device)[:, None].to(boxes.dtype), boxes], dim=1)
    inside = roi_align(flat[:, None], mask_rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True) > 0.5
    return crops * inside, valid


def ensemble(p_proposal: torch.Tensor, p_clip: torch.Tensor, seen: torch.Tensor, weight: float,
             style: str = "zsseg") -> torch.Tensor:
    """Per-class geometric ensemble of the proposal net's and CLIP's class probabilities [..., C].

    zsseg: seen p_prop^w * p_clip^(1-w), unseen p_prop^(1-w) * p_clip^w.
    ZegFormer: the same after replacing CLIP's seen-class probabilities by their
    mean over the seen classes (CLIP is trusted for unseen classes only).
    """
    if style not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {ENSEMBLES}, not {style!r}")
    seen = seen.to(torch.bool)
    if style == "zegformer":
        mean_seen = p_clip[..., seen].mean(-1, keepdim=True)
        p_clip = torch.where(seen, mean_seen.expand_as(p_clip), p_clip)
    w_prop = torch.where(seen, torch.full_like(p_clip, weight), torch.full_like(p_clip, 1 - weight))
    return p_proposal.clamp_min(1e-8) ** w_prop * p_clip.clamp_min(1e-8) ** (1 - w_prop)


def semantic_map(class_prob: torch.Tensor, mask_prob: torch.Tensor) -> torch.Tensor:
    """S_c(x) = sum_q p(q, c) * m_q(x): [B, Q, C] and [B, Q, H, W] -> [B, C, H, W]."""
    return torch.einsum("bqc,bqhw->bchw", class_prob, mask_prob)


@torch.no_grad()
def classify_regions(encode_image, crops: torch.Tensor, text: torch.Tensor, logit_scale: float = 100.0,
                     batch_size: int = 32) -> torch.Tensor:
    """CLIP's class probabilities [K, C] for region crops, softmax over 100 x cosine with ``text`` [C, D]."""
    if len(crops) == 0:
        return crops.new_zeros(0, text.shape[0])
    feats = torch.cat([encode_image(crops[i:i + batch_size]).float() for i in range(0, len(crops), batch_size)])
    return (logit_scale * F.normalize(feats, dim=-1) @ text.T).softmax(-1)
