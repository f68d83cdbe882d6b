"""Shared fixtures: an isolated cache folder and a tiny world."""
from __future__ import annotations

import os

import pytest

# Tests never reach a model hub, and never write to the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"


def _give_each_xdist_worker_its_own_cores():
    """Under `pytest -n N`, worker i keeps every N-th core of the ones this session may use.

    Many tests start suites and training processes (run_all.py's runs, DDP ranks), which size `-j`
    and their data loader workers by the cores they may use (zegbench.utils.cores). Unpinned,
    each of N workers would start processes sized for the whole machine, and the processes of
    several would fight over the same cores. What a test checks does not change.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not worker or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if count <= len(cores):
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, set(cores[index::count]))


_give_each_xdist_worker_its_own_cores()  # before torch is imported, so its thread pool fits


def pytest_cmdline_main(config):
    """Without xdist workers (no ``-n``, or ``-n 0``), nothing is distributed: say so.

    pyproject's addopts sets ``--dist loadfile`` for ``pytest -n auto``. Without workers xdist
    distributes nothing, yet pytest-benchmark reads any ``--dist`` but ``no`` as "xdist is active"
    and disables every benchmark, so the README's benchmark command would time nothing and write no
    JSON (``tests/test_benchmarks_run.py``). Runs after xdist's own hook (``tryfirst``), which turns
    ``-n 0`` into ``no`` the same way, and before any plugin is configured.
    """
    if not getattr(config.option, "tx", None):  # no workers to distribute to (xdist absent: no option)
        config.option.dist = "no"


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


# The test files that take longest, slowest first (seconds per file under `pytest -n 2` on a 2-core
# AMD EPYC, 2026-12-03: 318, 172, 149, 125, 75, 68, 61, 51, 27, 23, 21, 16; re-measure with
# `--durations=0` when a file grows). pytest-xdist hands each worker whole files
# (`--dist loadfile`, `--no-loadscope-reorder`) in collection order: starting with the longest
# ones keeps a long file from running alone at the end while the other workers sit idle.
# The order changes only when a test runs, never what it checks.
SLOWEST_FIRST = (
    "test_reliability.py",
    "test_suite.py",
    "test_real_datasets.py",
    "test_store_faults.py",
    "test_distributed.py",
    "test_probe.py",
    "test_cli.py",
    "test_clip.py",
    "test_parallel_runs.py",  # added 2026-12-06 at about 30 s under -n 0 on a shared 2-core Xeon
    "test_session.py",  # added 2026-12-06 at about 25 s under -n 0 on a shared 2-core Xeon (66 s at load 8)
    "test_identity.py",
    "test_loader.py",
    "test_segment.py",
    "test_gates.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
