"""Speed of the harness's own hot paths: the text-embedding cache (hit vs miss) and metric accumulation."""
from __future__ import annotations

import torch

from zegbench.clip.loading import load_clip
from zegbench.clip.text_embeddings import _memory, class_embeddings
from zegbench.datasets import worlds
from zegbench.engine.metrics import ConfusionMatrix

world = worlds.generator()  # the default world's classes: the default in-house CLIP reads them

NAMES = list(world.CLASS_NAMES)


def test_text_embeddings_cache_hit(benchmark, tmp_path):
    bundle = load_clip()
    first = class_embeddings(bundle, NAMES, cache_dir=tmp_path)
    again = benchmark(lambda: class_embeddings(bundle, NAMES, cache_dir=tmp_path))
    assert torch.equal(first, again)


def test_text_embeddings_cache_miss(benchmark, tmp_path):
    bundle = load_clip()

    def miss():
        _memory.clear()  # memory and disk both empty: the text tower runs
        for f in tmp_path.glob("*.pt"):
            f.unlink()
        return class_embeddings(bundle, NAMES, cache_dir=tmp_path)

    emb = benchmark(miss)
    assert emb.shape[0] == len(NAMES)


def test_confusion_matrix_update(benchmark):
    torch.manual_seed(0)
    pred = torch.randint(0, 20, (16, 96, 96))  # one evaluation batch of the world
    target = torch.randint(0, 20, (16, 96, 96))
    target[:, :10] = 255
    cm = ConfusionMatrix(20)
    benchmark(lambda: cm.update(pred, target))
    assert cm.matrix.sum() > 0
