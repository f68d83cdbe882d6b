"""World generation speed (goal: at least 200 scenes/s on one core at the default size).

Run: ``python -m pytest tests/bench --benchmark-enable --benchmark-json=results/bench/world.json``.
"""
from __future__ import annotations

from zegbench.datasets.generate import WorldSpec, write_scene


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
