"""OpenAI's CLIP weights run with QuickGELU: the architecture built for them, what describe and the run hash say."""
from __future__ import annotations

import copy
import json

import open_clip
import pytest
from open_clip.transformer import QuickGELU

from zegbench.cli import main as zegbench_main
from zegbench.clip import loading
from zegbench.clip.loading import IN_HOUSE, activation_of, clip_activation, load_clip
from zegbench.clip.text_embeddings import class_embeddings
from zegbench.engine.identity import config_hash
from zegbench.engine.resolve import resolve


@pytest.fixture
def offline_hub(monkeypatch):
    """open_clip builds exactly what load_clip asks for, with random weights instead of the tag's download."""
    build = open_clip.create_model_and_transforms
    monkeypatch.setattr(loading.open_clip, "create_model_and_transforms",
                        lambda name, pretrained=None, **kwargs: build(name, pretrained=None, **kwargs))


def _quick_gelus(model) -> int:
    return sum(isinstance(m, QuickGELU) for m in model.modules())


def test_openai_weights_get_quick_gelu_even_under_the_plain_name(offline_hub):
    # open_clip builds ViT-B-16 with nn.GELU for the `openai` tag and only warns.
    bundle = load_clip("ViT-B-16", "openai")
    assert _quick_gelus(bundle.model.visual) == 12 and _quick_gelus(bundle.model.transformer) == 12
    assert clip_activation("ViT-B-16", "openai") == "QuickGELU"
    assert clip_activation("ViT-B-16", "laion2b_s34b_b88k") == "GELU"  # trained with GELU


def test_the_recipes_name_the_quick_gelu_architecture_and_the_world_keeps_its_own():
    assert activation_of(load_clip("ViT-B-16-quickgelu", "none").model) == "QuickGELU"  # random weights too
    in_house = load_clip(IN_HOUSE).model
    assert activation_of(in_house) == "GELU" and _quick_gelus(in_house) == 0


@pytest.mark.parametrize("dataset, expected", [("voc12", "QuickGELU"), ("world", "GELU")])
def test_describe_reports_the_activation_the_recipe_builds(capsys, dataset, expected):
    assert zegbench_main(["methods", "describe", "zegclip", "--dataset", dataset, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["clip_activation"] == expected and out["dataset"] == dataset


def test_the_activation_is_part_of_real_data_run_identities_only():
    recipe = resolve("zegclip", "voc12", 0)
    assert recipe["method_config"]["clip"] == "ViT-B-16-quickgelu"
    assert recipe["inputs"]["clip_activation"] == "QuickGELU"
    # The plain name with OpenAI weights used to compute with GELU under this very config: the
    # recorded activation keeps such old folders from being reused.
    plain = resolve("zegclip", "voc12", 0, {"clip": "ViT-B-16"})
    assert plain["inputs"]["clip_activation"] == "QuickGELU"
    assert "clip_activation" not in resolve("zegclip", "world_smoke", 0)["inputs"]
    assert config_hash(resolve("zegclip", "voc12", 0, {"clip_weights": "laion2b_s34b_b88k", "clip": "ViT-B-16"})) \
        != config_hash(plain)


def test_text_embeddings_are_cached_per_activation(tmp_path):
    gelu = load_clip(IN_HOUSE)
    quick = copy.copy(gelu)
    quick.model = copy.deepcopy(gelu.model)
    for block in quick.model.transformer.resblocks:
        block.mlp.gelu = QuickGELU()  # the same weights, the other activation
    names = ["red dotted", "blue striped"]
    first = class_embeddings(gelu, names, cache_dir=tmp_path)
    second = class_embeddings(quick, names, cache_dir=tmp_path)
    assert not (first - second).abs().max() < 1e-4
