"""World generation speed (goal: at least 200 scenes/s on one core at the default size), and reading one
scene: decoding its PNGs (what every read cost before) against mapping the decoded arrays (datasets/decoded.py).

Run: ``python -m pytest tests/bench --benchmark-enable --benchmark-json=results/bench/world.json``.
"""
from __future__ import annotations

import numpy as np
import pytest

from zegbench.datasets.decoded import decoded
from zegbench.datasets.folder import SegmentationFolder
from zegbench.datasets.generate import WorldSpec, ensure_world, fingerprint, write_scene

READ_SPEC = WorldSpec(name="bench", train_scenes=64, val_scenes=1)  # the default 96 px scenes, fewer


def test_render_scene(benchmark):
    spec = WorldSpec()
    counter = iter(range(10**9))
    gen = spec.generator
    img, label, _ = benchmark(lambda: gen.render_scene(spec.image_size, gen.sample_rng(0, 0, next(counter))))
    assert img.shape == (96, 96, 3) and label.shape == (96, 96)


def test_render_and_write_scene(benchmark, tmp_path):
    spec = WorldSpec()
    for sub in ("JPEGImages", "SegmentationClass"):
        (tmp_path / sub).mkdir()
    counter = iter(range(10**9))
    benchmark(lambda: write_scene(tmp_path, spec, "train", next(counter)))
    assert any((tmp_path / "JPEGImages").iterdir())


@pytest.fixture(scope="module")
def world_pngs(tmp_path_factory):
    root = ensure_world(READ_SPEC, tmp_path_factory.mktemp("worlds"))
    return SegmentationFolder(root, "ImageSets/Segmentation/train.txt", len(READ_SPEC.generator.CLASS_NAMES),
                              img_suffix=".png")


@pytest.mark.parametrize("source", ["pngs", "decoded"])
def test_read_world_scene(benchmark, world_pngs, source):
    data = world_pngs if source == "pngs" else decoded(world_pngs, fingerprint(READ_SPEC), "train")
    counter = iter(range(10**9))
    image, label, _ = benchmark(lambda: data[next(counter) % len(data)])
    assert image.shape == (96, 96, 3) and label.dtype == np.int64
