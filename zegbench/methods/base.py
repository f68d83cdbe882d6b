"""The Method interface every segmentation method implements: the whole contract between a method
and generic code (the training loop, evaluation, ``zegbench segment``, speed, the command line).

A method is an ``nn.Module`` whose ``__init__`` keywords are its YAML keys; the registry
(``registry.py``) finds its class from a config's ``class:`` and builds it.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from zegbench.clip.loading import load_clip, tower_summary
from zegbench.clip.templates import NAME_STYLES, TEMPLATE_SETS
from zegbench.clip.text_embeddings import class_embeddings

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what ImageNet-pretrained backbones (and ZegCLIP's official code) expect
IMAGENET_STD = (0.229, 0.224, 0.225)
# Class-embedding precision: fp16 as the official embeddings (ZegCLIP's .npy files, MaskCLIP's text
# weights) were made by CLIP in fp16 on CUDA; fp32 as zegbench made them before (docs/fidelity.md, item 16).
TEXT_PRECISIONS = ("fp32", "fp16")


class Method(nn.Module):
    """A zero-shot segmentation method: per-class mask logits in, named losses and calibrated scores out.

    This class is the whole contract between a method and generic code (the
    training loop, evaluation, ``zegbench segment``, speed, the command line):
    they read nothing else from a method.

    A subclass must implement
      ``__init__(**config)``  its keyword arguments are its YAML keys: the harness validates
                             configs against the signature (type hints, defaults; numbers
                             hinted with their range, ``utils/ranges.py``) and records
                             every default in the run's hash. A dataset's recipe may set keys
                             for every method (the embedded world: ``clip``, ``templates``);
      ``forward``            normalised images -> mask logits at input size, aux dict;
      ``loss``               named scalar losses (not called when ``training_free``);
      ``predict``            per-class scores at input size, with inference-time calibration.

    It may override (default in brackets)
      ``setting``                  'inductive' | 'transductive' ['inductive']
      ``mean``, ``std``            input normalisation [CLIP's]
      ``inference``                how ``predict`` covers a test image, 'whole' | 'slide' ['whole']
      ``inference_keys``           config keys only ``predict`` reads [none]
      ``key_problem``              a rule between keys that no key's own range states [none]
      ``recorded_when_set``        keys a resolved config records only off their default [none]
      ``training_free``            nothing trains [False]
      ``grad_clip``                gradient-norm clip [0: off]
      ``tiny_config``              config keys of its smallest instance, for tests [{}]
      ``speed_baseline``,          the bare network its latency is paired with, and how
      ``speed_baseline_overrides``, to build and run it [none]
      ``speed_baseline_module``
      ``predict_any_size``         prediction at any image size (``zegbench segment``) [``predict``]
      ``training_targets``         the labels ``loss`` trains on [the harness's; unseen ground
                                   truth hidden during self-training]
      ``param_groups``             optimiser groups [every trainable parameter at the base lr]
      ``unused_parameter_names``   trainable parameters no loss reaches [none]
      ``official_unbuilt_parameters`` trainable parameters the official model builds, never
                                   uses and this one leaves out, for its parameter count [None]
      ``regions_per_image``        regions the last ``predict`` classified per image [None]

    Helpers generic code calls as they are: ``normalize``, ``text_embeddings``
    (speed fills its cache before timing), ``clip_activation`` (``zegbench methods
    describe``) and ``param_counts``; the CLIP ones need ``load_frozen_clip`` in ``__init__``.
    """

    setting: Literal["inductive", "transductive"] = "inductive"  # transductive: self-training on unseen pixels
    mean: tuple = (0.48145466, 0.4578275, 0.40821073)
    std: tuple = (0.26862954, 0.26130258, 0.27577711)
    # 'whole': ``predict`` scores the image in one pass; 'slide': windows of the method's input size
    # (recorded in result.json and as the speed record's test mode).
    inference: Literal["whole", "slide"] = "whole"
    # Config keys that only ``predict`` reads: variants differing in nothing else train the same
    # weights, so the harness evaluates one finished checkpoint instead of training it again.
    inference_keys: frozenset[str] = frozenset()
    # Keys added after shipped runs were recorded, whose class default computes what those runs did: a
    # resolved config (and so a run's hash) holds such a key only when a recipe or an override sets it to
    # another value, so adding a switch renames no finished run. Their defaults must never change
    # (tests/test_text_and_towers.py pins them); a recipe sets the official value where one applies.
    recorded_when_set: frozenset[str] = frozenset()
    grad_clip: float = 0.0  # > 0: the training loop clips the full model's gradient norm to it
    # No parameter trains: the training loop skips such a model (it finds no parameter requiring a
    # gradient); declared here so `run_all.py --list` can say so without building the model.
    training_free: bool = False
    # Config keys of the class's smallest instance on the in-house CLIP (tests build every
    # registered method with them): small enough for a CPU forward and backward in a second.
    tiny_config: ClassVar[dict] = {}
    # The record name of the bare network this method's latency is paired with in speed suites
    # (ZegCLIP: "clip_image_encoder"), None for none. It names a speed record folder, whose hash
    # covers it: renaming it re-measures.
    speed_baseline: ClassVar[str | None] = None
    # Config keys that turn an instance into one holding that bare network (ZegCLIP: no prompts).
    speed_baseline_overrides: ClassVar[dict] = {}

    @classmethod
    def key_problem(cls, config: dict) -> tuple[tuple[str, ...], str] | None:
        """The first rule between keys that ``config`` (every key, defaults filled in) breaks: the keys
        it involves and what must hold; None when all hold. Checked at resolve, after each key's range."""
        return None

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> float [B, 3, H, W] with the method's mean and std."""
        x = images.permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def load_frozen_clip(self, clip: str, clip_weights: str | None, image_size: int | None, templates: str,
                         class_names: str = "dataset", text_precision: str = "fp32"):
        """Load CLIP frozen, keep it (``self._bundle``), the template set and the class-name spelling.

        Returns (bundle, joint-space width). The bundle is a plain attribute: its
        text tower only feeds the cached class embeddings and is never trained;
        methods register the image tower parts they use as submodules.
        ``class_names`` picks a method's own spelling of the dataset's names
        (``templates.NAME_STYLES``; e.g. MaskCLIP's "dining table"). ``text_precision``
        'fp16' rounds the class embeddings through fp16 (``text_embeddings``).
        """
        if class_names not in NAME_STYLES:
            raise ValueError(f"class_names must be one of {tuple(NAME_STYLES)}, not {class_names!r}")
        if text_precision not in TEXT_PRECISIONS:
            raise ValueError(f"text_precision must be one of {TEXT_PRECISIONS}, not {text_precision!r}")
        self.text_precision = text_precision
        bundle = load_clip(clip, clip_weights, image_size=image_size)
        bundle.model.requires_grad_(False)
        self._bundle, self.templates = bundle, template_set(templates)
        self._embeddings_on_device = {}  # (names, templates, device) -> [C, D]: see text_embeddings
        self.name_map = NAME_STYLES[class_names]
        proj = bundle.model.text_projection
        return bundle, proj.shape[1] if proj is not None else bundle.model.visual.output_dim

    def clip_towers(self) -> dict:
        """``{"image": {...}, "text": {...}}``: each tower's activation and LayerNorm eps as built
        (``zegbench methods describe``; MaskCLIP's official image tower differs from its text tower)."""
        named = [(n, m) for n, m in self._bundle.model.named_modules() if n]
        in_image = [n == "visual" or n.startswith("visual.") for n, _ in named]
        return {"image": tower_summary(m for (_, m), image in zip(named, in_image, strict=True) if image),
                "text": tower_summary(m for (_, m), image in zip(named, in_image, strict=True) if not image)}

    def clip_activation(self) -> str:
        """'QuickGELU' or 'GELU': the MLP activation of the frozen CLIP's image tower the method is built on."""
        return self.clip_towers()["image"]["activation"]

    def text_embeddings(self, class_names: list[str], templates: tuple[str, ...] | None = None) -> torch.Tensor:
        """Frozen, cached class embeddings [C, D] on the method's device (``templates``: the method's set).

        Kept on the device once made: a copy from host memory on every forward (each sliding
        window included) would block the GPU's queue each time. Callers must not modify the result.
        With ``text_precision`` 'fp16' each value is the nearest fp16 of the fp32 embedding, as the
        official embeddings are stored (docs/fidelity.md, item 16); used in fp32.
        """
        names = tuple(self.name_map.get(c, c) for c in class_names)
        templates = templates or self.templates
        device = next(self.parameters()).device
        key = (names, templates, device)
        if key not in self._embeddings_on_device:
            if len(self._embeddings_on_device) >= 8:  # `segment` may ask for many vocabularies
                self._embeddings_on_device.clear()
            emb = class_embeddings(self._bundle, list(names), templates)
            if self.text_precision == "fp16":
                emb = emb.half().float()
            self._embeddings_on_device[key] = emb.to(device)
        return self._embeddings_on_device[key]

    def forward(self, images: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, dict]:
        """Normalised images [B, 3, H, W] -> mask logits [B, C, H, W] at input size, aux dict."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, aux: dict | None = None) -> dict[str, torch.Tensor]:
        """Named scalar losses for labels [B, H, W] indexing ``class_names`` (255 = ignore).

        ``aux`` is forward's second output (set-prediction methods need it).
        """
        raise NotImplementedError

    def predict(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        """Per-class scores [B, C, H, W] at input size, with inference-time calibration.

        ``seen[c]`` says whether class c was seen in training (inductive methods
        calibrate those down). Evaluation and speed call it.
        """
        raise NotImplementedError

    def predict_any_size(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        """``predict`` for an image of any size and aspect (``zegbench segment``).

        The default is ``predict`` itself, right for methods that take any input
        size (fully convolutional, or interpolating CLIP's position table). A
        method with a fixed input size overrides it to slide windows of that size.
        """
        return self.predict(images, class_names, seen)

    def training_targets(self, logits: torch.Tensor, labels: torch.Tensor, unseen_ids: list[int],
                         self_training: bool) -> torch.Tensor:
        """The labels ``loss`` trains on, from the harness's ``labels`` [B, H, W] (255 = ignore).

        Before self-training (and always, for inductive methods) ``labels`` index
        the seen classes, unseen pixels already 255: they are returned unchanged.
        In the transductive self-training phase they index all classes and still
        hold the unseen classes' ground truth (``unseen_ids``): a transductive
        method replaces it with its pseudo-labels from ``logits`` (forward's
        output over all classes). The default hides it (255), so no unseen
        ground truth reaches a loss.
        """
        if not self_training:
            return labels
        return torch.where(torch.isin(labels, torch.tensor(unseen_ids, device=labels.device)), 255, labels)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups with the method's learning-rate multipliers applied."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def unused_parameter_names(self) -> set[str]:
        """Trainable parameters the forward pass never uses (they get no gradient by design)."""
        return set()

    def regions_per_image(self) -> float | None:
        """Image regions classified per image by the last ``predict`` call (two-stage: CLIP crops),
        reported by speed; None for a method that classifies no regions."""
        return None

    def speed_baseline_module(self) -> nn.Module:
        """The bare network named ``speed_baseline``, timed alone (``module(images)``) and against ``predict``.

        Called on an instance built with ``speed_baseline_overrides``; must be a
        direct submodule (speed splits the FLOPs by direct children).
        """
        raise NotImplementedError(f"{type(self).__name__} declares no speed baseline")

    def official_unbuilt_parameters(self) -> int | None:
        """Trainable parameters the official model builds but never uses and this one does not build
        (ZegCLIP: each decoder layer's self-attention and norm1); None where no official count is compared."""
        return None

    def param_counts(self) -> dict[str, int]:
        """Total and trainable parameters (the text tower, never trained, is not a submodule), and
        ``params_trainable_official``, the official code's count of the same model (trainable plus
        ``official_unbuilt_parameters``), for methods that declare one."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        counts = {"params_total": total, "params_trainable": trainable}
        unbuilt = self.official_unbuilt_parameters()
        if unbuilt is not None:
            counts["params_trainable_official"] = trainable + unbuilt
        return counts


def template_set(name: str) -> tuple[str, ...]:
    """The prompt templates called ``name`` (``templates.TEMPLATE_SETS``)."""
    if name not in TEMPLATE_SETS:
        raise ValueError(f"templates must be one of {tuple(TEMPLATE_SETS)}, not {name!r}")
    return TEMPLATE_SETS[name]

