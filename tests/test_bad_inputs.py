"""The bad-input catalogue: every kind of bad input ends in one clear error line, exit 2, no traceback.

Each case names what is wrong and where. The same ids are the rows of the
table in docs/bad_inputs.md (a test keeps the two in step).
"""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zegbench.cli import main as zegbench_main
from zegbench.harness.cli import main as run_all_main

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
    preds = root / "preds"
    preds.mkdir(exist_ok=True)
    for sid in ids if predictions else []:  # well-formed predictions, so the data's own fault is what fails
        Image.fromarray(np.zeros((20, 24), np.uint8)).save(preds / f"{sid}.png")
    return root


def _evaluate_voc(fault, predictions=True):
    def setup(tmp, monkeypatch):
        root = _voc(tmp, fault, predictions)
        return zegbench_main, ["evaluate", "--pred", str(root / "preds"), "--dataset", "voc12", "--data-root", str(root)]
    return setup


def _suite_file(text):
    def setup(tmp, monkeypatch):
        (tmp / "bad.yaml").write_text(text)
        return run_all_main, ["--suite", str(tmp / "bad.yaml"), "--results", str(tmp / "r"), "--list"]
    return setup


def _include_cycle(tmp, monkeypatch):
    from zegbench.harness import suite

    (tmp / "a.yaml").write_text("include: [b]\n")
    (tmp / "b.yaml").write_text("include: [a]\n")
    monkeypatch.setattr(suite, "SUITE_DIR", tmp)
    return run_all_main, ["--suite", "a", "--list"]


def _dataset_config(text, name="mine"):
    def setup(tmp, monkeypatch):
        from zegbench.datasets import catalog

        (tmp / "datasets").mkdir()
        (tmp / "datasets" / f"{name}.yaml").write_text(text)
        monkeypatch.setattr(catalog, "CONFIG_ROOT", tmp)
        return zegbench_main, ["world", "generate", "--dataset", name]
    return setup


def _run(*args):
    def setup(tmp, monkeypatch):
        return zegbench_main, ["run", "--results", str(tmp / "r"), *args]
    return setup


def _broken_method_config(tmp, monkeypatch):
    from zegbench.methods import base

    folder = tmp / "methods"
    folder.mkdir()
    (folder / "broken.yaml").write_text("class: zegclip\ntuning: [dpt\n")
    monkeypatch.setattr(base, "CONFIG_DIR", folder)
    return zegbench_main, ["methods", "describe", "broken"]


def _wrong_arch_checkpoint(tmp, monkeypatch):
    import torch

    torch.save({"visual.conv1.weight": torch.zeros(3, 3, 1, 1)}, tmp / "other.pt")
    return zegbench_main, ["clip", "zero-shot", "--checkpoint", str(tmp / "other.pt")]


def _truncated_checkpoint(tmp, monkeypatch):
    shipped = ROOT / "zegbench" / "clip" / "weights" / "zegbench-world-vit.pt"
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
    return run_all_main, ["--suite", "smoke", "--results", str(tmp / "file" / "results"), "--only", "zegclip_baseline_fix*"]


def _disk_full(tmp, monkeypatch):
    from zegbench.utils import io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(io.os, "fsync", full)
    return zegbench_main, ["run", "--method", "zegclip_baseline_fix", "--dataset", "world_smoke",
                           "--results", str(tmp / "r"), *TINY]


# id -> (setup, expected words in the error line)
CASES = {
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
    "nproc-without-torchrun": (lambda t, m: (run_all_main, ["--suite", "smoke", "--nproc", "2"]), "needs --executor torchrun"),
    "jobs-not-positive": (lambda t, m: (run_all_main, ["--suite", "smoke", "-j", "0"]), "at least 1"),
    "method-unknown-name": (_run("--method", "nope"), "unknown method 'nope'"),
    "method-name-is-a-path": (_run("--method", "../configs/methods/zegclip"), "not a plain name"),
    "method-malformed-yaml": (_broken_method_config, "is not valid YAML"),
    "method-unknown-key": (_run("--method", "zegclip", "--set", "decoder_depth=2"), "key 'decoder_depth': unknown key"),
    "method-wrong-type": (_run("--method", "zegclip", "--set", "num_tokens=ten"), "key 'num_tokens'"),
    "method-bad-switch": (_run("--method", "zegclip", "--dataset", "world_smoke", "--set", "tuning=fancy", *TINY),
                          "tuning must be one of"),
    "train-wrong-type": (_run("--method", "zegclip", "--set", "steps=many"), "training key 'steps'"),
    "train-bad-precision": (_run("--method", "zegclip", "--set", "precision=fp16"), "training key 'precision'"),
    "override-not-key-value": (_run("--method", "zegclip", "--set", "steps"), "is not key=value"),
    "dataset-unknown-name": (_run("--method", "zegclip", "--dataset", "atlantis"), "unknown dataset 'atlantis'"),
    "dataset-malformed-yaml": (_dataset_config("classes: [a\n"), "is not valid YAML"),
    "dataset-unknown-key": (_dataset_config("name: mine\nclases: [a]\nclasses: [a]\nunseen: []\nsplits: {}\n"),
                            "key 'clases': unknown key"),
    "dataset-unseen-not-a-class": (_dataset_config("name: mine\nclasses: [a]\nunseen: [b]\nsplits: {}\n"),
                                   "unseen class 'b' is not in 'classes'"),
    "dataset-base-cycle": (_dataset_config("base: mine\nname: mine\n"), "forms a cycle"),
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
    "image-unreadable": (_segment("dotted star", image="broken"), "unreadable"),
    "image-not-found": (_segment("dotted star", image="missing"), "does not exist"),
    "run-without-checkpoint": (_segment("dotted star", run="empty"), "no checkpoint.pt"),
    "checkpoint-wrong-architecture": (_wrong_arch_checkpoint, "does not load into"),
    "checkpoint-truncated": (_truncated_checkpoint, "is unreadable"),
    "results-folder-unwritable": (_results_under_a_file, "is not writable"),
    "disk-full-during-write": (_disk_full, "No space left on device; free some space"),
    "nan-loss": (_run("--method", "zegclip_baseline_fix", "--dataset", "world_smoke", "--set", "lr=1e30",
                      "--set", "steps=6", "--set", "batch_size=2", "--set", "warmup=1"), "training loss became nan"),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from zegbench.harness.run import resolve, run_dir_for, run_experiment

    results = tmp_path_factory.mktemp("bad-inputs-run")
    overrides = {"steps": 2, "batch_size": 2, "warmup": 1}
    run_experiment("zegclip", "world_smoke", 0, overrides, results=results, suite="s")
    return run_dir_for(resolve("zegclip", "world_smoke", 0, overrides), results, "s")


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


def test_catalogue_table_lists_every_case():
    table = (ROOT / "docs" / "bad_inputs.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert rows == set(CASES)
    assert len(CASES) >= 25


def test_debug_flag_shows_the_traceback(capsys):
    assert zegbench_main(["--debug", "run", "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unknown method 'nope'")
