"""The real datasets' configs carry the reference's splits and the paper's recipes."""
from __future__ import annotations

import pytest

from zegbench.datasets.catalog import load_dataset_info
from zegbench.engine.resolve import resolve

SPLITS = {  # reference section 4: label-order indices of the unseen classes
    "voc12": (20, (15, 16, 17, 18, 19)),
    "coco_stuff164k": (171, (19, 23, 28, 29, 36, 51, 76, 88, 94, 112, 133, 136, 137, 157, 160)),
    "pascal_context59": (59, (0, 6, 7, 14, 19, 24, 31, 33, 48, 54)),
    "pascal_context60": (60, (1, 7, 8, 15, 20, 25, 32, 34, 49, 55)),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_real_dataset_split_matches_reference(name):
    info = load_dataset_info(name)
    count, unseen = SPLITS[name]
    assert len(info.classes) == len(set(info.classes)) == count
    assert info.unseen_ids == unseen


@pytest.mark.parametrize("name, steps, tokens, templates", [
    ("voc12", 20000, 10, "single"), ("coco_stuff164k", 80000, 100, "coco15")])
def test_paper_recipe_resolves(name, steps, tokens, templates):
    cfg = resolve("zegclip", name, 0)
    method, train = cfg["method_config"], cfg["train"]
    assert ((train["steps"], train["batch_size"] * train["accumulate"], train["lr"], train["warmup"])
            == (steps, 16, 2e-5, 1500))
    assert (method["num_tokens"], method["templates"], method["image_size"]) == (tokens, templates, 512)
    assert ((method["inference"], method["crop"], method["stride"], method["normalization"])
            == ("slide", 512, 426, "imagenet"))
