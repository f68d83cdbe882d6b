"""Official ZegCLIP checkpoints in and out: the mmseg ``.pth`` files of ``ZiqinZhou66/ZegCLIP``.

An official checkpoint is what mmcv's ``save_checkpoint`` writes: a dict with ``meta`` (the
config text, ``CLASSES``, versions) and ``state_dict`` (the segmentor's weights, keys below),
possibly ``optimizer``. ``load_official_checkpoint`` puts one into zegbench's ``ZegCLIP``;
``official_state_dict`` writes a ZegCLIP in that layout, so the official ``test.py`` can evaluate a
model trained here. The map was checked against the official code, value for value, by
``tests/test_official_equivalence.py`` (its fixture is the official model's own state dict).

Key map, official -> zegbench (N: a CLIP block or a decoder layer):

=====================================================================  ==========================================
``backbone.prompt_embeddings`` [1, T, W] and                           ``encoder.prompts`` [1 + D, T, W]
``backbone.deep_prompt_embeddings`` [D, T, W]                          (concatenated in that order)
``backbone.prompt_proj.{weight,bias}``                                 ``encoder.prompt_proj.*``
``backbone.prompt_norm.{weight,bias}``                                 ``encoder.prompt_norm.*``
``backbone.{conv1.weight, class_embedding, positional_embedding,       ``encoder.visual.*`` (same names: both are
ln_pre.*, ln_post.*, proj}``, ``backbone.transformer.resblocks.N.      OpenAI's CLIP layout)
{attn.in_proj_*, attn.out_proj.*, ln_1.*, mlp.c_fc.*, mlp.c_proj.*,
ln_2.*}``
``decode_head.q_proj.*``                                               ``queries.proj.*`` (relation descriptor)
``decode_head.decoder_1.layers.N.multihead_attn.{q,k,v}.*``            ``decoder.layers.N.attn.{q,k,v}.*``
``decode_head.decoder_1.layers.N.multihead_attn.proj.*``               ``decoder.layers.N.attn.out.*``
``decode_head.decoder_1.layers.N.linear1.*`` / ``linear2.*``           ``decoder.layers.N.ffn.0.*`` / ``ffn.3.*``
``decode_head.decoder_1.layers.N.norm2.*`` / ``norm3.*``               ``decoder.layers.N.norm_attn.*`` / ``norm_ffn.*``
=====================================================================  ==========================================

Ignored on import (``IGNORED``), because the official forward never reads them:
``decode_head.decoder_1.layers.N.self_attn.*`` and ``...norm1.*`` (built by torch's
``TransformerDecoderLayer``, never called: 3 x 1,051,648 parameters in the VOC model),
``decode_head.loss_decode.criterion.empty_weight`` (a loss buffer), and ``text_encoder.*``
(the configs read class embeddings from ``configs/_base_/datasets/text_embedding/*.npy``;
zegbench computes them with its own frozen CLIP text tower). Every other key must map, and
every zegbench weight must be filled, with equal shapes; the one exception is the position
table, which the official loader stores resized to the training grid (1025 rows at 512 px):
it replaces zegbench's table and is resized bilinearly at run time, as the official encoder does.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from zegbench.errors import ZegbenchError

PROMPTS = ("backbone.prompt_embeddings", "backbone.deep_prompt_embeddings")
IGNORED = (
    re.compile(r"decode_head\.decoder_1\.layers\.\d+\.(self_attn\.|norm1\.)"),
    re.compile(r"decode_head\.loss_decode\.criterion\.empty_weight$"),
    re.compile(r"text_encoder\."),
)
_DECODER_PARTS = (("multihead_attn.q.", "attn.q."), ("multihead_attn.k.", "attn.k."), ("multihead_attn.v.", "attn.v."),
                  ("multihead_attn.proj.", "attn.out."), ("linear1.", "ffn.0."), ("linear2.", "ffn.3."),
                  ("norm2.", "norm_attn."), ("norm3.", "norm_ffn."))
# Official prefix -> zegbench prefix, the first that matches wins (the prompt parts before the rest
# of the backbone); decoder layers are renamed part by part below.
_PREFIXES = (("backbone.prompt_proj.", "encoder.prompt_proj."), ("backbone.prompt_norm.", "encoder.prompt_norm."),
             ("backbone.", "encoder.visual."), ("decode_head.q_proj.", "queries.proj."))
_DECODER = re.compile(r"decode_head\.decoder_1\.layers\.(\d+)\.(.+)$")
POSITIONS = "encoder.visual.positional_embedding"
SHOWN = 4  # keys named in an error line before "(+N more)"


def is_official_checkpoint(obj) -> bool:
    """Whether a loaded file is an mmseg/mmcv checkpoint (a dict with ``state_dict`` and ``meta``)."""
    return isinstance(obj, dict) and isinstance(obj.get("state_dict"), Mapping) and isinstance(obj.get("meta"), dict)


def renamed(key: str, prefixes) -> str | None:
    """``key`` with the first matching ``(old, new)`` prefix of ``prefixes`` replaced; None if none matches."""
    for old, new in prefixes:
        if key.startswith(old):
            return new + key.removeprefix(old)
    return None


def _swapped(pairs) -> tuple:
    return tuple((new, old) for old, new in pairs)


def zegbench_key(key: str) -> str | None:
    """The zegbench name of official ``key`` (None: ignored or unknown; prompts: ``encoder.prompts``)."""
    if key in PROMPTS:
        return "encoder.prompts"
    m = _DECODER.match(key)
    if m:
        part = renamed(m.group(2), _DECODER_PARTS)
        return None if part is None else f"decoder.layers.{m.group(1)}.{part}"
    return renamed(key, _PREFIXES)


def official_key(key: str) -> str | None:
    """The official name of zegbench ``key`` (the inverse of ``zegbench_key``; prompts excluded)."""
    m = re.match(r"decoder\.layers\.(\d+)\.(.+)$", key)
    if m:
        part = renamed(m.group(2), _swapped(_DECODER_PARTS))
        return None if part is None else f"decode_head.decoder_1.layers.{m.group(1)}.{part}"
    return renamed(key, _swapped(_PREFIXES))


def is_ignored(key: str) -> bool:
    return any(p.match(key) for p in IGNORED)


def named(items: list[str], separator: str = ", ") -> str:
    """The first ``SHOWN`` of ``items`` for an error line, and how many more there are."""
    shown = separator.join(items[:SHOWN])
    return shown + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")


def convert_state_dict(official: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor] | None,
                       source: str) -> dict[str, torch.Tensor]:
    """Official ``state_dict`` -> zegbench's keys, checked against ``target`` (the model's own state dict).

    Raises one ``ZegbenchError`` naming ``source`` and the keys when an official key has no place
    (not in the map, not ignored), a zegbench weight is left unfilled, or shapes differ. With
    ``target`` None only the renaming is done (gradients, for instance).
    """
    out, unknown = {}, []
    prompts = [official[k] for k in PROMPTS if k in official]
    if prompts:
        out["encoder.prompts"] = torch.cat([p.reshape(-1, *p.shape[-2:]) for p in prompts])
    for key, value in official.items():
        if key in PROMPTS or is_ignored(key):
            continue
        name = zegbench_key(key)
        if name is None:
            unknown.append(key)
        else:
            out[name] = value
    if unknown:
        raise ZegbenchError(f"{source}: {len(unknown)} weight(s) have no place in zegbench's ZegCLIP: "
                            f"{named(unknown)}; is it an official ZegCLIP checkpoint (VPTCLIPVisionTransformer "
                            f"+ ATMSingleHeadSeg)?")
    if target is None:
        return out
    missing = [k for k in target if k not in out]
    if missing:
        names = [("backbone.prompt_embeddings" if k == "encoder.prompts" else official_key(k) or k) for k in missing]
        raise ZegbenchError(f"{source} lacks {len(missing)} weight(s) the model needs: {named(names)}; "
                            f"the file is incomplete or of another model")
    extra = [k for k in out if k not in target]
    wrong = [k for k in out if k in target and out[k].shape != target[k].shape
             and not (k == POSITIONS and _same_width_square_grid(out[k], target[k]))]
    if extra or wrong:
        why = [f"{official_key(k) or k} is {list(out[k].shape)}, the model's {list(target[k].shape)}" for k in wrong]
        why += [f"{official_key(k) or k} (the model has no such weight)" for k in extra]
        raise ZegbenchError(f"{source} does not fit this ZegCLIP ({len(why)} weight(s)): {'; '.join(why[:SHOWN])}"
                            f"{' ...' if len(why) > SHOWN else ''}; build the method as the checkpoint was trained "
                            f"(the dataset's recipe: CLIP ViT-B/16, 10 prompt tokens in every block, 3 decoder layers)")
    return out


def _same_width_square_grid(table: torch.Tensor, ours: torch.Tensor) -> bool:
    rows = table.shape[0] - 1
    return table.dim() == 2 and table.shape[1] == ours.shape[1] and rows > 0 and int(rows ** 0.5) ** 2 == rows


def load_file(path: str | Path):
    """A checkpoint file's contents (tensors and plain data only, on the CPU), or one clear error."""
    path = Path(path)
    if not path.is_file():
        raise ZegbenchError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated downloads and foreign files fail in many ways inside torch
        raise ZegbenchError(f"{path} is unreadable as a checkpoint ({type(err).__name__}): a truncated download? "
                            f"Fetch it again and compare its size") from None


def read_checkpoint(path: str | Path) -> dict:
    """Load an official ZegCLIP checkpoint file (an mmseg ``.pth``), or raise one clear error."""
    path = Path(path)
    ckpt = load_file(path)
    if not is_official_checkpoint(ckpt):
        raise ZegbenchError(f"{path} is not an official ZegCLIP checkpoint (an mmseg .pth with 'state_dict' and "
                            f"'meta')")
    return ckpt


def checkpoint_setting(meta: dict) -> str | None:
    """'transductive' / 'inductive' as the checkpoint's config text says (None: no config text)."""
    text = meta.get("config")
    if not isinstance(text, str):
        return None
    return "transductive" if re.search(r"self_training\s*=\s*True", text) else "inductive"


def check_meta(ckpt: dict, class_names: list[str] | None, setting: str | None, source: str) -> None:
    """The checkpoint's ``meta`` against the dataset's classes (by count) and the method's setting.

    A COCO-Stuff model loads into a VOC model without a shape error, and an inductive model
    differs from a transductive one only in its calibration: these checks are what catch a wrong
    file, and they run before any model is built.
    """
    meta = ckpt["meta"]
    trained_for = meta.get("CLASSES")
    if class_names is not None and trained_for is not None and len(trained_for) != len(class_names):
        raise ZegbenchError(f"{source} was trained on {len(trained_for)} classes (meta CLASSES: "
                            f"{named(list(trained_for))}), the dataset has {len(class_names)}: evaluate it on "
                            f"the dataset it was trained on")
    theirs = checkpoint_setting(meta)
    if setting is not None and theirs is not None and setting != theirs:
        hint = "zegclip_transductive" if theirs == "transductive" else "zegclip"
        raise ZegbenchError(f"{source} was trained {theirs}ly (self_training in its config), the method is "
                            f"{setting}: use --method {hint} (the transductive model has no seen-class calibration)")


def load_official_checkpoint(method: nn.Module, checkpoint: str | Path | dict, class_names: list[str] | None = None,
                             source: str | None = None, check_setting: bool = True) -> dict:
    """Put an official checkpoint (path or loaded dict) into ``method`` (a ZegCLIP); returns its ``meta``.

    ``class_names`` (the dataset's) and the method's ``setting`` are checked first (``check_meta``);
    ``check_setting`` False lets an inductive checkpoint start a transductive model (the official
    second phase does).
    """
    ckpt = read_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    source = source or (str(checkpoint) if not isinstance(checkpoint, dict) else "the checkpoint")
    if not is_official_checkpoint(ckpt):
        raise ZegbenchError(f"{source} is not an official ZegCLIP checkpoint (a dict with 'state_dict' and 'meta')")
    check_meta(ckpt, class_names, getattr(method, "setting", None) if check_setting else None, source)
    state = convert_state_dict(ckpt["state_dict"], method.state_dict(), source)
    table = state[POSITIONS]
    visual = method.encoder.visual
    if table.shape != visual.positional_embedding.shape:  # the official table, resized at training time
        visual.positional_embedding = nn.Parameter(table.clone().to(visual.positional_embedding),
                                                   requires_grad=visual.positional_embedding.requires_grad)
    method.load_state_dict(state, strict=True)
    return ckpt["meta"]


def official_state_dict(method: nn.Module, class_names: list[str] | None = None,
                        unseen: list[str] | None = None) -> dict:
    """``method`` (a ZegCLIP) as an official checkpoint: ``{'meta': ..., 'state_dict': ...}``.

    The keys the official model has and zegbench does not are filled so the official code loads
    the file strictly: each decoder layer's unused ``self_attn`` (zeros) and ``norm1`` (ones,
    zeros), the loss buffer ``empty_weight`` (ones, 0.1 for the no-object entry, as the official
    criterion builds it: one entry per class trained on, so it needs ``class_names`` and, for an
    inductive model, ``unseen``), and
    ``text_encoder.*`` from the frozen CLIP's text tower when it is OpenAI-shaped.
    """
    state = {}
    for key, value in method.state_dict().items():
        if key == "encoder.prompts":
            state["backbone.prompt_embeddings"] = value[:1].clone()
            if value.shape[0] > 1:
                state["backbone.deep_prompt_embeddings"] = value[1:].clone()
            continue
        name = official_key(key)
        if name is None:
            raise ZegbenchError(f"{key} has no place in the official ZegCLIP (is the method a ZegCLIP with "
                                f"deep prompts, relation 'rd' and the official decoder?)")
        state[name] = value.detach().clone()
    dim = method.decoder.layers[0].norm_attn.normalized_shape[0]
    for i in range(len(method.decoder.layers)):
        prefix = f"decode_head.decoder_1.layers.{i}."
        state[prefix + "self_attn.in_proj_weight"] = torch.zeros(3 * dim, dim)
        state[prefix + "self_attn.in_proj_bias"] = torch.zeros(3 * dim)
        state[prefix + "self_attn.out_proj.weight"] = torch.zeros(dim, dim)
        state[prefix + "self_attn.out_proj.bias"] = torch.zeros(dim)
        state[prefix + "norm1.weight"], state[prefix + "norm1.bias"] = torch.ones(dim), torch.zeros(dim)
    if class_names is not None:
        inductive = getattr(method, "setting", "inductive") == "inductive"
        trained = len(class_names) - (len(unseen or []) if inductive else 0)
        empty = torch.ones(trained + 1)
        empty[-1] = 0.1
        state["decode_head.loss_decode.criterion.empty_weight"] = empty
    bundle = getattr(method, "_bundle", None)
    text = {k: v for k, v in bundle.model.state_dict().items()
            if not k.startswith(("visual.", "logit_scale", "logit_bias", "attn_mask"))} if bundle else {}
    if "token_embedding.weight" in text and "text_projection" in text:
        state.update({f"text_encoder.{k}": v.detach().clone() for k, v in text.items()})
    meta = {"zegbench": "exported by zegbench.methods.official_checkpoint"}
    if class_names is not None:
        meta["CLASSES"] = tuple(class_names)
    return {"meta": meta, "state_dict": state}
