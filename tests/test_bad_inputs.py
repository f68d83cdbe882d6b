"""The bad-input catalogue: every kind of bad input ends in one clear error line, exit 2, no traceback.

Each case names what is wrong and where. Inputs that look wrong but are handled (a
damaged result.json is set aside and redone, a 1 x 1 image is segmented) are in
``HANDLED``: exit 0, no error line, nothing lost. The ids of both are the rows of the
table in docs/bad_inputs.md (a test keeps the two in step).
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zegbench.cli import main as zegbench_main
from zegbench.harness.cli import main as run_all_main

from fake_store import paired_counts, write_counts, write_result
from real_layouts import save_palette_png

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "steps=2", "--set", "batch_size=2", "--set", "warmup=1"]


def _voc(root: Path, fault: str | None = None, predictions: bool = True) -> Path:
    """A two-image VOC 2012 folder in the real layout, with one planted ``fault``."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    ids = ["2007_000001", "2007_000002"]
    for sid in ids:
        Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(voc / "JPEGImages" / f"{sid}.jpg")
        label = np.zeros((20, 24), np.uint8)
        label[5:15, 5:15] = 3  # bird
        Image.fromarray(label).save(voc / "SegmentationClass" / f"{sid}.png")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids) + "\n")
    first = ids[0]
    if fault == "no_split":
        (voc / "ImageSets/Segmentation/val.txt").unlink()
    elif fault == "missing_image":
        (voc / "JPEGImages" / f"{first}.jpg").unlink()
    elif fault == "corrupt_image":
        (voc / "JPEGImages" / f"{first}.jpg").write_bytes(b"\xff\xd8 truncated")
    elif fault == "corrupt_label":
        (voc / "SegmentationClass" / f"{first}.png").write_bytes(b"\x89PNG broken")
    elif fault == "size_mismatch":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(voc / "SegmentationClass" / f"{first}.png")
    elif fault == "label_range":
        Image.fromarray(np.full((20, 24), 40, np.uint8)).save(voc / "SegmentationClass" / f"{first}.png")
    elif fault == "palette":  # VOC's own labels: palette PNGs whose colours are the classes' indices
        for sid in ids:
            label = np.asarray(Image.open(voc / "SegmentationClass" / f"{sid}.png"))
            save_palette_png(label, voc / "SegmentationClass" / f"{sid}.png")
    preds = root / "preds"
    preds.mkdir(exist_ok=True)
    for sid in ids if predictions else []:  # well-formed predictions, so the data's own fault is what fails
        Image.fromarray(np.zeros((20, 24), np.uint8)).save(preds / f"{sid}.png")
    return root


def _evaluate_voc(fault, predictions=True):
    def setup(tmp, monkeypatch):
        root = _voc(tmp, fault, predictions)
        return zegbench_main, ["evaluate", "--pred", str(root / "preds"), "--dataset", "voc12",
                               "--data-root", str(root)]
    return setup


def _suite_file(text):
    def setup(tmp, monkeypatch):
        (tmp / "bad.yaml").write_text(text)
        return run_all_main, ["--suite", str(tmp / "bad.yaml"), "--results", str(tmp / "r"), "--list"]
    return setup


def _include_cycle(tmp, monkeypatch):
    (tmp / "suites").mkdir()
    (tmp / "suites" / "a.yaml").write_text("include: [b]\n")
    (tmp / "suites" / "b.yaml").write_text("include: [a]\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp))  # a user's config folder
    return run_all_main, ["--suite", "a", "--list"]


def _dataset_config(text, name="mine"):
    def setup(tmp, monkeypatch):
        (tmp / "datasets").mkdir()
        (tmp / "datasets" / f"{name}.yaml").write_text(text)
        monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp))
        return zegbench_main, ["world", "generate", "--dataset", name]
    return setup


def _run(*args):
    def setup(tmp, monkeypatch):
        return zegbench_main, ["run", "--results", str(tmp / "r"), *args]
    return setup


def _broken_method_config(tmp, monkeypatch):
    (tmp / "methods").mkdir()
    (tmp / "methods" / "broken.yaml").write_text("class: zegclip\ntuning: [dpt\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp))
    return zegbench_main, ["methods", "describe", "broken"]


def _checkpoint_recorded_as_another_architecture(tmp, monkeypatch):
    import json

    import open_clip
    import torch

    from zegbench.clip.loading import IN_HOUSE, load_clip
    from zegbench.clip.pretrain import shippable_state

    torch.save(shippable_state(load_clip(IN_HOUSE, "none").model), tmp / "clip.pt")
    architecture = open_clip.get_model_config(IN_HOUSE)
    architecture["vision_cfg"]["pool_type"] = "avg" if architecture["vision_cfg"]["pool_type"] == "tok" else "tok"
    (tmp / "clip.json").write_text(json.dumps({"architecture": architecture}))
    return zegbench_main, ["clip", "zero-shot", "--checkpoint", str(tmp / "clip.pt")]


def _shipped_name_again(tmp, monkeypatch):
    (tmp / "methods").mkdir()
    (tmp / "methods" / "zegclip.yaml").write_text("class: zegclip\nnum_tokens: 5\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", "")  # restored after the test, whatever --config-dir does to it
    return zegbench_main, ["methods", "list", "--config-dir", str(tmp)]


def _wrong_arch_checkpoint(tmp, monkeypatch):
    import torch

    torch.save({"visual.conv1.weight": torch.zeros(3, 3, 1, 1)}, tmp / "other.pt")
    return zegbench_main, ["clip", "zero-shot", "--checkpoint", str(tmp / "other.pt")]


def _official_checkpoint(fault):
    """`zegbench evaluate --checkpoint` with the official-equivalence fixture, cut short or on the wrong dataset."""
    def setup(tmp, monkeypatch):
        fixture = Path(__file__).parent / "data" / "official_zegclip_small" / "official.pth"
        path = tmp / "official.pth"
        data = fixture.read_bytes()
        path.write_bytes(data[: len(data) // 2] if fault == "truncated" else data)  # its 6 classes are not VOC's 20
        return zegbench_main, ["evaluate", "--checkpoint", str(path), "--dataset", "voc12", "--data-root", str(tmp)]
    return setup


def _truncated_checkpoint(tmp, monkeypatch):
    shipped = ROOT / "zegbench" / "clip" / "weights" / "zegbench-world2-vit.pt"
    (tmp / "cut.pt").write_bytes(shipped.read_bytes()[: 200_000])
    return zegbench_main, ["clip", "zero-shot", "--checkpoint", str(tmp / "cut.pt")]


def _segment(classes, run="trained", image="ok"):
    def setup(tmp, monkeypatch, trained_run=None):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp / "ok.png")
        (tmp / "broken.png").write_bytes(b"not an image")
        (tmp / "empty_run").mkdir()
        run_dir = trained_run if run == "trained" else tmp / "empty_run"
        return zegbench_main, ["segment", str(tmp / f"{image}.png"), "--classes", classes, "--run", str(run_dir),
                               "--out", str(tmp / "out")]
    setup.needs_run = True
    return setup


def _results_under_a_file(tmp, monkeypatch):
    (tmp / "file").write_text("")
    return run_all_main, ["--suite", "smoke", "--results", str(tmp / "file" / "results"),
                          "--only", "zegclip_baseline_fix*"]


def _checkpoint_disk_full(tmp, monkeypatch):
    from zegbench.utils import io

    def full(point):  # the checkpoint's temporary file is written; the disk is full before its rename
        if point == "write:checkpoint.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(io, "fault_point", full)
    return zegbench_main, ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke",
                           "--results", str(tmp / "r"), *TINY]


def read_only(monkeypatch, folder: Path) -> None:
    """Writes under ``folder`` fail with EROFS, as on a read-only mount (tests may run as root,
    whom ``chmod`` does not stop, so the file system calls are patched instead)."""
    import builtins
    import io as stdio

    folder = folder.resolve()
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        return not isinstance(path, int) and Path(os.fspath(path)).resolve().is_relative_to(folder)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def guarded_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(stdio, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


def _read_only_store(command):
    def setup(tmp, monkeypatch):
        (tmp / "ro").mkdir()
        read_only(monkeypatch, tmp / "ro")
        if command == "run_all":
            return run_all_main, ["--suite", "smoke", "--results", str(tmp / "ro"), "--only", "zegclip_baseline_fix*"]
        return zegbench_main, ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke",
                               "--results", str(tmp / "ro"), *TINY]
    return setup


def _force_on_held_run(tmp, monkeypatch):
    from zegbench.engine.identity import run_folder_for
    from zegbench.engine.resolve import resolve
    from zegbench.store import RunStore
    from zegbench.utils.locks import claim

    suite = tmp / "held.yaml"
    suite.write_text("dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix]\n"
                     "    set: {steps: 2, batch_size: 2, warmup: 1}\n")
    resolved = resolve("zegclip_baseline_fix", "world_smoke", 0, {"steps": 2, "batch_size": 2, "warmup": 1})
    run_dir = run_folder_for(resolved, RunStore(tmp / "r"), "held").path
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("")
    holder = claim(run_dir)  # another process training this run (a claim is refused to its holder too)
    monkeypatch.setattr(_force_on_held_run, "holder", holder, raising=False)  # held until the test ends
    return run_all_main, ["--suite", str(suite), "--results", str(tmp / "r"), "--force"]


def _image_too_large(tmp, monkeypatch, trained_run=None):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # PIL refuses over twice this: a 'decompression bomb'
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp / "huge.png")
    return zegbench_main, ["segment", str(tmp / "huge.png"), "--classes", "red dotted", "--run", str(trained_run),
                           "--out", str(tmp / "out")]


_image_too_large.needs_run = True


def _damaged_result(damage):
    """A finished run whose result.json is then damaged; the same command again."""
    def setup(tmp, monkeypatch):
        from zegbench.engine.identity import run_folder_for
        from zegbench.engine.resolve import resolve
        from zegbench.engine.run import resolve_and_run
        from zegbench.store import RunStore

        overrides = {"steps": 2, "batch_size": 2, "warmup": 1}
        store = RunStore(tmp / "r")
        resolve_and_run("zegclip_baseline_fix", "world_smoke", 0, overrides, store=store, suite="adhoc")
        run_dir = run_folder_for(resolve("zegclip_baseline_fix", "world_smoke", 0, overrides), store, "adhoc").path
        path = run_dir / "result.json"
        if damage == "truncated":
            path.write_text(path.read_text()[:100])
        else:
            record = json.loads(path.read_text())
            record["mIoU_seen"] = "high"
            path.write_text(json.dumps(record))
        return zegbench_main, ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke",
                               "--results", str(tmp / "r"), *TINY]
    return setup


def _leaderboard(store: str):
    """`zegbench leaderboard` on a store that is not there, holds no finished run, or none of the dataset asked."""
    def setup(tmp, monkeypatch):
        results, options = tmp / "r", []
        if store == "empty":
            (results / "smoke").mkdir(parents=True)  # a suite folder whose runs never finished
        elif store == "world only":
            run_dir = results / "ablations" / "zegclip-world-s0-abcd1234"
            run_dir.mkdir(parents=True)
            (run_dir / "config.yaml").write_text("method: zegclip\ndataset: world\nseed: 0\n"
                                                 "train: {steps: 750, batch_size: 8}\n")
            write_result(run_dir, method="zegclip", dataset="world", seed=0)
            options = ["--dataset", "voc12"]
        return zegbench_main, ["leaderboard", "--results", str(results), "--out", str(tmp / "board"), *options]
    return setup


def _damaged_counts(tmp, monkeypatch):
    """A one-seed suite report whose zegclip run's per-image counts are cut short: its claims say so."""
    import yaml

    from zegbench.harness.suite import expand
    from zegbench.store import RunStore

    results = tmp / "r"
    for spec in expand("ablations", seeds=1, store=RunStore(results)):
        spec.run_dir.mkdir(parents=True)
        write_counts(spec.run_dir, paired_counts(0)[spec.method == "zegclip"], seed=0)
        (spec.run_dir / "config.yaml").write_text(yaml.safe_dump({"train": {"steps": 750, "batch_size": 8}}))
        if spec.method == "zegclip":
            counts = spec.run_dir / "image_counts.npz"
            counts.write_bytes(counts.read_bytes()[:200])
    return run_all_main, ["--suite", "ablations", "--seeds", "1", "--report-only", "--results", str(results),
                          "--reports", str(tmp / "rep")]


def _segment_image(shape, classes="red dotted,blue striped", classes_file=None):
    def setup(tmp, monkeypatch, trained_run=None):
        Image.fromarray(np.zeros((*shape, 3), np.uint8)).save(tmp / "odd.png")
        names = ["--classes", classes]
        if classes_file is not None:
            (tmp / "classes.txt").write_text(classes_file, encoding="utf-8")
            names = ["--classes-file", str(tmp / "classes.txt")]
        return zegbench_main, ["segment", str(tmp / "odd.png"), *names, "--run", str(trained_run),
                               "--out", str(tmp / "out")]
    setup.needs_run = True
    return setup


def _disk_full(tmp, monkeypatch):
    from zegbench.utils import io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(io.os, "fsync", full)
    return zegbench_main, ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke",
                           "--results", str(tmp / "r"), *TINY]


def _suite_on_voc(fault=None, missing_root=False, train_lists=True):
    """``run_all.py --suite smoke --dataset voc12`` on a VOC folder with ``fault``, or on no folder."""
    def setup(tmp, monkeypatch):
        root = tmp / "nowhere" if missing_root else _voc(tmp, fault)
        voc = root / "VOCdevkit" / "VOC2012"
        if train_lists and not missing_root:  # voc12's train split: train.txt + aug.txt (SegmentationClassAug)
            (voc / "SegmentationClassAug").mkdir()
            (voc / "ImageSets/Segmentation/aug.txt").write_text("")
            (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
        return run_all_main, ["--suite", "smoke", "--dataset", "voc12", "--data-root", str(root),
                              "--results", str(tmp / "r"), "--reports", str(tmp / "rep")]
    return setup


def _suite_with(overrides: str, *flags):
    def setup(tmp, monkeypatch):
        (tmp / "one.yaml").write_text(f"dataset: world_smoke\ngroups:\n  - methods: [maskclip]\n    set: {overrides}\n")
        return run_all_main, ["--suite", str(tmp / "one.yaml"), "--results", str(tmp / "r"),
                              "--reports", str(tmp / "rep"), *flags]
    return setup


def _no_cuda(tmp, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return _suite_with("{}", "--device", "cuda")(tmp, monkeypatch)


def _pretrain(*flags, state: dict | None = None):
    """``clip pretrain`` of world v3's CLIP into ``tmp/clip.pt``; ``state``: a resume state already beside it."""
    def setup(tmp, monkeypatch):
        if state is not None:
            import torch

            torch.save(state, tmp / "clip.state.pt")
        return zegbench_main, ["clip", "pretrain", "--clip", "zegbench-world3-vit", "--out", str(tmp / "clip.pt"),
                               "--steps", "10", "--batch-size", "4", *flags]
    return setup


V3_SETTINGS = {"model": "zegbench-world3-vit", "steps": 10, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.1,
               "warmup": 300, "seed": 0}

# id -> (setup, expected words in the error line)
CASES = {
    "clip-resume-without-state": (_pretrain("--resume"), "no resume state at"),
    "clip-pretrain-over-run-in-progress": (_pretrain(state={"settings": V3_SETTINGS}),
                                           "holds a pretraining in progress"),
    "clip-resume-settings-differ": (_pretrain("--resume", state={"settings": V3_SETTINGS}),
                                    "was made with batch_size=8 (asked 4)"),
    "clip-breadth-not-broad": (lambda t, m: (zegbench_main, ["clip", "breadth", "--clip", "zegbench-world2-vit"]),
                               "G6 measures a broad world's in-house CLIP"),
    "suite-malformed-yaml": (_suite_file("groups: [\n"), "is not valid YAML"),
    "suite-unknown-key": (_suite_file("groups:\n  - methods: [zegclip]\n    sett: {}\n"), "unknown key"),
    "suite-wrong-type": (_suite_file("seeds: first\n"), "key 'seeds'"),
    "suite-unknown-name": (lambda t, m: (run_all_main, ["--suite", "nope", "--list"]), "unknown suite 'nope'"),
    "suite-include-cycle": (_include_cycle, "forms a cycle"),
    "speed-target-malformed": (_suite_file("kind: speed\ntargets:\n  - dataset: world\n    methods: [zegclip]\n"
                                            "    whole: [96]\n"), "key 'targets.0.whole"),
    "speed-method-unknown": (_suite_file("kind: speed\ntargets:\n  - dataset: world\n    methods: [zegclap]\n"
                                         "    whole: [96, 96]\n"), "unknown method 'zegclap'"),
    "backbone-weights-missing": (_run("--method", "two_stage", "--dataset", "world_smoke", "--set", "backbone=resnet50",
                                      "--set", "backbone_weights=/nonexistent/r50.pth", *TINY), "backbone_weights"),
    "nproc-without-torchrun": (lambda t, m: (run_all_main, ["--suite", "smoke", "--nproc", "2"]),
                               "needs --executor torchrun"),
    "suite-data-root-missing": (_suite_on_voc(missing_root=True), "dataset voc12: "),
    "suite-split-list-missing": (_suite_on_voc(train_lists=False), "ImageSets/Segmentation/train.txt is missing"),
    "suite-first-pair-unreadable": (_suite_on_voc("corrupt_image"), "2007_000001.jpg is corrupt"),
    "suite-weights-file-missing": (_suite_with("{clip_weights: /nonexistent/clip.pt}"),
                                   "clip_weights /nonexistent/clip.pt does not exist"),
    "device-unknown": (_suite_with("{}", "--device", "gpu0"), "is not a torch device"),
    "device-cuda-missing": (_no_cuda, "sees no CUDA GPU"),
    "slurm-option-without-slurm": (_suite_with("{}", "--slurm-partition", "gpu"), "applies to --executor slurm only"),
    "slurm-option-not-positive": (_suite_with("{}", "--executor", "slurm", "--slurm-time", "0"), "at least 1"),
    "jobs-not-positive": (lambda t, m: (run_all_main, ["--suite", "smoke", "-j", "0"]), "at least 1"),
    "force-on-held-run": (_force_on_held_run, "is being run by another process now"),
    "workers-negative": (lambda t, m: (run_all_main, ["--suite", "smoke", "--workers", "-1"]),
                         "--workers: must be a whole number of at least 0, not -1"),
    "seeds-not-positive": (lambda t, m: (run_all_main, ["--suite", "smoke", "--seeds", "-2"]),
                           "--seeds: must be a whole number of at least 1, not -2"),
    "seed-negative": (_run("--method", "zegclip", "--seeds", "0", "-1"),
                      "--seeds: must be a whole number of at least 0"),
    "nproc-not-positive": (lambda t, m: (zegbench_main, ["suite", "run", "smoke", "--nproc", "0"]),
                           "--nproc: must be a whole number of at least 1, not 0"),
    "steps-not-positive": (lambda t, m: (zegbench_main, ["world", "gates", "--steps", "0"]),
                           "--steps: must be a whole number of at least 1, not 0"),
    "gates-jobs-without-budget": (lambda t, m: (zegbench_main, ["world", "gates", "--jobs", "2"]),
                                  "--jobs measures budget runs at once: it goes with --budget"),
    "limit-not-positive": (lambda t, m: (zegbench_main, ["data", "verify", "--dataset", "voc12", "--limit", "0"]),
                           "--limit: must be a whole number of at least 1, not 0"),
    "per-class-not-positive": (lambda t, m: (zegbench_main, ["clip", "zero-shot", "--per-class", "0"]),
                               "--per-class: must be a whole number of at least 1, not 0"),
    "number-not-a-number": (lambda t, m: (run_all_main, ["--suite", "smoke", "-j", "two"]),
                            "-j/--jobs: must be a whole number of at least 1, not two"),
    "option-unknown": (_run("--method", "zegclip", "--step", "2"), "unrecognized arguments: --step 2"),
    "quiet-and-verbose": (lambda t, m: (zegbench_main, ["methods", "list", "--quiet", "--verbose"]),
                          "--verbose: not allowed with argument -q/--quiet"),
    "config-dir-missing": (lambda t, m: (zegbench_main, ["methods", "list", "--config-dir", str(t / "nowhere")]),
                           "is not a folder"),
    "config-name-defined-twice": (_shipped_name_again, "method 'zegclip' is defined twice"),
    "method-unknown-name": (_run("--method", "nope"), "unknown method 'nope'"),
    "method-name-is-a-path": (_run("--method", "../configs/methods/zegclip"), "not a plain name"),
    "method-malformed-yaml": (_broken_method_config, "is not valid YAML"),
    "method-unknown-key": (_run("--method", "zegclip", "--set", "decoder_depth=2"), "key 'decoder_depth': unknown key"),
    "method-wrong-type": (_run("--method", "zegclip", "--set", "num_tokens=ten"), "key 'num_tokens'"),
    "method-bad-switch": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set", "tuning=fancy", *TINY),
                          "tuning must be one of"),
    "train-wrong-type": (_run("--method", "zegclip", "--set", "steps=many"), "training key 'steps'"),
    "train-bad-precision": (_run("--method", "zegclip", "--set", "precision=fp16"), "training key 'precision'"),
    "train-threads-not-positive": (_run("--method", "zegclip", "--set", "threads=0"),
                                   "training key 'threads': Input should be greater than or equal to 1"),
    "override-not-key-value": (_run("--method", "zegclip", "--set", "steps"), "is not key=value"),
    "train-count-not-positive": (_run("--method", "zegclip_baseline_fix", "--dataset", "world_smoke", "--set",
                                      "batch_size=0"),
                                 "command-line override: training key 'batch_size': Input should be greater than or "
                                 "equal to 1 (got 0; allowed: a whole number >= 1)"),
    "train-lr-not-positive": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set", "lr=0"),
                              "training key 'lr': Input should be greater than 0 (got 0; allowed: a finite number "
                              "> 0)"),
    "train-fraction-out-of-range": (_run("--method", "zegclip_transductive", "--dataset", "world_smoke", "--set",
                                         "self_training_start=1.5"),
                                    "training key 'self_training_start': Input should be less than or equal to 1 "
                                    "(got 1.5; allowed: a finite number in [0, 1])"),
    "method-float-not-finite": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set", "calibration=nan"),
                                "method (zegclip) key 'calibration': Input should be a finite number (got nan"),
    "method-window-leaves-gaps": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set", "stride=200"),
                                  "method (zegclip) keys 'stride', 'image_size': the sliding window's stride (200) "
                                  "is larger than its crop (96)"),
    "method-heads-split-unevenly": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set",
                                         "decoder_heads=5"),
                                    "decoder_heads (5) must divide the width of zegbench-world2-vit's embeddings "
                                    "(128)"),
    "suite-set-out-of-range": (_suite_file("dataset: world_smoke\ngroups:\n  - methods: [zegclip]\n"
                                           "    set: {warmup: -1}\n"),
                               "bad.yaml (groups.0: set and grid): training key 'warmup': Input should be greater "
                               "than or equal to 0 (got -1; allowed: a whole number >= 0)"),
    "dataset-unknown-name": (_run("--method", "zegclip", "--dataset", "atlantis"), "unknown dataset 'atlantis'"),
    "dataset-malformed-yaml": (_dataset_config("classes: [a\n"), "is not valid YAML"),
    "dataset-unknown-key": (_dataset_config("name: mine\nclases: [a]\nclasses: [a]\nunseen: []\nsplits: {}\n"),
                            "key 'clases': unknown key"),
    "dataset-unseen-not-a-class": (_dataset_config("name: mine\nclasses: [a]\nunseen: [b]\nsplits: {}\n"),
                                   "unseen class 'b' is not in 'classes'"),
    "dataset-base-cycle": (_dataset_config("base: mine\nname: mine\n"), "forms a cycle"),
    "dataset-value-out-of-range": (_dataset_config("base: voc12\ntrain_transform: {cat_max_ratio: 1.5}\n"),
                                   "mine.yaml: key 'train_transform.cat_max_ratio': Input should be less than or "
                                   "equal to 1 (got 1.5; allowed: a finite number in [0, 1])"),
    "world-setting-out-of-range": (_dataset_config("base: world_smoke\nworld: {train_scenes: 0}\n"),
                                   "mine.yaml: key 'world.train_scenes': Input should be greater than or equal to 1 "
                                   "(got 0; allowed: a whole number >= 1)"),
    "real-dataset-without-root": (_run("--method", "zegclip", "--dataset", "voc12"), "needs --data-root"),
    "real-dataset-missing-folder": (_run("--method", "zegclip", "--dataset", "voc12", "--data-root", "/nonexistent"),
                                    "does not exist"),
    "split-list-missing": (_evaluate_voc("no_split"), "split list"),
    "image-missing": (_evaluate_voc("missing_image"), "listed in the split but missing"),
    "image-corrupt": (_evaluate_voc("corrupt_image"), "is corrupt"),
    "label-corrupt": (_evaluate_voc("corrupt_label"), "is corrupt"),
    "label-size-mismatch": (_evaluate_voc("size_mismatch"), "its image is"),
    "label-out-of-range": (_evaluate_voc("label_range"), "outside 0..19"),
    "predictions-missing": (_evaluate_voc(None, predictions=False), "lacks 2 of the 2 predictions"),
    "class-name-unknown-word": (_segment("dotted dog"), "cannot read 'dog'"),
    "class-list-empty": (_segment(" , "), "class list is empty"),
    "class-name-non-ascii": (_segment("dötted star"), "cannot read 'dötted'"),
    "image-too-large": (_image_too_large, "is too large to open safely"),
    "image-unreadable": (_segment("red dotted", image="broken"), "unreadable"),
    "image-not-found": (_segment("red dotted", image="missing"), "does not exist"),
    "run-without-checkpoint": (_segment("red dotted", run="empty"), "no checkpoint.pt"),
    "checkpoint-wrong-architecture": (_wrong_arch_checkpoint, "does not load into"),
    "checkpoint-recorded-other-architecture": (_checkpoint_recorded_as_another_architecture,
                                               "was trained as another architecture"),
    "checkpoint-truncated": (_truncated_checkpoint, "is unreadable"),
    "official-checkpoint-truncated": (_official_checkpoint("truncated"), "a truncated download?"),
    "official-checkpoint-other-dataset": (_official_checkpoint("classes"), "was trained on 6 classes"),
    "results-folder-unwritable": (_results_under_a_file, "is not writable"),
    "disk-full-during-write": (_disk_full, "No space left on device; free some space"),
    "disk-full-during-checkpoint": (_checkpoint_disk_full, "checkpoint.pt: No space left on device"),
    "results-folder-read-only": (_read_only_store("run_all"), "is not writable (Read-only file system)"),
    "run-store-read-only": (_read_only_store("run"), "Read-only file system; the file system is read-only"),
    "leaderboard-store-missing": (_leaderboard("missing"), "does not exist: pass --results DIR"),
    "leaderboard-store-empty": (_leaderboard("empty"), "holds no finished runs: run a suite first"),
    "leaderboard-no-match": (_leaderboard("world only"), "matches --dataset voc12 --method *: its datasets are world"),
    "nan-loss": (_run("--method", "zegclip_baseline_fix", "--dataset", "world_smoke", "--set", "lr=1e30",
                      "--set", "steps=6", "--set", "batch_size=2", "--set", "warmup=1"), "training loss became nan"),
}


# id -> (setup, words in the output): answered without an error line, exit 0, nothing lost
HANDLED = {
    "result-json-truncated": (_damaged_result("truncated"), "was damaged (unreadable JSON"),
    "result-json-hand-edited": (_damaged_result("edited"), "was damaged (key 'mIoU_seen' is 'high'"),
    "image-1x1": (_segment_image((1, 1)), "odd.png: "),
    "image-20000-wide": (_segment_image((4, 20_000)), "odd.png: "),
    "class-name-with-quotes": (_segment_image((8, 8), classes='"red" dotted,blue striped'), '"red" dotted'),
    "class-name-with-comma": (_segment_image((8, 8), classes_file="striped star, the large one\nblue striped\n"),
                              "striped star, the large one"),
    "label-palette-png": (_evaluate_voc("palette"), "mIoU(S)"),
    "image-counts-truncated": (_damaged_counts, "unreadable (BadZipFile)"),
}


# Cases caught before any run starts, by run_all.py's check of the whole invocation or by resolve's
# check of every key's range: nothing may be written.
CHECKED_BEFORE_RUNNING = {"suite-data-root-missing", "suite-split-list-missing", "suite-first-pair-unreadable",
                          "suite-weights-file-missing", "device-unknown", "device-cuda-missing",
                          "train-count-not-positive", "train-lr-not-positive", "train-fraction-out-of-range",
                          "method-float-not-finite", "method-window-leaves-gaps", "method-heads-split-unevenly"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from zegbench.engine.identity import run_folder_for
    from zegbench.engine.resolve import resolve
    from zegbench.engine.run import resolve_and_run
    from zegbench.store import RunStore

    results = tmp_path_factory.mktemp("bad-inputs-run")
    overrides = {"steps": 2, "batch_size": 2, "warmup": 1}
    resolve_and_run("zegclip", "world_smoke", 0, overrides, store=RunStore(results), suite="s")
    return run_folder_for(resolve("zegclip", "world_smoke", 0, overrides), RunStore(results), "s").path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_line(case, tmp_path, monkeypatch, capsys, request):
    setup, expected = CASES[case]
    if getattr(setup, "needs_run", False):
        main, argv = setup(tmp_path, monkeypatch, request.getfixturevalue("trained_run"))
    else:
        main, argv = setup(tmp_path, monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert expected in errors[0], errors[0]
    assert "Traceback" not in err
    if case in CHECKED_BEFORE_RUNNING:
        assert not (tmp_path / "r").exists() and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("case", sorted(HANDLED))
def test_handled_input_is_answered_without_an_error(case, tmp_path, monkeypatch, capsys, request):
    setup, expected = HANDLED[case]
    if getattr(setup, "needs_run", False):
        main, argv = setup(tmp_path, monkeypatch, request.getfixturevalue("trained_run"))
    else:
        main, argv = setup(tmp_path, monkeypatch)
    assert main(argv) == 0
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert expected in output, output
    assert "error:" not in output and "Traceback" not in output


def test_catalogue_table_lists_every_case():
    table = (ROOT / "docs" / "bad_inputs.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert rows == set(CASES) | set(HANDLED)
    assert len(CASES) >= 25


def test_debug_flag_shows_the_traceback(capsys):
    assert zegbench_main(["--debug", "run", "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unknown method 'nope'")
