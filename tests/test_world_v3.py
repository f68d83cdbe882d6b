"""World v3: the broad caption world (G6 breadth), its stream, and its segmentation scenes."""
from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest
import torch

from zegbench.clip import breadth
from zegbench.clip.captions import caption_batch, caption_plans
from zegbench.clip.loading import load_clip
from zegbench.clip.pretrain import shippable_state
from zegbench.clip.tokenizer import WorldTokenizer, vocabulary_for
from zegbench.datasets import worlds
from zegbench.datasets.catalog import load_dataset_info, world_spec
from zegbench.datasets.worlds import v3 as world_v3

# The stream zegbench-world3-vit's pretraining reads (started 2026-12-06, resumed over several sessions:
# `clip pretrain --resume` refuses a changed stream). A change to world_v3's captions or drawing
# changes it: then the CLIP must be pretrained again.
V3_STREAM_DIGEST = "e60906be0395"


def test_v3_caption_stream_is_unchanged():
    from zegbench.clip.pretrain import stream_digest

    assert stream_digest(world_v3, 0) == V3_STREAM_DIGEST


def test_v3_is_registered_and_not_the_default():
    assert worlds.generator(3) is world_v3
    assert worlds.for_clip("zegbench-world3-vit") is world_v3
    assert worlds.DEFAULT_VERSION == 2
    spec = world_spec(load_dataset_info("world_v3"))
    assert spec.generator is world_v3 and load_dataset_info("world_v3").recipe.method["clip"] == world_v3.CLIP_MODEL


def test_the_seed_worlds_are_v3_drawn_with_another_generator_seed_only():
    """The world-seed check of the pre-registration: same design, CLIP and recipe; other scenes."""
    import dataclasses

    from zegbench.datasets.generate import fingerprint

    base = load_dataset_info("world_v3")
    for seed in (1, 2):
        other = load_dataset_info(f"world_v3_seed{seed}")
        spec = world_spec(other)
        assert spec.seed == seed and spec.generator is world_v3
        assert dataclasses.replace(spec, seed=0, name=world_spec(base).name) == world_spec(base)
        assert fingerprint(spec) != fingerprint(world_spec(base))
        assert other.recipe == base.recipe and other.classes == base.classes and other.unseen == base.unseen


def test_the_benchmark_is_a_sliver_of_the_concepts():
    assert set(world_v3.CLASS_NAMES) < set(world_v3.CONCEPTS)
    assert len(world_v3.CONCEPTS) >= breadth.CONCEPT_RATIO_MIN * len(world_v3.CLASS_NAMES)
    assert not set(world_v3.CLUTTER_SURFACES) & set(world_v3.CLASS_NAMES)
    assert len(set(world_v3.CONTENT_WORDS)) == len(world_v3.CONTENT_WORDS)


def test_caption_stream_is_deterministic_and_independent_of_image_size():
    images, captions = caption_batch(world_v3, seed=0, index=3, batch_size=12, image_size=32)
    again, same = caption_batch(world_v3, seed=0, index=3, batch_size=12, image_size=32)
    assert np.array_equal(images, again) and captions == same
    _, at_64 = caption_batch(world_v3, seed=0, index=3, batch_size=12, image_size=64)
    assert at_64 == captions  # planned before drawn: the text does not depend on the pixels
    _, other = caption_batch(world_v3, seed=0, index=4, batch_size=12, image_size=32)
    assert other != captions
    assert captions == [plan.caption for plan, _ in caption_plans(world_v3, 0, 3, 12)]


def test_every_caption_reads_in_the_clip_context_and_main_surfaces_cycle_through_the_concepts():
    bundle = load_clip(world_v3.CLIP_MODEL, "none")
    plans = caption_plans(world_v3, seed=0, index=0, batch_size=len(world_v3.CONCEPTS))
    tokens = bundle.tokenizer([plan.caption for plan, _ in plans])  # raises on an unknown word or a long caption
    assert tokens.shape[1] == bundle.model.context_length
    assert {plan.objects[0].class_name for plan, _ in plans} == set(world_v3.CONCEPTS)


def test_census_of_the_stream_meets_the_breadth_thresholds():
    census = breadth.caption_census(world_v3, seed=0, batches=60, batch_size=128)
    assert census["content_words_unused"] == []  # every content word is grounded in some image
    benchmark_words = {w for c in world_v3.CLASS_NAMES for w in c.split()}
    assert census["content_words_used"] >= breadth.VOCABULARY_RATIO_MIN * len(benchmark_words)
    assert census["mass_share"] <= breadth.MASS_SHARE_MAX
    # Surfaces are drawn uniformly over the concepts, so the share is near the benchmark's fraction of them.
    assert census["mass_share"] == pytest.approx(len(world_v3.CLASS_NAMES) / len(world_v3.CONCEPTS), abs=0.015)


def test_census_counts_surface_mentions_in_the_text():
    captions = iter(["a red striped circle left of a teal wavy thing", "a red circle", "two pink dotted stars",
                     "a blue dotted and a red striped"])
    fake = types.SimpleNamespace(
        COLOURS=world_v3.COLOURS, CONCEPTS=world_v3.CONCEPTS, CLASS_NAMES=world_v3.CLASS_NAMES,
        CONTENT_WORDS=world_v3.CONTENT_WORDS, sample_rng=world_v3.sample_rng,
        plan_example=lambda rng, concept: types.SimpleNamespace(caption=next(captions)))
    census = breadth.caption_census(fake, batches=1, batch_size=4)
    assert census["surface_mentions"] == 5  # "red circle" names no surface
    assert census["benchmark_mentions"] == 3  # red striped twice, blue dotted
    assert census["captions_naming_benchmark"] == 0.5


def test_void_band_is_about_four_pixels_wide_across_a_boundary():
    label = np.zeros((20, 20), dtype=np.int64)
    label[:, 10:] = 1
    row = world_v3.void_band(label)[5]
    assert row.tolist() == [False] * 8 + [True] * 4 + [False] * 8  # 2 px each side of a straight edge
    diagonal = world_v3.void_band(np.triu(np.ones((20, 20), dtype=np.int64)))[10]
    assert diagonal.tolist() == [False] * 8 + [True] * 4 + [False] * 8  # about 1.4 px each side, measured across
    assert not world_v3.void_band(np.zeros((8, 8), dtype=np.int64)).any()


def test_v3_scenes_separate_objects_by_void_and_hold_only_benchmark_classes():
    spec = world_spec(load_dataset_info("world_v3"))
    for index in range(20):
        img, label, objects = spec.render_scene(world_v3.sample_rng(0, 1, index))
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8
        assert {o.class_name for o in objects} <= set(world_v3.CLASS_NAMES)
        classes = set(np.unique(label).tolist()) - {255}
        assert classes <= {world_v3.CLASS_NAMES.index(o.class_name) for o in objects}
        # No labelled pixel touches a pixel of another class: a void band lies between them.
        for a, b in ((label[:, 1:], label[:, :-1]), (label[1:], label[:-1]), (label[1:, 1:], label[:-1, :-1])):
            assert not ((a != b) & (a != 255) & (b != 255)).any()


@pytest.mark.parametrize("shape", world_v3.SHAPES)
def test_v3_shapes_differ_from_each_other(shape):
    v, u = np.mgrid[-1:1:64j, -1:1:64j]
    mask = world_v3.shape_mask(shape, u, v)
    assert 0.15 < mask.mean() < 0.9
    for other in world_v3.SHAPES:
        if other != shape:
            assert (mask != world_v3.shape_mask(other, u, v)).mean() > 0.05


def test_patterns_differ_in_what_a_patch_shows():
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    tones = {p: world_v3.pattern_mask(p, x, y, world_v3.sample_rng(0, 9, 0)).mean()
             for p in world_v3.ALL_PATTERNS}
    assert tones["solid"] == 0
    assert all(0.05 < share < 0.7 for p, share in tones.items() if p != "solid"), tones


def test_g6_on_a_random_tiny_clip(monkeypatch):
    bundle = load_clip(world_v3.CLIP_MODEL, "none")
    out = breadth.measure_breadth(bundle, per_concept=1, census_batches=8)
    assert out["images"] == len(world_v3.CONCEPTS)
    assert out["concepts"] == len(world_v3.CONCEPTS) and out["benchmark_classes"] == 20
    assert out["gates"]["vocabulary"] and out["gates"]["concepts"] and out["gates"]["mass_share"]
    assert out["concept_top1"] < breadth.CONCEPT_TOP1_MIN and not out["passed"]  # random weights know nothing
    assert 0 <= out["unseen_top1"] <= 1 and 0 <= out["benchmark_top1"] <= 1


def test_g6_scores_a_model_that_names_every_concept_as_perfect(monkeypatch):
    """A CLIP whose image embedding is its concept's text embedding: top-1 1.0 on every measure."""
    bundle = load_clip(world_v3.CLIP_MODEL, "none")
    text = torch.nn.functional.normalize(torch.randn(len(world_v3.CONCEPTS), 128), dim=-1)
    monkeypatch.setattr(breadth, "encode_class_names", lambda b, names, templates: text)
    labels = np.repeat(np.arange(len(world_v3.CONCEPTS)), 2)
    monkeypatch.setattr(breadth, "zero_shot_images",
                        lambda w, seed, n, size, names: (np.zeros((len(labels), 8, 8, 3), np.uint8), labels))
    monkeypatch.setattr(breadth, "to_model_input", lambda images, mean, std: torch.as_tensor(images))
    order = iter(range(len(labels)))
    monkeypatch.setattr(bundle.model, "encode_image",
                        lambda x: text[torch.tensor([labels[next(order)] for _ in range(len(x))])])
    out = breadth.concept_zero_shot(bundle, world_v3, per_concept=2)
    assert out == {"concept_top1": 1.0, "benchmark_full_top1": 1.0, "benchmark_top1": 1.0, "unseen_top1": 1.0,
                   "images": len(labels)}


def test_dense_proxy_runs_on_a_random_clip(tmp_path):
    from zegbench.lab.dense_proxy import dense_proxy

    torch.manual_seed(0)
    path = tmp_path / "random.pt"
    torch.save(shippable_state(load_clip(world_v3.CLIP_MODEL, "none").model), path)
    out = dense_proxy("world_v3", str(path), scenes=4, per_class=2, batch_size=2)
    assert out["pixels"] > 0 and 0 <= out["pixel_top1"] <= 1 and 0 <= out["image_top1"] <= 1
    assert WorldTokenizer(vocabulary_for(world_v3))(["a photo of a red dotted"]).shape[0] == 1


# The first six v3 scenes (generator seed 0, train stream) with each object's class drawn on its own, as
# world_v3 drew them before amendment 1: a world without classes_per_scene is drawn exactly as before.
V3_INDEPENDENT_CLASSES_DIGEST = "9c007470e3e0"


def test_without_classes_per_scene_v3_scenes_are_drawn_as_before():
    digest = hashlib.sha1()
    for index in range(6):
        img, label, _ = world_v3.render_scene(96, world_v3.sample_rng(0, 0, index), (2, 3), (0.28, 0.42))
        digest.update(img.tobytes())
        digest.update(label.tobytes())
    assert digest.hexdigest()[:12] == V3_INDEPENDENT_CLASSES_DIGEST


def test_classes_per_scene_follow_vocs_shares_and_repeat_a_class_over_instances():
    spec = world_spec(load_dataset_info("world_v3"))
    assert spec.classes_per_scene == (0.64, 0.26, 0.10)
    distinct = []
    for index in range(400):
        _, label, objects = spec.render_scene(world_v3.sample_rng(0, 0, index))
        names = [o.class_name for o in objects]
        distinct.append(len(set(names)))
        assert set(np.unique(label).tolist()) - {255} <= {world_v3.CLASS_NAMES.index(n) for n in names}
    shares = np.bincount(distinct, minlength=4)[1:] / len(distinct)
    # 2 or 3 objects, evenly: three classes need three objects, so 0.10 x 1/2 of the scenes hold three and
    # the other 0.05 two (binomial standard error at 400 scenes: 0.024 at most)
    assert np.abs(shares - [0.64, 0.31, 0.05]).max() < 0.07
    assert 1.3 < np.mean(distinct) < 1.52  # VOC 2012 segmentation: 1.48


def test_scene_classes_are_distinct_as_drawn_and_capped_by_the_objects():
    rng = np.random.default_rng(0)
    assert world_v3.scene_classes(rng, 0, (1.0,)) == []
    for _ in range(50):
        assert len(set(world_v3.scene_classes(rng, 4, (1.0,)))) == 1  # one class, worn by every object
        assert len(set(world_v3.scene_classes(rng, 2, (0.0, 0.0, 1.0)))) == 2  # three asked, two objects
        assert len(set(world_v3.scene_classes(rng, 3, (0.0, 0.0, 1.0)))) == 3
