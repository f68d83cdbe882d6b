"""Atomic file writes: a reader never sees a half-written file.

Each writer writes a temporary file in the destination folder, flushes it to
disk and renames it over the target (``os.replace`` is atomic on POSIX), so a
kill at any moment leaves either the old file or the new one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from zegbench.utils.faults import fault_point


def _atomic_write(path: str | Path, write: Callable[[object], None], mode: str = "wb") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        fault_point(f"write:{path.name}")
        os.replace(tmp, path)
    except OSError as err:  # a full or read-only disk: the target keeps its previous content
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write or fsync names no file: name the one being written
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_yaml_mapping(path: Path) -> dict:
    """A YAML file's mapping (``yaml.safe_load``; an empty file is ``{}``), or one clear error."""
    import yaml

    from zegbench.errors import ZegbenchError

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ZegbenchError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ZegbenchError(f"{path} must be a mapping of keys to values")
    return data


def atomic_write_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return _atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=False), mode="w")


def atomic_save_npy(array, path: str | Path) -> Path:
    """``numpy.save`` ``array`` to ``path`` (a ``.npy`` file) atomically."""
    import numpy as np

    return _atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def atomic_write_npz(path: str | Path, **arrays) -> Path:
    """``numpy.savez_compressed`` of ``arrays`` to ``path`` atomically."""
    import numpy as np

    return _atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import torch  # here, so that reading configs does not pay torch's import

    return _atomic_write(path, lambda f: torch.save(obj, f))
