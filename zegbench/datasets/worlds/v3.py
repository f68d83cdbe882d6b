"""World v3: the benchmark is a sliver of a broad world its in-house CLIP knows.

World v2's CLIP was pretrained on the benchmark's own 20 surfaces, so it knew
nothing else and fine-tuning had nothing to forget (issue 25, cause a). Here the
segmentation benchmark keeps v2's structure (20 classes "<colour> <pattern>",
every ``dotted`` class unseen, each with seen look-alikes of its colour), but
the caption world is far wider: 18 colours x 13 patterns = 234 nameable
surfaces (``CONCEPTS``), 14 shapes, finishes, sizes, counts, places, tilt,
backgrounds and spatial relations (``CONTENT_WORDS``). Caption images draw
their surfaces uniformly over the concepts, so the benchmark's 20 are about 9%
of the caption mass (measured by ``zegbench.clip.breadth``).

A caption example is first *planned* (objects in relative coordinates and the
caption), then drawn: the caption stream does not depend on the image size, and
its text can be counted without drawing a pixel.

Segmentation scenes (``render_scene``) hold benchmark objects over background
clutter drawn from the broad world's other surfaces, and a void band (255)
along every object boundary, as VOC's annotation has (``VOID_REACH``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from zegbench.datasets.worlds import common
from zegbench.datasets.worlds import v1 as world_v1
from zegbench.datasets.worlds import v2 as world_v2
from zegbench.datasets.worlds.common import (
    IGNORE_INDEX,
    MAX_TILT,
    WorldObject,
    background,
    sample_rng,
)

__all__ = ["IGNORE_INDEX", "sample_rng"]

WORLD_VERSION = 3
CLIP_MODEL = "zegbench-world3-vit"  # the in-house CLIP pretrained on this world's captions

# The benchmark (as world v2): five colours x four patterns, every dotted class unseen.
BENCHMARK_COLOURS = ("red", "yellow", "green", "blue", "purple")
BENCHMARK_PATTERNS = ("striped", "checked", "hatched", "dotted")
UNSEEN_PATTERNS = ("dotted",)
PATTERNS = BENCHMARK_PATTERNS  # the benchmark's patterns (`world describe`); the broad world's: ALL_PATTERNS
COLOURS = {  # the benchmark's five are v2's values; the others keep at least 60 RGB units from every colour
    "red": (215, 45, 40), "yellow": (230, 205, 40), "green": (45, 165, 60), "blue": (40, 85, 215),
    "purple": (145, 60, 195), "orange": (240, 135, 30), "lime": (165, 225, 60), "teal": (20, 120, 115),
    "cyan": (50, 205, 220), "sky": (120, 175, 240), "navy": (25, 30, 110), "magenta": (225, 40, 170),
    "pink": (250, 160, 200), "brown": (120, 70, 30), "maroon": (110, 15, 65), "grey": (135, 135, 135),
    "black": (25, 25, 25), "white": (240, 240, 240),
}
ALL_PATTERNS = (*BENCHMARK_PATTERNS, "solid", "pinstriped", "zigzag", "wavy", "spotted", "speckled", "brick",
                "crossed", "dashed")
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring", "crescent", "hexagon",
          "arrow", "oval", "pentagon", "bar")
PLURALS = tuple(f"{s}es" if s.endswith("s") else f"{s}s" for s in SHAPES)
FINISHES = ("shiny", "outlined", "shadowed", "glowing", "faded", "grainy")
SIZES = ((0.18, "tiny"), (0.24, "small"), (0.30, "medium"), (0.36, "large"), (1.0, "huge"))  # radius / image
COUNTS = ("one", "two", "three", "four")
PLACES = {  # where a single object sits (centre, as a fraction of the image) -> its phrase
    (0.28, 0.28): "in the top left corner", (0.72, 0.28): "in the top right corner",
    (0.28, 0.72): "in the bottom left corner", (0.72, 0.72): "in the bottom right corner",
    (0.5, 0.28): "at the top", (0.5, 0.72): "at the bottom", (0.28, 0.5): "on the left",
    (0.72, 0.5): "on the right", (0.5, 0.5): "in the centre",
}
RELATIONS = {"x": ("left of", "right of"), "y": ("above", "below")}
TILTS = ("upright", "tilted")
BACKGROUNDS = ("plain", "busy", "dark", "light")
NOUNS = ("thing", "things", "object", "objects", "background")

CLASS_NAMES = tuple(f"{c} {p}" for p in BENCHMARK_PATTERNS for c in BENCHMARK_COLOURS)
UNSEEN_CLASSES = tuple(c for c in CLASS_NAMES if c.split()[1] in UNSEEN_PATTERNS)
SEEN_CLASSES = tuple(c for c in CLASS_NAMES if c not in UNSEEN_CLASSES)
CONCEPTS = tuple(f"{c} {p}" for p in ALL_PATTERNS for c in COLOURS)  # every nameable surface
CLUTTER_SURFACES = tuple(c for c in CONCEPTS if c not in CLASS_NAMES)
CONTENT_WORDS = (*COLOURS, *ALL_PATTERNS, *SHAPES, *PLURALS, *FINISHES, *(w for _, w in SIZES), *COUNTS,
                 "top", "bottom", "left", "right", "centre", "corner", "above", "below", "beside", *TILTS,
                 *BACKGROUNDS, *NOUNS)
FUNCTION_WORDS = ("a", "the", "of", "and", "in", "at", "on", "is", "this", "there", "photo", "picture")
WORDS = (*CONTENT_WORDS, *FUNCTION_WORDS)  # the in-house CLIP's vocabulary beyond the tokenizer's template words

SINGLE_TEMPLATES = ("a photo of a {}", "a {}", "this is a {}", "there is a {}", "a picture of a {}")
VOID_REACH = 2.2  # px; see void_band


@dataclass(frozen=True)
class SurfaceObject(world_v2.SurfaceObject):
    """A world v3 object: its class is its surface (as v2's); ``finish`` is a rendering nuisance."""

    finish: str = ""


def look_alikes(class_name: str) -> list[str]:
    """The seen classes of the same colour: what an unseen class is most easily taken for."""
    colour = class_name.split()[0]
    return [c for c in SEEN_CLASSES if c.startswith(f"{colour} ")]


# ---- shapes, patterns and finishes ----------------------------------------------------------------

def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` on normalised object coordinates (extent about [-1, 1], v points down)."""
    if shape in world_v1.SHAPES:
        return common.shape_mask(shape, u, v)
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "heart":  # (x^2 + y^2 - 1)^3 <= x^2 y^3, pointing down
        x, y = u * 1.2, -v * 1.2 + 0.15
        return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    if shape == "ring":
        return (r <= 0.95) & (r >= 0.55)
    if shape == "crescent":
        return (r <= 0.95) & (np.hypot(u - 0.45, v + 0.15) >= 0.75)
    if shape in ("hexagon", "pentagon"):  # regular polygon of circumradius 0.95
        n = 6 if shape == "hexagon" else 5
        sector = (theta + np.pi / 2) % (2 * np.pi / n) - np.pi / n
        return r * np.cos(sector) <= 0.95 * np.cos(np.pi / n)
    if shape == "oval":
        return u * u + (v / 0.6) ** 2 <= 0.95
    if shape == "arrow":  # pointing right: a shaft and a triangular head
        shaft = (u >= -0.95) & (u <= 0.15) & (np.abs(v) <= 0.25)
        head = (u >= 0.15) & (u <= 0.95) & (np.abs(v) <= 0.75 * (0.95 - u) / 0.8)
        return shaft | head
    if shape == "bar":
        return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.32)
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def pattern_mask(pattern: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the pattern's second tone at image pixel coordinates (a texture of period 5-7 px)."""
    if pattern in ("solid", "striped", "checked", "dotted", "hatched"):
        return common.pattern_mask(pattern, x, y, rng)
    if pattern == "speckled":  # random grains, no period
        return rng.uniform(size=x.shape) < 0.3
    period = rng.uniform(5.0, 7.0)
    alpha = rng.uniform(0, np.pi)
    ca, sa = np.cos(alpha), np.sin(alpha)
    a = (x * ca + y * sa) / period + rng.uniform()
    b = (-x * sa + y * ca) / period + rng.uniform()
    if pattern == "pinstriped":  # thin lines one way (hatched: thin lines both ways)
        return (a % 1.0) < 0.18
    if pattern == "zigzag":
        return ((a + 0.8 * np.abs((b / 2) % 1.0 - 0.5)) % 1.0) < 0.45
    if pattern == "wavy":
        return ((a + 0.3 * np.sin(np.pi * b)) % 1.0) < 0.45
    if pattern == "spotted":  # large irregular spots, most cells of a coarse lattice hold one
        ca_, cb_ = np.floor(a / 2), np.floor(b / 2)
        cell = np.random.default_rng(rng.integers(2**32)).uniform(size=(3, 64, 64))
        i, j = (ca_.astype(int) % 64), (cb_.astype(int) % 64)
        da, db = a / 2 - ca_ - (0.3 + 0.4 * cell[0, i, j]), b / 2 - cb_ - (0.3 + 0.4 * cell[1, i, j])
        return (da * da + db * db <= 0.3**2) & (cell[2, i, j] < 0.7)
    if pattern == "brick":  # rows offset by half a brick, thin mortar
        row = np.floor(b * 0.8)
        return ((b * 0.8) % 1.0 < 0.2) | (((a * 0.6 + 0.5 * (row % 2)) % 1.0) < 0.12)
    if pattern == "crossed":  # small plus signs on a lattice
        da, db = np.abs((a % 1.0) - 0.5), np.abs((b % 1.0) - 0.5)
        return ((da < 0.12) & (db < 0.36)) | ((db < 0.12) & (da < 0.36))
    if pattern == "dashed":  # broken thin lines
        return ((a % 1.0) < 0.25) & (((b / 1.5) % 1.0) < 0.6)
    raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(ALL_PATTERNS)}")


def _tones(colour_name: str, rng: np.random.Generator, noise: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """The surface's main tone and its pattern's second tone: darker, or lighter for dark colours."""
    colour = np.array(COLOURS[colour_name], dtype=np.float32)
    main = colour + rng.normal(0, noise, size=3)
    if colour @ np.array([0.299, 0.587, 0.114]) < 60:
        second = main + (255 - main) * rng.uniform(0.45, 0.6)
    else:
        second = main * rng.uniform(0.2, 0.4)
    return main, second


def paint(img: np.ndarray, obj: SurfaceObject, rng: np.random.Generator) -> np.ndarray:
    """Paint ``obj`` (its shape, surface and finish) onto ``img`` (H, W, 3 float) in place; return its footprint."""
    size = img.shape[0]
    main, second = _tones(obj.colour, rng)
    if obj.finish == "faded":  # washed out: towards grey, the pattern's contrast halved
        main = 0.8 * main + 0.2 * 150
        second = 0.5 * second + 0.5 * main
    reach = obj.radius * (1.45 if obj.finish in ("glowing", "shadowed") else 1.05)
    x0, x1 = max(int(obj.cx - reach), 0), min(int(obj.cx + reach) + 2, size)
    y0, y1 = max(int(obj.cy - reach), 0), min(int(obj.cy + reach) + 2, size)
    footprint = np.zeros((size, size), dtype=bool)
    if x0 >= x1 or y0 >= y1:
        return footprint
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ca, sa = np.cos(obj.angle), np.sin(obj.angle)

    def inside(scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        u, v = (xx - obj.cx - dx) / (obj.radius * scale), (yy - obj.cy - dy) / (obj.radius * scale)
        return shape_mask(obj.shape, u * ca + v * sa, -u * sa + v * ca)

    window = img[y0:y1, x0:x1]
    if obj.finish == "shadowed":  # a dark copy below and to the right
        window[inside(dx=0.18 * obj.radius, dy=0.18 * obj.radius)] *= 0.35
    if obj.finish == "glowing":  # a halo of the object's colour around it
        halo = inside(1.3)
        window[halo] = 0.45 * window[halo] + 0.55 * main
    mask = inside()
    tone = pattern_mask(obj.pattern, xx, yy, rng)
    surface = np.where(tone[..., None], second, main)
    if obj.finish == "shiny":  # a white highlight towards the top left
        d2 = (xx - obj.cx + 0.35 * obj.radius) ** 2 + (yy - obj.cy + 0.35 * obj.radius) ** 2
        glint = 0.75 * np.exp(-d2 / (2 * (0.3 * obj.radius) ** 2))[..., None]
        surface = surface * (1 - glint) + 255 * glint
    if obj.finish == "grainy":
        surface = surface + rng.normal(0, 30, size=surface.shape)
    if obj.finish == "outlined":  # a contrasting rim, about 1.5 px wide
        rim = mask & ~inside(1 - 1.5 / max(obj.radius, 2.0))
        edge = np.full(3, 235.0 if main @ np.array([0.299, 0.587, 0.114]) < 80 else 20.0)
        surface = np.where(rim[..., None], edge, surface)
    window[mask] = surface[mask]
    footprint[y0:y1, x0:x1] = mask
    return footprint


# ---- planning: what an image holds, in relative coordinates, and what its caption says ------------

@dataclass(frozen=True)
class Plan:
    """One image's objects (relative coordinates: ``cx, cy, radius`` as fractions of the size) and caption."""

    objects: tuple[SurfaceObject, ...]
    caption: str
    busy: bool  # strokes and blobs on the background, or a plain one
    tone: float  # the background's base brightness (0-255)


def size_word(radius: float) -> str:
    return next(word for limit, word in SIZES if radius < limit)


def _object(rng, concept: str, cx: float, cy: float, radius: float, finish: bool = True) -> SurfaceObject:
    colour, pattern = concept.split()
    chosen = FINISHES[rng.integers(len(FINISHES))] if finish and rng.uniform() < 0.5 else ""
    return SurfaceObject(SHAPES[rng.integers(len(SHAPES))], pattern, colour, cx, cy, radius,
                         float(rng.uniform(-MAX_TILT, MAX_TILT)), chosen)


def _phrase(obj: SurfaceObject, rng, plural: bool = False) -> str:
    """A noun phrase: [size] [finish] colour pattern shape; sometimes colour or pattern alone, as web text is."""
    words = []
    if rng.uniform() < 0.35:
        words.append(size_word(obj.radius))
    if obj.finish and rng.uniform() < 0.7:
        words.append(obj.finish)
    part = rng.uniform()
    words += [obj.colour] if part < 0.08 else [obj.pattern] if part < 0.16 else [obj.colour, obj.pattern]
    noun = rng.uniform()
    if noun < 0.6:
        words.append(PLURALS[SHAPES.index(obj.shape)] if plural else obj.shape)
    elif noun < 0.8 or plural:
        words.append(("things" if rng.uniform() < 0.5 else "objects") if plural else
                     ("thing" if rng.uniform() < 0.5 else "object"))
    return " ".join(words)


def _background_words(busy: bool, tone: float, rng) -> str:
    if rng.uniform() >= 0.25:
        return ""
    looks = ["busy" if busy else "plain"] + (["dark"] if tone < 90 else ["light"] if tone > 170 else [])
    return f" on a {looks[rng.integers(len(looks))]} background"


def plan_example(rng: np.random.Generator, concept: str) -> Plan:
    """One caption-world example whose main surface is ``concept``: a single object (60%), two objects
    in a spatial relation (25%) or 2-4 copies of one surface (15%)."""
    busy, tone = bool(rng.uniform() < 0.7), float(rng.uniform(60, 200))
    kind = rng.uniform()
    if kind < 0.6:
        placed = rng.uniform() < 0.3
        (px, py), place = list(PLACES.items())[rng.integers(len(PLACES))] if placed else ((0.5, 0.5), "")
        radius = rng.uniform(0.14, 0.24) if placed else rng.uniform(0.14, 0.42)
        jitter = rng.uniform(-0.05, 0.05, size=2)
        obj = _object(rng, concept, px + jitter[0], py + jitter[1], radius)
        words = _phrase(obj, rng)
        if obj.shape not in ("circle", "ring") and rng.uniform() < 0.2 and abs(obj.angle) > np.deg2rad(15):
            words = f"tilted {words}"
        elif obj.shape not in ("circle", "ring") and rng.uniform() < 0.2 and abs(obj.angle) < np.deg2rad(5):
            words = f"upright {words}"
        if rng.uniform() < 0.1:
            caption = f"one {words}"
        else:
            caption = SINGLE_TEMPLATES[rng.integers(len(SINGLE_TEMPLATES))].format(words)
        caption += (f" {place}" if place else "") or _background_words(busy, tone, rng)
        return Plan((obj,), caption, busy, tone)
    if kind < 0.85:
        other = CONCEPTS[rng.integers(len(CONCEPTS))]
        axis = "x" if rng.uniform() < 0.5 else "y"
        near, far = rng.uniform(0.22, 0.34), rng.uniform(0.66, 0.78)
        across = rng.uniform(0.3, 0.7, size=2)
        first_near = rng.uniform() < 0.5
        pos_a, pos_b = (near, far) if first_near else (far, near)
        coords = [(pos_a, across[0]), (pos_b, across[1])] if axis == "x" else [(across[0], pos_a), (across[1], pos_b)]
        a, b = (_object(rng, c, x, y, rng.uniform(0.13, 0.2))
                for c, (x, y) in zip((concept, other), coords, strict=True))
        relation = RELATIONS[axis][0 if first_near else 1]
        if rng.uniform() < 0.25:
            relation = "beside" if axis == "x" else relation
        if rng.uniform() < 0.2:
            relation = "and"
        return Plan((a, b), f"a {_phrase(a, rng)} {relation} a {_phrase(b, rng)}", busy, tone)
    count = int(rng.integers(2, 5))
    slots = rng.permutation(4)[:count]  # quadrants, so copies do not overlap
    template = _object(rng, concept, 0.5, 0.5, 0.15)
    objects = tuple(SurfaceObject(template.shape, template.pattern, template.colour,
                                  0.27 + 0.46 * (s % 2) + rng.uniform(-0.04, 0.04),
                                  0.27 + 0.46 * (s // 2) + rng.uniform(-0.04, 0.04), rng.uniform(0.12, 0.18),
                                  float(rng.uniform(-MAX_TILT, MAX_TILT)), template.finish) for s in slots)
    return Plan(objects, f"{COUNTS[count - 1]} {_phrase(template, rng, plural=True)}", busy, tone)


def plain_background(size: int, tone: float, rng: np.random.Generator) -> np.ndarray:
    """A background without strokes or blobs: a gentle gradient and noise around brightness ``tone``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = tone + rng.uniform(-30, 30, size=3)
    tilt = rng.uniform(-30, 30, size=(2, 3))
    img = base + (xx[..., None] / size - 0.5) * tilt[0] + (yy[..., None] / size - 0.5) * tilt[1]
    return img + rng.normal(0, 6, size=(size, size, 3))


def draw_plan(plan: Plan, size: int, rng: np.random.Generator) -> np.ndarray:
    """The plan's image, uint8 (size, size, 3)."""
    if plan.busy:
        img = background(size, rng)
        img = img - img.mean() + plan.tone  # keep the planned brightness, which the caption may name
    else:
        img = plain_background(size, plan.tone, rng)
    for obj in plan.objects:
        paint(img, _at_size(obj, size), rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def _at_size(obj: SurfaceObject, size: int) -> SurfaceObject:
    return SurfaceObject(obj.shape, obj.pattern, obj.colour, obj.cx * size, obj.cy * size, obj.radius * size,
                         obj.angle, obj.finish)


# ---- the interface every world has (``zegbench.datasets.worlds``) -------------------------------------

def render_single(size: int, rng: np.random.Generator, class_name: str | None = None,
                  shape: str | None = None) -> tuple[np.ndarray, SurfaceObject]:
    """One roughly centred object of surface ``class_name`` (any concept) on a busy background, no finish:
    zero-shot test images."""
    concept = class_name or CONCEPTS[rng.integers(len(CONCEPTS))]
    obj = _object(rng, concept, *(0.5 + rng.uniform(-0.08, 0.08, size=2)), rng.uniform(0.22, 0.40), finish=False)
    if shape is not None:
        obj = SurfaceObject(shape, obj.pattern, obj.colour, obj.cx, obj.cy, obj.radius, obj.angle)
    img = background(size, rng)
    paint(img, _at_size(obj, size), rng)
    return np.clip(img, 0, 255).astype(np.uint8), _at_size(obj, size)


def void_band(label: np.ndarray, reach: float = VOID_REACH) -> np.ndarray:
    """Pixels within ``reach`` px (centre to centre) of a pixel of another label: VOC's void band.

    VOC marks a band about 5 px wide along object boundaries at its native ~500 x 375 px, which is
    6.8 px at the 512-px scale ZegCLIP's pipeline works at: 0.43 of a 16-px patch. The world's
    96-px scene stands in for that 512-px image with 8-px patches (its objects cover as many
    patches as VOC's, G5), so the same band is 0.43 x 8 = 3.4 px wide here. A pixel is void when
    a pixel of another label lies within 2.2 px of it: across an edge along the pixel grid that is
    2 px on each side (4 in all), across a diagonal edge 1.4 (2.8 in all).
    """
    size_y, size_x = label.shape
    r = int(math.floor(reach))
    padded = np.pad(label, r, mode="edge")
    band = np.zeros(label.shape, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if (dy or dx) and dy * dy + dx * dx <= reach * reach:
                band |= padded[r + dy:r + dy + size_y, r + dx:r + dx + size_x] != label
    return band


def scene_classes(rng: np.random.Generator, count: int, classes_per_scene: tuple[float, ...]) -> list[str]:
    """The classes of a scene's ``count`` objects: k distinct classes, k drawn from ``classes_per_scene``
    (the shares of scenes with 1, 2, 3, ... classes; capped at ``count``), each worn by one object, the
    other objects repeating one of them, as VOC's instances of one class do; in a random order."""
    if count == 0:
        return []
    shares = np.asarray(classes_per_scene, dtype=float)
    k = min(count, 1 + int(rng.choice(len(shares), p=shares / shares.sum())))
    distinct = [CLASS_NAMES[i] for i in rng.choice(len(CLASS_NAMES), size=k, replace=False)]
    names = distinct + [distinct[rng.integers(k)] for _ in range(count - k)]
    return [names[i] for i in rng.permutation(count)]


def render_scene(size: int, rng: np.random.Generator, num_objects: tuple[int, int] = (2, 3),
                 radius_range: tuple[float, float] = (0.22, 0.36), classes_per_scene: tuple[float, ...] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, list[WorldObject]]:
    """A segmentation scene: uint8 image (H, W, 3), int64 label (H, W); 255 = background and the void band.

    Background clutter (1-3 small objects) wears the broad world's non-benchmark surfaces, so
    neither a colour nor a pattern alone names a class; benchmark objects are drawn over it. Each
    object's class is drawn on its own, or, with ``classes_per_scene``, by ``scene_classes``.
    """
    img = background(size, rng)
    occupancy = np.full((size, size), -1, dtype=np.int64)  # clutter -1 too: its edge with an object is void
    for _ in range(rng.integers(1, 4)):
        surface = CLUTTER_SURFACES[rng.integers(len(CLUTTER_SURFACES))]
        clutter = _object(rng, surface, *rng.uniform(0.1, 0.9, size=2), rng.uniform(0.08, 0.18), finish=False)
        paint(img, _at_size(clutter, size), rng)
    objects = []
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    names = None if classes_per_scene is None else scene_classes(rng, count, classes_per_scene)
    for index in range(count):
        radius = rng.uniform(*radius_range)
        centre = rng.uniform(radius * 0.6, 1 - radius * 0.6, size=2)
        name = CLASS_NAMES[rng.integers(len(CLASS_NAMES))] if names is None else names[index]
        obj = _at_size(_object(rng, name, *centre, radius, finish=False), size)
        occupancy[paint(img, obj, rng)] = index
        objects.append(obj)
    label = np.full((size, size), IGNORE_INDEX, dtype=np.int64)
    for index, obj in enumerate(objects):
        label[occupancy == index] = CLASS_NAMES.index(obj.class_name)
    # Two touching objects of one class still get a void line between them, as VOC's instances do.
    label[void_band(occupancy)] = IGNORE_INDEX
    return np.clip(img, 0, 255).astype(np.uint8), label, objects


def caption_combos() -> list[tuple[str, str]]:
    """(concept, shape) pairs: every surface the caption world names, with a shape each."""
    return [(c, s) for c in CONCEPTS for s in SHAPES]


def describe(obj: WorldObject, rng: np.random.Generator) -> str:
    """A noun phrase for one object, as the caption world writes it."""
    return _phrase(obj, rng)


def single_caption(obj: WorldObject, rng: np.random.Generator) -> str:
    """The caption of a single-object image."""
    return SINGLE_TEMPLATES[rng.integers(len(SINGLE_TEMPLATES))].format(_phrase(obj, rng))
