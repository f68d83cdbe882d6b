"""The synthetic world: split structure, rendering, determinism and on-disk layout."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from zegbench.clip.captions import caption_batch
from zegbench.datasets import world
from zegbench.datasets.catalog import build_dataset, load_dataset_info, world_spec
from zegbench.datasets.generate import ensure_world, world_root
from zegbench.errors import ZegbenchError


def test_every_unseen_class_has_a_novel_attribute_and_a_seen_neighbour():
    seen_words = {w for c in world.SEEN_CLASSES for w in c.split()}
    for name in world.UNSEEN_CLASSES:
        pattern, shape = name.split()
        assert pattern not in seen_words, f"{name}: its pattern is taught by a seen class"
        assert any(c.split()[1] == shape for c in world.SEEN_CLASSES), f"{name}: no seen neighbour"
    assert len(world.SEEN_CLASSES) == 15 and len(world.UNSEEN_CLASSES) == 5


def test_pretraining_captions_name_unseen_classes():
    _, captions = caption_batch(seed=0, index=0, batch_size=64, image_size=32)
    text = " ".join(captions)
    for pattern in world.UNSEEN_PATTERNS:
        assert pattern in text


def test_world_config_matches_generator():
    info = load_dataset_info("world")
    assert info.classes == world.CLASS_NAMES
    assert info.unseen == world.UNSEEN_CLASSES
    assert world_spec(info).image_size == 96


def test_scenes_have_overlap_several_scales_and_ignore_background():
    occluded, radii = 0, []
    for index in range(20):
        img, label, objects = world.render_scene(96, world.sample_rng(0, 0, index))
        assert img.dtype == np.uint8 and img.shape == (96, 96, 3)
        assert world.IGNORE_INDEX in label
        assert set(np.unique(label).tolist()) - {255} <= set(range(len(world.CLASS_NAMES)))
        for k, obj in enumerate(objects):
            footprint = world.draw_object(np.zeros((96, 96, 3)), obj, world.sample_rng(0, 9, k))
            later = np.zeros_like(footprint)
            for other in objects[k + 1:]:
                later |= world.draw_object(np.zeros((96, 96, 3)), other, world.sample_rng(0, 9, k))
            occluded += bool((footprint & later).any())
            radii.append(obj.radius)
    assert occluded >= 5, "objects should overlap in a fair share of scenes"
    assert max(radii) / min(radii) > 2


@pytest.mark.parametrize("shape", world.SHAPES)
def test_shapes_differ_from_each_other(shape):
    v, u = np.mgrid[-1:1:64j, -1:1:64j]
    mask = world.shape_mask(shape, u, v)
    assert 0.2 < mask.mean() < 0.9
    for other in world.SHAPES:
        if other != shape:
            assert (mask != world.shape_mask(other, u, v)).mean() > 0.05


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_and_seeded(tmp_path, tiny_spec):
    from dataclasses import replace

    a = ensure_world(tiny_spec, tmp_path / "a")
    b = ensure_world(tiny_spec, tmp_path / "b")
    assert _digest(a) == _digest(b)
    c = ensure_world(replace(tiny_spec, seed=tiny_spec.seed + 1), tmp_path / "c")
    assert c.name != a.name
    assert _digest(a / "JPEGImages") != _digest(c / "JPEGImages")


def test_layout_matches_voc_and_reuses_finished_world(tmp_path, tiny_spec):
    root = ensure_world(tiny_spec, tmp_path)
    assert root == world_root(tiny_spec, tmp_path)
    ids = (root / "ImageSets/Segmentation/train.txt").read_text().split()
    assert len(ids) == tiny_spec.train_scenes
    label = np.asarray(Image.open(root / "SegmentationClass" / f"{ids[0]}.png"))
    assert label.shape == (48, 48)
    manifest = json.loads((root / "world.json").read_text())
    assert manifest["unseen"] == list(world.UNSEEN_CLASSES)
    stamp = (root / "world.json").stat().st_mtime_ns
    ensure_world(tiny_spec, tmp_path)
    assert (root / "world.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_world_dataset_yields_images_and_labels():
    ds = build_dataset("world_smoke", "val")
    image, label, meta = ds[0]
    assert image.shape == (96, 96, 3) and label.shape == (96, 96) and label.dtype == np.int64
    assert meta["id"] == "val_000000"


def test_manifest_of_another_world_is_refused(tmp_path, tiny_spec):
    from dataclasses import replace

    ensure_world(tiny_spec, tmp_path)
    with pytest.raises(ZegbenchError, match="another world"):
        ensure_world(replace(tiny_spec, train_scenes=13), tmp_path)


def test_cache_path_that_is_a_file_is_one_clear_error(tmp_path, tiny_spec):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ZegbenchError, match="cannot write the world cache"):
        ensure_world(tiny_spec, blocker / "worlds")


def test_unknown_dataset_name_is_one_clear_error():
    with pytest.raises(ZegbenchError, match="unknown dataset 'nope'.*known: .*world"):
        load_dataset_info("nope")
