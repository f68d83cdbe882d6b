"""A MaskFormer-style class-agnostic mask proposal network (zsseg / ZegFormer stage 1, reference 6.1-6.2).

    backbone (4 feature levels, strides 4..32) -> FPN pixel decoder -> per-pixel
    mask features at stride 4; N learned queries -> transformer decoder over the
    stride-32 features -> per query: a mask embedding (dot product with the mask
    features = mask logits) and a class embedding in CLIP's text space (cosine x
    ``logit_scale`` with the class text embeddings, plus a learned "no object").

Backbones: torchvision ResNet-50/101 for the real setting (ImageNet weights from
a local file, or random for speed measurements) and ``world_cnn``, a small CNN
trained from scratch on the embedded world. The ResNets' BatchNorm is frozen
by default, as detectron2's ``RESNETS.NORM: FrozenBN`` in both papers' configs:
statistics and affine fixed, convolutions trained. ``world_cnn`` uses
GroupNorm, which has no running statistics to freeze.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ("world_cnn", "resnet50", "resnet101")
BACKBONE_NORMS = ("frozen", "batch")


class StagedBackbone(nn.Module):
    """A stem then ``stages``; returns every stage's output (strides 4, 8, 16, 32)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class WorldCNN(StagedBackbone):
    """Four stride-2 stages after a stride-2 stem: features at strides 4, 8, 16, 32."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1), nn.GroupNorm(8, widths[0]), nn.ReLU(inplace=True))
        stages, prev = [], widths[0]
        for w in widths:
            stages.append(nn.Sequential(nn.Conv2d(prev, w, 3, 2, 1), nn.GroupNorm(8, w), nn.ReLU(inplace=True),
                                        nn.Conv2d(w, w, 3, 1, 1), nn.GroupNorm(8, w), nn.ReLU(inplace=True)))
            prev = w
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(widths)


class ResNetFeatures(StagedBackbone):
    """torchvision ResNet's res2..res5 (strides 4..32).

    ``weights``: None or 'none' (random, for speed measurements), 'imagenet'
    (torchvision's ImageNet weights, downloaded on first use), or a local
    state-dict file of the same architecture.
    """

    def __init__(self, depth: int, weights: str | None = None, norm: str = "frozen"):
        super().__init__()
        import torchvision
        from torchvision.ops import FrozenBatchNorm2d

        from zegbench.errors import ZegbenchError

        if norm not in BACKBONE_NORMS:
            raise ValueError(f"backbone_norm must be one of {BACKBONE_NORMS}, not {norm!r}")
        builder = getattr(torchvision.models, f"resnet{depth}")
        norm_layer = FrozenBatchNorm2d if norm == "frozen" else torch.nn.BatchNorm2d
        net = builder(weights="DEFAULT" if weights == "imagenet" else None, norm_layer=norm_layer)
        if weights not in (None, "none", "imagenet"):
            try:
                net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            except (OSError, RuntimeError) as err:
                first = str(err).strip().splitlines()[0][:200]
                raise ZegbenchError(f"backbone_weights {weights}: {first}; pass a torchvision resnet{depth} "
                                    f"state dict, 'imagenet' or 'none'") from None
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.channels = (256, 512, 1024, 2048)


def build_backbone(name: str, weights: str | None = None, norm: str = "frozen") -> nn.Module:
    """One of ``BACKBONES``; ``weights`` and ``norm`` (``BACKBONE_NORMS``) only apply to the ResNets."""
    if name == "world_cnn":
        return WorldCNN()
    if name in ("resnet50", "resnet101"):
        return ResNetFeatures(int(name[6:]), weights, norm)
    raise ValueError(f"backbone must be one of {BACKBONES}, not {name!r}")


class PixelDecoder(nn.Module):
    """FPN: lateral 1x1 + top-down sum + 3x3 conv (GroupNorm) -> mask features at stride 4."""

    def __init__(self, in_channels: tuple[int, ...], dim: int, mask_dim: int):
        super().__init__()
        groups = math.gcd(32, dim)
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels[:-1])
        self.top = nn.Sequential(nn.Conv2d(in_channels[-1], dim, 3, 1, 1), nn.GroupNorm(groups, dim),
                                 nn.ReLU(inplace=True))
        self.smooth = nn.ModuleList(nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.GroupNorm(groups, dim),
                                                  nn.ReLU(inplace=True))
                                    for _ in in_channels[:-1])
        self.mask_features = nn.Conv2d(dim, mask_dim, 3, 1, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.top(features[-1])
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])
            x = self.smooth[i](lateral + F.interpolate(x, size=lateral.shape[-2:], mode="nearest"))
        return self.mask_features(x)


def sine_positions(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """DETR's 2-D sine positional encoding, [h*w, dim] (half for y, half for x)."""
    quarter = dim // 4
    freq = 10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 * math.pi
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 * math.pi
    py = torch.cat([(ys[:, None] / freq).sin(), (ys[:, None] / freq).cos()], dim=1)  # [h, dim/2]
    px = torch.cat([(xs[:, None] / freq).sin(), (xs[:, None] / freq).cos()], dim=1)  # [w, dim/2]
    pos = torch.cat([py[:, None].expand(h, w, -1), px[None].expand(h, w, -1)], dim=-1)
    return pos.reshape(h * w, -1)


def mlp(dims: list[int]) -> nn.Sequential:
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ProposalNetwork(nn.Module):
    """Backbone + pixel decoder + query decoder + heads; see the module docstring.

    ``forward(images, text)`` returns one dict per decoder layer (the last one
    is the prediction, the others feed deep supervision), each with
    ``class_logits`` [B, Q, C+1] (last column: no object) and ``mask_logits``
    [B, Q, H/4, W/4].
    """

    def __init__(self, text_dim: int, backbone: str = "world_cnn", backbone_weights: str | None = None,
                 queries: int = 100, hidden: int = 256, layers: int = 6, heads: int = 8, ffn: int = 2048,
                 mask_dim: int = 256, dropout: float = 0.1, backbone_norm: str = "frozen",
                 logit_scale: float = 100.0):
        super().__init__()
        self.backbone = build_backbone(backbone, backbone_weights, backbone_norm)
        self.pixel_decoder = PixelDecoder(self.backbone.channels, hidden, mask_dim)
        self.input_proj = nn.Conv2d(self.backbone.channels[-1], hidden, 1)
        self.query_embed = nn.Embedding(queries, hidden)
        self.layers = nn.ModuleList(nn.TransformerDecoderLayer(hidden, heads, ffn, dropout, batch_first=True)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.class_embed = mlp([hidden, hidden, text_dim])  # zsseg: a 2-layer MLP into CLIP's text space
        self.no_object = nn.Parameter(torch.randn(text_dim) * 0.02)
        self.mask_embed = mlp([hidden, hidden, hidden, mask_dim])
        self.logit_scale = logit_scale  # fixed 1/T, T = 0.01 (ZegFormer's TEMPERATURE)

    def heads(self, queries: torch.Tensor, mask_features: torch.Tensor, text: torch.Tensor) -> dict:
        """Normalised query embeddings vs [text; no object] and mask embeddings vs pixel features."""
        q = self.norm(queries)
        emb = F.normalize(self.class_embed(q), dim=-1)
        classes = F.normalize(torch.cat([text, self.no_object[None]], dim=0), dim=-1)
        masks = torch.einsum("bqd,bdhw->bqhw", self.mask_embed(q), mask_features)
        return {"class_logits": self.logit_scale * emb @ classes.T, "mask_logits": masks}

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> list[dict]:
        features = self.backbone(images)
        mask_features = self.pixel_decoder(features)
        memory = self.input_proj(features[-1])
        pos = sine_positions(*memory.shape[-2:], memory.shape[1], memory.device)
        memory = memory.flatten(2).transpose(1, 2) + pos
        # The learned queries are the decoder's input (torch's layer has no separate query
        # position term; DETR adds it at every layer instead).
        x = self.query_embed.weight[None].expand(images.shape[0], -1, -1)
        outputs = []
        for layer in self.layers:
            x = layer(x, memory)
            outputs.append(self.heads(x, mask_features, text))
        return outputs
