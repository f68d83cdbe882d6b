"""Speed of the VOC-recipe training pipeline (read JPEG and PNG, random rescale to 2048x512 x [0.5, 2],
512 crop with cat_max_ratio, flip, photometric distortion, pad) through the DataLoader, with 0, 1 and 2
worker processes, at batches of 16 (the paper's global batch).

Images are VOC-sized (375 x 500) random JPEGs in the real layout (tests/real_layouts.py). Each round
starts the loader (workers included) and draws ``BATCHES`` batches; ``images_per_second`` in the
record's extra_info is what a GPU could be fed at that setting.

Run: ``OMP_NUM_THREADS=1 python -m pytest tests/bench/test_loader_bench.py --benchmark-enable``.
"""
from __future__ import annotations

import numpy as np
import pytest

from zegbench.datasets.catalog import build_dataset, load_dataset_info
from zegbench.datasets.loader import BatchPlan, training_batches
from zegbench.datasets.transforms import TrainTransform

from real_layouts import write_voc

BATCH = 16
BATCHES = 4
VOC_SIZE = (375, 500)  # H, W of a typical VOC 2012 image


@pytest.fixture(scope="module")
def voc_train(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc-bench")
    write_voc(root, train=32, val=1, size=VOC_SIZE)
    return build_dataset("voc12", "train", data_root=root)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_voc_recipe_pipeline(benchmark, voc_train, workers):
    transform = TrainTransform(load_dataset_info("voc12").train_transform)
    seeds = iter(range(10**9))

    def draw():
        plan = BatchPlan(len(voc_train), BATCH, BATCHES, np.random.default_rng(next(seeds)), augmented=True)
        return [images.shape for images, _ in training_batches(voc_train, plan, transform, workers)]

    shapes = benchmark.pedantic(draw, rounds=3, iterations=1, warmup_rounds=1)
    assert shapes == [(BATCH, 512, 512, 3)] * BATCHES
    benchmark.extra_info["workers"] = workers
    if benchmark.stats is not None:  # None under --benchmark-disable (CI): the body ran once, untimed
        benchmark.extra_info["images_per_second"] = round(BATCH * BATCHES / benchmark.stats.stats.mean, 2)
