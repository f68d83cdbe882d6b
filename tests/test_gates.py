"""Structural gates of a world (`zegbench world gates`): what they measure and how they decide."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zegbench.cli import main
from zegbench.datasets.catalog import build_dataset
from zegbench.errors import ZegbenchError
from zegbench.lab.gates import THRESHOLDS, geometry

KEYS = ("oracle_miou", "zero_shot_unseen", "dense_training_free_ratio", "unseen_to_seen_share",
        "median_object_patches", "background_share", "seconds")


def test_geometry_counts_objects_in_encoder_patches_and_background_share():
    data = build_dataset("world_smoke", "val")
    labels = [data[i][1] for i in range(len(data))]
    background = np.mean([(lab == 255).mean() for lab in labels])  # every image is 96 x 96
    out = geometry("world_smoke", patch_size=8, image_size=96)
    assert out["background_share"] == pytest.approx(background, abs=1e-3)
    sizes = [(lab == c).sum() / 64 for lab in labels for c in np.unique(lab) if c != 255]
    assert out["median_object_patches"] == pytest.approx(np.median(sizes), abs=0.01)
    # At twice the input size an object covers four times as many patches.
    assert geometry("world_smoke", patch_size=8, image_size=192)["median_object_patches"] == pytest.approx(
        4 * out["median_object_patches"], abs=0.05)


def test_gates_json_has_every_measure_and_a_verdict_per_gate(capsys):
    code = main(["world", "gates", "--dataset", "world_smoke", "--steps", "2", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(key in out for key in KEYS)
    assert set(out["gates"]) == set(THRESHOLDS)
    assert code == (0 if all(out["gates"].values()) else 1)
    assert out["gates"]["G2"] == (out["zero_shot_unseen"] >= 0.90)
    ratio = out["dense_training_free_ratio"]
    assert out["gates"]["G4"] == (ratio is not None and ratio <= 0.80)
    assert 0 <= out["unseen_to_seen_share"] <= 1 and out["steps"] == 2


def test_gates_refuse_a_dataset_that_is_not_a_world(tmp_path):
    from zegbench.lab.gates import measure_gates

    with pytest.raises(ZegbenchError, match="not one"):
        measure_gates("voc12")


def test_budget_rule_takes_the_smallest_budget_where_the_oracle_reaches_the_bar():
    from zegbench.lab.gates import BUDGET_ORACLE_MIOU, budget_by_rule

    assert budget_by_rule({250: 60.0, 500: BUDGET_ORACLE_MIOU, 750: 85.0, 1500: 90.0}) == 500
    assert budget_by_rule({250: 60.0, 500: 70.0, 1500: 79.9}) == 1500  # never reached: the cap
    assert budget_by_rule({250: 81.0, 1500: 95.0}) == 250
    assert budget_by_rule({2: 99.0}) is None  # a test-sized run measures none of the budgets


def v3_measures(**changes) -> dict:
    """Measures that pass every v3 gate, with ``changes``."""
    return {"oracle_miou": 80.0, "zero_shot_unseen": 0.95, "unseen_to_seen_share": 0.7,
            "dense_training_free_ratio": 0.8, "median_object_patches": 20.0, "background_share": 0.65,
            "epochs": 25.0, "breadth": {"passed": True}, **changes}


def test_v3_gate_g4_is_a_band_around_real_clips_ratio_and_g7_counts_epochs():
    from zegbench.lab.gates_v3 import G4_BAND, G4_REAL_RATIO, decide

    assert G4_BAND[0] < G4_REAL_RATIO < G4_BAND[1]
    assert all(decide(v3_measures()).values())
    for ratio, ok in ((G4_BAND[0], True), (G4_BAND[1], True), (0.19, False), (0.97, False), (None, False)):
        assert decide(v3_measures(dense_training_free_ratio=ratio))["G4"] is ok  # world v2 had 0.19
    assert not decide(v3_measures(epochs=19.9))["G7"] and decide(v3_measures(epochs=20.0))["G7"]
    assert not decide(v3_measures(oracle_miou=74.9))["G1"]
    assert not decide(v3_measures(breadth={"passed": False}))["G6"]


def test_v3_epochs_and_the_oracle_trains_on_every_class():
    from zegbench.datasets.catalog import load_dataset_info
    from zegbench.lab.gates_v3 import all_seen, epochs_at

    assert epochs_at(750, 8, 1, 300) == 20.0 and epochs_at(750, 8, 2, 2000) == 6.0
    info = load_dataset_info("world_smoke")
    assert info.unseen and all_seen(info).seen == info.classes and all_seen(info).unseen_ids == ()
