"""The Method interface every segmentation method implements, and the method registry.

A method is an ``nn.Module`` built from a YAML config (``methods/<name>.yaml`` in a config folder, ``config_dirs``):
the file names the implementing class under ``class:`` and holds its
hyperparameters. ``zegbench methods list`` shows the registry; tests are
parametrised over it, so a new config is tested the day it is added.
"""
from __future__ import annotations

import torch
from torch import nn

from zegbench.clip.loading import activation_of, load_clip
from zegbench.clip.templates import NAME_STYLES, TEMPLATE_SETS
from zegbench.clip.text_embeddings import class_embeddings
from zegbench.config_dirs import config_file, config_names
from zegbench.errors import ZegbenchError
from zegbench.utils.io import read_yaml_mapping

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what ImageNet-pretrained backbones (and ZegCLIP's official code) expect
IMAGENET_STD = (0.229, 0.224, 0.225)
_CLASSES: dict[str, type] = {}


def register_class(name: str):
    """Decorator: make a Method class available to configs as ``class: name``."""
    def wrap(cls):
        _CLASSES[name] = cls
        return cls
    return wrap


class Method(nn.Module):
    """Contract: per-class mask logits in, named losses and calibrated scores out."""

    mean: tuple = (0.48145466, 0.4578275, 0.40821073)
    std: tuple = (0.26862954, 0.26130258, 0.27577711)
    # Config keys that only ``predict`` reads: variants differing in nothing else train the same
    # weights, so the harness evaluates one finished checkpoint instead of training it again.
    inference_keys: frozenset[str] = frozenset()
    grad_clip: float = 0.0  # > 0: the training loop clips the full model's gradient norm to it
    # No parameter trains: the training loop skips such a model (it finds no parameter requiring a
    # gradient); declared here so `run_all.py --list` can say so without building the model.
    training_free: bool = False

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> float [B, 3, H, W] with the method's mean and std."""
        x = images.permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def load_frozen_clip(self, clip: str, clip_weights: str | None, image_size: int | None, templates: str,
                         class_names: str = "dataset"):
        """Load CLIP frozen, keep it (``self._bundle``), the template set and the class-name spelling.

        Returns (bundle, joint-space width). The bundle is a plain attribute: its
        text tower only feeds the cached class embeddings and is never trained;
        methods register the image tower parts they use as submodules.
        ``class_names`` picks a method's own spelling of the dataset's names
        (``templates.NAME_STYLES``; e.g. MaskCLIP's "dining table").
        """
        if class_names not in NAME_STYLES:
            raise ValueError(f"class_names must be one of {tuple(NAME_STYLES)}, not {class_names!r}")
        bundle = load_clip(clip, clip_weights, image_size=image_size)
        bundle.model.requires_grad_(False)
        self._bundle, self.templates = bundle, template_set(templates)
        self.name_map = NAME_STYLES[class_names]
        proj = bundle.model.text_projection
        return bundle, proj.shape[1] if proj is not None else bundle.model.visual.output_dim

    def clip_activation(self) -> str:
        """'QuickGELU' or 'GELU': the MLP activation of the frozen CLIP the method is built on."""
        return activation_of(self._bundle.model)

    def text_embeddings(self, class_names: list[str], templates: tuple[str, ...] | None = None) -> torch.Tensor:
        """Frozen, cached class embeddings [C, D] on the method's device (``templates``: the method's set)."""
        names = [self.name_map.get(c, c) for c in class_names]
        emb = class_embeddings(self._bundle, names, templates or self.templates)
        return emb.to(next(self.parameters()).device)

    def forward(self, images: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, dict]:
        """Normalised images [B, 3, H, W] -> mask logits [B, C, H, W] at input size, aux dict."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, aux: dict | None = None) -> dict[str, torch.Tensor]:
        """Named scalar losses for labels [B, H, W] indexing ``class_names`` (255 = ignore).

        ``aux`` is forward's second output (set-prediction methods need it).
        """
        raise NotImplementedError

    def predict(self, images: torch.Tensor, class_names: list[str], seen: list[bool]) -> torch.Tensor:
        """Per-class scores [B, C, H, W] at input size, with inference-time calibration."""
        raise NotImplementedError

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups with the method's learning-rate multipliers applied."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def unused_parameter_names(self) -> set[str]:
        """Trainable parameters the forward pass never uses (they get no gradient by design)."""
        return set()

    def param_counts(self) -> dict[str, int]:
        """Total and trainable parameters (the text tower, never trained, is not a submodule)."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"params_total": total, "params_trainable": trainable}


def template_set(name: str) -> tuple[str, ...]:
    """The prompt templates called ``name`` (``templates.TEMPLATE_SETS``)."""
    if name not in TEMPLATE_SETS:
        raise ValueError(f"templates must be one of {tuple(TEMPLATE_SETS)}, not {name!r}")
    return TEMPLATE_SETS[name]


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names (config file stems) matching a shell-style ``pattern``."""
    return config_names("methods", pattern)


def method_config(name: str) -> dict:
    """The YAML config of method ``name`` (safely loaded)."""
    path = config_file("methods", name)
    cfg = read_yaml_mapping(path)
    if cfg.get("class") not in _CLASSES:
        raise ZegbenchError(f"{path}: 'class' must be one of {', '.join(sorted(_CLASSES))}")
    return cfg


def method_class(class_name: str) -> type:
    """The class registered as ``class_name`` (``class:`` in a method config)."""
    if class_name not in _CLASSES:
        raise ZegbenchError(f"unknown method class {class_name!r}; known: {', '.join(sorted(_CLASSES))}")
    return _CLASSES[class_name]


def create_method(name: str, **overrides) -> Method:
    """Build method ``name`` from its config; ``overrides`` replace config keys (unknown keys are errors)."""
    cfg = {**method_config(name), **overrides}
    cls = _CLASSES[cfg.pop("class")]
    cfg.pop("description", None)
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as err:  # unknown keys, bad switch values
        raise ZegbenchError(f"{config_file('methods', name)} (or its overrides): {err}") from None
