"""Every numeric config key has its range, checked when a config is resolved (issue 27, item 7).

Method keys (``__init__`` signatures), training keys (``TrainConfig``) and dataset keys
(``DatasetConfig``, ``TransformSpec``, a world's ``WorldSpec``) carry their range as type hints
(``zegbench/utils/ranges.py``). A value outside it is one error line naming the layer that set
it and the allowed range, before anything runs; values inside it reach the config unchanged.
"""
from __future__ import annotations

import math
import types
import typing
from dataclasses import fields, is_dataclass

import pytest
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from zegbench.datasets.catalog import DatasetConfig, load_dataset_info, world_spec
from zegbench.datasets.generate import WorldSpec
from zegbench.datasets.transforms import TransformSpec
from zegbench.engine.config import schema_for_class, train_schema
from zegbench.engine.resolve import resolve
from zegbench.errors import ZegbenchError, validation_error
from zegbench.methods import create_method, list_methods, method_class, method_config
from zegbench.utils.ranges import Count, Fraction, Positive

DATASET = "world_smoke"
# one method config of each implementing class: its keys are the class's signature
METHOD_OF_CLASS = {method_config(name)["class"]: name for name in reversed(list_methods())}


def _without_none(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _leaves(hint):
    """The number hints inside ``hint`` (list, tuple and dict items followed), Annotated kept."""
    hint = _without_none(hint)
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    base = _without_none(base)
    if base in (int, float):
        return [hint]
    if typing.get_origin(base) in (list, tuple, dict):
        return [leaf for arg in typing.get_args(base) if arg is not Ellipsis for leaf in _leaves(arg)]
    return []


def _bounds(hint) -> dict:
    """{'ge': .., 'gt': .., 'le': .., 'multiple_of': .., 'allow_inf_nan': ..} of a number hint (missing: absent)."""
    found = {}
    hint = _without_none(hint)
    while typing.get_origin(hint) is typing.Annotated:
        for item in hint.__metadata__:
            for bound in getattr(item, "metadata", None) or [item]:
                for name in ("ge", "gt", "le", "lt", "multiple_of", "allow_inf_nan"):
                    if getattr(bound, name, None) is not None:
                        found[name] = getattr(bound, name)
        hint = _without_none(typing.get_args(hint)[0])
    return found


def _field_hints(schema) -> dict:
    """Each field's hint, its range included, of a pydantic model or a dataclass."""
    if is_dataclass(schema):
        hints = typing.get_type_hints(schema, include_extras=True)
        return {f.name: hints[f.name] for f in fields(schema)}
    return {name: typing.Annotated[(f.annotation, *f.metadata)] if f.metadata else f.annotation
            for name, f in schema.model_fields.items()}


SCHEMAS = {**{f"method {cls}": schema_for_class(method_class(cls)) for cls in METHOD_OF_CLASS},
           "training": train_schema(), "dataset": DatasetConfig, "train_transform": TransformSpec, "world": WorldSpec}


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_every_numeric_key_has_a_range(schema):
    hints = _field_hints(SCHEMAS[schema])
    numeric = {name: leaves for name, hint in hints.items() if (leaves := _leaves(hint))}
    assert numeric, f"{schema}: no numeric key found, so this test checks nothing"
    for name, leaves in numeric.items():
        for leaf in leaves:
            bounds = _bounds(leaf)
            assert bounds, f"{schema} key {name!r} has no range: hint it with zegbench/utils/ranges.py's types"
            if _without_none(typing.get_args(leaf)[0]) is float:
                assert bounds.get("allow_inf_nan") is False, f"{schema} key {name!r} accepts NaN and infinity"


def _just_outside(bounds: dict, is_int: bool):
    """A value of the key's type just outside its range, below it where it has a lower bound."""
    if "ge" in bounds:
        return bounds["ge"] - 1
    if "gt" in bounds:
        return bounds["gt"]
    if "le" in bounds:
        return bounds["le"] + 1
    return None if is_int else math.nan


def _resolve_cases():
    cases = []
    for cls, method in sorted(METHOD_OF_CLASS.items()):
        for name, hint in _field_hints(schema_for_class(method_class(cls))).items():
            cases += [("method", method, name, hint)] if _leaves(hint) else []
    cases += [("train", "zegclip", name, hint) for name, hint in _field_hints(train_schema()).items()
              if _leaves(hint) and name != "seed"]  # the seed is resolve's argument (the CLI checks --seeds)
    return cases


RESOLVE_CASES = _resolve_cases()
FLOAT_CASES = [c for c in RESOLVE_CASES if _without_none(typing.get_args(_leaves(c[3])[0])[0]) is float]


@pytest.mark.parametrize("kind, method, key, hint", RESOLVE_CASES, ids=[f"{c[1]}-{c[2]}" for c in RESOLVE_CASES])
def test_resolve_refuses_a_value_just_outside_each_range(kind, method, key, hint):
    leaf = _leaves(hint)[0]
    is_int = _without_none(typing.get_args(leaf)[0]) is int
    bad = _just_outside(_bounds(leaf), is_int)
    value = [bad] if typing.get_origin(_without_none(hint)) is list else bad
    what = "training key" if kind == "train" else f"method ({method_config(method)['class']}) key"
    with pytest.raises(ZegbenchError) as caught:
        resolve(method, DATASET, 0, {key: value})
    message = str(caught.value)
    assert message.startswith(f"command-line override: {what} '{key}"), message
    assert f"(got {bad!r}; allowed: " in message, message


@pytest.mark.parametrize("kind, method, key, hint", FLOAT_CASES, ids=[f"{c[1]}-{c[2]}" for c in FLOAT_CASES])
def test_resolve_refuses_nan_and_infinity_for_every_float(kind, method, key, hint):
    for bad in (math.nan, math.inf):
        value = [bad] if typing.get_origin(_without_none(hint)) is list else bad
        with pytest.raises(ZegbenchError, match=rf"key '{key}[.0-9]*': Input should be a finite number"):
            resolve(method, DATASET, 0, {key: value})


def test_values_on_the_edges_of_their_ranges_resolve_unchanged():
    edges = {"dropout": 0.0, "calibration": -0.25, "warmup": 0, "checkpoint_every": 0, "warmup_ratio": 1.0,
             "self_training_start": 0.0, "power": 0.0, "min_lr": 0.0, "head_lr_mult": 0.0, "focal_weight": 0.0}
    cfg = resolve("zegclip", DATASET, 0, edges)
    given = {**cfg["method_config"], **cfg["train"]}
    assert {key: given[key] for key in edges} == edges
    assert resolve("two_stage", DATASET, 0, {"ensemble_weight": 1.0, "mask_threshold": 0.0, "grad_clip": 0.0})


def test_a_stride_past_the_crop_is_refused_where_its_windows_would_leave_pixels_unscored():
    with pytest.raises(ZegbenchError) as caught:
        resolve("zegclip", DATASET, 0, {"crop": 64})  # stride defaults to image_size, 96 on the world
    assert str(caught.value).startswith(
        f"{load_dataset_info(DATASET).path} (recipe.per_class.zegclip) and command-line override: "
        "method (zegclip) keys 'image_size', 'crop': the sliding window's stride (96) is larger than its crop (64)")
    assert resolve("zegclip", DATASET, 0, {"crop": 64, "stride": 64})["method_config"]["stride"] == 64
    # What the rule prevents: windows that skip pixels leave their scores 0 / 0.
    gaps = create_method("zegclip", clip_weights="none", image_size=32, crop=32, stride=48).eval()
    scores = gaps.predict_any_size(torch.zeros(1, 3, 100, 100), ["red dotted", "blue striped"], [True, False])
    assert scores.isnan().any()


def test_attention_heads_must_split_the_width_evenly():
    with pytest.raises(ZegbenchError, match=r"command-line override and .*world_smoke.yaml \(recipe.method\): "
                                            r"method \(zegclip\) keys 'decoder_heads', 'clip': decoder_heads \(6\) "
                                            r"must divide the width of zegbench-world2-vit's embeddings \(128\)"):
        resolve("zegclip", DATASET, 0, {"decoder_heads": 6})
    assert resolve("zegclip", DATASET, 0, {"decoder_heads": 16})["method_config"]["decoder_heads"] == 16
    with pytest.raises(ZegbenchError, match=r"keys 'hidden', 'decoder_heads': hidden \(36\) must be a multiple "
                                            r"of decoder_heads \(8\)"):
        resolve("two_stage", DATASET, 0, {"hidden": 36, "decoder_heads": 8})
    # DETR's sine positions give the proposal decoder's width four equal parts
    with pytest.raises(ZegbenchError, match=r"key 'hidden': .*\(got 30; allowed: a whole number >= 4 and a "
                                            r"multiple of 4\)"):
        resolve("two_stage", DATASET, 0, {"hidden": 30, "decoder_heads": 5})


def _my_dataset(tmp_path, monkeypatch, text: str):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mine.yaml").write_text(text)
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp_path))


@pytest.mark.parametrize("text, expected", [
    ("base: voc12\ntrain_transform: {ratio_range: [0.5, 0]}\n",
     "key 'train_transform.ratio_range.1': Input should be greater than 0 (got 0; allowed: a finite number > 0)"),
    ("base: voc12\ntest_scale: [2048, 0]\n", "key 'test_scale.1': Input should be greater than or equal to 1"),
    ("base: voc12\nignore_index: 256\n", "(got 256; allowed: a whole number in [0, 255])"),
    ("base: voc12\nexpected: {val: -1}\n", "key 'expected.val': Input should be greater than or equal to 0"),
])
def test_dataset_keys_out_of_range_name_the_file_and_key(tmp_path, monkeypatch, text, expected):
    _my_dataset(tmp_path, monkeypatch, text)
    with pytest.raises(ZegbenchError) as caught:
        load_dataset_info("mine")
    assert str(caught.value).startswith(f"{tmp_path / 'datasets' / 'mine.yaml'}: key '")
    assert expected in str(caught.value)


@pytest.mark.parametrize("world, expected", [
    ("{radius_range: [0, 0.3]}", "key 'world.radius_range.0': Input should be greater than 0"),
    ("{seed: -1}", "key 'world.seed': Input should be greater than or equal to 0"),
    ("{objects_per_scene: [4, 2]}", "key 'world': objects_per_scene [4, 2]: the first (fewest) must not exceed"),
    ("{scenes: 10}", "key 'world.scenes': unknown key"),
    ("{classes_per_scene: [1.0]}", "key 'world': classes_per_scene: generator v2 draws each object's class on its"),
    ("{version: 3, classes_per_scene: [0.5, 0.2]}", "classes_per_scene [0.5, 0.2]: the shares of scenes with 1, 2, "
                                                    "... classes must sum to 1, not 0.7"),
    ("{version: 3, classes_per_scene: [1.5]}", "key 'world.classes_per_scene.0': Input should be less than or equal"),
])
def test_world_settings_out_of_range_are_refused_at_resolve(tmp_path, monkeypatch, world, expected):
    _my_dataset(tmp_path, monkeypatch, f"base: world_smoke\nworld: {world}\n")
    with pytest.raises(ZegbenchError, match=r"mine.yaml: ") as caught:
        resolve("zegclip", "mine", 0)
    assert expected in str(caught.value)
    assert world_spec(load_dataset_info(DATASET)).train_scenes == 48  # the shipped world is read as before


class _Inner(BaseModel):
    share: Fraction = 0.5


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner | None = None
    sizes: list[Count] = []
    scales: dict[str, Positive] = {}


@pytest.mark.parametrize("record, line", [
    ({"inner": {"share": 2}}, "f.yaml: key 'inner.share': Input should be less than or equal to 1 "
                              "(got 2; allowed: a finite number in [0, 1])"),
    ({"sizes": [3, 0]}, "f.yaml: key 'sizes.1': Input should be greater than or equal to 1 "
                        "(got 0; allowed: a whole number >= 1)"),
    ({"scales": {"a": float("inf")}}, "f.yaml: key 'scales.a': Input should be a finite number "
                                      "(got inf; allowed: a finite number > 0)"),
    ({"sizse": []}, "f.yaml: key 'sizse': unknown key"),
])
def test_one_helper_words_every_schema_error(record, line):
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(record)
    assert str(validation_error(caught.value, "f.yaml", schema=_Outer)) == line
    by_layer = validation_error(caught.value, lambda key: f"layer of {key}", "training key", _Outer)
    assert str(by_layer).startswith(f"layer of {next(iter(record))}: training key '")
