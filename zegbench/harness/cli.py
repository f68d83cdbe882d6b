"""``python run_all.py``: the main job.

Until the suite runner lands, the one job is ``foundation``: generate the
embedded world, check the in-house CLIP's zero-shot accuracy, and run the
world's faithfulness probe (frozen vs fine-tuned CLIP under seen-class
training), writing one JSON result under ``results/foundation/``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zegbench.errors import ZegbenchError

SUITES = ("foundation",)


def run_foundation(out_dir: Path, probe_steps: int) -> dict:
    from zegbench.clip.loading import load_clip
    from zegbench.clip.zero_shot import zero_shot_accuracy
    from zegbench.datasets.catalog import build_dataset
    from zegbench.datasets.probe import run_probe
    from zegbench.utils.io import atomic_write_json

    result_path = out_dir / f"result-probe{probe_steps}.json"
    if result_path.is_file():
        print(f"reusing {result_path} (delete it to run again)")
        return json.loads(result_path.read_text())
    build_dataset("world", "train", progress=True)
    zs = zero_shot_accuracy(load_clip())
    print(f"in-house CLIP zero-shot: acc_all {zs['acc_all']:.3f}, acc_unseen {zs['acc_unseen']:.3f}")
    probes = []
    for tuning in ("frozen", "finetune"):
        print(f"probe: seen-class training with the encoder {tuning} ({probe_steps} steps)")
        probes.append(run_probe(tuning, steps=probe_steps))
        r = probes[-1]
        print(f"  zero-shot unseen {r['zero_shot_unseen_before']:.3f} -> {r['zero_shot_unseen_after']:.3f}; "
              f"mIoU seen {r['mIoU_seen']:.1f}, unseen {r['mIoU_unseen']:.1f}, hIoU {r['hIoU']:.1f}")
    result = {"suite": "foundation", "zero_shot": {k: zs[k] for k in ("acc_all", "acc_seen", "acc_unseen")},
              "probe": probes}
    atomic_write_json(result, result_path)
    print(f"wrote {result_path}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_all.py", description="Run a zegbench suite.")
    parser.add_argument("--suite", default="foundation", choices=SUITES, help="suite to run")
    parser.add_argument("--results", default="results", help="run store folder")
    parser.add_argument("--probe-steps", type=int, default=300, help="training steps of each probe variant")
    args = parser.parse_args(argv)
    try:
        run_foundation(Path(args.results) / args.suite, args.probe_steps)
    except ZegbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
