"""Using a trained run: the Python API and `zegbench segment`, including its errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zegbench
from zegbench.datasets import worlds
from zegbench.engine.identity import run_folder_for
from zegbench.engine.resolve import resolve
from zegbench.engine.run import resolve_and_run
from zegbench.errors import ZegbenchError
from zegbench.store import RunStore

TINY = {"steps": 2, "batch_size": 2, "warmup": 1}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    resolve_and_run("zegclip", "world_smoke", 0, TINY, store=RunStore(results), suite="seg")
    return run_folder_for(resolve("zegclip", "world_smoke", 0, TINY), RunStore(results), "seg").path


def test_api_segments_any_size_into_given_names(run_dir):
    model = zegbench.load(run_dir)
    image = np.random.default_rng(0).integers(0, 255, (70, 130, 3), dtype=np.uint8)  # not the training size
    result = model.segment(image, ["red dotted", "blue striped", "green checked"])
    assert result.labels.shape == (70, 130) and result.scores.shape == (3, 70, 130)
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert sum(result.shares().values()) == pytest.approx(1.0)
    # Names the run trained on keep the seen-class calibration; unseen ones do not.
    assert model.trained_on >= {"blue striped", "green checked"} and "red dotted" not in model.trained_on
    none = model.segment(image, ["red dotted"], min_score=2.0)  # no score reaches 2: nothing is labelled
    assert (none.labels == 255).all()


@pytest.mark.parametrize("method", ["two_stage", "maskclip"])
def test_other_method_kinds_segment_too(tmp_path, method):
    resolve_and_run(method, "world_smoke", 0, TINY, store=RunStore(tmp_path), suite="seg")
    model = zegbench.load(run_folder_for(resolve(method, "world_smoke", 0, TINY), RunStore(tmp_path), "seg").path)
    assert model.size == 96  # the world's images (two-stage) or the method's input (MaskCLIP)
    image = np.random.default_rng(0).integers(0, 255, (70, 130, 3), dtype=np.uint8)
    result = model.segment(image, ["red dotted", "blue striped"])
    assert result.labels.shape == (70, 130) and np.isfinite(result.scores).all()


def test_checkpoint_file_carries_its_config(run_dir):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["config"]["method"] == "zegclip"
    assert zegbench.load(run_dir / "checkpoint.pt").config == state["config"]


def test_a_segment_error_is_one_line_from_a_real_process(run_dir, tmp_path):
    # Each of segment's errors (empty class list, missing or unreadable image, a word the CLIP cannot
    # read, a folder without checkpoint) is in tests/test_bad_inputs.py's catalogue, in-process;
    # this one goes through `python -m zegbench` for the exit status and stderr a shell sees.
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok.png")
    proc = subprocess.run([sys.executable, "-m", "zegbench", "segment", str(tmp_path / "ok.png"), "--classes",
                           "dotted dog", "--run", str(run_dir), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "cannot read 'dog'" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_segment_command_writes_labels_overlay_and_shares(run_dir, tmp_path, capsys):
    from PIL import Image

    from zegbench.cli import main

    image = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
    assert main(["segment", str(image), "--classes", "red dotted,blue striped", "--run", str(run_dir),
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    (out,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"]
    assert sum(out["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    labels = np.asarray(Image.open(out["labels"]))
    assert labels.shape == (40, 40) and set(np.unique(labels)) <= {0, 1}
    assert Image.open(out["overlay"]).size[0] > 40  # a figure with the legend, not the bare mask


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ZegbenchError, match="not a zegbench training checkpoint"):
        zegbench.load(bad)
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(ZegbenchError, match="unreadable"):
        zegbench.load(bad)


@pytest.mark.parametrize("shape", [(1, 1), (30, 20_000), (1, 20_000)])
def test_extreme_image_sizes_segment_at_their_own_size(run_dir, tmp_path, capsys, shape):
    """A 1 x 1 image and 20,000-pixel-wide strips: labels at the image's size, a few windows each."""
    from PIL import Image

    from zegbench.cli import main
    from zegbench.segment import MAX_ASPECT

    image = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(image)
    calls = []
    model = zegbench.load(run_dir)
    predict = model.method.predict_any_size  # what segment calls (Method contract)
    model.method.predict_any_size = lambda x, *a: calls.append(tuple(x.shape[-2:])) or predict(x, *a)
    result = model.segment(image, ["red dotted", "blue striped"])
    assert result.labels.shape == shape and np.isfinite(result.scores).all()
    assert max(calls[0]) <= MAX_ASPECT * model.size  # not 96 x 1,920,000 for a 1-pixel strip
    assert main(["segment", str(image), "--classes", "red dotted,blue striped", "--run", str(run_dir),
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    (out,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"]
    assert np.asarray(Image.open(out["labels"])).shape == shape


def test_class_names_with_commas_quotes_and_other_letters(run_dir, tmp_path, capsys):
    from PIL import Image

    from zegbench.cli import main

    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image)
    names = ["striped star, the large one", '"dotted" circle']  # a comma needs the file; quotes are kept
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n\n", encoding="utf-8")
    base = ["segment", str(image), "--run", str(run_dir), "--out", str(tmp_path / "out"), "--json"]
    assert main([*base, "--classes-file", str(tmp_path / "classes.txt")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["classes"] == names
    # --classes splits at commas; a quote stays part of the name.
    assert main([*base, "--classes", '"dotted" circle,striped star']) == 0
    classes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["classes"]
    assert classes == ['"dotted" circle', "striped star"]
    # The in-house CLIP reads the world's words only: a non-ASCII word is named whole, not in pieces.
    assert main([*base, "--classes", "dötted star"]) == 2
    assert "cannot read 'dötted'" in capsys.readouterr().err
    assert main([*base, "--classes", "a", "--classes-file", str(tmp_path / "classes.txt")]) == 2


def test_full_size_labels_equal_resizing_every_class_at_once():
    from zegbench.segment import CLASSES_AT_FULL_SIZE, full_size_argmax

    scores = torch.randn(1, 3 * CLASSES_AT_FULL_SIZE + 2, 13, 17, generator=torch.Generator().manual_seed(0))
    scores[:, 5] = scores[:, 12]  # a tie across chunks: the lower class wins, as max's does
    expected_best, expected = F.interpolate(scores, size=(50, 61), mode="bilinear", align_corners=False)[0].max(0)
    best, labels = full_size_argmax(scores, (50, 61))
    assert torch.equal(labels, expected) and torch.equal(best, expected_best)


def test_a_large_photo_never_holds_every_class_at_full_size(run_dir):
    """On a GPU, [C, H, W] scores at a 12 MP photo's size are 8 GB for COCO-Stuff's 171 classes:
    the largest tensor segment makes must stay far below C x H x W (here 20 classes, 600 x 900)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestTensor(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(tensor, torch.Tensor):
                    LargestTensor.largest = max(LargestTensor.largest, tensor.numel())
            return out

    names = list(worlds.generator().CLASS_NAMES)  # 20
    image = np.random.default_rng(0).integers(0, 255, (600, 900, 3), dtype=np.uint8)
    model = zegbench.load(run_dir)
    model.segment(image, names)  # the class embeddings are cached: not what is measured
    with LargestTensor():
        result = model.segment(image, names)
    assert LargestTensor.largest <= 8 * 600 * 900 < len(names) * 600 * 900
    assert result.scores.shape == (20, 600, 900)  # still there, at full size, when asked for
    assert (result.scores.argmax(0) == result.labels).all()
