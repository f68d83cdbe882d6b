"""Where configs are found: the package's own ``zegbench/configs/``, then each folder of ``$ZEGBENCH_CONFIGS``.

A config folder holds any of ``methods/``, ``datasets/``, ``suites/`` and ``claims/``, each
with ``<name>.yaml`` files. ``$ZEGBENCH_CONFIGS`` lists a user's own folders (separated by
``os.pathsep``, as ``PATH``); ``--config-dir DIR`` adds one for a command and the run
processes it starts, which inherit the environment. A name defined in two folders is an
error naming both files: a user's config never silently replaces a shipped one.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from zegbench.errors import ZegbenchError, check_name

PACKAGE_CONFIGS = Path(__file__).resolve().parent / "configs"
CONFIGS_ENV = "ZEGBENCH_CONFIGS"
KINDS = {"methods": "method", "datasets": "dataset", "suites": "suite", "claims": "claims file"}  # folder -> noun


def config_dirs() -> list[Path]:
    """The package's config folder, then each folder of ``$ZEGBENCH_CONFIGS`` (each once)."""
    folders = [PACKAGE_CONFIGS]
    for entry in os.environ.get(CONFIGS_ENV, "").split(os.pathsep):
        if not entry:
            continue
        folder = Path(entry).expanduser().resolve()
        if not folder.is_dir():
            raise ZegbenchError(f"config folder {entry} (from ${CONFIGS_ENV} or --config-dir) does not exist: "
                                f"fix the path or leave it out")
        if folder not in folders:
            folders.append(folder)
    return folders


def add_config_dirs(dirs: list[str]) -> None:
    """``--config-dir``: put ``dirs`` first on ``$ZEGBENCH_CONFIGS``, as absolute paths, for this
    process and the run processes it starts."""
    if not dirs:
        return
    for entry in dirs:
        if not Path(entry).is_dir():
            raise ZegbenchError(f"--config-dir {entry} is not a folder: give a folder holding methods/, "
                                f"datasets/, suites/ or claims/")
    before = [e for e in os.environ.get(CONFIGS_ENV, "").split(os.pathsep) if e]
    os.environ[CONFIGS_ENV] = os.pathsep.join([str(Path(d).resolve()) for d in dirs] + before)


def config_files(kind: str) -> dict[str, Path]:
    """Every config of ``kind`` (``methods``, ``datasets``, ``suites``, ``claims``): name -> file, sorted."""
    found: dict[str, Path] = {}
    for folder in config_dirs():
        for path in sorted((folder / kind).glob("*.yaml")):
            if path.stem in found:
                raise ZegbenchError(f"{KINDS[kind]} {path.stem!r} is defined twice, in {found[path.stem]} and "
                                    f"in {path}: rename one (a config folder adds names, it never replaces them)")
            found[path.stem] = path
    return dict(sorted(found.items()))


def config_names(kind: str, pattern: str = "*") -> list[str]:
    """The names of ``kind`` matching the shell-style ``pattern``."""
    return [name for name in config_files(kind) if fnmatch.fnmatch(name, pattern)]


def config_file(kind: str, name: str) -> Path:
    """The file that defines config ``name`` of ``kind``; an unknown name is an error listing the known ones."""
    files = config_files(kind)
    if check_name(name, KINDS[kind]) not in files:
        looked = ", ".join(str(folder / kind) for folder in config_dirs())
        raise ZegbenchError(f"unknown {KINDS[kind]} {name!r}: no {name}.yaml in {looked}; "
                            f"known: {', '.join(files) or 'none'}")
    return files[name]
