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

from dataclasses import dataclass

import numpy as np

# Bump when rendering or the class list changes: it keys the on-disk cache. A new
# design is a new module (world_v2.py) so that published numbers stay reproducible.
WORLD_VERSION = 1
CLIP_MODEL = "zegbench-world-vit"  # the in-house CLIP pretrained on this world's captions

SHAPES = ("circle", "square", "triangle", "star", "cross")
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
IGNORE_INDEX = 255
# Words the in-house CLIP's captions use beyond the caption templates' own.
WORDS = (*COLOURS, *PATTERNS, *SHAPES)
SINGLE_TEMPLATES = (
    "a photo of a {colour} {pattern} {shape}",
    "a {colour} {pattern} {shape}",
    "a photo of a {pattern} {shape}",
    "a {pattern} {shape}",
    "this is a {colour} {pattern} {shape}",
)
MAX_TILT = np.deg2rad(25)  # objects are rotated by at most this angle either way


@dataclass(frozen=True)
class WorldObject:
    """One object of a scene: its attributes and where it sits."""

    shape: str
    pattern: str
    colour: str
    cx: float  # centre, pixels
    cy: float
    radius: float  # half the object's extent, pixels
    angle: float  # rotation, radians

    @property
    def class_name(self) -> str:
        return f"{self.pattern} {self.shape}"


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` on normalised object coordinates (extent about [-1, 1])."""
    if shape == "circle":
        return u * u + v * v <= 0.95
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.78
    if shape == "triangle":
        # Equilateral, pointing up in object coordinates: three half-planes.
        return (v <= 0.5) & (np.sqrt(3) * u - v <= 1.0) & (-np.sqrt(3) * u - v <= 1.0)
    if shape == "star":
        # Five pointed star as a polar boundary with sharp tips and deep notches.
        r = np.hypot(u, v)
        theta = np.arctan2(v, u)
        sector = np.abs(((theta * 5 / (2 * np.pi)) % 1.0) - 0.5) * 2  # 1 at tips, 0 in notches
        return r <= 0.42 + 0.58 * sector**2
    if shape == "cross":
        arm = 0.33
        return ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def pattern_mask(pattern: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the pattern's second tone at image pixel coordinates ``x, y``.

    Periods are in pixels (a texture, not scaled with the object), with random
    phase and orientation so the pattern cannot be memorised by position.
    """
    if pattern == "solid":
        return np.zeros(x.shape, dtype=bool)
    period = rng.uniform(5.0, 7.0)
    alpha = rng.uniform(0, np.pi)
    ca, sa = np.cos(alpha), np.sin(alpha)
    a = (x * ca + y * sa) / period + rng.uniform()
    b = (-x * sa + y * ca) / period + rng.uniform()
    if pattern == "striped":
        return (a % 1.0) < 0.5
    if pattern == "checked":
        return ((np.floor(a) + np.floor(b)) % 2) == 0
    if pattern == "dotted":
        da, db = (a % 1.0) - 0.5, (b % 1.0) - 0.5
        return da * da + db * db <= 0.3**2
    if pattern == "hatched":  # thin lines both ways: a grid (world v2)
        return ((a % 1.0) < 0.25) | ((b % 1.0) < 0.25)
    raise ValueError(f"unknown pattern {pattern!r}")


def background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered background: smooth gradient, noise, and random strokes and blobs."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = rng.uniform(60, 200, size=3)
    tilt = rng.uniform(-40, 40, size=(2, 3))
    img = base + (xx[..., None] / size - 0.5) * tilt[0] + (yy[..., None] / size - 0.5) * tilt[1]
    img = img + rng.normal(0, 8, size=(size, size, 3))
    for _ in range(rng.integers(3, 7)):  # thin strokes: edges that belong to no object
        x0, y0, x1, y1 = rng.uniform(0, size, size=4)
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy + 1e-6), 0, 1)
        dist = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        img[dist <= rng.uniform(0.5, 1.5)] = rng.uniform(0, 255, size=3)
    for _ in range(rng.integers(2, 5)):  # soft blobs of random colour
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, size / 8)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - 0.6 * blob) + 0.6 * blob * rng.uniform(0, 255, size=3)
    return img


def draw_object(img: np.ndarray, obj: WorldObject, rng: np.random.Generator) -> np.ndarray:
    """Paint ``obj`` onto ``img`` (H, W, 3 float) in place; return its boolean footprint."""
    colour = np.array(COLOURS[obj.colour], dtype=np.float32) + rng.normal(0, 10, size=3)
    return paint(img, obj, colour, rng)


def paint(img: np.ndarray, obj: WorldObject, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint ``obj``'s shape filled with its pattern in ``colour`` and a darker tone; return its footprint."""
    size = img.shape[0]
    # Work inside the object's bounding box only: most of the image is untouched.
    reach = obj.radius * 1.05
    x0, x1 = max(int(obj.cx - reach), 0), min(int(obj.cx + reach) + 2, size)
    y0, y1 = max(int(obj.cy - reach), 0), min(int(obj.cy + reach) + 2, size)
    footprint = np.zeros((size, size), dtype=bool)
    second = colour * rng.uniform(0.2, 0.4)  # a darker tone of the same hue
    if x0 >= x1 or y0 >= y1:
        return footprint
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ca, sa = np.cos(obj.angle), np.sin(obj.angle)
    dx, dy = (xx - obj.cx) / obj.radius, (yy - obj.cy) / obj.radius
    inside = shape_mask(obj.shape, dx * ca + dy * sa, -dx * sa + dy * ca)
    tone = pattern_mask(obj.pattern, xx, yy, rng)
    window = img[y0:y1, x0:x1]
    window[inside] = np.where(tone[..., None], second, colour)[inside]
    footprint[y0:y1, x0:x1] = inside
    return footprint


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


def sample_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator per (seed, stream, index): order- and process-independent."""
    return np.random.default_rng([seed, stream, index])


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
