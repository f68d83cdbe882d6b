"""World v2: classes that a patch can see, shapes and sizes that a VOC image has.

World v1 named a class "<pattern> <shape>"; a shape is not visible in one 8x8
patch of a 12x12 grid, so its classes could not be learned at patch level within
the budget and every method scored 7-17 mIoU. Here a class is a *surface*:
"<colour> <pattern>" ("red striped"), like a material (red brick, black fur) that
a patch shows on its own. The object's shape, tilt and size are nuisances, and
the background holds patterned clutter in colours no class uses, so neither
"has a pattern" nor "has a colour" alone names a class.

The split keeps v1's structure: every ``dotted`` class is unseen (15 seen / 5
unseen). "dotted" is named by the in-house CLIP's captions only, and each unseen
class has a seen look-alike of the same colour ("red checked" for "red dotted":
small dark squares against small dark discs), as "sheep" has "cow".

Objects are larger than in v1 (median about 20 patches of the 12x12 grid, VOC's
median object at 512 px covers tens of its 32x32 patches) and background is
about two thirds of the pixels, as in VOC.
"""
from __future__ import annotations

import numpy as np

from zegbench.datasets.worlds.common import IGNORE_INDEX, MAX_TILT, SHAPES, WorldObject, background, paint, sample_rng

__all__ = ["IGNORE_INDEX", "sample_rng"]

WORLD_VERSION = 2
CLIP_MODEL = "zegbench-world2-vit"  # the in-house CLIP pretrained on this world's captions

PATTERNS = ("striped", "checked", "hatched", "dotted")
UNSEEN_PATTERNS = ("dotted",)
COLOURS = {  # five hue families far apart, so colour alone never confuses two classes
    "red": (215, 45, 40),
    "yellow": (230, 205, 40),
    "green": (45, 165, 60),
    "blue": (40, 85, 215),
    "purple": (145, 60, 195),
}
# Clutter colours: no class uses them, so a patterned background patch is background.
CLUTTER_COLOURS = ((128, 128, 128), (120, 85, 50), (235, 140, 30), (40, 195, 205), (235, 120, 185))

CLASS_NAMES = tuple(f"{c} {p}" for p in PATTERNS for c in COLOURS)
UNSEEN_CLASSES = tuple(c for c in CLASS_NAMES if c.split()[1] in UNSEEN_PATTERNS)
SEEN_CLASSES = tuple(c for c in CLASS_NAMES if c not in UNSEEN_CLASSES)
# Words the in-house CLIP's captions use beyond the caption templates' own.
WORDS = (*COLOURS, *PATTERNS, *SHAPES, "thing")

SINGLE_TEMPLATES = (
    "a photo of a {cls} {shape}",
    "a {cls} {shape}",
    "a photo of a {cls}",
    "a {cls}",
    "a {cls} thing",
    "this is a {cls}",
)


class SurfaceObject(WorldObject):
    """A world v2 object: its class is its surface, "<colour> <pattern>"."""

    @property
    def class_name(self) -> str:
        return f"{self.colour} {self.pattern}"


def look_alikes(class_name: str) -> list[str]:
    """The seen classes of the same colour: what an unseen class is most easily taken for."""
    colour = class_name.split()[0]
    return [c for c in SEEN_CLASSES if c.startswith(f"{colour} ")]


def _place(size: int, rng: np.random.Generator, radius_range: tuple[float, float], centred: bool):
    radius = rng.uniform(*radius_range) * size
    if centred:
        cx, cy = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    else:
        cx, cy = rng.uniform(radius * 0.6, size - radius * 0.6, size=2)
    return float(cx), float(cy), float(radius), float(rng.uniform(-MAX_TILT, MAX_TILT))


def random_object(size: int, rng: np.random.Generator, class_name: str | None = None, shape: str | None = None,
                  radius_range: tuple[float, float] = (0.18, 0.32), centred: bool = False) -> WorldObject:
    """Sample an object of ``class_name`` (random when None); shape and placement are nuisances."""
    if class_name is None:
        class_name = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]
    colour, pattern = class_name.split()
    if shape is None:
        shape = SHAPES[rng.integers(len(SHAPES))]
    cx, cy, radius, angle = _place(size, rng, radius_range, centred)
    return SurfaceObject(shape, pattern, colour, cx, cy, radius, angle)


def draw_object(img: np.ndarray, obj: WorldObject, rng: np.random.Generator) -> np.ndarray:
    """Paint a class object onto ``img`` in place; return its footprint."""
    colour = np.array(COLOURS[obj.colour], dtype=np.float32) + rng.normal(0, 12, size=3)
    return paint(img, obj, colour, rng)


def draw_clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """One patterned distractor in a colour no class has (background: labelled 255)."""
    size = img.shape[0]
    cx, cy, radius, angle = _place(size, rng, (0.08, 0.18), centred=False)
    obj = WorldObject(SHAPES[rng.integers(len(SHAPES))], PATTERNS[rng.integers(len(PATTERNS))], "clutter",
                      cx, cy, radius, angle)
    colour = np.array(CLUTTER_COLOURS[rng.integers(len(CLUTTER_COLOURS))], dtype=np.float32)
    paint(img, obj, colour + rng.normal(0, 8, size=3), rng)


def render_scene(size: int, rng: np.random.Generator, num_objects: tuple[int, int] = (2, 3),
                 radius_range: tuple[float, float] = (0.22, 0.36)) -> tuple[np.ndarray, np.ndarray, list[WorldObject]]:
    """A segmentation scene: uint8 image (H, W, 3), int64 label (H, W) with 255 background."""
    img = background(size, rng)
    for _ in range(rng.integers(1, 4)):
        draw_clutter(img, rng)
    label = np.full((size, size), IGNORE_INDEX, dtype=np.int64)
    objects = []
    for _ in range(rng.integers(num_objects[0], num_objects[1] + 1)):
        obj = random_object(size, rng, radius_range=radius_range)
        footprint = draw_object(img, obj, rng)
        label[footprint] = CLASS_NAMES.index(obj.class_name)
        objects.append(obj)
    return np.clip(img, 0, 255).astype(np.uint8), label, objects


def render_single(size: int, rng: np.random.Generator, class_name: str | None = None,
                  shape: str | None = None) -> tuple[np.ndarray, WorldObject]:
    """One roughly centred object on clutter: CLIP pretraining and zero-shot images."""
    img = background(size, rng)
    for _ in range(rng.integers(0, 3)):
        draw_clutter(img, rng)
    obj = random_object(size, rng, class_name, shape, radius_range=(0.22, 0.40), centred=True)
    draw_object(img, obj, rng)
    return np.clip(img, 0, 255).astype(np.uint8), obj


# ---- captions: the in-house CLIP's "web" text for this world -------------------------------------

def caption_combos() -> list[tuple[str, str]]:
    """(class, shape) pairs that single-object caption images cycle through."""
    return [(c, s) for c in CLASS_NAMES for s in SHAPES]


def describe(obj: WorldObject, rng: np.random.Generator) -> str:
    """A noun phrase for one object, naming its shape half of the time."""
    if rng.uniform() < 0.5:
        return f"{obj.class_name} {obj.shape}"
    return obj.class_name


def single_caption(obj: WorldObject, rng: np.random.Generator) -> str:
    """The caption of a single-object image."""
    template = SINGLE_TEMPLATES[rng.integers(len(SINGLE_TEMPLATES))]
    return template.format(cls=obj.class_name, shape=obj.shape)
