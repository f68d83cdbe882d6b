"""zegbench's MaskCLIP against the official MaskCLIP code's own outputs (issue 31, item 2).

The fixture (tests/data/official_maskclip_small, PROVENANCE.md beside it) is the official model's
state dict, inputs and outputs at a small configuration, written by running the official code
(tools/official_equivalence/maskclip_fixture.py): mmseg's ViT with ``return_qkv`` and
``MaskClipHead``, whole-image inference (the VOC config's ``test_cfg``). It is loaded through
``zegbench.methods.maskclip_checkpoint``; the head's class embeddings replace zegbench's text tower.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from zegbench.errors import ZegbenchError
from zegbench.methods.maskclip import MaskCLIP
from zegbench.methods.maskclip_checkpoint import convert_maskclip_state_dict, load_official_maskclip

FIXTURE = Path(__file__).parent / "data" / "official_maskclip_small"
ROOT = Path(__file__).parents[1]
CONFIG = json.loads((FIXTURE / "config.json").read_text())
TOLERANCE = 1e-5  # fp32 rounding


def _compare_module():
    spec = importlib.util.spec_from_file_location("official_maskclip_compare",
                                                  ROOT / "tools/official_equivalence/maskclip_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_tool = _compare_module()
QUANTITIES = compare_tool.QUANTITIES


def small_maskclip(**keys) -> MaskCLIP:
    return compare_tool.build(FIXTURE, **keys)[0]


@pytest.fixture(scope="module")
def ref():
    return torch.load(FIXTURE / "outputs.pt", map_location="cpu", weights_only=True)


def zegbench_outputs(method: MaskCLIP, text: torch.Tensor, images: torch.Tensor) -> dict:
    return compare_tool.zegbench_outputs(method, text, CONFIG["classes"], images)


@pytest.fixture(scope="module")
def loaded(ref):
    # logit_scale 1: the official head's logits are the bare cosines (its softmax has no temperature).
    method, text, _ = compare_tool.build(FIXTURE)  # official weights, the head's class embeddings
    return method, text


def test_the_class_embeddings_come_from_the_official_head(ref, loaded):
    _, text = loaded
    assert torch.equal(text, ref["text_embeddings"])
    assert torch.allclose(text.norm(dim=-1), torch.ones(len(CONFIG["classes"])))


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_every_quantity_equals_the_official_code(ref, loaded, quantity):
    method, text = loaded
    ours = zegbench_outputs(method, text, ref["images"])
    assert ours[quantity].shape == ref[quantity].shape
    diff = float((ours[quantity] - ref[quantity]).abs().max())
    assert diff <= TOLERANCE, f"{quantity}: max abs diff {diff:.3g}"


def test_the_labels_equal_the_official_and_the_fixture_is_not_degenerate(ref, loaded):
    method, text = loaded
    ours = zegbench_outputs(method, text, ref["images"])
    assert torch.equal(ours["labels"], ref["labels"])
    assert ref["labels"].unique().numel() == len(CONFIG["classes"])  # every class wins some pixels
    assert ref["feature_logits"].abs().max() > 0.3  # cosines far from 0: a swapped weight would show
    assert CONFIG["test_cfg"] == {"mode": "whole"}  # the VOC config's protocol, which predict follows


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_corner_padding_equals_the_official_code_on_sides_not_multiples_of_the_patch(ref, quantity):
    """56 x 88 pixels: the official PatchEmbed pads to 64 x 96 (4 x 6 patches) and resizes back to 56 x 88."""
    method, text, _ = compare_tool.build(FIXTURE, patch_padding="corner")
    ours = zegbench_outputs(method, text, ref["odd_images"])
    assert ours[quantity].shape == ref["odd_" + quantity].shape
    diff = float((ours[quantity] - ref["odd_" + quantity]).abs().max())
    assert diff <= TOLERANCE, f"odd_{quantity}: max abs diff {diff:.3g}"
    assert torch.equal(ours["labels"], ref["odd_labels"])


def test_floor_padding_the_recorded_default_drops_the_remainder(ref, loaded):
    """The default (what recorded runs computed) sees a 3 x 5 grid of the 56 x 88 image: other labels."""
    method, text = loaded
    assert method.patch_padding == "floor"
    ours = zegbench_outputs(method, text, ref["odd_images"])
    assert ours["features"].shape[-2:] == (3, 5) and ref["odd_features"].shape[-2:] == (4, 6)
    assert ours["logits"].shape == ref["odd_logits"].shape
    assert (ours["labels"] != ref["odd_labels"]).float().mean() > 0.1


def test_zegbench_logit_scale_tempers_the_scores_but_keeps_the_labels(ref, loaded):
    """zegbench's default softmaxes 100 x cosine, the official code the cosine itself: other scores, same argmax."""
    _, text = loaded
    method = small_maskclip(logit_scale=100.0)
    ours = zegbench_outputs(method, text, ref["images"])
    assert method.logit_scale == 100.0
    assert (ours["logits"] - 100 * ref["logits"]).abs().max() <= 100 * TOLERANCE
    assert torch.equal(ours["labels"], ref["labels"])
    assert (ours["scores"] - ref["scores"]).abs().max() > 0.1


def _broken(ref_state: dict, change) -> dict:
    state = dict(ref_state)
    change(state)
    return state


@pytest.fixture(scope="module")
def official_state():
    return torch.load(FIXTURE / "official.pth", map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("case, change, expected", [
    ("missing", lambda s: s.pop("backbone.layers.1.ln2.bias"),
     ["lacks 1 weight", "encoder.visual.transformer.resblocks.1.ln_2.bias"]),
    ("unmapped", lambda s: s.__setitem__("decode_head.conv_seg.weight", torch.zeros(3)),
     ["no place", "decode_head.conv_seg.weight"]),
    ("extra-block", lambda s: s.__setitem__("backbone.layers.7.ln1.weight", torch.zeros(64)),
     ["no place", "backbone.layers.7.ln1.weight"]),
    ("misshaped", lambda s: s.__setitem__("decode_head.proj.weight", torch.zeros(16, 64, 1, 1)),
     ["decode_head.proj.weight is [64, 16], the model's [64, 32]"]),
    ("other-table", lambda s: s.__setitem__("backbone.pos_embed", torch.zeros(1, 197, 64)),
     ["backbone.pos_embed is [197, 64], the model's [10, 64]"]),
])
def test_a_bad_official_state_dict_is_one_error_naming_the_keys(official_state, case, change, expected):
    state = _broken(official_state, change)
    with pytest.raises(ZegbenchError) as err:
        load_official_maskclip(small_maskclip(), {"state_dict": state})
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_unreadable_and_absent_files_are_one_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ZegbenchError, match="unreadable as a checkpoint"):
        load_official_maskclip(small_maskclip(), bad)
    with pytest.raises(ZegbenchError, match="does not exist"):
        load_official_maskclip(small_maskclip(), tmp_path / "nowhere.pth")


def test_every_official_key_is_used_once(official_state):
    method = small_maskclip()
    weights, text = convert_maskclip_state_dict(official_state, method.state_dict())
    assert set(weights) == set(method.state_dict())
    assert len(weights) + 1 == len(official_state)  # + the class embeddings
    assert text is not None and text.shape == (len(CONFIG["classes"]), CONFIG["open_clip_config"]["embed_dim"])
