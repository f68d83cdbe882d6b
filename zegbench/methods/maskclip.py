"""MaskCLIP (ECCV 2022), training-free: dense CLIP features matched with class text embeddings.

CLIP's image encoder runs unchanged up to its last block. There, the
query-key attention is dropped: each token's value embedding goes through the
attention's output projection. The official ViT path (MaskCLIP's
mmseg/models/backbones/vit.py, ``return_qkv``) then keeps the rest of the
block, the residual and the MLP, before CLIP's final LayerNorm and projection
(``value_path: official``). ``no_residual_ffn`` leaves both out, which is
closer to ClearCLIP than to MaskCLIP. The per-patch embeddings live in CLIP's
joint space; their cosine with each class text embedding, x ``logit_scale``
and softmaxed over classes, is upsampled to the input. Nothing is trained:
the lower bound of what a frozen CLIP can segment on the same data.

The official text side is MaskCLIP's 85 prompt templates and its cleaned
class names ("dining table"); the official configs feed the ViT ImageNet
mean and std and resize its 14x14 position table bicubically at run time
(real-data recipes set ``templates: maskclip85`` and ``normalization: imagenet``).

The official image tower is mmseg's ``VisionTransformer`` as MaskCLIP's
``configs/_base_/models/maskclip_vit16.py`` builds it: exact GELU and LayerNorm
eps 1e-6, whatever activation the CLIP weights were trained with; its text
embeddings come from OpenAI's ``clip`` package (QuickGELU, eps 1e-5) in fp16.
``image_tower: mmseg`` rebuilds the loaded image tower so (the text tower is
left as loaded), ``text_precision: fp16`` rounds the class embeddings through
fp16; the real recipes set both (docs/fidelity.md, items 15 and 16).

Inputs whose sides are not multiples of the patch (a VOC image at short side 512 is 512 x 683): the
official ``PatchEmbed`` pads the normalised image with zeros at the bottom and right to the next
multiple (mmseg's ``AdaptivePadding``, ``padding='corner'``), so its grid covers the whole image, and
resizes the padded grid's logits to the unpadded input. ``patch_padding: corner`` does the same;
``floor`` (the default, what recorded runs computed) lets the patch convolution drop the remainder
rows and columns and stretches the smaller grid over the input (docs/fidelity.md, item 18).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU
from torch import nn

from zegbench.clip.loading import IN_HOUSE
from zegbench.methods.base import IMAGENET_MEAN, IMAGENET_STD, Method
from zegbench.methods.decoder import masks_to_image
from zegbench.methods.encoder import PromptedEncoder
from zegbench.methods.registry import register_class
from zegbench.utils.ranges import Count, Positive

VALUE_PATHS = ("official", "no_residual_ffn")
POS_RESIZES = ("bicubic", "open_clip")
# clip: the image tower as the CLIP config builds it; mmseg: MaskCLIP's (exact GELU, LayerNorm eps 1e-6).
IMAGE_TOWERS = ("clip", "mmseg")
# floor: the patch convolution drops what is left over; corner: zeros at the bottom/right (MaskCLIP's PatchEmbed).
PATCH_PADDINGS = ("floor", "corner")
MMSEG_LN_EPS = 1e-6  # mmseg's norm_cfg=dict(type='LN', eps=1e-6) in MaskCLIP's ViT config


def as_mmseg_tower(visual: nn.Module) -> None:
    """Make a CLIP image tower MaskCLIP's mmseg ViT in place: QuickGELU -> exact GELU, every LayerNorm eps 1e-6.

    The weights are untouched (MaskCLIP converts OpenAI's weights into its ViT as they are).
    """
    for module in list(visual.modules()):
        for name, child in module.named_children():
            if isinstance(child, QuickGELU):
                setattr(module, name, nn.GELU())
        if isinstance(module, nn.LayerNorm):
            module.eps = MMSEG_LN_EPS



@register_class("maskclip")
class MaskCLIP(Method):
    """Frozen CLIP's value-path patch embeddings x text embeddings; no parameters train."""

    training_free = True
    tiny_config = {"clip_weights": "none", "image_size": 32, "templates": "single"}
    # The real recipes set image_tower: mmseg and text_precision: fp16 (docs/fidelity.md, items 15 and 16).
    recorded_when_set = frozenset({"image_tower", "text_precision", "patch_padding"})

    def __init__(self, clip: str = IN_HOUSE, clip_weights: str | None = None, image_size: Count = 96,
                 templates: str = "single", logit_scale: Positive = 100.0, value_path: str = "official",
                 class_names: str = "maskclip", normalization: str = "clip", pos_resize: str = "bicubic",
                 image_tower: str = "clip", text_precision: str = "fp32", patch_padding: str = "floor"):
        super().__init__()
        if value_path not in VALUE_PATHS:
            raise ValueError(f"value_path must be one of {VALUE_PATHS}, not {value_path!r}")
        if pos_resize not in POS_RESIZES:
            raise ValueError(f"pos_resize must be one of {POS_RESIZES}, not {pos_resize!r}")
        if image_tower not in IMAGE_TOWERS:
            raise ValueError(f"image_tower must be one of {IMAGE_TOWERS}, not {image_tower!r}")
        if patch_padding not in PATCH_PADDINGS:
            raise ValueError(f"patch_padding must be one of {PATCH_PADDINGS}, not {patch_padding!r}")
        self.patch_padding = patch_padding
        # bicubic: CLIP at its own grid, the table resized to each input's grid (``image_size`` unused);
        # open_clip: the table resized once at load to ``image_size`` (antialiased bicubic).
        load_size = image_size if pos_resize == "open_clip" else None
        bundle, _ = self.load_frozen_clip(clip, clip_weights, load_size, templates, class_names, text_precision)
        if image_tower == "mmseg":
            as_mmseg_tower(bundle.model.visual)
        pos_mode = "bicubic" if pos_resize == "bicubic" else "bilinear"
        self.encoder = PromptedEncoder(bundle.model.visual, tuning="frozen", cls_embedding="once", pos_mode=pos_mode)
        if normalization == "imagenet":
            self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        elif normalization == "clip":
            self.mean, self.std = bundle.mean, bundle.std
        else:
            raise ValueError(f"normalization must be 'clip' or 'imagenet', not {normalization!r}")
        self.logit_scale, self.value_path = logit_scale, value_path

    def dense_features(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Unit-norm patch embeddings [B, N, D] from the last block's value path, and the patch grid."""
        visual = self.encoder.visual
        if self.patch_padding == "corner":  # the grid covers the whole image; forward resizes it to the input
            p = self.encoder.patch_size
            images = F.pad(images, [0, -images.shape[-1] % p, 0, -images.shape[-2] % p])
        x, grid = self.encoder.embed(images)
        blocks = visual.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        last = blocks[-1]
        attn = last.attn
        width = x.shape[-1]
        value = F.linear(last.ln_1(x), attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
        x_v = last.ls_1(attn.out_proj(value))
        if self.value_path == "official":  # the block's residual and MLP, applied to the value branch
            x_v = x_v + x
            x_v = x_v + last.ls_2(last.mlp(last.ln_2(x_v)))
        x = visual.ln_post(x_v)
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
