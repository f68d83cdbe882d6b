"""Shared fixtures: an isolated cache folder and a tiny world."""
from __future__ import annotations

import os

import pytest

# Tests never reach a model hub, and never write to the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("zegbench-cache")
    old = os.environ.get("ZEGBENCH_CACHE")
    os.environ["ZEGBENCH_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ZEGBENCH_CACHE", None)
    else:
        os.environ["ZEGBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_spec():
    from zegbench.datasets.generate import WorldSpec

    return WorldSpec(name="tiny", seed=3, image_size=48, train_scenes=12, val_scenes=6)
