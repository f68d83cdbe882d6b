"""Dataset configs by name (``datasets/<name>.yaml`` in a config folder) and datasets built from them."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from zegbench.config_dirs import config_file, config_names
from zegbench.datasets.transforms import TransformSpec
from zegbench.errors import ZegbenchError, validation_error
from zegbench.utils.io import read_yaml_mapping
from zegbench.utils.ranges import Count, NonNegativeInt


class Recipe(BaseModel):
    """How methods train on a dataset: keys for every method, per method class, per method (checked at resolve time)."""

    model_config = ConfigDict(extra="forbid")
    method: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    per_class: dict[str, dict[str, Any]] = Field(default_factory=dict)
    per_method: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SplitSpec(BaseModel):
    """Where one split's pairs are: a list of ids (or every image of ``img_dir``), and the folders.

    Unset folders and suffixes come from the dataset's top-level keys.
    """

    model_config = ConfigDict(extra="forbid")
    list: str | None = None  # path under the root; None: every ``*<img_suffix>`` in img_dir
    img_dir: str | None = None
    ann_dir: str | None = None
    img_suffix: str | None = None
    seg_suffix: str | None = None


class DatasetConfig(BaseModel):
    """Schema of a ``datasets/<name>.yaml`` config (after ``base:`` is merged)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    layout: Literal["voc", "coco_stuff"] = "voc"
    subdir: str = ""
    img_dir: str = "JPEGImages"
    ann_dir: str = "SegmentationClass"
    img_suffix: str = ".jpg"
    seg_suffix: str = ".png"
    reduce_zero_label: bool = False
    ignore_index: Annotated[int, Field(ge=0, le=255)] = 255  # labels are 8-bit PNGs
    # A plain name means the VOC convention: the list ImageSets/Segmentation/<name>.txt. A list of
    # parts is their concatenation (mmseg's VOC aug: train.txt with SegmentationClass + aug.txt
    # with SegmentationClassAug).
    splits: dict[str, str | SplitSpec | list[str | SplitSpec]]
    expected: dict[str, NonNegativeInt] = Field(default_factory=dict)  # images per split, for `zegbench data verify`
    train_transform: TransformSpec | None = None  # real datasets: rescale, crop, flip, photometric (transforms.py)
    test_scale: tuple[Count, Count] | None = None  # evaluation rescales to (long, short) bounds, e.g. [2048, 512]
    # short_side: short side = min(test_scale), long side uncapped (ZegCLIP's Resize(min_size=512), docs/fidelity.md
    # item 13); fit: within both bounds (mmseg's plain keep_ratio, as its Context configs).
    test_resize: Literal["short_side", "fit"] = "short_side"
    classes: list[str] = Field(min_length=1)
    unseen: list[str]
    world: dict[str, Any] | None = None  # generator settings (checked by WorldSpec)
    recipe: Recipe = Field(default_factory=Recipe)


class DatasetInfo(DatasetConfig):
    """A checked dataset config: its values typed, with the schema's defaults filled in.

    ``name`` is the name it was looked up by; ``classes`` are in label order. ``config``
    is the mapping as written (``base:`` merged), which a run's identity fingerprints
    (``engine.identity``); code reads the typed attributes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    classes: tuple[str, ...]
    unseen: tuple[str, ...]
    config: dict[str, Any]
    path: Path  # the file that defines it, for error lines

    @property
    def seen(self) -> tuple[str, ...]:
        return tuple(c for c in self.classes if c not in self.unseen)

    @property
    def unseen_ids(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.classes) if c in self.unseen)

    @property
    def seen_ids(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.classes) if c not in self.unseen)


def available() -> list[str]:
    """The dataset names of every config folder."""
    return config_names("datasets")


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``; nested mappings merge key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_config(name: str, chain: tuple[str, ...] = ()) -> tuple[dict, Path]:
    path = config_file("datasets", name)
    cfg = read_yaml_mapping(path)
    base = cfg.pop("base", None)
    if base:  # a config may start from another and change a few keys
        if base in chain:
            raise ZegbenchError(f"{path}: 'base: {base}' forms a cycle")
        cfg = _merge(_read_config(base, (*chain, name))[0], cfg)
    return cfg, path


def load_dataset_info(name: str) -> DatasetInfo:
    """Read and check dataset ``name``'s config (following ``base:``)."""
    cfg, path = _read_config(name)
    try:
        checked = DatasetConfig.model_validate(cfg)
    except ValidationError as err:
        raise validation_error(err, str(path), schema=DatasetConfig) from None
    stray = [c for c in checked.unseen if c not in checked.classes]
    if stray:
        raise ZegbenchError(f"{path}: unseen class {stray[0]!r} is not in 'classes'")
    return DatasetInfo(**{**dict(checked), "name": name, "config": cfg, "path": path})


def world_spec(info: DatasetInfo, seed: int | None = None):
    """The ``WorldSpec`` a world dataset config describes (``seed`` overrides the config's)."""
    from zegbench.datasets import worlds

    w = dict(info.world or {})
    version = w.get("version", worlds.DEFAULT_VERSION)
    world = worlds.generator(version)
    if tuple(info.classes) != world.CLASS_NAMES or tuple(info.unseen) != world.UNSEEN_CLASSES:
        raise ZegbenchError(f"{info.path}: classes/unseen differ from the world "
                            f"generator v{version}'s; copy them from `zegbench world describe --version {version}`")
    if seed is not None:
        w["seed"] = seed
    if "name" in w:
        raise ZegbenchError(f"{info.path}: key 'world.name': unknown key (a world is named by its dataset)")
    try:
        return _world_settings().model_validate({"world": {**w, "name": info.name}}).world
    except ValidationError as err:
        raise validation_error(err, str(info.path), schema=_world_settings()) from None


@lru_cache(maxsize=None)
def _world_settings() -> type[BaseModel]:
    """A model holding a dataset config's ``world:`` as a ``WorldSpec`` (ranges included), so an error names
    ``world.<key>``. Built on first use: the generator's modules load only for world datasets."""
    from zegbench.datasets.generate import WorldSpec

    return create_model("WorldSettings", world=(WorldSpec, ...))


def build_dataset(name: str, split: str, data_root: str | Path | None = None, world_seed: int | None = None,
                  cache_dir: str | Path | None = None, progress: bool = False):
    """The ``split`` ('train' or 'val') of dataset ``name``.

    A world is generated on first use, and its split decoded once into arrays that every later
    call maps (``datasets/decoded.py``); a real dataset is read from its folder.
    """
    from zegbench.datasets.decoded import decoded
    from zegbench.datasets.folder import ConcatFolders, SegmentationFolder
    from zegbench.datasets.generate import ensure_world, fingerprint

    info = load_dataset_info(name)
    spec = world_spec(info, world_seed) if info.world is not None else None
    if spec is not None:
        root = ensure_world(spec, cache_dir, progress=progress)
    else:
        root = dataset_root(info, data_root)
        if not root.is_dir():
            raise ZegbenchError(f"dataset folder {root} does not exist: check --data-root")
    parts = [SegmentationFolder(root, **layout, num_classes=len(info.classes),
                                reduce_zero_label=info.reduce_zero_label, ignore_index=info.ignore_index)
             for layout in split_layouts(info, split)]
    if spec is not None:
        parts = [decoded(part, fingerprint(spec), split, progress=progress) for part in parts]
    return parts[0] if len(parts) == 1 else ConcatFolders(parts)


def dataset_root(info: DatasetInfo, data_root: str | Path | None) -> Path:
    """The folder a real dataset's paths are relative to (``--data-root`` + its ``subdir``)."""
    if data_root is None:
        raise ZegbenchError(f"dataset {info.name!r} needs --data-root (or ZEGBENCH_DATA) pointing at its folder")
    return Path(data_root) / info.subdir


def split_layouts(info: DatasetInfo, split: str) -> list[dict]:
    """``SegmentationFolder`` keywords for each part of ``split`` (id list or None, folders), defaults filled in."""
    spec = info.splits.get(split)
    if spec is None:
        raise ZegbenchError(f"{info.path}: no split {split!r} under 'splits'")
    layouts = []
    for part in spec if isinstance(spec, list) else [spec]:
        if isinstance(part, str):  # the VOC convention
            part = SplitSpec(list=f"ImageSets/Segmentation/{part}.txt")
        layouts.append({"split_file": part.list, "img_dir": part.img_dir or info.img_dir,
                        "ann_dir": part.ann_dir or info.ann_dir, "img_suffix": part.img_suffix or info.img_suffix,
                        "seg_suffix": part.seg_suffix or info.seg_suffix})
    return layouts
