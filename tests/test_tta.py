"""Test-time augmentation (methods/tta.py): which views, that each is mapped back, and that a finished
run is evaluated with it without training again."""
from __future__ import annotations

import pytest
import torch

from zegbench.engine.identity import config_hash, training_hash
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.errors import ZegbenchError
from zegbench.methods import create_method
from zegbench.methods.tta import MS_RATIOS, augmented_scores, views
from zegbench.store import RunStore

TINY = {"steps": 2, "batch_size": 2, "warmup": 1, "log_every": 1}


def test_none_is_one_call_on_the_image_itself():
    images = torch.rand(2, 3, 16, 20)
    calls = []
    out = augmented_scores(lambda v: calls.append(v) or v[:, :1] * 3, images, "none")
    assert len(calls) == 1 and calls[0] is images and torch.equal(out, images[:, :1] * 3)


def test_flipped_views_are_flipped_back_before_averaging():
    images = torch.rand(1, 3, 8, 8)
    # A score that is its input's first channel: each view flipped back gives the same map, so the average
    # equals it; a view left mirrored would average the map with its mirror image.
    out = augmented_scores(lambda v: v[:, :1], images, "flip")
    assert torch.allclose(out, images[:, :1])
    assert not torch.allclose((images[:, :1] + images[:, :1].flip(-1)) / 2, images[:, :1])


def test_ms_flip_scores_every_mmseg_ratio_with_and_without_flip_at_its_rounded_size():
    sizes = []

    def score(view):
        sizes.append(tuple(view.shape[-2:]))
        return torch.ones(view.shape[0], 4, *view.shape[-2:]) * view.shape[-1]  # each view: its own width

    out = augmented_scores(score, torch.rand(1, 3, 96, 64), "ms_flip")
    expected = [(round(96 * r), round(64 * r)) for r in MS_RATIOS for _ in (0, 1)]
    assert sizes == expected and len(views("ms_flip")) == 12
    assert out.shape == (1, 4, 96, 64)
    assert torch.allclose(out, torch.full_like(out, sum(w for _, w in expected) / 12))  # the mean over views
    with pytest.raises(ValueError, match="tta must be one of"):
        views("multi")


def test_zegclip_single_scale_is_unchanged_and_tta_averages_its_own_views():
    torch.manual_seed(0)
    model = create_method("zegclip", clip_weights="none", image_size=32).eval()
    images, names, seen = torch.rand(2, 3, 32, 32), ["red striped", "blue checked", "red dotted"], [True, True, False]
    with torch.no_grad():
        plain = model._calibrated(model.scores(model(images, names)[0]), seen)
        assert torch.equal(model.predict(images, names, seen), plain)
        model.tta = "flip"
        mirrored = model._calibrated(model.scores(model(images.flip(-1), names)[0]).flip(-1), seen)
        assert torch.allclose(model.predict(images, names, seen), (plain + mirrored) / 2, atol=1e-6)
    with pytest.raises(ZegbenchError, match="zegclip.yaml .*tta_ratios must be positive"):
        create_method("zegclip", clip_weights="none", image_size=32, tta="ms_flip", tta_ratios=[1.0, 0.0])


def test_tta_is_an_inference_key_recorded_only_when_set(tmp_path):
    base = resolve("zegclip", "world_smoke", 0, TINY)
    tta = resolve("zegclip", "world_smoke", 0, {**TINY, "tta": "ms_flip"})
    assert "tta" not in base["method_config"]  # runs recorded before the key keep their folders
    assert tta["method_config"]["tta"] == "ms_flip"
    assert config_hash(tta) != config_hash(base) and training_hash(tta) == training_hash(base)
    trained = resolve_and_run("zegclip", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="a")
    evaluated = resolve_and_run("zegclip", "world_smoke", 0, {**TINY, "tta": "ms_flip"}, store=RunStore(tmp_path),
                                suite="a")
    assert "trained_by" not in trained and evaluated["trained_by"].startswith("a/")
    assert evaluated["train_seconds"] == trained["train_seconds"]


@pytest.mark.parametrize("override", [{"tta": "multi"}, {"tta": "ms_flip", "tta_ratios": [1.0, -0.5]}])
def test_a_bad_tta_value_is_refused_before_anything_is_written(tmp_path, override):
    with pytest.raises(ZegbenchError, match=r"command-line override: method \(zegclip\) key 'tta"):
        resolve("zegclip", "world_smoke", 0, override)
