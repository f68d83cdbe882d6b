"""The world's faithfulness probe: frozen keeps CLIP's knowledge by construction, fine-tuning may not."""
from __future__ import annotations

from zegbench.datasets.probe import run_probe


def test_probe_reports_knowledge_and_masks_for_both_tunings():
    frozen = run_probe("frozen", steps=3, batch_size=4, dataset="world_smoke")
    assert frozen["zero_shot_unseen_after"] == frozen["zero_shot_unseen_before"]
    for key in ("mIoU_seen", "mIoU_unseen", "hIoU", "unseen_pixels_to_seen"):
        assert key in frozen
    tuned = run_probe("finetune", steps=3, batch_size=4, encoder_lr=1e-2, dataset="world_smoke")
    assert tuned["zero_shot_all_after"] != frozen["zero_shot_all_after"]
