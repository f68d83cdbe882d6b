"""A method kept outside zegbench (its module and its YAML, nothing else) through train, evaluate,
report and segment, as a user would add one; and the clear errors of a ``class:`` that is not one."""
from __future__ import annotations

import csv
import json
import math
import os
import sys

import numpy as np
import pytest

from zegbench.errors import ZegbenchError
from zegbench.methods import method_class

# A 1x1 convolution over 4x4-pooled pixels into CLIP's joint space, scored against the frozen text
# embeddings of the class names: trainable, zero-shot in form, and seconds on a CPU.
TOY_METHOD = '''
"""A toy zero-shot method: pooled pixels -> 1x1 conv -> cosine with frozen CLIP text embeddings."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zegbench.clip.loading import IN_HOUSE
from zegbench.methods import Method


class ToyMethod(Method):
    """Each 4x4 cell's mean colour, projected into CLIP's text space; softmax over the class names."""

    tiny_config = {"clip_weights": "none"}

    def __init__(self, clip: str = IN_HOUSE, clip_weights: str | None = None, templates: str = "single",
                 pool: int = 4, logit_scale: float = 10.0):
        super().__init__()
        _, dim = self.load_frozen_clip(clip, clip_weights, None, templates)
        self.head = nn.Conv2d(3, dim, kernel_size=1)
        self.pool, self.logit_scale = pool, logit_scale

    def forward(self, images, class_names):
        cells = F.normalize(self.head(F.avg_pool2d(images, self.pool)), dim=1)
        logits = self.logit_scale * torch.einsum("bdhw,cd->bchw", cells, self.text_embeddings(class_names))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False), {}

    def loss(self, logits, labels, aux=None):
        return {"loss_ce": F.cross_entropy(logits, labels, ignore_index=255)}

    @torch.no_grad()
    def predict(self, images, class_names, seen):
        return self(images, class_names)[0].softmax(dim=1)


class NotAMethod(nn.Module):
    pass
'''

SUITE = """dataset: world_smoke
seeds: [0]
groups:
  - methods: [toy]
    set: {steps: 2, batch_size: 4, warmup: 1, log_every: 1}
"""


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """``toy_method.py`` importable (here and in run processes) and a config folder on ``$ZEGBENCH_CONFIGS``."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "toy_method.py").write_text(TOY_METHOD)
    configs = tmp_path / "configs"
    for sub in ("methods", "datasets", "suites"):
        (configs / sub).mkdir(parents=True)
    (configs / "methods" / "toy.yaml").write_text("description: a 1x1 conv over pooled pixels\n"
                                                  "class: toy_method:ToyMethod\n")
    (configs / "suites" / "toy_suite.yaml").write_text(SUITE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(configs))
    yield tmp_path
    sys.modules.pop("toy_method", None)


def test_a_method_from_outside_the_package_trains_evaluates_reports_and_segments(user_folder):
    import zegbench
    from zegbench.harness.cli import main
    from zegbench.methods import create_method, list_methods

    assert "toy" in list_methods()
    assert type(create_method("toy", **method_class("toy_method:ToyMethod").tiny_config)).__name__ == "ToyMethod"
    results, reports = user_folder / "results", user_folder / "reports"
    assert main(["--suite", "toy_suite", "--results", str(results), "--reports", str(reports)]) == 0
    (result_path,) = results.glob("toy_suite/toy-world_smoke-s0-*/result.json")
    result = json.loads(result_path.read_text())
    assert result["status"] == "finished" and (result["setting"], result["inference"]) == ("inductive", "whole")
    assert all(math.isfinite(result[k]) for k in ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU"))
    assert result["params_trainable"] == 3 * 128 + 128  # the 1x1 conv into the in-house CLIP's 128-d space
    config = (result_path.parent / "config.yaml").read_text()
    assert "class: toy_method:ToyMethod" in config  # the class string is part of the hashed config
    log = [json.loads(line) for line in (result_path.parent / "metrics.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [0, 1] and all(math.isfinite(entry["loss"]) for entry in log)
    # The report's tables have a row for the toy variant with the run's numbers.
    readme = (reports / "toy_suite" / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| toy ")]
    assert rows and f"| {result['hIoU']:.1f} " in rows[0]
    (row,) = csv.DictReader((reports / "toy_suite" / "runs.csv").open())
    assert (row["variant"], row["method"], float(row["hIoU"])) == ("toy", "toy", result["hIoU"])
    # The trained run through `zegbench.load`: any image size, any class names (Method.predict_any_size).
    model = zegbench.load(result_path.parent)
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    segmentation = model.segment(image, ["red dotted", "blue striped"])
    assert segmentation.labels.shape == (50, 70) and np.isfinite(segmentation.scores).all()


def test_a_trained_run_loads_after_its_method_yaml_is_renamed_or_removed(user_folder):
    """``zegbench.load`` builds from the config the run recorded (its class included), never from the YAML by name."""
    import zegbench
    from zegbench.engine.identity import run_folder_for
    from zegbench.engine.resolve import resolve
    from zegbench.engine.run import run_experiment
    from zegbench.methods import create_method
    from zegbench.store import RunStore

    resolved = resolve("toy", "world_smoke", 0, {"steps": 2, "batch_size": 4, "warmup": 1})
    folder = run_folder_for(resolved, RunStore(user_folder / "results"), "toy_suite")
    run_experiment(resolved, folder)
    run_dir = folder.path
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    names = ["red dotted", "blue striped"]
    before = zegbench.load(run_dir).segment(image, names)
    method_yaml = user_folder / "configs" / "methods" / "toy.yaml"
    method_yaml.rename(method_yaml.with_name("toy_v2.yaml"))
    with pytest.raises(ZegbenchError, match="unknown method 'toy'"):  # building by name fails now
        create_method("toy", **method_class("toy_method:ToyMethod").tiny_config)
    for gone in ("renamed", "removed"):
        if gone == "removed":
            method_yaml.with_name("toy_v2.yaml").unlink()
        for source in (run_dir, run_dir / "checkpoint.pt"):  # the run folder, and its checkpoint's embedded config
            after = zegbench.load(source).segment(image, names)
            assert np.array_equal(after.model_scores, before.model_scores), (gone, source)
            assert np.array_equal(after.labels, before.labels)


@pytest.mark.parametrize("class_name,message", [
    ("no_such_module_anywhere:Toy", "cannot import 'no_such_module_anywhere'"),
    ("toy_method:Missing", "module 'toy_method' has no 'Missing'"),
    ("toy_method:NotAMethod", "'NotAMethod' is not a subclass of zegbench.methods.Method"),
    ("nope", "unknown method class 'nope'"),
])
def test_a_class_that_is_not_a_method_is_one_clear_line(user_folder, class_name, message):
    with pytest.raises(ZegbenchError, match=message) as err:
        method_class(class_name)
    assert "\n" not in str(err.value)
