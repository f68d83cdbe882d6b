"""Run identity: inputs outside the config change the run hash; inference-only variants share one training."""
from __future__ import annotations

import shutil

import pytest
import torch
import yaml

import zegbench
from zegbench import config_dirs
from zegbench.clip import loading
from zegbench.engine.identity import clip_fingerprint, config_hash, run_folder_for, training_hash
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.store import RunStore

TINY = {"steps": 3, "batch_size": 2, "warmup": 1, "clip_weights": "none"}


@pytest.fixture
def dataset_copies(tmp_path, monkeypatch):
    """The shipped configs copied where a test may edit them (the copy replaces the package's)."""
    shutil.copytree(config_dirs.PACKAGE_CONFIGS, tmp_path / "configs")
    monkeypatch.setattr(config_dirs, "PACKAGE_CONFIGS", tmp_path / "configs")
    return tmp_path / "configs" / "datasets"


def _edit(path, change):
    cfg = yaml.safe_load(path.read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_editing_the_split_or_data_keys_gives_a_new_run_hash(dataset_copies):
    before = config_hash(resolve("zegclip", "voc12", 0))
    _edit(dataset_copies / "voc12.yaml", lambda c: c.update(unseen=["sheep", "sofa", "train", "tvmonitor", "cat"]))
    after_split = config_hash(resolve("zegclip", "voc12", 0))
    _edit(dataset_copies / "voc12.yaml", lambda c: c.update(test_scale=[1024, 512]))
    after_scale = config_hash(resolve("zegclip", "voc12", 0))
    assert len({before, after_split, after_scale}) == 3


def test_keys_that_change_no_number_keep_the_hash(dataset_copies):
    before = resolve("zegclip", "voc12", 0)
    # read by `data verify` only
    _edit(dataset_copies / "voc12.yaml", lambda c: c.update(expected={"train": 1, "val": 1}))
    assert resolve("zegclip", "voc12", 0) == before


def test_world_generator_settings_are_part_of_the_identity(dataset_copies):
    before = resolve("zegclip", "world_smoke", 0)["inputs"]["datasets"]["world_smoke"]
    _edit(dataset_copies / "world_smoke.yaml", lambda c: c["world"].update(seed=c["world"].get("seed", 0) + 1))
    assert resolve("zegclip", "world_smoke", 0)["inputs"]["datasets"]["world_smoke"] != before


def test_the_shipped_clip_checkpoint_is_fingerprinted(tmp_path, monkeypatch):
    assert clip_fingerprint({"clip_weights": "none"}) is None  # random weights: nothing to fingerprint
    assert clip_fingerprint({"clip": "ViT-B-16", "clip_weights": "/w/vitb16.pt"}) is None  # named in the config
    copy = tmp_path / f"{loading.IN_HOUSE}.pt"
    copy.write_bytes(loading.SHIPPED_CHECKPOINT.read_bytes())
    monkeypatch.setattr(loading, "WEIGHTS_DIR", tmp_path)
    shipped = clip_fingerprint({})
    assert len(shipped) == 8 and resolve("zegclip", "world_smoke", 0)["inputs"]["clip_checkpoint"] == shipped
    copy.write_bytes(copy.read_bytes() + b"\0")  # a new version of the in-house CLIP
    assert clip_fingerprint({}) != shipped


def test_training_hash_ignores_inference_keys_only():
    base = resolve("zegclip", "world_smoke", 0)
    assert (training_hash(resolve("zegclip", "world_smoke", 0, {"inference": "slide", "calibration": 0.0}))
            == training_hash(base))
    # relation decides training
    assert training_hash(resolve("zegclip_dpt_nel", "world_smoke", 0)) != training_hash(base)
    assert training_hash(resolve("zegclip", "world_smoke", 0, {"steps": 7})) != training_hash(base)
    assert training_hash(resolve("zegclip", "world_smoke", 1)) != training_hash(base)
    # Cross-dataset evaluations happen after training: the same weights.
    assert training_hash(resolve("zegclip", "world_smoke", 0, eval_on=["world"])) == training_hash(base)
    zsseg, zegformer = resolve("two_stage", "world_smoke", 0), resolve("two_stage_zegformer", "world_smoke", 0)
    assert config_hash(zsseg) != config_hash(zegformer) and training_hash(zsseg) == training_hash(zegformer)


def test_an_inference_only_variant_evaluates_the_finished_checkpoint(tmp_path):
    zsseg = resolve_and_run("two_stage", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="a")
    zegformer = resolve_and_run("two_stage_zegformer", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="b")
    donor = run_folder_for(resolve("two_stage", "world_smoke", 0, TINY), RunStore(tmp_path), "a").path
    reuser = run_folder_for(resolve("two_stage_zegformer", "world_smoke", 0, TINY), RunStore(tmp_path), "b").path
    assert zegformer["trained_by"] == f"a/{donor.name}" and "trained_by" not in zsseg
    assert zegformer["train_seconds"] == zsseg["train_seconds"]  # the training it stands on
    weights = [torch.load(d / "checkpoint.pt", weights_only=True) for d in (donor, reuser)]
    assert weights[0]["method"].keys() == weights[1]["method"].keys()
    assert all(torch.equal(weights[0]["method"][k], weights[1]["method"][k]) for k in weights[0]["method"])
    assert weights[1]["config"]["method"] == "two_stage_zegformer"  # loading the folder gives this variant
    assert zegbench.load(reuser).method.ensemble == "zegformer"
    assert (reuser / "metrics.jsonl").read_text() == (donor / "metrics.jsonl").read_text()
    # Another training key: trained afresh.
    longer = resolve_and_run("two_stage_zegformer", "world_smoke", 0, {**TINY, "steps": 4}, store=RunStore(tmp_path),
                             suite="b")
    assert "trained_by" not in longer


def test_a_run_moved_aside_never_lends_its_weights(tmp_path):
    resolve_and_run("two_stage", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="a")
    donor = run_folder_for(resolve("two_stage", "world_smoke", 0, TINY), RunStore(tmp_path), "a").path
    donor.rename(donor.with_name(donor.name + ".replaced-20261129-000000"))  # what --force does
    result = resolve_and_run("two_stage_zegformer", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="b")
    assert "trained_by" not in result
