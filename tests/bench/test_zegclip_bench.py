"""ZegCLIP speed: the decoder's overhead over the bare CLIP image encoder, and train-step time
per tuning mode. Tiny (world) scale by default; ViT-B/16 at 512x512 with ``-m realscale``.

Run: ``python -m pytest tests/bench --benchmark-enable -m "realscale or not realscale"``.
"""
from __future__ import annotations

import pytest
import torch

from zegbench.methods import create_method

SCALES = {
    "world": dict(clip="zegbench-world-vit", image_size=96),
    "vitb16": dict(clip="ViT-B-16", image_size=512),
}
CLASSES = [f"dotted {s}" for s in ("circle", "square", "triangle", "star", "cross")] * 4  # 20, like VOC


def _scale_params():
    return [pytest.param("world", id="world"), pytest.param("vitb16", id="vitb16", marks=pytest.mark.realscale)]


def _method(scale, **kw):
    torch.manual_seed(0)
    method = create_method("zegclip", clip_weights="none", **SCALES[scale], **kw)
    if scale == "vitb16":  # the in-house vocabulary cannot read other words; random text is enough for timing
        method.text_embeddings = lambda names: torch.nn.functional.normalize(torch.randn(len(names), 512), dim=-1)
    return method.eval()


@pytest.mark.parametrize("scale", _scale_params())
def test_bare_clip_image_encoder(benchmark, scale):
    method = _method(scale, tuning="frozen")
    x = torch.randn(1, 3, SCALES[scale]["image_size"], SCALES[scale]["image_size"])
    with torch.inference_mode():
        benchmark(lambda: method.encoder.visual(x))


@pytest.mark.parametrize("scale", _scale_params())
def test_zegclip_inference(benchmark, scale):
    method = _method(scale)
    x = torch.randn(1, 3, SCALES[scale]["image_size"], SCALES[scale]["image_size"])
    with torch.inference_mode():
        out = benchmark(lambda: method.predict(x, CLASSES, seen=[True] * 15 + [False] * 5))
    assert out.shape[1] == 20


@pytest.mark.parametrize("tuning", ["frozen", "finetune", "dpt"])
@pytest.mark.parametrize("scale", _scale_params())
def test_train_step(benchmark, scale, tuning):
    method = _method(scale, tuning=tuning).train()
    size = SCALES[scale]["image_size"]
    x, y = torch.randn(2, 3, size, size), torch.randint(0, 15, (2, size, size))
    optimizer = torch.optim.AdamW(method.param_groups(1e-4))

    def step():
        logits, _ = method(x, CLASSES[:15])
        loss = sum(method.loss(logits, y).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark(step)
