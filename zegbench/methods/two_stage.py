"""The two-stage comparator: class-agnostic mask proposals + CLIP on each region (zsseg / ZegFormer).

Training (seen classes only) is the proposal network's alone: MaskFormer's set
loss with class logits in CLIP's text space (proposals.py, set_loss.py).
Inference adds the second image encoder: every non-empty proposal is cropped,
filled and resized, CLIP classifies it, and the two class distributions are
ensembled per class before the semantic map sum_q p(q, c) m_q
(region_clip.py). The ``ensemble`` switch picks zsseg's rule (default) or
ZegFormer's (with ``calibration`` 0.1 on seen classes).

Each paper's own inference details are switches too (zsseg's defaults here,
ZegFormer's in methods/two_stage_zegformer.yaml): the template sets of
the proposal classifier (``templates``) and of the region CLIP
(``region_templates``), what an empty proposal gets (``empty_region``: zsseg
gives it CLIP probability 1, ZegFormer classifies the whole image's box,
``proposal`` keeps the proposal net's own distribution), and whether the
proposal's no-object logit joins CLIP's softmax (``region_no_object``,
ZegFormer), and the class-name spelling (``class_names``; ZegFormer writes
"potted plant"). Both papers' ResNets keep BatchNorm frozen (detectron2's
FrozenBN default; ``backbone_norm``).
"""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from zegbench.clip.loading import IN_HOUSE
from zegbench.methods.base import IMAGENET_MEAN, IMAGENET_STD, Method, template_set
from zegbench.methods.proposals import ProposalNetwork
from zegbench.methods.region_clip import ENSEMBLES, classify_regions, ensemble, region_crops, semantic_map
from zegbench.methods.registry import register_class
from zegbench.methods.set_loss import set_loss
from zegbench.utils.ranges import Count, Finite, Fraction, NonNegative

EMPTY_REGIONS = ("clip_one", "whole_image", "proposal")
# The proposal decoder's width: DETR's sine positions give it a quarter for each of sin y, cos y, sin x, cos x.
SineWidth = Annotated[int, Field(ge=4, multiple_of=4)]


@register_class("two_stage")
class TwoStage(Method):
    """MaskFormer proposals (own backbone) + frozen CLIP region classification + per-class ensemble."""

    inference_keys = frozenset({"ensemble", "ensemble_weight", "calibration", "mask_threshold", "clip_batch",
                                "region_templates", "empty_region", "region_no_object"})
    tiny_config = {"clip_weights": "none", "backbone": "world_cnn", "queries": 4, "hidden": 32, "decoder_layers": 2,
                   "decoder_heads": 4, "decoder_ffn": 64, "mask_dim": 16, "templates": "single",
                   "region_templates": "single"}

    def __init__(self, clip: str = IN_HOUSE, clip_weights: str | None = None, clip_image_size: Count | None = None,
                 templates: str = "single", backbone: str = "world_cnn", backbone_weights: str | None = None,
                 queries: Count = 100, hidden: SineWidth = 256, decoder_layers: Count = 6, decoder_heads: Count = 8,
                 decoder_ffn: Count = 2048, mask_dim: Count = 256, dropout: Fraction = 0.1,
                 no_object_weight: NonNegative = 0.1, mask_weight: NonNegative = 20.0, dice_weight: NonNegative = 1.0,
                 deep_supervision: bool = True, ensemble: str = "zsseg", ensemble_weight: Fraction = 0.7,
                 calibration: Finite = 0.0, mask_threshold: Fraction = 0.5, clip_batch: Count = 32,
                 backbone_lr_mult: NonNegative = 0.1, grad_clip: NonNegative = 0.01, region_templates: str = "single",
                 empty_region: str = "clip_one", region_no_object: bool = False, backbone_norm: str = "frozen",
                 class_names: str = "dataset"):
        super().__init__()
        if ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {ENSEMBLES}, not {ensemble!r}")
        if empty_region not in EMPTY_REGIONS:
            raise ValueError(f"empty_region must be one of {EMPTY_REGIONS}, not {empty_region!r}")
        if not 0.0 <= ensemble_weight <= 1.0:
            raise ValueError(f"ensemble_weight must be in [0, 1], not {ensemble_weight}")
        bundle, dim = self.load_frozen_clip(clip, clip_weights, clip_image_size, templates, class_names)
        self.clip_visual = bundle.model.visual  # frozen second image encoder: a submodule, so it follows .to(device)
        self.proposals = ProposalNetwork(dim, backbone, backbone_weights, queries, hidden, decoder_layers,
                                         decoder_heads, decoder_ffn, mask_dim, dropout, backbone_norm)
        self.mean, self.std = bundle.mean, bundle.std  # outside-mask fill 0 = CLIP's mean colour
        self.resnet_input = backbone.startswith("resnet")  # ImageNet-pretrained backbones expect ImageNet stats
        self.loss_weights = dict(no_object_weight=no_object_weight, mask_weight=mask_weight, dice_weight=dice_weight)
        self.deep_supervision = deep_supervision
        self.ensemble, self.ensemble_weight, self.calibration = ensemble, ensemble_weight, calibration
        self.mask_threshold, self.clip_batch = mask_threshold, clip_batch
        self.region_templates = template_set(region_templates)
        self.empty_region, self.region_no_object = empty_region, region_no_object
        self.backbone_lr_mult, self.grad_clip = backbone_lr_mult, grad_clip
        self._regions_per_image: float | None = None  # set by predict

    @classmethod
    def key_problem(cls, config: dict) -> tuple[tuple[str, ...], str] | None:
        """The proposal decoder's attention splits ``hidden`` into ``decoder_heads`` equal shares."""
        if config["hidden"] % config["decoder_heads"]:
            return (("hidden", "decoder_heads"),
                    f"hidden ({config['hidden']}) must be a multiple of decoder_heads ({config['decoder_heads']}): "
                    f"each attention head takes an equal share")
        return None

    def _backbone_input(self, images: torch.Tensor) -> torch.Tensor:
        if not self.resnet_input:
            return images
        dev = images.device
        clip_mean, clip_std = (torch.tensor(v, device=dev).view(1, 3, 1, 1) for v in (self.mean, self.std))
        net_mean, net_std = (torch.tensor(v, device=dev).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        return (images * clip_std + clip_mean - net_mean) / net_std

    def forward(self, images: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, dict]:
        """Semantic-map logits of the proposal network alone [B, C, H, W]; aux holds every layer's set output.

        The set loss reads ``aux`` only, so the map (for monitoring) is built without
        autograd at the mask features' stride-4 resolution and then upsampled: C
        channels instead of Q full-resolution masks and their sigmoid kept in the graph
        (2 x 100 x 512 x 512 floats = 210 MB per image at the real recipe).
        """
        layers = self.proposals(self._backbone_input(images), self.text_embeddings(class_names))
        last = layers[-1]
        with torch.no_grad():
            sem = semantic_map(last["class_logits"].softmax(-1)[..., :-1], last["mask_logits"].sigmoid())
            sem = F.interpolate(sem, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return sem.clamp_min(1e-6).log(), {"layers": layers}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, aux: dict | None = None) -> dict[str, torch.Tensor]:
        if aux is None:
            raise ValueError("two_stage's loss needs the aux output of forward (the per-layer set predictions)")
        layers = aux["layers"] if self.deep_supervision else aux["layers"][-1:]
        total: dict[str, torch.Tensor] = {}
        for out in layers:
            for k, v in set_loss(out, labels, **self.loss_weights).items():
                total[k] = total.get(k, 0) + v
        return total

    @torch.no_grad()
    def predict(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        text = self.text_embeddings(class_names)
        last = self.proposals(self._backbone_input(images), text)[-1]
        p_prop = last["class_logits"].softmax(-1)[..., :-1]  # [B, Q, C]
        masks = F.interpolate(last["mask_logits"], size=images.shape[-2:], mode="bilinear",
                              align_corners=False).sigmoid()
        whole = self.empty_region == "whole_image"
        crops, has_crop = region_crops(images, masks > self.mask_threshold, self._bundle.image_size, whole)
        self._regions_per_image = len(crops) / len(images)  # CLIP forwards per image (speed reports it)
        region_text = self.text_embeddings(class_names, self.region_templates)
        no_object = last["class_logits"][..., -1][has_crop] if self.region_no_object else None
        # Proposals without a crop: CLIP probability 1 (zsseg), or the proposal net's distribution.
        p_clip = p_prop.clone() if self.empty_region == "proposal" else torch.ones_like(p_prop)
        p_clip[has_crop] = classify_regions(self.clip_visual, crops, region_text, batch_size=self.clip_batch,
                                            no_object_logits=no_object)
        is_seen = torch.tensor(seen, device=images.device)
        scores = semantic_map(ensemble(p_prop, p_clip, is_seen, self.ensemble_weight, self.ensemble), masks)
        if self.calibration:
            scores = scores - self.calibration * is_seen.to(scores.dtype).view(1, -1, 1, 1)
        return scores

    def regions_per_image(self) -> float | None:
        """CLIP forwards (non-empty proposals, or whole-image boxes) per image in the last ``predict``."""
        return self._regions_per_image

    def param_groups(self, lr: float) -> list[dict]:
        """The backbone at ``backbone_lr_mult`` x lr (reference: 0.1), everything else at lr."""
        backbone = [p for p in self.proposals.backbone.parameters() if p.requires_grad]
        rest = [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("proposals.backbone.")]
        return [{"params": rest, "lr": lr, "name": "head"},
                {"params": backbone, "lr": lr * self.backbone_lr_mult, "name": "backbone"}]
