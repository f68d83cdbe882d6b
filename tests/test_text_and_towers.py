"""MaskCLIP's own image tower and fp16 class embeddings (issue 31 C and G, docs/fidelity.md items 15 and 16):
the official values on the real recipes, the old ones on the world, whose run hashes do not move."""
from __future__ import annotations

import inspect
import json

import pytest
import torch
from open_clip.transformer import QuickGELU
from torch import nn

from zegbench.cli import main
from zegbench.engine.resolve import resolve
from zegbench.errors import ZegbenchError
from zegbench.methods import create_method, method_class
from zegbench.methods.maskclip import as_mmseg_tower

# Keys added after runs were recorded: their class defaults are what those runs computed, and a resolved
# config holds them only off that default. Changing one of these defaults would silently change what
# old configs (and the world's recorded hashes) mean.
PINNED = {"zegclip": {"text_precision": "fp32", "prompt_masks": "shared", "tta": "none", "tta_ratios": None},
          "maskclip": {"image_tower": "clip", "text_precision": "fp32", "patch_padding": "floor"}}


@pytest.mark.parametrize("cls", sorted(PINNED))
def test_keys_added_later_keep_their_defaults_and_are_recorded_only_when_set(cls):
    klass = method_class(cls)
    assert set(klass.recorded_when_set) == set(PINNED[cls])
    params = inspect.signature(klass.__init__).parameters
    assert {k: params[k].default for k in PINNED[cls]} == PINNED[cls]
    world = resolve(cls, "world", 0)["method_config"]
    assert not set(PINNED[cls]) & set(world)  # the world's configs, and so its hashes, are as before
    assert resolve(cls, "world", 0, {"text_precision": "fp16"})["method_config"]["text_precision"] == "fp16"


@pytest.mark.parametrize("dataset", ["voc12", "coco_stuff164k", "pascal_context59", "pascal_context60"])
def test_the_real_recipes_set_the_official_values(dataset):
    assert resolve("zegclip", dataset, 0)["method_config"]["text_precision"] == "fp16"
    assert resolve("zegclip_transductive", dataset, 0)["method_config"]["text_precision"] == "fp16"
    assert resolve("zegclip", dataset, 0)["method_config"]["prompt_masks"] == "per_image"
    maskclip = resolve("maskclip", dataset, 0)["method_config"]
    assert (maskclip["image_tower"], maskclip["text_precision"]) == ("mmseg", "fp16")
    assert maskclip["patch_padding"] == "corner"
    assert "text_precision" not in resolve("two_stage", dataset, 0)["method_config"]  # not a two-stage key


@pytest.mark.parametrize("name", ["zegclip", "maskclip"])
def test_fp16_text_precision_gives_the_fp32_embeddings_rounded_through_fp16(name):
    tiny = method_class(name).tiny_config
    names = ["red striped", "blue dotted", "green checked"]
    torch.manual_seed(0)  # random weights: the same ones twice
    exact = create_method(name, **tiny).text_embeddings(names)
    torch.manual_seed(0)
    rounded = create_method(name, **tiny, text_precision="fp16").text_embeddings(names)
    assert rounded.dtype == torch.float32
    assert torch.equal(rounded, exact.half().float())
    assert not torch.equal(rounded, exact)
    assert (rounded - exact).abs().max() <= exact.abs().max() * 2 ** -11  # fp16's half ulp at most
    with pytest.raises(ZegbenchError, match="text_precision must be one of"):
        create_method(name, **tiny, text_precision="bf16")


def test_the_mmseg_tower_has_exact_gelu_and_layernorm_eps_1e_6_and_keeps_the_weights():
    block = nn.Sequential(nn.LayerNorm(8), nn.Sequential(nn.Linear(8, 8), QuickGELU()))
    weights = {k: v.clone() for k, v in block.state_dict().items()}
    as_mmseg_tower(block)
    assert isinstance(block[1][1], nn.GELU) and block[1][1].approximate == "none"
    assert block[0].eps == 1e-6
    assert all(torch.equal(v, block.state_dict()[k]) for k, v in weights.items())
    tiny = method_class("maskclip").tiny_config
    torch.manual_seed(0)
    as_clip = create_method("maskclip", **tiny).eval()
    torch.manual_seed(0)
    as_mmseg = create_method("maskclip", **tiny, image_tower="mmseg").eval()
    visual = as_mmseg.encoder.visual
    assert {m.eps for m in visual.modules() if isinstance(m, nn.LayerNorm)} == {1e-6}
    x = torch.randn(1, 3, 32, 32)
    features = as_mmseg.dense_features(x)[0]
    assert features.shape == as_clip.dense_features(x)[0].shape
    assert not torch.equal(features, as_clip.dense_features(x)[0])  # the eps changes the features
    with pytest.raises(ZegbenchError, match="image_tower must be one of"):
        create_method("maskclip", **tiny, image_tower="timm")


@pytest.mark.parametrize("method, dataset, image, text", [
    ("maskclip", "voc12", {"activation": "GELU", "layernorm_eps": 1e-6},
     {"activation": "QuickGELU", "layernorm_eps": 1e-5}),
    ("zegclip", "voc12", {"activation": "QuickGELU", "layernorm_eps": 1e-5},
     {"activation": "QuickGELU", "layernorm_eps": 1e-5}),
    ("maskclip", "world", {"activation": "GELU", "layernorm_eps": 1e-5}, {"activation": "GELU", "layernorm_eps": 1e-5}),
])
def test_describe_reports_each_tower_as_the_recipe_builds_it(capsys, method, dataset, image, text):
    assert main(["methods", "describe", method, "--dataset", dataset, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["clip_towers"] == {"image": image, "text": text}
    assert out["clip_activation"] == image["activation"]
