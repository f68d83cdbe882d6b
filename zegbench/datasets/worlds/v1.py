"""The embedded synthetic world: vocabulary, split and procedural renderer.

Objects are flat shapes filled with a surface pattern in a named colour, drawn
over a cluttered background. A segmentation class is a phrase "<pattern> <shape>"
("striped star"); colour is a nuisance attribute that captions may name.

The split mirrors the real benchmark's structure (an unseen "sheep" is known to
web-scale CLIP, taught by no seen class, and has a seen neighbour "cow"): every
class with the pattern ``dotted`` is unseen. "dotted" occurs in no seen class but
in the in-house CLIP's pretraining captions, and every unseen class has seen
neighbours that share its shape ("striped star" for "dotted star").

Everything is drawn with numpy from a per-sample generator, so the same
(seed, version, index) always gives the same pixels.
"""
from __future__ import annotations

import numpy as np

from zegbench.datasets.worlds.common import (
    IGNORE_INDEX,
    MAX_TILT,
    SHAPES,
    WorldObject,
    background,
    paint,
)

# The generic interface every version exposes (``worlds/__init__.py``), and v1's own drawing primitives
from zegbench.datasets.worlds.common import pattern_mask as pattern_mask
from zegbench.datasets.worlds.common import sample_rng as sample_rng
from zegbench.datasets.worlds.common import shape_mask as shape_mask

# Bump when rendering or the class list changes: it keys the on-disk cache. A new
# design is a new module (worlds/v2.py) so that published numbers stay reproducible.
WORLD_VERSION = 1
CLIP_MODEL = "zegbench-world-vit"  # the in-house CLIP pretrained on this world's captions

PATTERNS = ("solid", "striped", "checked", "dotted")
UNSEEN_PATTERNS = ("dotted",)
COLOURS = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (235, 220, 50),
    "green": (50, 180, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 80, 220),
    "purple": (150, 60, 200),
    "pink": (240, 120, 190),
}

CLASS_NAMES = tuple(f"{p} {s}" for p in PATTERNS for s in SHAPES)
UNSEEN_CLASSES = tuple(c for c in CLASS_NAMES if c.split()[0] in UNSEEN_PATTERNS)
SEEN_CLASSES = tuple(c for c in CLASS_NAMES if c not in UNSEEN_CLASSES)
# Words the in-house CLIP's captions use beyond the caption templates' own.
WORDS = (*COLOURS, *PATTERNS, *SHAPES)
SINGLE_TEMPLATES = (
    "a photo of a {colour} {pattern} {shape}",
    "a {colour} {pattern} {shape}",
    "a photo of a {pattern} {shape}",
    "a {pattern} {shape}",
    "this is a {colour} {pattern} {shape}",
)



def draw_object(img: np.ndarray, obj: WorldObject, rng: np.random.Generator) -> np.ndarray:
    """Paint ``obj`` onto ``img`` (H, W, 3 float) in place; return its boolean footprint."""
    colour = np.array(COLOURS[obj.colour], dtype=np.float32) + rng.normal(0, 10, size=3)
    return paint(img, obj, colour, rng)


def random_object(size: int, rng: np.random.Generator, class_name: str | None = None,
                  colour: str | None = None, radius_range: tuple[float, float] = (0.12, 0.28),
                  centred: bool = False) -> WorldObject:
    """Sample an object; ``class_name`` and ``colour`` fix those attributes when given.

    The radius is drawn as a fraction of ``size``.
    """
    if class_name is None:
        class_name = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]
    pattern, shape = class_name.split()
    radius = rng.uniform(*radius_range) * size
    if centred:
        cx, cy = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    else:
        cx, cy = rng.uniform(radius * 0.6, size - radius * 0.6, size=2)
    if colour is None:
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
    # Mostly upright, like objects in photos: orientation is a nuisance, not a puzzle.
    angle = rng.uniform(-MAX_TILT, MAX_TILT)
    return WorldObject(shape, pattern, colour, float(cx), float(cy), float(radius), float(angle))


def render_scene(size: int, rng: np.random.Generator, num_objects: tuple[int, int] = (2, 5),
                 radius_range: tuple[float, float] = (0.10, 0.24)) -> tuple[np.ndarray, np.ndarray, list[WorldObject]]:
    """A segmentation scene: uint8 image (H, W, 3), int64 label (H, W) with 255 background.

    Later objects occlude earlier ones, so labels carry overlap; radii span a
    factor of about 2.4 so classes appear at several scales.
    """
    img = background(size, rng)
    label = np.full((size, size), IGNORE_INDEX, dtype=np.int64)
    objects = []
    for _ in range(rng.integers(num_objects[0], num_objects[1] + 1)):
        obj = random_object(size, rng, radius_range=radius_range)
        footprint = draw_object(img, obj, rng)
        label[footprint] = CLASS_NAMES.index(obj.class_name)
        objects.append(obj)
    return np.clip(img, 0, 255).astype(np.uint8), label, objects


def render_single(size: int, rng: np.random.Generator, class_name: str | None = None,
                  colour: str | None = None) -> tuple[np.ndarray, WorldObject]:
    """One roughly centred object on clutter: CLIP pretraining and zero-shot images."""
    img = background(size, rng)
    obj = random_object(size, rng, class_name, colour, radius_range=(0.22, 0.40), centred=True)
    draw_object(img, obj, rng)
    return np.clip(img, 0, 255).astype(np.uint8), obj


def look_alikes(class_name: str) -> list[str]:
    """The seen classes of the same shape: what an unseen class is most easily taken for."""
    shape = class_name.split()[1]
    return [c for c in SEEN_CLASSES if c.endswith(f" {shape}")]


# ---- captions: the in-house CLIP's "web" text for this world -------------------------------------

def caption_combos() -> list[tuple[str, str]]:
    """(class, colour) pairs that single-object caption images cycle through."""
    return [(c, k) for c in CLASS_NAMES for k in COLOURS]


def describe(obj: WorldObject, rng: np.random.Generator) -> str:
    """A noun phrase for one object, naming its colour most of the time."""
    if rng.uniform() < 0.7:
        return f"{obj.colour} {obj.pattern} {obj.shape}"
    return f"{obj.pattern} {obj.shape}"


def single_caption(obj: WorldObject, rng: np.random.Generator) -> str:
    """The caption of a single-object image."""
    template = SINGLE_TEMPLATES[rng.integers(len(SINGLE_TEMPLATES))]
    return template.format(colour=obj.colour, pattern=obj.pattern, shape=obj.shape)
