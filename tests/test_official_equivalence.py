"""zegbench's ZegCLIP against the official code's own outputs, and official checkpoints in and out.

The fixture (tests/data/official_zegclip_small, PROVENANCE.md beside it) is the official
model's state dict, inputs and outputs at a small configuration, written by running the
official code (tools/official_equivalence/make_fixture.py). It is loaded here through the
checkpoint import users get, so a change to the key map, the encoder, the relation descriptor,
the decoder, the calibration, the losses or the pseudo-labels fails this file.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zegbench
from zegbench.cli import main as zegbench_main
from zegbench.errors import ZegbenchError
from zegbench.methods.official_checkpoint import (
    IGNORED,
    convert_state_dict,
    is_ignored,
    load_official_checkpoint,
    official_state_dict,
    read_checkpoint,
)

from real_layouts import write_voc

FIXTURE = Path(__file__).parent / "data" / "official_zegclip_small"
ROOT = Path(__file__).parents[1]
TOLERANCE = 1e-5  # fp32 rounding: the official and zegbench orders of operations differ


def _compare_module():
    spec = importlib.util.spec_from_file_location("official_compare", ROOT / "tools/official_equivalence/compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_tool = _compare_module()
CONFIG = json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def outputs():
    return compare_tool.zegbench_outputs(FIXTURE)


@pytest.fixture(scope="module")
def official():
    return read_checkpoint(FIXTURE / "official.pth")


def small_zegclip(**keys):
    from zegbench.methods.zegclip import ZegCLIP

    compare_tool.register_clip(CONFIG)
    return ZegCLIP(clip=CONFIG["clip"], clip_weights="none", **CONFIG["method"], **keys)


@pytest.mark.parametrize("quantity", [q for q in compare_tool.QUANTITIES if q != "grads"])
def test_every_quantity_equals_the_official_code(outputs, quantity):
    ours, ref = outputs
    assert ours[quantity].shape == ref[quantity].shape
    diff = float((ours[quantity].float() - ref[quantity].float()).abs().max())
    assert diff <= TOLERANCE, f"{quantity}: max abs diff {diff:.3g}"


def test_a_training_step_gives_the_official_gradients(outputs):
    ours, ref = outputs
    # The same tensors get a gradient: prompts, prompt projection and norm, relation descriptor's
    # projection, decoder layers 0-1 whole and the last layer's q and k (nothing else reaches the loss).
    assert ours["grads"].keys() == ref["grads"].keys()
    assert len(ref["grads"]) == 43  # the official 44, its two prompt tensors as one
    for name, grad in ours["grads"].items():
        torch.testing.assert_close(grad, ref["grads"][name], rtol=TOLERANCE, atol=TOLERANCE, msg=name)
    assert float(ref["loss_focal"]) > 1 and 0 < float(ref["loss_dice"]) < 1  # a real loss, not a degenerate one


def test_transductive_pseudo_labels_equal_the_official(outputs):
    ours, ref = outputs
    labels = ref["labels"]
    unseen = torch.isin(labels, torch.tensor(CONFIG["unseen"]))
    assert unseen.any() and (ref["pseudo_labels"][unseen] != labels[unseen]).any()  # the fixture relabels pixels
    assert torch.equal(ours["pseudo_labels"], ref["pseudo_labels"])


def test_the_fixture_exercises_calibration_and_the_sliding_window(outputs):
    ours, ref = outputs
    seen = torch.tensor([i in CONFIG["seen"] for i in range(len(CONFIG["classes"]))])
    winners = ref["scores"].argmax(dim=1).unique()
    assert seen[winners].any() and (~seen[winners]).any()  # seen and unseen classes both win pixels
    assert ref["slide_images"].shape[-1] > ref["slide_images"].shape[-2]  # two overlapping windows
    assert ref["text_embeddings"].dtype == torch.float16  # as the official .npy files


def test_import_then_export_gives_back_the_official_state_dict(official):
    method = small_zegclip()
    load_official_checkpoint(method, FIXTURE / "official.pth", CONFIG["classes"])
    unseen = [CONFIG["classes"][i] for i in CONFIG["unseen"]]
    exported = official_state_dict(method, CONFIG["classes"], unseen)
    theirs = official["state_dict"]
    for key, value in theirs.items():
        if key.startswith("text_encoder.") or ".self_attn." in key or ".norm1." in key:
            continue  # not zegbench's: the exported file fills them (checked below)
        assert torch.equal(exported["state_dict"][key], value), key
    assert {k for k in theirs if not k.startswith("text_encoder.")} == \
        {k for k in exported["state_dict"] if not k.startswith("text_encoder.")}
    for key in exported["state_dict"]:
        if key in theirs and not key.startswith("text_encoder."):
            assert exported["state_dict"][key].shape == theirs[key].shape, key
    # ... and the export loads back into a fresh model, every weight equal.
    again = small_zegclip()
    load_official_checkpoint(again, exported, CONFIG["classes"])
    theirs_again = again.state_dict()
    for name, value in method.state_dict().items():
        assert torch.equal(value, theirs_again[name]), name


def test_ignored_keys_are_exactly_the_unused_ones(official):
    keys = official["state_dict"]
    ignored = {k for k in keys if is_ignored(k)}
    text = {k for k in keys if k.startswith("text_encoder.")}
    decoder = ignored - text - {"decode_head.loss_decode.criterion.empty_weight"}
    assert text <= ignored and "decode_head.loss_decode.criterion.empty_weight" in ignored
    assert len(decoder) == 3 * 6 and all(".self_attn." in k or ".norm1." in k for k in decoder)  # per layer: 6
    assert len(IGNORED) == 3
    assert not any(is_ignored(k) for k in ("backbone.proj", "decode_head.decoder_1.layers.0.norm2.weight",
                                           "decode_head.q_proj.weight"))


def _broken(official, tmp_path, name, change):
    ckpt = {"meta": dict(official["meta"]), "state_dict": dict(official["state_dict"])}
    change(ckpt)
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("case, change, expected", [
    ("missing", lambda c: c["state_dict"].pop("decode_head.q_proj.weight"),
     ["lacks 1 weight", "decode_head.q_proj.weight"]),
    ("unmapped", lambda c: c["state_dict"].__setitem__("decode_head.conv_seg.weight", torch.zeros(3)),
     ["no place", "decode_head.conv_seg.weight"]),
    ("misshaped", lambda c: c["state_dict"].__setitem__("backbone.conv1.weight", torch.zeros(64, 3, 14, 14)),
     ["backbone.conv1.weight is [64, 3, 14, 14], the model's [64, 3, 16, 16]"]),
    ("other-dataset", lambda c: c["meta"].__setitem__("CLASSES", tuple(f"c{i}" for i in range(171))),
     ["trained on 171 classes", "the dataset has 6"]),
    ("transductive", lambda c: c["meta"].__setitem__("config", "model = dict(self_training=True)"),
     ["trained transductively", "--method zegclip_transductive"]),
])
def test_a_bad_official_checkpoint_is_one_error_naming_file_and_keys(official, tmp_path, case, change, expected):
    path = _broken(official, tmp_path, f"{case}.pth", change)
    with pytest.raises(ZegbenchError) as err:
        load_official_checkpoint(small_zegclip(), path, CONFIG["classes"])
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for part in expected:
        assert part in message


def test_truncated_and_foreign_files_are_one_error(tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURE / "official.pth").read_bytes()[:100_000])
    with pytest.raises(ZegbenchError, match="unreadable as a checkpoint .*truncated download"):
        read_checkpoint(truncated)
    foreign = tmp_path / "zegbench.pt"
    torch.save({"method": {}, "config": {}}, foreign)
    with pytest.raises(ZegbenchError, match="not an official ZegCLIP checkpoint"):
        read_checkpoint(foreign)
    with pytest.raises(ZegbenchError, match="does not exist"):
        read_checkpoint(tmp_path / "nowhere.pth")


def test_gradients_rename_without_a_model():
    grads = {"backbone.prompt_embeddings": torch.ones(1, 2, 3), "backbone.deep_prompt_embeddings": torch.zeros(2, 2, 3),
             "decode_head.decoder_1.layers.1.multihead_attn.proj.bias": torch.ones(4)}
    out = convert_state_dict(grads, None, "grads")
    assert out["encoder.prompts"].shape == (3, 2, 3) and out["encoder.prompts"][0].eq(1).all()
    assert set(out) == {"encoder.prompts", "decoder.layers.1.attn.out.bias"}


def _small_voc(tmp_path, monkeypatch):
    """A VOC layout and a dataset config of the fixture's six classes (labels 1..6 after reduce_zero_label)."""
    base = write_voc(tmp_path / "data", train=1, val=2, size=(48, 72))
    for path in (base / "SegmentationClass").glob("2009_*.png"):
        label = np.random.default_rng(len(path.name)).choice([0, 1, 2, 3, 4, 5, 6, 255], size=(48, 72))
        Image.fromarray(label.astype(np.uint8)).save(path)
    configs = tmp_path / "configs" / "datasets"
    configs.mkdir(parents=True)
    (configs / "voc_small.yaml").write_text(
        f"base: voc12\nname: voc_small\nexpected: {{train: 1, val: 2}}\nclasses: {CONFIG['classes']}\n"
        f"unseen: {[CONFIG['classes'][i] for i in CONFIG['unseen']]}\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp_path / "configs"))
    compare_tool.register_clip(CONFIG)
    keys = {"clip": CONFIG["clip"], "clip_weights": "none", **CONFIG["method"], "inference": "whole"}
    return tmp_path / "data", [f"{k}={v}" for k, v in keys.items()]


def test_evaluate_command_scores_an_official_checkpoint(tmp_path, monkeypatch, capsys):
    data, sets = _small_voc(tmp_path, monkeypatch)
    argv = ["evaluate", "--dataset", "voc_small", "--data-root", str(data), "--checkpoint",
            str(FIXTURE / "official.pth"), "--method", "zegclip", "--json"]
    for s in sets:
        argv += ["--set", s]
    assert zegbench_main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["per_class"]) == set(CONFIG["classes"]) and 0 <= result["pacc"] <= 100
    # A bad checkpoint: one error line, exit 2, nothing printed on stdout.
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    argv[argv.index(str(FIXTURE / "official.pth"))] = str(bad)
    assert zegbench_main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and str(bad) in captured.err


def test_api_and_segment_load_an_official_checkpoint(tmp_path, monkeypatch, capsys):
    _, sets = _small_voc(tmp_path, monkeypatch)
    overrides = dict(s.split("=", 1) for s in sets)
    overrides = {k: (int(v) if v.isdigit() else v) for k, v in overrides.items()}
    with pytest.raises(ZegbenchError, match="name the dataset it was trained on"):
        zegbench.load(FIXTURE / "official.pth")
    model = zegbench.load(FIXTURE / "official.pth", dataset="voc_small", overrides=overrides)
    image = np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8)
    result = model.segment(image, ["cat", "sheep", "a red bus"])
    assert result.labels.shape == (50, 90) and model.trained_on >= {"cat"} and "sheep" not in model.trained_on
    path = tmp_path / "image.png"
    Image.fromarray(image).save(path)
    argv = ["segment", str(path), "--classes", "cat,sheep", "--checkpoint", str(FIXTURE / "official.pth"),
            "--dataset", "voc_small", "--out", str(tmp_path / "out"), "--json"]
    for s in sets:
        argv += ["--set", s]
    assert zegbench_main(argv) == 0
    assert (tmp_path / "out" / "image_labels.png").is_file()
