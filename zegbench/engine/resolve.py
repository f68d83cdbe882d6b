"""A run's config: the method's YAML, the dataset's recipe and the overrides, merged and validated.

``resolve`` gives the whole config a run is identified by (``identity.config_hash``): every
method and training key with its value (class defaults included), the seed, and the inputs'
fingerprints. Suites, ``zegbench run``, the speed suite and the checks before a run all start here.
"""
from __future__ import annotations

from dataclasses import asdict, fields

from zegbench.config_dirs import config_file
from zegbench.datasets.catalog import load_dataset_info
from zegbench.engine.config import TrainConfig, schema_for_class, train_schema, validate_keys
from zegbench.engine.identity import input_fingerprints
from zegbench.errors import ZegbenchError
from zegbench.methods import method_class, method_config

TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def resolve(method: str, dataset: str, seed: int, overrides: dict | None = None, world_size: int = 1,
            eval_on: list[str] | None = None, overrides_from: str = "command-line override") -> dict:
    """Merge method config, the dataset's recipe and ``overrides`` (keys of either kind), then validate.

    Later wins: the method's YAML, ``recipe.method`` and ``recipe.train`` (every
    method on this dataset), ``recipe.per_class[class]`` (every method of one
    implementing class, e.g. all ZegCLIP variants), ``recipe.per_method[method]``
    (one method), then ``overrides``; the last three take method or training
    keys. Every key is checked against the method class's signature or
    ``TrainConfig`` (types and ranges included), then against the class's rules
    between keys (``Method.key_problem``); an error names the layer that set the bad key
    (``overrides_from`` names the overrides: a suite's ``set`` and ``grid`` are no command line).
    Keys nobody sets take the class's defaults, and those are recorded too, except a class's
    ``recorded_when_set`` keys, recorded only when set off their default.
    """
    info = load_dataset_info(dataset)
    recipe = info.recipe
    method_file, dataset_file = config_file("methods", method), info.path
    method_keys, train_keys, origin = {}, asdict(TrainConfig()), {}
    method_yaml = method_config(method)
    cls_name = method_yaml["class"]
    layers = [(method_yaml, f"{method_file}", "method"),
              (recipe.method, f"{dataset_file} (recipe.method)", "method"),
              (recipe.train, f"{dataset_file} (recipe.train)", "train"),
              (recipe.per_class.get(cls_name) or {}, f"{dataset_file} (recipe.per_class.{cls_name})", None),
              (recipe.per_method.get(method) or {}, f"{dataset_file} (recipe.per_method.{method})", None),
              (overrides or {}, overrides_from, None)]
    for values, where, kind in layers:
        for key, value in values.items():
            if kind == "train" or (kind is None and key in TRAIN_KEYS):
                train_keys[key] = value
            else:
                method_keys[key] = value
            origin[key] = where
    method_keys.pop("class")
    method_keys.pop("description", None)
    cls = method_class(cls_name)
    schema = schema_for_class(cls)
    method_keys = validate_keys(schema, method_keys, origin, f"method ({cls_name})")
    # Every key the class reads, its defaults included: a changed default (an official
    # behaviour made the default) gives new run folders rather than reusing old numbers.
    method_keys = {**{name: field.default for name, field in schema.model_fields.items()}, **method_keys}
    _check_key_rules(cls, cls_name, method_keys, origin)
    # Except keys added after runs were recorded (``Method.recorded_when_set``), held only off their default:
    # their default computes what those runs did, so adding the switch renames none of them.
    later = cls.recorded_when_set
    method_keys = {k: v for k, v in method_keys.items()
                   if k not in later or v != schema.model_fields[k].default}
    train_keys = validate_keys(train_schema(), {**train_keys, "seed": seed}, origin, "training")
    resolved = {"method": method, "dataset": dataset, "seed": seed, "method_config": {"class": cls_name, **method_keys},
                "train": train_keys}
    if world_size > 1:  # data-parallel: the global batch is batch_size x world_size x accumulate.
        resolved["world_size"] = world_size  # (absent for one process, so single-process hashes never change)
    eval_infos = [load_dataset_info(other) for other in eval_on or []]  # an unknown name fails now, not after training
    if eval_on:  # cross-dataset evaluations: part of what the run produces
        resolved["eval_on"] = list(eval_on)
    # Dataset definitions and the shipped CLIP checkpoint decide the numbers too: editing
    # either gives new run folders rather than reusing results made from the old ones.
    resolved["inputs"] = input_fingerprints([info, *[i for i in eval_infos if i.name != dataset]],
                                            resolved["method_config"])
    return resolved


def _check_key_rules(cls: type, cls_name: str, keys: dict, origin: dict[str, str]) -> None:
    """The method's rules between keys (``Method.key_problem``), as one error line naming the layers
    that set the keys involved (a key nobody set is the class's default)."""
    problem = cls.key_problem(keys)
    if problem is None:
        return
    involved, what = problem
    layers = [origin[key] for key in involved if key in origin]
    if len(layers) < len(involved):
        layers.append(f"the {cls_name} class's defaults")
    named = ", ".join(f"'{key}'" for key in involved)
    raise ZegbenchError(f"{' and '.join(dict.fromkeys(layers))}: method ({cls_name}) keys {named}: {what}")
