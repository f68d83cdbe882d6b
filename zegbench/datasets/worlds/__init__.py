"""The world generators by version: one module each, with the same interface.

A generator module defines ``WORLD_VERSION``, ``CLIP_MODEL`` (its in-house CLIP),
``CLASS_NAMES``, ``UNSEEN_CLASSES``, ``SEEN_CLASSES``, ``WORDS`` (its caption
vocabulary), ``render_scene``, ``render_single``, ``look_alikes`` and the
caption functions ``caption_combos``, ``describe`` and ``single_caption``.
A broad world (v3) also defines ``CONCEPTS`` (every surface its captions name),
``CONTENT_WORDS`` and ``plan_example``/``draw_plan``, from which the caption
stream (``zegbench.clip.captions``) draws instead.
A new design is a new module, so that a published world stays reproducible.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from zegbench.errors import ZegbenchError

MODULES = {1: "zegbench.datasets.worlds.v1", 2: "zegbench.datasets.worlds.v2", 3: "zegbench.datasets.worlds.v3"}
# The generator whose CLIP is a method's in-house CLIP when nothing names one (clip.loading.IN_HOUSE), and
# whose classes tests and `segment` use by default: v2 since 2026-12-03 (v1 before). The default *dataset*,
# `world`, is v3 since 2026-12-07 and names its CLIP in its recipe; this stays 2 because IN_HOUSE is part of
# every run's identity (engine.identity.input_fingerprints), so moving it would rename every world run's folder.
DEFAULT_VERSION = 2


def generator(version: int = DEFAULT_VERSION) -> ModuleType:
    """The generator module of world ``version``."""
    if version not in MODULES:
        raise ZegbenchError(f"unknown world generator version {version!r}; known: {', '.join(map(str, MODULES))}")
    return importlib.import_module(MODULES[version])


def for_clip(clip_model: str) -> ModuleType | None:
    """The world whose captions trained in-house CLIP ``clip_model`` (None: not an in-house CLIP)."""
    for version in MODULES:
        module = generator(version)
        if module.CLIP_MODEL == clip_model:
            return module
    return None
