"""One run end to end: resolved config, run folder, result schema, reuse."""
from __future__ import annotations

import json

import pytest
import yaml

from zegbench.engine.identity import config_hash
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.errors import ZegbenchError
from zegbench.store import RunStore

TINY = {"steps": 2, "batch_size": 2, "warmup": 1, "clip_weights": "none"}


def test_resolve_merges_method_recipe_and_overrides():
    cfg = resolve("zegclip_baseline_ft", "world_smoke", 3, {"steps": 7, "num_tokens": 4})
    assert cfg["method_config"]["tuning"] == "finetune"  # from the method file
    assert cfg["method_config"]["image_size"] == 96  # from the dataset recipe
    assert cfg["method_config"]["num_tokens"] == 4 and cfg["train"]["steps"] == 7  # overrides
    assert cfg["train"]["seed"] == 3


def test_resolved_config_records_the_class_defaults_so_a_changed_default_changes_the_hash():
    cfg = resolve("zegclip", "world_smoke", 0)
    assert cfg["method_config"]["cls_embedding"] == "twice" and cfg["method_config"]["decoder_init"] == "copies"
    once = resolve("zegclip", "world_smoke", 0, {"cls_embedding": "once"})
    assert config_hash(once) != config_hash(cfg)


def test_per_method_recipe_applies_to_that_method_only():
    # world.yaml gives the fine-tuned baseline a 1x encoder lr; others keep the method default.
    assert resolve("zegclip_baseline_ft", "world_smoke", 0)["method_config"]["encoder_lr_mult"] == 1.0
    assert resolve("zegclip", "world_smoke", 0)["method_config"]["encoder_lr_mult"] == 10.0  # the class default
    overridden = resolve("zegclip_baseline_ft", "world_smoke", 0, {"encoder_lr_mult": 3})
    assert overridden["method_config"]["encoder_lr_mult"] == 3


def test_run_writes_a_complete_folder_and_is_reused(tmp_path):
    first = resolve_and_run("zegclip", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="t")
    folders = [p for p in (tmp_path / "t").iterdir() if not p.name.startswith(".")]  # .locks holds run claims
    assert len(folders) == 1
    run = folders[0]
    assert run.name.startswith("zegclip-world_smoke-s0-")
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "env.json", "metrics.jsonl", "checkpoint.pt",
                                               "result.json"}
    result = json.loads((run / "result.json").read_text())
    assert result["schema"] == 1 and result["status"] == "finished"
    assert set(result) >= {"pAcc", "mIoU_seen", "mIoU_unseen", "hIoU", "per_class", "params_total", "params_trainable"}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 2
    stamp = (run / "result.json").stat().st_mtime_ns
    assert resolve_and_run("zegclip", "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="t") == first
    assert (run / "result.json").stat().st_mtime_ns == stamp
    resolve_and_run("zegclip", "world_smoke", 0, {**TINY, "steps": 3}, store=RunStore(tmp_path), suite="t")
    assert len([p for p in (tmp_path / "t").iterdir() if not p.name.startswith(".")]) == 2


def test_unknown_override_is_a_clear_error(tmp_path):
    with pytest.raises(ZegbenchError, match="colour"):
        resolve_and_run("zegclip", "world_smoke", 0, {**TINY, "colour": "red"}, store=RunStore(tmp_path))
