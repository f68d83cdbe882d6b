"""ZegCLIP's text-patch matching decoder and its relation descriptor (reference 1.3-1.4).

Class queries attend to the patch embeddings through cross-attention only (the
official layer inherits a self-attention module it never calls; we leave it
out). Each layer returns the head-averaged *pre-softmax* attention logits
q.k/sqrt(d_head): the last layer's are the per-class mask logits.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

RELATIONS = ("none", "rd", "product", "concat")
LAYER_INITS = ("copies", "independent")


class QueryBuilder(nn.Module):
    """Class queries from text embeddings t [C, D] and the image embedding g [B, D].

    - ``none``: q = W t                 (text alone)
    - ``rd``: q = W [g*t ; t]           (ZegCLIP's relation descriptor, RD first)
    - ``product``: q = W (g*t)          (the relation term alone)
    - ``concat``: q = W [g ; t]         (image and text side by side, no relation)
    """

    def __init__(self, dim: int, relation: str = "rd"):
        super().__init__()
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, not {relation!r}")
        self.relation = relation
        in_dim = 2 * dim if relation in ("rd", "concat") else dim
        self.proj = nn.Linear(in_dim, dim)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """-> queries [B, C, D] (one set per image)."""
        t = text.unsqueeze(0).expand(image.shape[0], -1, -1)
        g = image.unsqueeze(1).expand_as(t)
        if self.relation == "none":
            x = t
        elif self.relation == "rd":
            x = torch.cat([g * t, t], dim=-1)
        elif self.relation == "product":
            x = g * t
        else:
            x = torch.cat([g, t], dim=-1)
        return self.proj(x)


class CrossAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections that also returns its logits."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def head_logits(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Per-head pre-softmax logits q.k / sqrt(d_head): [B, heads, C, N]."""
        b, c, d = queries.shape
        q = self.q(queries).view(b, c, self.heads, d // self.heads).transpose(1, 2)
        k = self.k(memory).view(b, memory.shape[1], self.heads, d // self.heads).transpose(1, 2)
        return (q @ k.transpose(-2, -1)) * self.scale

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, d = queries.shape
        logits = self.head_logits(queries, memory)
        v = self.v(memory).view(b, memory.shape[1], self.heads, d // self.heads).transpose(1, 2)
        attended = self.drop(logits.softmax(dim=-1)) @ v
        return self.out(attended.transpose(1, 2).reshape(b, c, d)), logits.mean(dim=1)


class DecoderLayer(nn.Module):
    """Cross-attention, residual + LayerNorm, FFN (ReLU), residual + LayerNorm (post-norm)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.1):
        super().__init__()
        self.attn = CrossAttention(dim, heads, dropout)
        self.norm_attn, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, logits = self.attn(queries, memory)
        x = self.norm_attn(queries + self.drop(attended))
        x = self.norm_ffn(x + self.drop(self.ffn(x)))
        return x, logits


class MaskDecoder(nn.Module):
    """``layers`` decoder layers; returns the last layer's attention logits as mask logits [B, C, N].

    Only the last layer's q and k projections shape the output: its value,
    output projection, FFN and norms never receive a gradient (the official
    model trains with ``find_unused_parameters=True`` for this reason). They are
    kept so parameter counts match the reference (10.67 M trainable for VOC),
    listed by ``unused_parameter_names`` and not computed in the forward pass.
    The official README's 13.8 M also counts each layer's self-attention and
    norm1, which the official layers build and never call and this decoder
    does not build (``official_unbuilt_parameters``).

    ``init``: the official head builds one layer and deep-copies it (torch's
    ``TransformerDecoder``), so every layer starts from the same weights; its
    ``init_weights`` (truncated normal) is never called by the official
    train.py, which initialises only the backbone. ``independent`` draws
    each layer on its own.
    """

    def __init__(self, dim: int, layers: int = 3, heads: int = 8, ffn_dim: int | None = None, dropout: float = 0.1,
                 init: str = "copies"):
        super().__init__()
        if layers < 1:
            raise ValueError("the decoder needs at least one layer")
        if init not in LAYER_INITS:
            raise ValueError(f"decoder_init must be one of {LAYER_INITS}, not {init!r}")
        if init == "copies":
            first = DecoderLayer(dim, heads, ffn_dim or 4 * dim, dropout)
            self.layers = nn.ModuleList(copy.deepcopy(first) for _ in range(layers))
        else:
            self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn_dim or 4 * dim, dropout) for _ in range(layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            queries, _ = layer(queries, memory)
        return self.layers[-1].attn.head_logits(queries, memory).mean(dim=1)

    def official_unbuilt_parameters(self) -> int:
        """Parameters the official decoder has and this one does not build: every official layer
        (``TPN_DecoderLayer``, a torch ``TransformerDecoderLayer``) keeps the self-attention and its
        LayerNorm (``self_attn``, ``norm1``) and never calls them. Per layer a ``MultiheadAttention``
        (in-projection 3d x d + 3d, out-projection d x d + d) and a LayerNorm (2d): 1,051,648 at d = 512."""
        d = self.layers[0].attn.q.in_features
        return len(self.layers) * (4 * d * d + 4 * d + 2 * d)

    def unused_parameter_names(self) -> list[str]:
        """Names (relative to this module) of the last layer's parameters that get no gradient."""
        last = len(self.layers) - 1
        return [f"layers.{last}.{n}" for n, _ in self.layers[-1].named_parameters()
                if not n.startswith(("attn.q.", "attn.k."))]


def masks_to_image(logits: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """[B, C, N] patch logits -> [B, C, H, W] bilinearly upsampled (align_corners=False)."""
    maps = logits.reshape(logits.shape[0], logits.shape[1], *grid)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
