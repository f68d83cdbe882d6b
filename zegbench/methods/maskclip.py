"""MaskCLIP (ECCV 2022), training-free: dense CLIP features matched with class text embeddings.

CLIP's image encoder runs unchanged up to its last block. There, the
query-key attention is dropped: each token's value embedding goes through the
attention's output projection, then CLIP's final LayerNorm and projection, as
two 1x1 convolutions would. (The residual branch and the MLP of the last block
are left out.) The resulting per-patch embeddings live in CLIP's joint space;
their cosine with each class text embedding, x ``logit_scale`` and softmaxed
over classes, is upsampled to the input. Nothing is trained: the lower bound
of what a frozen CLIP can segment on the same data.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zegbench.clip.loading import IN_HOUSE
from zegbench.methods.base import Method, register_class
from zegbench.methods.decoder import masks_to_image
from zegbench.methods.encoder import PromptedEncoder


@register_class("maskclip")
class MaskCLIP(Method):
    """Frozen CLIP's value-path patch embeddings x text embeddings; no parameters train."""

    setting = "inductive"
    training_free = True

    def __init__(self, clip: str = IN_HOUSE, clip_weights: str | None = None, image_size: int = 96,
                 templates: str = "single", logit_scale: float = 100.0):
        super().__init__()
        bundle, _ = self.load_frozen_clip(clip, clip_weights, image_size, templates)
        self.encoder = PromptedEncoder(bundle.model.visual, tuning="frozen")
        self.mean, self.std = bundle.mean, bundle.std
        self.logit_scale = logit_scale

    def dense_features(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Unit-norm patch embeddings [B, N, D] from the last block's value path, and the patch grid."""
        visual = self.encoder.visual
        x, grid = self.encoder.embed(images)
        blocks = visual.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        last = blocks[-1]
        attn = last.attn
        width = x.shape[-1]
        value = F.linear(last.ln_1(x), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
        x = visual.ln_post(attn.out_proj(value))
        if visual.proj is not None:
            x = x @ visual.proj
        return F.normalize(x[:, 1:], dim=-1), grid

    def forward(self, images: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, dict]:
        patches, grid = self.dense_features(images)
        logits = self.logit_scale * torch.einsum("bnd,cd->bcn", patches, self.text_embeddings(class_names))
        return masks_to_image(logits, grid, images.shape[-2:]), {}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, aux: dict | None = None) -> dict[str, torch.Tensor]:
        raise RuntimeError("maskclip is training-free: it has no loss (the harness skips its training)")

    @torch.no_grad()
    def predict(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        return self(images, class_names)[0].softmax(dim=1)

    def param_groups(self, lr: float) -> list[dict]:
        return []
