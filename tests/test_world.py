"""The synthetic world: split structure, rendering, determinism and on-disk layout."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from zegbench.clip.captions import caption_batch
from zegbench.datasets import worlds
from zegbench.datasets.catalog import build_dataset, load_dataset_info, world_spec
from zegbench.datasets.generate import ensure_world, world_root
from zegbench.datasets.worlds import v1 as world
from zegbench.datasets.worlds import v2 as world_v2
from zegbench.datasets.worlds import v3 as world_v3
from zegbench.engine.resolve import resolve
from zegbench.errors import ZegbenchError

V1_CAPTIONS_DIGEST = "1c2773162eff"  # world v1's stream as its shipped CLIP saw it
GENERATORS = [pytest.param(worlds.generator(v), id=f"v{v}") for v in worlds.MODULES]


@pytest.mark.parametrize("gen", GENERATORS)
def test_every_unseen_class_has_a_novel_attribute_and_a_seen_look_alike(gen):
    seen_words = {w for c in gen.SEEN_CLASSES for w in c.split()}
    for name in gen.UNSEEN_CLASSES:
        novel = [w for w in name.split() if w not in seen_words]
        assert novel == list(gen.UNSEEN_PATTERNS), f"{name}: its pattern is taught by a seen class"
        assert gen.look_alikes(name), f"{name}: no seen look-alike"
        assert all(c in gen.SEEN_CLASSES for c in gen.look_alikes(name))
    assert len(gen.SEEN_CLASSES) == 15 and len(gen.UNSEEN_CLASSES) == 5


@pytest.mark.parametrize("gen", GENERATORS)
def test_pretraining_captions_name_unseen_classes_in_the_clip_vocabulary(gen):
    from zegbench.clip.tokenizer import WorldTokenizer, vocabulary_for

    _, captions = caption_batch(gen, seed=0, index=0, batch_size=64, image_size=32)
    text = " ".join(captions)
    for pattern in gen.UNSEEN_PATTERNS:
        assert pattern in text
    WorldTokenizer(vocabulary_for(gen))(captions)  # every caption word is in the CLIP's vocabulary


def test_v1_captions_are_unchanged():
    """World v1's shipped CLIP was trained on this stream: its captions must not drift."""
    _, captions = caption_batch(world, seed=0, index=0, batch_size=4, image_size=32)
    assert hashlib.sha256("|".join(captions).encode()).hexdigest()[:12] == V1_CAPTIONS_DIGEST


@pytest.mark.parametrize("dataset, gen", [("world_v1", world), ("world_v2", world_v2), ("world_v2_seed1", world_v2),
                                          ("world", world_v3), ("world_v3", world_v3)])
def test_world_config_matches_generator(dataset, gen):
    info = load_dataset_info(dataset)
    assert info.classes == gen.CLASS_NAMES
    assert info.unseen == gen.UNSEEN_CLASSES
    assert world_spec(info).image_size == 96
    assert world_spec(info).generator is gen


def test_the_default_world_is_v3_at_its_budget_and_v2_keeps_its_recipe():
    """`world` is world_v3 under the default name (issue 25: every v3 gate held): the same scenes, CLIP and
    recipe; world_v2 keeps v2's, so every number published on v2 can be reproduced."""
    default, v3, v2 = (load_dataset_info(name) for name in ("world", "world_v3", "world_v2"))
    assert default.world == v3.world and default.world["version"] == 3
    assert v2.world["version"] == 2 and v2.world["train_scenes"] == 2000
    for arm in ("zegclip", "zegclip_baseline_ft"):
        as_default, as_v3, as_v2 = (resolve(arm, name, 0) for name in ("world", "world_v3", "world_v2"))
        assert as_default["train"] == as_v3["train"] and as_default["train"]["steps"] == 6000
        assert as_default["method_config"] == as_v3["method_config"]
        assert as_default["method_config"]["clip"] == "zegbench-world3-vit"
        assert as_v2["train"]["steps"] == 750 and as_v2["method_config"]["clip"] == "zegbench-world2-vit"


def test_v2_classes_are_surfaces_a_patch_shows():
    """A v2 class is "<colour> <pattern>": two objects of one class may differ in shape, never in surface."""
    rng = world.sample_rng(0, 7, 0)
    shapes = {world_v2.random_object(96, rng, "red dotted").shape for _ in range(40)}
    assert shapes == set(world.SHAPES)
    img, obj = world_v2.render_single(64, world.sample_rng(0, 7, 1), "blue hatched", "star")
    assert obj.class_name == "blue hatched" and obj.shape == "star"


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


@pytest.mark.parametrize("dataset", ["world_v2", "world_v3"])
def test_geometry_is_like_voc(dataset):
    """Gate G5 on the dataset's generator and settings: median object >= 16 patches of 8 px at 96 px,
    background 55-80% (v3's void band included, as VOC's 255)."""
    spec = world_spec(load_dataset_info(dataset))
    sizes, background = [], []
    for index in range(150):
        _, label, _ = spec.render_scene(world.sample_rng(0, 0, index))
        background.append((label == 255).mean())
        sizes += [(label == c).sum() / 64 for c in np.unique(label) if c != 255]
    assert np.median(sizes) >= 16
    assert 0.55 <= np.mean(background) <= 0.80


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
    assert manifest["unseen"] == list(tiny_spec.generator.UNSEEN_CLASSES)
    assert manifest["generator_version"] == tiny_spec.version
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
