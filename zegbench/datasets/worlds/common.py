"""What every world version draws with: the object record, the shape and pattern masks, the cluttered
background, painting an object, and the per-sample generator. The vocabularies and scene designs are the
versions' own (``v1``, ``v2``, ``v3``); these functions stay as v1 introduced them, so every published world
renders the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255
# The shapes ``shape_mask`` draws (v1's vocabulary; v3 adds its own).
SHAPES = ("circle", "square", "triangle", "star", "cross")
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


def sample_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator per (seed, stream, index): order- and process-independent."""
    return np.random.default_rng([seed, stream, index])
