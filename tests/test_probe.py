"""The world's faithfulness probe: frozen keeps CLIP's knowledge by construction, fine-tuning may not."""
from __future__ import annotations

import pytest

from zegbench.lab.probe import run_probe


def test_probe_reports_knowledge_and_masks_for_both_tunings():
    frozen = run_probe("frozen", steps=3, batch_size=4, dataset="world_smoke")
    assert frozen["zero_shot_unseen_after"] == frozen["zero_shot_unseen_before"]
    for key in ("mIoU_seen", "mIoU_unseen", "hIoU", "unseen_pixels_to_seen"):
        assert key in frozen
    tuned = run_probe("finetune", steps=3, batch_size=4, encoder_lr=1e-2, dataset="world_smoke")
    assert tuned["zero_shot_all_after"] != frozen["zero_shot_all_after"]


def test_probe_evaluated_midway_measures_what_a_shorter_probe_measures():
    # Constant learning rate and one batch order: the value after step 2 of a 3-step probe is
    # the 2-step probe's, so one oracle run gives the whole learning curve of the budget rule.
    longer = run_probe("finetune", steps=3, batch_size=4, classes="all", dataset="world_smoke", eval_at=(2,),
                       knowledge=False)
    shorter = run_probe("finetune", steps=2, batch_size=4, classes="all", dataset="world_smoke", knowledge=False)
    assert set(longer["mIoU_at"]) == {2, 3}
    assert longer["mIoU_at"][2] == pytest.approx(shorter["mIoU"], abs=1e-6)
    assert longer["mIoU_at"][3] == longer["mIoU"]
