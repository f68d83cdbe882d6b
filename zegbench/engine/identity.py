"""What identifies a run's result, and what identifies its trained weights.

A run folder's hash covers its resolved config (``config_hash``; the folder itself is
``store.RunStore.run_dir``). Three things a run reads are not config keys, yet change its numbers:

- the dataset definition (class list, unseen split, layout, transforms, world
  generator settings and version): ``dataset_fingerprint``;
- the in-house CLIP checkpoint that ships in the package: ``clip_fingerprint``;
- the activation an open_clip CLIP is built with (``clip_activation``: OpenAI
  weights get QuickGELU even under the name ``ViT-B-16``, which used to build GELU).

``input_fingerprints`` puts them into the resolved config, so editing a dataset
YAML or shipping a new in-house CLIP gives new run folders instead of silently
reusing numbers made from the old ones.

Separately, many variants differ only in how a trained model predicts (the
two-stage ensemble rule, ZegCLIP's seen-class calibration or sliding window).
``training_hash`` covers only what decides the weights, so such a variant can
evaluate an already trained checkpoint instead of training the same weights
again (``run._trained_elsewhere``).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from zegbench.datasets.catalog import DatasetInfo
from zegbench.datasets.transforms import TRAIN_TRANSFORM_VERSION
from zegbench.errors import ZegbenchError
from zegbench.store import RunFolder, RunStore, read_config, short_hash

# Dataset keys that change nothing a run computes: the recipe is already part of
# the resolved config, and expected image counts are read by `data verify` only.
_NOT_DATA = ("recipe", "expected")


def config_hash(resolved: dict) -> str:
    """8 hex digits over a whole resolved config (``resolve.resolve``): the end of its run folder's name."""
    return short_hash(resolved)


def run_folder_for(resolved: dict, store: RunStore, suite: str) -> RunFolder:
    """The folder of the run ``resolved`` describes, in suite ``suite`` of ``store``."""
    return store.run_folder(suite, resolved["method"], resolved["dataset"], resolved["seed"], config_hash(resolved))


def dataset_fingerprint(info: DatasetInfo) -> str:
    """8 hex digits over everything in the dataset config that decides data or evaluation."""
    cfg = {k: v for k, v in info.config.items() if k not in _NOT_DATA}
    # The transforms as typed, defaults included: a new transform switch, or a changed default,
    # gives new folders to the datasets that use it (worlds have neither: unchanged).
    if info.train_transform is not None:
        cfg["train_transform"] = info.train_transform.model_dump(mode="json")
        cfg["train_transform_version"] = TRAIN_TRANSFORM_VERSION  # what the code computes, as for worlds
    if info.test_scale is not None:
        cfg["test_resize"] = info.test_resize
    if cfg.get("world") is not None:  # the generated images depend on the generator's code version too
        from zegbench.datasets.catalog import world_spec

        cfg["world_generator_version"] = world_spec(info).version
    return short_hash(cfg)


@lru_cache(maxsize=None)
def _file_sha(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a replaced file is hashed again
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:8]


def clip_fingerprint(method_config: dict) -> str | None:
    """The shipped in-house checkpoint's hash when the method loads it by default, else None.

    Other weights are named in the config already (a tag or a path; hashing a
    user's 600 MB file at every resolve would cost more than it protects).
    """
    from zegbench.clip.loading import IN_HOUSE, shipped_checkpoint

    shipped = shipped_checkpoint(method_config.get("clip", IN_HOUSE))
    if shipped is None or method_config.get("clip_weights"):
        return None
    if not shipped.is_file():
        return None  # loading fails later with the regenerate instructions
    stat = shipped.stat()
    return _file_sha(str(shipped), stat.st_size, stat.st_mtime_ns)


def split_fingerprint(info: DatasetInfo) -> str:
    """8 hex digits over the class list and unseen split alone (``dataset_split`` in result.json)."""
    return short_hash([list(info.classes), list(info.unseen)])


def input_fingerprints(datasets: list[DatasetInfo], method_config: dict) -> dict:
    """``{"datasets": {name: fingerprint}, "clip_checkpoint": hash, "clip_activation": ...}`` for every
    input the run reads (``datasets``: the training dataset first, then those it is evaluated on).

    ``clip_activation`` is recorded for open_clip models only: the in-house CLIP's
    architecture is fixed by its shipped config, so world runs' identities leave it out.
    """
    from zegbench.clip.loading import IN_HOUSE, clip_activation

    out: dict = {"datasets": {info.name: dataset_fingerprint(info) for info in datasets}}
    clip = clip_fingerprint(method_config)
    if clip:
        out["clip_checkpoint"] = clip
    name = method_config.get("clip", IN_HOUSE)
    if name != IN_HOUSE:
        out["clip_activation"] = clip_activation(name, method_config.get("clip_weights"))
    return out


def training_identity(resolved: dict) -> dict:
    """The part of a resolved config that decides the trained weights.

    Leaves out the method's name, its ``inference_keys`` (read by ``predict``
    only), the cross-dataset evaluations and the evaluation-only datasets'
    fingerprints.
    """
    from zegbench.methods import method_class

    method_cfg = dict(resolved["method_config"])
    skip = method_class(method_cfg["class"]).inference_keys
    inputs = dict(resolved.get("inputs") or {})
    if "datasets" in inputs:
        inputs["datasets"] = {resolved["dataset"]: inputs["datasets"].get(resolved["dataset"])}
    return {"dataset": resolved["dataset"], "seed": resolved["seed"], "train": resolved["train"],
            "method_config": {k: v for k, v in method_cfg.items() if k not in skip},
            "world_size": resolved.get("world_size", 1), "inputs": inputs}


def training_hash(resolved: dict) -> str:
    """8 hex digits over ``training_identity``: equal for variants that train the same weights."""
    return short_hash(training_identity(resolved))


def read_training_hash(run_dir: Path) -> str | None:
    """The training hash of a finished run folder (from its config.yaml), or None if it cannot be read."""
    resolved = read_config(run_dir)
    try:
        return training_hash(resolved) if resolved is not None else None
    except (KeyError, TypeError, AttributeError, ZegbenchError):
        return None
