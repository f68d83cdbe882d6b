"""ZegCLIP (CVPR 2023) and every row of its ablation, as one class with switches.

    tuning    frozen | finetune | vpt_shallow | dpt     (encoder.py)
    relation  none | rd | product | concat              (decoder.py: QueryBuilder)
    loss      ce | nel                                  (losses.py)
    setting   inductive | transductive

Official quirks are switches defaulting to the official code: the class
embedding added twice (``cls_embedding``), the position table resized
bilinearly from CLIP's own grid (``pos_resize: bilinear``; ``open_clip``
resizes it at load with antialiased bicubic), prompts removed after
``prompt_depth`` and no prompt LayerNorm in shallow VPT (encoder.py), decoder
layers starting as copies of one layer (``decoder_init``, decoder.py).

Forward: CLIP image encoder -> (g, H); frozen class text embeddings t ->
queries q_c = QueryBuilder(t_c, g); the decoder's last-layer head-averaged
attention logits between q and H are the mask logits, upsampled bilinearly to
the input size. Inference turns logits into scores (sigmoid for NEL, softmax
for CE), subtracts ``calibration`` from seen classes in the inductive setting,
can slide a window over large images, and can average flipped and rescaled
views (``tta``, off by default as in the paper's numbers: tta.py).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from zegbench.clip.loading import IN_HOUSE, embedding_width
from zegbench.methods.base import IMAGENET_MEAN, IMAGENET_STD, Method
from zegbench.methods.decoder import MaskDecoder, QueryBuilder, masks_to_image
from zegbench.methods.encoder import PromptedEncoder
from zegbench.methods.losses import LOSSES, ce_loss, nel_loss
from zegbench.methods.registry import register_class
from zegbench.methods.tta import MS_RATIOS, augmented_scores, views
from zegbench.utils.ranges import Count, Finite, Fraction, NonNegative, Positive

SETTINGS = ("inductive", "transductive")
POS_RESIZES = ("bilinear", "open_clip")


@register_class("zegclip")
class ZegCLIP(Method):
    """One-stage CLIP segmentation; the switches select the ablation row (see module doc)."""

    inference_keys = frozenset({"calibration", "inference", "crop", "stride", "tta", "tta_ratios"})
    # The real recipes set the official values: fp16 text (docs/fidelity.md, item 16), per-image prompt
    # dropout masks (item 17); the world's recipes keep the values their recorded runs were made with.
    # Test-time augmentation came later too; off (single scale) is what every recorded run did.
    recorded_when_set = frozenset({"text_precision", "prompt_masks", "tta", "tta_ratios"})
    tiny_config = {"clip_weights": "none", "image_size": 32}
    # Speed pairs ZegCLIP with its CLIP image encoder alone: the same config without prompts.
    speed_baseline = "clip_image_encoder"
    speed_baseline_overrides = {"tuning": "frozen"}

    def __init__(self, tuning: str = "dpt", relation: str = "rd", loss: str = "nel", setting: str = "inductive",
                 clip: str = IN_HOUSE, clip_weights: str | None = None, image_size: Count = 96,
                 num_tokens: Count = 10, prompt_depth: Count | None = None, decoder_layers: Count = 3,
                 decoder_heads: Count = 8, decoder_ffn: Count | None = None, dropout: Fraction = 0.1,
                 templates: str = "single", focal_weight: NonNegative = 100.0, dice_weight: NonNegative = 1.0,
                 ignore_negatives: bool = False, calibration: Finite = 0.1, normalization: str = "clip",
                 inference: str = "whole", crop: Count | None = None, stride: Count | None = None,
                 encoder_lr_mult: NonNegative = 10.0, head_lr_mult: NonNegative = 10.0, cls_embedding: str = "twice",
                 pos_resize: str = "bilinear", prompts_after_depth: str = "drop", shallow_prompt_norm: bool = False,
                 decoder_init: str = "copies", text_precision: str = "fp32", prompt_masks: str = "shared",
                 tta: Literal["none", "flip", "ms_flip"] = "none", tta_ratios: list[Positive] | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
        if setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, not {setting!r}")
        if inference not in ("whole", "slide"):
            raise ValueError(f"inference must be 'whole' or 'slide', not {inference!r}")
        if pos_resize not in POS_RESIZES:
            raise ValueError(f"pos_resize must be one of {POS_RESIZES}, not {pos_resize!r}")
        # bilinear: CLIP at its own grid, the encoder resizes the table (as the official loader);
        # open_clip: the table resized once at load to ``image_size`` (antialiased bicubic).
        load_size = image_size if pos_resize == "open_clip" else None
        bundle, dim = self.load_frozen_clip(clip, clip_weights, load_size, templates, text_precision=text_precision)
        self.encoder = PromptedEncoder(bundle.model.visual, tuning, num_tokens, prompt_depth, dropout, cls_embedding,
                                       prompts_after_depth, shallow_prompt_norm, pos_mode="bilinear",
                                       prompt_masks=prompt_masks)
        self.queries = QueryBuilder(dim, relation)
        self.decoder = MaskDecoder(dim, decoder_layers, decoder_heads, decoder_ffn, dropout, decoder_init)
        self.loss_type, self.setting = loss, setting
        self.focal_weight, self.dice_weight, self.ignore_negatives = focal_weight, dice_weight, ignore_negatives
        self.calibration, self.inference = calibration, inference
        self.tta, self.tta_ratios = tta, tuple(tta_ratios or MS_RATIOS)
        views(tta, self.tta_ratios)  # an unknown mode fails here, at build time
        if not all(r > 0 for r in self.tta_ratios):
            raise ValueError(f"tta_ratios must be positive, not {list(self.tta_ratios)}")
        self.crop, self.stride = crop or image_size, stride or image_size
        self.encoder_lr_mult, self.head_lr_mult = encoder_lr_mult, head_lr_mult
        if normalization == "imagenet":  # what the official code feeds its CLIP backbone
            self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        elif normalization == "clip":
            self.mean, self.std = bundle.mean, bundle.std
        else:
            raise ValueError(f"normalization must be 'clip' or 'imagenet', not {normalization!r}")

    @classmethod
    def key_problem(cls, config: dict) -> tuple[tuple[str, ...], str] | None:
        """The sliding window must cover every pixel, and the decoder's heads must split CLIP's embedding."""
        # crop and stride default to image_size; `segment` slides whatever `inference` says, so this holds for all
        crop_key, stride_key = (key if config[key] else "image_size" for key in ("crop", "stride"))
        if config[stride_key] > config[crop_key]:
            return ((stride_key, crop_key),
                    f"the sliding window's stride ({config[stride_key]}) is larger than its crop ({config[crop_key]}), "
                    f"so pixels between windows would get no score: make stride <= crop (both default to image_size)")
        width = embedding_width(config["clip"])
        if width is not None and width % config["decoder_heads"]:
            return (("decoder_heads", "clip"),
                    f"decoder_heads ({config['decoder_heads']}) must divide the width of {config['clip']}'s "
                    f"embeddings ({width}): each attention head takes an equal share of it")
        return None

    def forward(self, images: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, dict]:
        g, patches, grid = self.encoder(images)
        queries = self.queries(self.text_embeddings(class_names), g)
        logits = self.decoder(queries, patches)
        return masks_to_image(logits, grid, images.shape[-2:]), {"image_embedding": g}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, aux: dict | None = None) -> dict[str, torch.Tensor]:
        if self.loss_type == "ce":
            return ce_loss(logits, labels)
        return nel_loss(logits, labels, self.focal_weight, self.dice_weight, self.ignore_negatives)

    def unused_parameter_names(self) -> set[str]:
        return {f"decoder.{n}" for n in self.decoder.unused_parameter_names()}

    def official_unbuilt_parameters(self) -> int:
        return self.decoder.official_unbuilt_parameters()

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> per-class scores in [0, 1]: sigmoid (NEL: classes independent) or softmax (CE)."""
        return logits.sigmoid() if self.loss_type == "nel" else logits.softmax(dim=1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        def score(view: torch.Tensor) -> torch.Tensor:
            if self.inference == "slide":
                return self._slide(view, class_names)
            return self.scores(self(view, class_names)[0])

        return self._calibrated(augmented_scores(score, images, self.tta, self.tta_ratios), seen)

    @torch.no_grad()
    def predict_any_size(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        """Slide ``crop`` windows whatever ``inference`` says: the CLIP grid was trained at one input size."""
        return self._calibrated(augmented_scores(lambda view: self._slide(view, class_names), images, self.tta,
                                                 self.tta_ratios), seen)

    def _calibrated(self, scores: torch.Tensor, seen: list[bool]) -> torch.Tensor:
        """Inductive setting: ``calibration`` subtracted from seen classes' scores (they dominate otherwise)."""
        if self.setting == "inductive" and self.calibration:
            bias = torch.tensor(seen, dtype=scores.dtype, device=scores.device).view(1, -1, 1, 1)
            scores = scores - self.calibration * bias
        return scores

    def _slide(self, images: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """Average window scores over a crop x crop window moved by ``stride`` (padding small images)."""
        b, _, h, w = images.shape
        crop, stride = self.crop, self.stride
        ph, pw = max(crop - h, 0), max(crop - w, 0)
        padded = F.pad(images, (0, pw, 0, ph))
        hh, ww = padded.shape[-2:]
        rows = list(range(0, max(hh - crop, 0) + 1, stride))
        cols = list(range(0, max(ww - crop, 0) + 1, stride))
        if rows[-1] + crop < hh:
            rows.append(hh - crop)
        if cols[-1] + crop < ww:
            cols.append(ww - crop)
        total = padded.new_zeros(b, len(class_names), hh, ww)
        count = padded.new_zeros(1, 1, hh, ww)
        for y in rows:
            for x in cols:
                window = padded[..., y:y + crop, x:x + crop]
                total[..., y:y + crop, x:x + crop] += self.scores(self(window, class_names)[0])
                count[..., y:y + crop, x:x + crop] += 1
        return (total / count)[..., :h, :w]

    def training_targets(self, logits: torch.Tensor, labels: torch.Tensor, unseen_ids: list[int],
                         self_training: bool) -> torch.Tensor:
        """Self-training: unseen ground-truth pixels take the pseudo-labels of ``pseudo_label``."""
        return pseudo_label(logits, labels, unseen_ids) if self_training else labels

    def speed_baseline_module(self) -> torch.nn.Module:
        """The prompt-free encoder: CLIP's blocks, every token through ``ln_post`` and ``proj``."""
        return self.encoder

    def param_groups(self, lr: float) -> list[dict]:
        """Encoder (prompts or fine-tuned weights) and head get their own lr multipliers (reference: x10 each)."""
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        head = [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
        groups = [{"params": head, "lr": lr * self.head_lr_mult, "name": "head"}]
        if encoder:
            groups.append({"params": encoder, "lr": lr * self.encoder_lr_mult, "name": "encoder"})
        return groups


def pseudo_label(logits: torch.Tensor, labels: torch.Tensor, unseen_ids: list[int]) -> torch.Tensor:
    """Transductive self-training: pixels whose ground truth is unseen take the argmax over unseen classes.

    ``labels`` index all classes; other pixels keep their labels. As in the
    official code the "unseen pixel" mask comes from the ground truth.
    """
    ids = torch.tensor(unseen_ids, device=labels.device)
    is_unseen = torch.isin(labels, ids)
    best = ids[logits.detach()[:, ids].argmax(dim=1)]
    return torch.where(is_unseen, best, labels)
