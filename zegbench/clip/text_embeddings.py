"""Class text embeddings, computed once per (model weights, class names, templates).

Each class embedding is the L2-normalised mean of its L2-normalised template
embeddings (ZegCLIP's 15-template recipe; one template reduces to the plain
embedding). Results are kept in memory and on disk under the cache folder,
keyed by a fingerprint of the text tower's weights and its activation (the
same OpenAI weights built with GELU and with QuickGELU give different
embeddings), so a fine-tuned or different model can never be served another
model's embeddings.
"""
from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import torch

from zegbench.clip.loading import ClipBundle, activation_of
from zegbench.clip.templates import SINGLE
from zegbench.utils.io import atomic_torch_save
from zegbench.utils.paths import cache_root

_memory: dict[str, torch.Tensor] = {}
_fingerprints: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def text_tower_fingerprint(model: torch.nn.Module) -> str:
    """sha1 of every parameter outside the image tower (names, shapes and bytes).

    Hashing a real text tower takes longer than a forward pass, so the digest is
    kept per model object and recomputed only when a text-tower tensor was
    modified in place since (an optimiser step bumps its version counter).
    """
    tensors = [(n, t) for n, t in model.state_dict(keep_vars=True).items() if not n.startswith("visual.")]
    versions = tuple((id(t), t._version) for _, t in tensors)
    known = _fingerprints.get(model)
    if known is not None and known[0] == versions:
        return known[1]
    digest = _hash_text_tower(model)
    _fingerprints[model] = (versions, digest)
    return digest


def _hash_text_tower(model: torch.nn.Module) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("visual."):
            continue
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def encode_class_names(bundle: ClipBundle, class_names: list[str], templates=SINGLE) -> torch.Tensor:
    """[C, D] float32 unit-norm class embeddings, without any caching."""
    device = next(bundle.model.parameters()).device
    prompts = [t.format(c) for c in class_names for t in templates]
    feats = bundle.model.encode_text(bundle.tokenizer(prompts).to(device)).float()
    feats = torch.nn.functional.normalize(feats, dim=-1).view(len(class_names), len(templates), -1)
    return torch.nn.functional.normalize(feats.mean(dim=1), dim=-1)


def class_embeddings(bundle: ClipBundle, class_names: list[str], templates=SINGLE,
                     cache_dir: str | Path | None = None) -> torch.Tensor:
    """Cached ``encode_class_names``: memory first, then disk, then the text tower."""
    key_src = json.dumps([text_tower_fingerprint(bundle.model), activation_of(bundle.model), list(class_names),
                          list(templates)])
    key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
    if key in _memory:
        return _memory[key].clone()
    path = Path(cache_dir or cache_root() / "text_embeddings") / f"{key}.pt"
    if path.is_file():
        try:
            emb = torch.load(path, weights_only=True)
        except Exception:  # a damaged cache entry is recomputed, never trusted
            emb = None
        if isinstance(emb, torch.Tensor) and emb.shape[0] == len(class_names):
            _memory[key] = emb
            return emb.clone()
    emb = encode_class_names(bundle, class_names, templates).cpu()
    atomic_torch_save(emb, path)
    _memory[key] = emb
    return emb.clone()
