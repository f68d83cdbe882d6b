"""Official MaskCLIP weights into zegbench's ``MaskCLIP``: the mmseg ViT + ``MaskClipHead`` layout.

The official model (``chongzhou96/MaskCLIP``, ``configs/_base_/models/maskclip_vit16.py``) is an mmseg
``VisionTransformer`` (the CLIP image tower converted by ``tools/maskclip_utils/convert_clip_weights.py``)
and a ``MaskClipHead`` holding CLIP's projection as a 1x1 convolution and the class embeddings as a
buffer. Its state dict (what mmcv's ``save_checkpoint`` writes of the built segmentor) maps onto
zegbench's ``MaskCLIP`` (open_clip's tower, OpenAI's layout) as below; checked value for value by
``tests/test_official_maskclip.py`` against the official code's own outputs.

========================================================  ===============================================
official (N: a block)                                     zegbench (``encoder.visual.`` omitted)
========================================================  ===============================================
``backbone.cls_token`` [1, 1, W]                          ``class_embedding`` [W]
``backbone.pos_embed`` [1, 1 + n, W]                      ``positional_embedding`` [1 + n, W]
``backbone.patch_embed.projection.weight``                ``conv1.weight``
``backbone.ln0.*`` / ``backbone.ln1.*``                   ``ln_pre.*`` / ``ln_post.*``
``backbone.layers.N.ln1.*`` / ``ln2.*``                   ``transformer.resblocks.N.ln_1.*`` / ``ln_2.*``
``backbone.layers.N.attn.attn.{in_proj_*, out_proj.*}``   ``transformer.resblocks.N.attn.{in_proj_*, out_proj.*}``
``backbone.layers.N.ffn.layers.0.0.*`` / ``layers.1.*``   ``transformer.resblocks.N.mlp.c_fc.*`` / ``c_proj.*``
``decode_head.proj.weight`` [D, W, 1, 1]                  ``proj`` [W, D] (transposed)
``decode_head.text_embeddings`` [K, D]                    not a weight: returned as the class embeddings
========================================================  ===============================================
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from zegbench.errors import ZegbenchError
from zegbench.methods.official_checkpoint import load_file, named, renamed

TEXT = "decode_head.text_embeddings"
_FIXED = {"backbone.cls_token": "class_embedding", "backbone.pos_embed": "positional_embedding",
          "backbone.patch_embed.projection.weight": "conv1.weight", "decode_head.proj.weight": "proj"}
_PREFIXES = (("backbone.ln0.", "ln_pre."), ("backbone.ln1.", "ln_post."))
_BLOCK = re.compile(r"backbone\.layers\.(\d+)\.(.+)$")
_BLOCK_PARTS = (("ln1.", "ln_1."), ("ln2.", "ln_2."), ("attn.attn.", "attn."), ("ffn.layers.0.0.", "mlp.c_fc."),
                ("ffn.layers.1.", "mlp.c_proj."))


def zegbench_key(key: str) -> str | None:
    """The zegbench name of official ``key`` (without ``encoder.visual.``), or None when it has no place."""
    if key in _FIXED:
        return _FIXED[key]
    m = _BLOCK.match(key)
    if m:
        part = renamed(m.group(2), _BLOCK_PARTS)
        return None if part is None else f"transformer.resblocks.{m.group(1)}.{part}"
    return renamed(key, _PREFIXES)


def _as_ours(key: str, value: torch.Tensor) -> torch.Tensor:
    """The official tensor in zegbench's shape (a wrong size stays wrong, to be reported)."""
    if key == "backbone.cls_token" and value.dim() == 3 and value.shape[:2] == (1, 1):
        return value[0, 0]
    if key == "backbone.pos_embed" and value.dim() == 3 and value.shape[0] == 1:
        return value[0]
    if key == "decode_head.proj.weight" and value.dim() == 4 and value.shape[2:] == (1, 1):
        return value[:, :, 0, 0].t()
    return value


def convert_maskclip_state_dict(official: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                                source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """(zegbench ``encoder.visual.*`` state dict, the class embeddings or None) of an official state dict.

    ``target`` is the model's own state dict: every key of it must be filled, with its shape. One
    ``ZegbenchError`` line naming ``source`` and the keys when a key has no place, is missing or is
    mis-shaped.
    """
    out, unknown = {}, []
    for key, value in official.items():
        if key == TEXT:
            continue
        ours = zegbench_key(key)
        if ours is None:
            unknown.append(key)
        else:
            out["encoder.visual." + ours] = (key, _as_ours(key, value))
    if unknown:
        raise ZegbenchError(f"{source}: {len(unknown)} weight(s) have no place in zegbench's MaskCLIP: "
                            f"{named(sorted(unknown))}")
    wanted = {k for k in target if k.startswith("encoder.visual.")}
    missing = sorted(wanted - set(out))
    if missing:
        raise ZegbenchError(f"{source} lacks {len(missing)} weight(s) the model needs: {named(missing)}")
    extra = sorted(out[k][0] for k in set(out) - wanted)
    if extra:
        raise ZegbenchError(f"{source}: {len(extra)} weight(s) have no place in zegbench's MaskCLIP: {named(extra)}")
    why = [f"{out[k][0]} is {list(out[k][1].shape)}, the model's {list(target[k].shape)}"
           for k in sorted(out) if out[k][1].shape != target[k].shape]
    if why:
        raise ZegbenchError(f"{source} does not fit this MaskCLIP ({len(why)} weight(s)): {named(why, '; ')}")
    text = official.get(TEXT)
    return {k: v for k, (_, v) in out.items()}, (None if text is None else text.float())


def load_official_maskclip(method: torch.nn.Module, checkpoint: str | Path | Mapping) -> torch.Tensor | None:
    """Put an official MaskCLIP state dict (a ``.pth`` path, or a loaded dict with or without
    ``state_dict``) into ``method``; returns the head's class embeddings [K, D] (None if absent)."""
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "the official state dict"
    if isinstance(checkpoint, (str, Path)):
        checkpoint = load_file(checkpoint)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise ZegbenchError(f"{source} is not an official MaskCLIP state dict (tensors, or a dict with 'state_dict')")
    weights, text = convert_maskclip_state_dict(state, method.state_dict(), source)
    method.load_state_dict(weights, strict=False)
    return text
