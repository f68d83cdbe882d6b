"""Write the world to disk in the PASCAL VOC layout that the real-dataset loader reads.

    <root>/JPEGImages/<id>.png           RGB image (PNG: JPEG would smear the patterns)
    <root>/SegmentationClass/<id>.png    class index per pixel, 255 = background/ignore
    <root>/ImageSets/Segmentation/{train,val}.txt
    <root>/world.json                    manifest: version, seed, classes, split, counts

The root is ``<cache>/worlds/<name>-v<version>-seed<seed>``: a new version or seed
never overwrites another world. Generation goes to a temporary sibling folder
that is renamed into place when complete, so a killed generation leaves nothing
a later run could mistake for a finished world.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import ConfigDict
from tqdm import tqdm

from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError
from zegbench.utils.paths import cache_root
from zegbench.utils.ranges import Count, Fraction, NonNegativeInt, Positive

STREAMS = {"train": 0, "val": 1}
MANIFEST = "world.json"


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a world's files (a dataset config's ``world:``, checked by ``catalog.world_spec``)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # how world_spec validates a config's settings

    name: str = "world"
    version: Count = worlds.DEFAULT_VERSION  # the generator (zegbench.datasets.worlds; an unknown one is refused)
    seed: NonNegativeInt = 0  # numpy's generators take no negative seed
    image_size: Count = 96
    train_scenes: Count = 2000
    val_scenes: Count = 500
    objects_per_scene: tuple[NonNegativeInt, NonNegativeInt] = (2, 5)  # fewest, most: each scene draws between
    radius_range: tuple[Positive, Positive] = (0.10, 0.24)  # object radii as a share of the image side
    # Shares of scenes holding 1, 2, 3, ... distinct classes (capped by the objects drawn), the other objects
    # repeating a class as VOC's instances do (generator v3 on). None: each object's class is drawn on its own.
    classes_per_scene: tuple[Fraction, ...] | None = None

    def __post_init__(self):
        fewest, most = self.objects_per_scene
        if fewest > most:  # numpy draws from fewest..most: an empty range fails in the middle of generation
            raise ValueError(f"objects_per_scene [{fewest}, {most}]: the first (fewest) must not exceed the second")
        if self.classes_per_scene is not None:
            if self.version < 3:
                raise ValueError(f"classes_per_scene: generator v{self.version} draws each object's class on its "
                                 f"own; drawing classes per scene needs version 3 or later")
            total = sum(self.classes_per_scene)
            if not self.classes_per_scene or abs(total - 1) > 1e-6:
                raise ValueError(f"classes_per_scene {list(self.classes_per_scene)}: the shares of scenes with 1, 2, "
                                 f"... classes must sum to 1, not {total:g}")

    def render_scene(self, rng: np.random.Generator):
        """One scene of this world, ``(image, label, objects)``, drawn by its generator with its settings."""
        extra = {} if self.classes_per_scene is None else {"classes_per_scene": self.classes_per_scene}
        return self.generator.render_scene(self.image_size, rng, self.objects_per_scene, self.radius_range, **extra)

    def counts(self) -> dict[str, int]:
        return {"train": self.train_scenes, "val": self.val_scenes}

    @property
    def generator(self):
        """The generator module of this world's version (``zegbench.datasets.worlds``)."""
        return worlds.generator(self.version)


def world_root(spec: WorldSpec, cache_dir: str | Path | None = None) -> Path:
    """Folder of this world inside the cache: keyed by name, generator version and seed."""
    base = Path(cache_dir) if cache_dir else cache_root() / "worlds"
    return base / f"{spec.name}-v{spec.version}-seed{spec.seed}"


def scene_id(split: str, index: int) -> str:
    return f"{split}_{index:06d}"


def write_scene(root: Path, spec: WorldSpec, split: str, index: int) -> None:
    """Render scene ``index`` of ``split`` and write its image and label PNGs."""
    rng = spec.generator.sample_rng(spec.seed, STREAMS[split], index)
    img, label, _ = spec.render_scene(rng)
    sid = scene_id(split, index)
    Image.fromarray(img).save(root / "JPEGImages" / f"{sid}.png", compress_level=1)
    Image.fromarray(label.astype(np.uint8), mode="L").save(root / "SegmentationClass" / f"{sid}.png",
                                                           compress_level=1)


def manifest(spec: WorldSpec) -> dict:
    recorded = {
        "generator_version": spec.version, "name": spec.name, "seed": spec.seed,
        "image_size": spec.image_size, "objects_per_scene": list(spec.objects_per_scene),
        "radius_range": list(spec.radius_range), "counts": spec.counts(),
        "classes": list(spec.generator.CLASS_NAMES), "unseen": list(spec.generator.UNSEEN_CLASSES),
        "ignore_index": spec.generator.IGNORE_INDEX,
    }
    if spec.classes_per_scene is not None:  # only when set: the manifests of worlds without it stay as they were
        recorded["classes_per_scene"] = list(spec.classes_per_scene)
    return recorded


def fingerprint(spec: WorldSpec) -> str:
    """12 hex digits over the world's manifest: every setting that decides its files, its generator's version too."""
    return hashlib.sha1(json.dumps(manifest(spec), sort_keys=True).encode()).hexdigest()[:12]


def ensure_world(spec: WorldSpec, cache_dir: str | Path | None = None, progress: bool = False) -> Path:
    """Return the world's root folder, generating it first if it is not complete on disk."""
    root = world_root(spec, cache_dir)
    done = root / MANIFEST
    if done.is_file():
        recorded = json.loads(done.read_text())
        if recorded != manifest(spec):
            raise ZegbenchError(f"{done} describes another world than the one asked for (its settings differ): "
                                f"delete {root} or choose another --seed or name")
        return root
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (tmp / sub).mkdir(parents=True)
    except OSError as err:
        raise ZegbenchError(f"cannot write the world cache at {root.parent} ({err.strerror}): set "
                            f"ZEGBENCH_CACHE or --cache-dir to a writable folder") from None
    total = sum(spec.counts().values())
    with tqdm(total=total, desc=f"generate {root.name}", disable=not progress) as bar:
        for split, count in spec.counts().items():
            for index in range(count):
                write_scene(tmp, spec, split, index)
                bar.update()
            ids = "".join(f"{scene_id(split, i)}\n" for i in range(count))
            (tmp / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(ids)
    (tmp / MANIFEST).write_text(json.dumps(manifest(spec), indent=2))
    try:
        os.replace(tmp, root)
    except OSError:  # another process finished the same world first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def generation_rate(spec: WorldSpec, scenes: int = 400) -> dict:
    """Scenes per second on one core: rendering alone, and rendering plus PNG writing."""
    import tempfile

    start = time.perf_counter()
    for index in range(scenes):
        spec.render_scene(spec.generator.sample_rng(spec.seed, 0, index))
    render = scenes / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "JPEGImages").mkdir()
        (root / "SegmentationClass").mkdir()
        start = time.perf_counter()
        for index in range(scenes):
            write_scene(root, spec, "train", index)
        written = scenes / (time.perf_counter() - start)
    return {"render_per_s": round(render, 1), "render_and_write_per_s": round(written, 1)}
