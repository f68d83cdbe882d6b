"""CLIP's image encoder with the four tuning modes of ZegCLIP's ablation.

- ``frozen``: CLIP's weights fixed, nothing added.
- ``finetune``: every image-encoder weight trains.
- ``vpt_shallow``: M learnable prompt tokens inserted once after CLS; they flow
  through all blocks like ordinary tokens.
- ``dpt`` (deep prompt tuning): before each of the first ``prompt_depth``
  blocks the prompt tokens coming out of the previous block are discarded and
  replaced by that block's own fresh prompt set. With ``prompt_depth`` below
  the number of blocks, the official code removes the prompt tokens before the
  next block (``prompts_after_depth: drop``); ``keep`` lets the last set flow on.
  ``prompt_depth`` 1 is the official shallow path (prompts flow on, no norm).

Both prompt modes pass every prompt set through one shared projection
(Linear width->width) and dropout. The official encoder expands a prompt set to the batch and
then drops, so each image gets its own dropout mask (``prompt_masks: per_image``); ``shared``
drops once and expands, one mask for the whole batch (zegbench before 2026-12-06). Deep
prompting adds a trainable LayerNorm after the last block, before CLIP's frozen ``ln_post`` and
``proj``; the official shallow path has none (``shallow_prompt_norm``; reference section 1.1).
The output is ZegCLIP's read-out: g (the pooled image embedding) and H
(patches), both after ``ln_post`` and ``proj``, L2-normalised.

Two quirks of the official encoder (models/backbone/img_encoder.py) are
switches: it adds the class embedding twice (once as the CLS token, once in the
CLS position embedding: ``cls_embedding: twice``), and it resizes the position
table bilinearly from the checkpoint's grid (``pos_mode``; MaskCLIP's mmseg ViT
resizes bicubically).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TUNINGS = ("frozen", "finetune", "vpt_shallow", "dpt")
CLS_EMBEDDINGS = ("twice", "once")
PROMPT_EXITS = ("drop", "keep")
POS_MODES = ("bilinear", "bicubic")
PROMPT_MASKS = ("per_image", "shared")


class PromptedEncoder(nn.Module):
    """Wraps an open_clip ``VisionTransformer`` (batch-first blocks)."""

    def __init__(self, visual: nn.Module, tuning: str = "dpt", num_tokens: int = 10,
                 prompt_depth: int | None = None, prompt_dropout: float = 0.1, cls_embedding: str = "twice",
                 prompts_after_depth: str = "drop", shallow_prompt_norm: bool = False, pos_mode: str = "bilinear",
                 prompt_masks: str = "per_image"):
        super().__init__()
        for key, value, allowed in (("tuning", tuning, TUNINGS), ("cls_embedding", cls_embedding, CLS_EMBEDDINGS),
                                    ("prompts_after_depth", prompts_after_depth, PROMPT_EXITS),
                                    ("pos_mode", pos_mode, POS_MODES), ("prompt_masks", prompt_masks, PROMPT_MASKS)):
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, not {value!r}")
        self.visual, self.tuning = visual, tuning
        self.cls_twice, self.pos_mode = cls_embedding == "twice", pos_mode
        self.masks_per_image = prompt_masks == "per_image"
        blocks = len(visual.transformer.resblocks)
        width = visual.conv1.out_channels
        patch = visual.conv1.kernel_size[0]
        self.patch_size = patch
        self.num_tokens = num_tokens if tuning in ("vpt_shallow", "dpt") else 0
        # dpt: fresh prompts before blocks 0 .. depth-1 (default: every block).
        self.prompt_depth = 1 if tuning == "vpt_shallow" else min(prompt_depth or blocks, blocks)
        # Deep prompting proper needs two prompted blocks: the official code runs depth 1
        # (total_d_layer 0) through its shallow path.
        deep = tuning == "dpt" and self.prompt_depth > 1
        self.drop_after_depth = deep and prompts_after_depth == "drop"
        for p in visual.parameters():
            p.requires_grad_(tuning == "finetune")
        self.prompt_norm = None
        if self.num_tokens:
            bound = math.sqrt(6.0 / float(3 * patch * patch + width))  # VPT's Xavier-style bound
            self.prompts = nn.Parameter(torch.empty(self.prompt_depth, self.num_tokens, width).uniform_(-bound, bound))
            self.prompt_proj = nn.Linear(width, width)
            nn.init.kaiming_normal_(self.prompt_proj.weight, a=0, mode="fan_out")
            self.prompt_dropout = nn.Dropout(prompt_dropout)
            if deep or shallow_prompt_norm:
                self.prompt_norm = nn.LayerNorm(width, eps=1e-6)

    def _positional(self, grid: tuple[int, int]) -> torch.Tensor:
        """CLIP's positional embedding, resized (``pos_mode``) when the patch grid differs."""
        pos = self.visual.positional_embedding
        old = int(math.sqrt(pos.shape[0] - 1))
        if (old, old) == grid:
            return pos
        spatial = pos[1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
        spatial = F.interpolate(spatial, size=grid, mode=self.pos_mode, align_corners=False)
        return torch.cat([pos[:1], spatial.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)])

    def _prompt_set(self, index: int, batch: int) -> torch.Tensor:
        """Prompt set ``index`` for a batch [B, M, W]: projected, then dropped out (``prompt_masks``)."""
        prompts = self.prompt_proj(self.prompts[index])
        if self.masks_per_image:  # the official order (img_encoder.py:242,289): expand, then drop
            return self.prompt_dropout(prompts.expand(batch, -1, -1))
        return self.prompt_dropout(prompts).expand(batch, -1, -1)

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """images [B, 3, H, W] -> the first block's input tokens [B, 1 + N, W] (CLS first) and the patch grid."""
        v = self.visual
        x = v.conv1(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        pos = self._positional(grid).to(x.dtype)
        if self.cls_twice:  # the official encoder's CLS position is pos[0] + class_embedding
            pos = torch.cat([pos[:1] + v.class_embedding.to(x.dtype), pos[1:]])
        x = torch.cat([cls, x], dim=1) + pos
        return v.ln_pre(x), grid

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """images [B, 3, H, W] -> (g [B, D], H [B, N, D], grid), both unit-norm."""
        v = self.visual
        x, grid = self.embed(images)
        m = self.num_tokens  # prompt tokens now in the sequence, after CLS
        if m:
            x = torch.cat([x[:, :1], self._prompt_set(0, x.shape[0]), x[:, 1:]], dim=1)
        for i, block in enumerate(v.transformer.resblocks):
            if m and 0 < i < self.prompt_depth:  # deep: replace the previous block's prompt outputs
                x = torch.cat([x[:, :1], self._prompt_set(i, x.shape[0]), x[:, 1 + m:]], dim=1)
            elif m and i == self.prompt_depth and self.drop_after_depth:  # past the prompted blocks
                x, m = torch.cat([x[:, :1], x[:, 1 + m:]], dim=1), 0
            x = block(x)
        if self.prompt_norm is not None:
            x = self.prompt_norm(x)
        x = v.ln_post(x)
        if v.proj is not None:
            x = x @ v.proj
        patches = x[:, 1 + m:]
        # g is what CLIP was trained to align with text: the CLS token, or the
        # patch mean for mean-pooled towers (pool_type 'avg').
        g = patches.mean(dim=1) if getattr(v, "pool_type", "tok") == "avg" else x[:, 0]
        return F.normalize(g, dim=-1), F.normalize(patches, dim=-1), grid
