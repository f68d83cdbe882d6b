"""Stage 2 of a two-stage method: CLIP classifies each proposal's region; the ensemble (reference 6.1-6.2).

Region geometry (zsseg ``MASK_FILL: mean`` / ZegFormer ``cropmask``): threshold
the proposal's mask at 0.5, take its tight box, crop the box from the
CLIP-normalised image with ``roi_align`` straight to CLIP's input size, and set
the pixels outside the (equally cropped) mask to 0, which in normalised space
is CLIP's mean colour.

Empty masks: zsseg skips them (its model then gives them CLIP probability 1);
ZegFormer crops the whole image instead (mask_former_model.py: a zero-area box
becomes the image's box), which for an empty mask is the masked image: all
mean colour.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes, roi_align

ENSEMBLES = ("zsseg", "zegformer")


def region_crops(images: torch.Tensor, masks: torch.Tensor, size: int,
                 empty_as_whole_image: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops [K, 3, size, size] of the binary ``masks`` [B, Q, H, W] and which proposals have one [B, Q].

    ``images`` [B, 3, H, W] are already normalised with CLIP's mean and std.
    Empty masks get no crop, or with ``empty_as_whole_image`` the whole image's box.
    """
    b, q = masks.shape[:2]
    nonempty = masks.flatten(2).any(-1)
    valid = torch.ones_like(nonempty) if empty_as_whole_image else nonempty
    flat = masks.flatten(0, 1)[valid.flatten()].float()  # [K, H, W]
    if len(flat) == 0:
        return images.new_zeros(0, 3, size, size), valid
    boxes = flat.new_tensor([0.0, 0.0, images.shape[-1], images.shape[-2]]).repeat(len(flat), 1)
    has_pixels = flat.flatten(1).any(-1)
    if has_pixels.any():
        boxes[has_pixels] = masks_to_boxes(flat[has_pixels])
        boxes[has_pixels, 2:] += 1  # inclusive pixel indices -> continuous box edges
    owner = torch.arange(b, device=masks.device).repeat_interleave(q)[valid.flatten()]
    rois = torch.cat([owner[:, None].to(boxes.dtype), boxes], dim=1)
    crops = roi_align(images, rois, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    mask_rois = torch.cat([torch.arange(len(flat), device=masks.device)[:, None].to(boxes.dtype), boxes], dim=1)
    inside = roi_align(flat[:, None], mask_rois, output_size=size, spatial_scale=1.0, sampling_ratio=2,
                       aligned=True) > 0.5
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
                     batch_size: int = 32, no_object_logits: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP's class probabilities [K, C] for region crops, softmax over 100 x cosine with ``text`` [C, D].

    ``no_object_logits`` [K] (ZegFormer: the proposal's own no-object logit)
    join the softmax as one more column, which is dropped afterwards.
    """
    if len(crops) == 0:
        return crops.new_zeros(0, text.shape[0])
    feats = torch.cat([encode_image(crops[i:i + batch_size]).float() for i in range(0, len(crops), batch_size)])
    logits = logit_scale * F.normalize(feats, dim=-1) @ text.T
    if no_object_logits is None:
        return logits.softmax(-1)
    return torch.cat([logits, no_object_logits[:, None].to(logits.dtype)], dim=1).softmax(-1)[:, :-1]
