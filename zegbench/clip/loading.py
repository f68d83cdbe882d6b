"""One way to get a CLIP: the in-house world CLIP, an open_clip name + tag, or a local file.

Every path ends in ``open_clip.create_model``: the in-house model is just an
open_clip architecture registered from ``model_configs/`` with a checkpoint that
ships in the package, so it loads exactly like any local open_clip checkpoint
(``torch.load(weights_only=True)``, positional embedding resized when the
requested image size differs from the trained one).

Activation: OpenAI's CLIP weights were trained with QuickGELU (x * sigmoid(1.702 x)),
and so were several other open_clip tags. open_clip builds ``ViT-B-16`` with
``nn.GELU`` even for the ``openai`` tag and only warns, so ``load_clip`` builds
QuickGELU whenever the tag's pretrained config asks for it; the real-dataset
recipes name ``ViT-B-16-quickgelu`` outright, so random-weight builds of a recipe
(parameter counts, speed) have the same architecture as the trained one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import open_clip
import torch
from open_clip.transformer import QuickGELU

from zegbench.clip.tokenizer import WorldTokenizer, vocabulary_for
from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError

IN_HOUSE = worlds.generator().CLIP_MODEL  # v2's: a method's CLIP when nothing names one (worlds.DEFAULT_VERSION)
CONFIG_DIR = Path(__file__).parent / "model_configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_CHECKPOINT = WEIGHTS_DIR / f"{IN_HOUSE}.pt"


def shipped_checkpoint(name: str) -> Path | None:
    """The checkpoint that ships for in-house CLIP ``name`` (None: ``name`` is not in-house)."""
    return WEIGHTS_DIR / f"{name}.pt" if worlds.for_clip(name) else None


def embedding_width(name: str) -> int | None:
    """The width of CLIP ``name``'s joint image-text embeddings, read from its architecture config without
    building it; None for a name that is not a local open_clip config (a hub name would be downloaded)."""
    if name not in open_clip.list_models():
        return None
    return open_clip.get_model_config(name).get("embed_dim")


# Special values of ``pretrained`` that are not file paths or hub tags.
RANDOM_INIT = ("none", "random")

open_clip.add_model_config(CONFIG_DIR)


@dataclass
class ClipBundle:
    """A loaded CLIP with what is needed to feed it."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: str
    mean: tuple
    std: tuple

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else size


def resolve_weights(name: str, pretrained: str | None) -> str:
    """The weights source for ``name``: the shipped file for the in-house model by default."""
    if pretrained:
        return pretrained
    if worlds.for_clip(name):
        return str(shipped_checkpoint(name))
    raise ZegbenchError(
        f"no weights given for CLIP {name!r}: pass a pretrained tag (e.g. --clip-weights openai, "
        f"downloads on a machine with internet), a local checkpoint path, or 'none' for random weights")


def names_a_file(weights: str) -> bool:
    """Whether a weights value is a local file path (else a pretrained tag, or 'none' for random weights)."""
    return weights not in RANDOM_INIT and (os.sep in weights
                                           or weights.endswith((".pt", ".pth", ".bin", ".safetensors")))


def uses_quick_gelu(name: str, pretrained: str | None) -> bool:
    """Whether CLIP ``name`` with weights ``pretrained`` is built with QuickGELU.

    True when the architecture's config says so (``ViT-B-16-quickgelu``) or
    when ``pretrained`` is an open_clip tag whose weights were trained with it
    (``openai`` among others). A local file or random weights follow the
    architecture's config.
    """
    config = open_clip.get_model_config(name) or {}
    tag = open_clip.get_pretrained_cfg(name, pretrained) if pretrained and pretrained not in RANDOM_INIT else {}
    return bool(config.get("quick_gelu") or tag.get("quick_gelu"))


def clip_activation(name: str, pretrained: str | None) -> str:
    """'QuickGELU' or 'GELU': the MLP activation ``load_clip(name, pretrained)`` builds."""
    return "QuickGELU" if uses_quick_gelu(name, pretrained) else "GELU"


def activation_of(model: torch.nn.Module) -> str:
    """'QuickGELU' when a built model's MLPs use QuickGELU, else 'GELU'."""
    return "QuickGELU" if any(isinstance(m, QuickGELU) for m in model.modules()) else "GELU"


def tower_summary(modules) -> dict:
    """``{"activation", "layernorm_eps"}`` of one tower's modules (eps: one value, or the sorted distinct ones)."""
    modules = list(modules)
    eps = sorted({m.eps for m in modules if isinstance(m, torch.nn.LayerNorm)})
    return {"activation": "QuickGELU" if any(isinstance(m, QuickGELU) for m in modules) else "GELU",
            "layernorm_eps": eps[0] if len(eps) == 1 else eps}


def _flatten(config: dict, prefix: str = "") -> dict:
    """``{"vision_cfg.pool_type": "avg", ...}``: a nested model config as dotted keys."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_recorded_architecture(name: str, checkpoint: Path) -> None:
    """Refuse a checkpoint whose record (``x.json`` beside ``x.pt``, as pretraining writes it) says it was
    trained as another architecture than ``name``'s registered config. A change such as the pooling keeps
    every weight's shape, so the state dict alone would load into the wrong model without a word."""
    record_path = checkpoint.with_suffix(".json")
    if not record_path.is_file():
        return
    try:
        recorded = json.loads(record_path.read_text()).get("architecture")
    except (ValueError, AttributeError):
        return  # not a pretraining record: nothing to check against
    if not isinstance(recorded, dict):
        return
    config, trained = _flatten(open_clip.get_model_config(name) or {}), _flatten(recorded)
    differ = [f"{k} {trained.get(k)!r} (config: {config.get(k)!r})" for k in sorted(set(config) | set(trained))
              if config.get(k) != trained.get(k)]
    if differ:
        raise ZegbenchError(f"CLIP checkpoint {checkpoint} was trained as another architecture of {name!r} "
                            f"(its record {record_path.name}: {'; '.join(differ[:3])}): pass the --clip model it "
                            f"was trained as, or restore that model config")


def load_clip(name: str = IN_HOUSE, pretrained: str | None = None, image_size: int | None = None,
              device: str | torch.device = "cpu") -> ClipBundle:
    """Build CLIP ``name`` with weights ``pretrained`` (tag, local path, or 'none').

    ``image_size`` builds the image tower at another input size (ZegCLIP: 512)
    with the positional embedding resized from the checkpoint's grid.
    Raises ``ZegbenchError`` with what to pass instead when weights are missing,
    unreadable or of another architecture.
    """
    if name not in open_clip.list_models():
        raise ZegbenchError(f"unknown CLIP model {name!r}; known: {IN_HOUSE}, or any of "
                            f"open_clip.list_models() (e.g. ViT-B-16)")
    weights = resolve_weights(name, pretrained)
    is_file = names_a_file(weights)
    if is_file and not Path(weights).is_file():
        raise ZegbenchError(f"CLIP checkpoint {weights} does not exist: pass an existing file, "
                            f"or regenerate the in-house one with `zegbench clip pretrain --out {weights}`")
    if is_file:
        check_recorded_architecture(name, Path(weights))
    kwargs = dict(output_dict=True, force_image_size=image_size, device=device,
                  force_quick_gelu=uses_quick_gelu(name, weights))
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=None if weights in RANDOM_INIT else weights, weights_only=True, **kwargs)
    except Exception as err:  # hub failures, unreadable files, state dicts of another shape
        lines = str(err).strip().splitlines()
        mismatch = next((ln.strip() for ln in lines
                         if ln.strip().startswith(("size mismatch", "Missing key", "Unexpected key"))), None)
        if mismatch:
            raise ZegbenchError(f"CLIP checkpoint {weights} does not load into {name!r}: {mismatch[:200]}; "
                                f"pass a checkpoint of this architecture or the matching --clip model") from None
        if is_file:
            raise ZegbenchError(f"CLIP checkpoint {weights} is unreadable ({type(err).__name__}): "
                                f"re-download or regenerate it") from None
        raise ZegbenchError(f"could not get pretrained weights {weights!r} for {name!r} "
                            f"({type(err).__name__}; no network or HF_HUB_OFFLINE=1?): download them on a "
                            f"machine with internet and pass the local file path instead") from None
    model.eval()
    world = worlds.for_clip(name)
    tokenizer = WorldTokenizer(vocabulary_for(world), model.context_length) if world else open_clip.get_tokenizer(name)
    cfg = model.visual.preprocess_cfg
    return ClipBundle(model, preprocess, tokenizer, name, weights, tuple(cfg["mean"]), tuple(cfg["std"]))
