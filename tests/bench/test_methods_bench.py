"""Speed of every registered method (pytest-benchmark): inference at a fixed input and one train step.

World scale (each method as the world recipe configures it, 96x96) by default; ViT-B/16 at
512x512 with the VOC recipe and random weights behind ``-m realscale``. The bare CLIP image
encoder is the reference for ZegCLIP's overhead.

    python -m pytest tests/bench --benchmark-enable --benchmark-json=results/bench/$(date +%Y%m%d-%H%M%S).json
    python -m pytest tests/bench --benchmark-enable -m realscale      # real scale (minutes)

CI runs these with ``--benchmark-disable``: each body runs once, so they stay correct.
The speed suite (``run_all.py --suite speed``) adds FLOPs, FPS and FLOP utilisation.
"""
from __future__ import annotations

import pytest
import torch

from zegbench.datasets.catalog import load_dataset_info
from zegbench.engine.speed import speed_method_config
from zegbench.methods import create_method, list_methods

# world v2's recipe: the published miniature timings were measured on it (the default world until 2026-12-07)
SCALES = {"world": ("world_v2", 96, False), "vitb16": ("voc12", 512, True)}  # dataset recipe, input, random weights
REAL_SCALE_METHODS = ["zegclip", "two_stage", "maskclip"]


def _cases(methods_at_real_scale):
    cases = [pytest.param(m, "world", id=f"{m}-world") for m in list_methods()]
    cases += [pytest.param(m, "vitb16", id=f"{m}-vitb16", marks=pytest.mark.realscale) for m in methods_at_real_scale]
    return cases


def _build(name: str, scale: str, **extra):
    dataset, size, random_weights = SCALES[scale]
    torch.manual_seed(0)
    method = create_method(name, **{**speed_method_config(name, dataset, random_weights), **extra})
    info = load_dataset_info(dataset)
    names, seen = list(info.classes), [c not in info.unseen for c in info.classes]
    return method, names, seen, size


@pytest.mark.parametrize("name,scale", _cases(REAL_SCALE_METHODS))
def test_inference(benchmark, name, scale):
    method, names, seen, size = _build(name, scale)
    method.eval()
    x = torch.randn(1, 3, size, size)
    method.text_embeddings(names)  # cached: text encoding is not part of inference
    with torch.inference_mode():
        scores = benchmark(lambda: method.predict(x, names, seen))
    assert scores.shape == (1, len(names), size, size) and torch.isfinite(scores).all()


@pytest.mark.parametrize("scale", [pytest.param("world", id="world"),
                                   pytest.param("vitb16", id="vitb16", marks=pytest.mark.realscale)])
def test_bare_clip_image_encoder(benchmark, scale):
    # The tower built at the input size (pos_resize open_clip), so CLIP's own forward takes it as is.
    method, _, _, size = _build("zegclip", scale, tuning="frozen", pos_resize="open_clip")
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        out = benchmark(lambda: method.encoder.visual(x))
    assert out.shape[0] == 1


@pytest.mark.parametrize("name,scale", _cases(["zegclip", "zegclip_baseline_fix", "zegclip_baseline_ft", "two_stage"]))
def test_train_step(benchmark, name, scale):
    method, names, _, size = _build(name, scale)
    if not any(p.requires_grad for p in method.parameters()):
        pytest.skip(f"{name} is training-free")
    method.train()
    seen_names = names[:15]
    batch = 8 if scale == "world" else 2
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 15, (batch, size, size))
    optimizer = torch.optim.AdamW(method.param_groups(1e-4))
    before = [p.detach().clone() for g in optimizer.param_groups for p in g["params"]][:1]

    def step():
        logits, aux = method(x, seen_names)
        loss = sum(method.loss(logits, y, aux).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    loss = benchmark(step)
    assert torch.isfinite(loss)
    assert not torch.equal(before[0], optimizer.param_groups[0]["params"][0].detach())  # the step updated weights
