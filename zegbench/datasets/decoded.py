"""A generated world decoded once: each split's images and label maps as arrays that every run maps.

Without it every run decodes the world's PNGs again, each time it reads a scene (2,000 train
scenes read three times over in a world run, 500 val scenes once per evaluation). Instead the
first run to read a split writes, inside the world's folder:

    <world root>/decoded/<split>-<key>.images.npy   uint8 [N, H, W, 3], in the split list's order
    <world root>/decoded/<split>-<key>.labels.npy   uint8 [N, H, W], the label PNGs' values
    <world root>/decoded/<split>-<key>.json         written last: N, and each array's size and SHA-1

and every run maps those arrays read-only (``mmap_mode="r"``: processes share one copy in the
page cache). The PNGs stay authoritative: the arrays are what ``SegmentationFolder.decode`` reads
from them, and an item is assembled from the arrays by that same folder's ``item``, so a run's
samples are bit-identical with or without the arrays.

``key`` covers this format's version, the world's fingerprint (``generate.fingerprint``: its
manifest, the generator's version included) and the split's folders, suffixes and ids, so a
changed world, generator or split list never reads an old file. Each file is written under a
temporary name and renamed into place (``utils.io``), and what it holds is a function of the key
alone, so two runs decoding one split at once both succeed (the later rename puts identical bytes
in place). Arrays whose record is missing, or whose size, SHA-1, dtype or shape differ from it
are decoded again, never read. Where the world's folder cannot be written, the split is read
from its PNGs as before, with a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zegbench.datasets.folder import SegmentationFolder
from zegbench.errors import ZegbenchError
from zegbench.utils.io import atomic_save_npy, atomic_write_json

logger = logging.getLogger(__name__)

FORMAT = 1  # what the files hold and how they are laid out: part of the key


class _Damaged(Exception):
    """The arrays on disk are not the ones their record describes (the message says how)."""


@dataclass(frozen=True)
class DecodedFiles:
    """The three files of one decoded split."""

    images: Path
    labels: Path
    record: Path

    @classmethod
    def at(cls, folder: Path, stem: str) -> DecodedFiles:
        return cls(folder / f"{stem}.images.npy", folder / f"{stem}.labels.npy", folder / f"{stem}.json")


def split_key(folder: SegmentationFolder, world_fingerprint: str) -> str:
    """12 hex digits over everything the arrays of ``folder``'s split depend on (see the module docstring)."""
    layout = {"format": FORMAT, "world": world_fingerprint, "ids": folder.ids,
              "img_dir": folder.img_dir.relative_to(folder.root).as_posix(), "img_suffix": folder.img_suffix,
              "ann_dir": folder.ann_dir.relative_to(folder.root).as_posix(), "seg_suffix": folder.seg_suffix}
    return hashlib.sha1(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:12]


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _map(files: DecodedFiles, count: int, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels mapped read-only, checked against their record (SHA-1 too when ``verify``).

    Raises ``FileNotFoundError`` when there is no record (never decoded, or a decode was cut
    short before its record) and ``_Damaged`` when the files are not what the record says.
    """
    try:
        record = json.loads(files.record.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:
        raise _Damaged(f"{files.record.name} is unreadable ({err})") from None
    if not isinstance(record, dict) or record.get("count") != count:
        raise _Damaged(f"{files.record.name} does not describe {count} scenes")
    arrays = []
    for path, kind in ((files.images, "images"), (files.labels, "labels")):
        expected = record.get(kind) or {}
        try:
            size = path.stat().st_size
            if size != expected.get("bytes"):
                raise _Damaged(f"{path.name} has {size} bytes, its record says {expected.get('bytes')}")
            if verify and _sha1(path) != expected.get("sha1"):
                raise _Damaged(f"{path.name}'s SHA-1 differs from its record's")
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise _Damaged(f"{path.name} is unreadable ({err})") from None
        arrays.append(array)
    images, labels = arrays
    if (images.dtype != np.uint8 or labels.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3
            or images.shape[:3] != labels.shape or len(images) != count):
        raise _Damaged(f"{files.images.name} and {files.labels.name} are not {count} RGB images and their labels")
    return images, labels


def _decode_all(folder: SegmentationFolder, files: DecodedFiles, progress: bool) -> None:
    """Decode every item of ``folder`` with its own reader and write the three files, the record last."""
    first_image, first_raw = folder.decode(0)
    images = np.empty((len(folder), *first_image.shape), np.uint8)
    labels = np.empty((len(folder), *first_raw.shape), np.uint8)
    for index in tqdm(range(len(folder)), desc=f"decode {folder.root.name} {files.record.stem}", disable=not progress):
        image, raw = folder.decode(index)
        if image.shape != images.shape[1:] or raw.shape != labels.shape[1:] or raw.dtype != np.uint8:
            raise ZegbenchError(f"{folder.paths(index)[0]} or its label differs from the world's other scenes in "
                                f"size or type: delete {folder.root} to generate the world again")
        images[index], labels[index] = image, raw
    record = {"count": len(folder)}
    for array, path, kind in ((images, files.images, "images"), (labels, files.labels, "labels")):
        atomic_save_npy(array, path)
        record[kind] = {"bytes": path.stat().st_size, "sha1": _sha1(path)}
    atomic_write_json(record, files.record)


class DecodedSplit:
    """A world split read from its decoded arrays: ``split[i]`` is what ``folder[i]`` returns, without a PNG decode.

    Sent to a loader worker that is not forked, it travels as the files' names and maps them there
    (pickling a mapped array would copy all of it).
    """

    def __init__(self, folder: SegmentationFolder, files: DecodedFiles, arrays: tuple[np.ndarray, np.ndarray]):
        self.folder, self.files, self._arrays = folder, files, arrays
        self.ids = folder.ids

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        if self._arrays is None:  # in a process this split was sent to: the sender verified the files
            self._arrays = _map(self.files, len(self.folder), verify=False)
        images, labels = self._arrays
        return self.folder.item(index, np.asarray(images[index]), np.asarray(labels[index]))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}


def decoded(folder: SegmentationFolder, world_fingerprint: str, split: str,
            progress: bool = False) -> DecodedSplit | SegmentationFolder:
    """``folder`` (a generated world's split) read from its decoded arrays, which are written first if need be.

    ``world_fingerprint`` is ``generate.fingerprint`` of the world ``folder`` is in. Returns
    ``folder`` itself when the arrays cannot be written (a read-only or full disk): the same
    items, decoded from the PNGs at every read.
    """
    if len(folder) == 0:
        return folder
    files = DecodedFiles.at(folder.root / "decoded", f"{split}-{split_key(folder, world_fingerprint)}")
    try:
        return DecodedSplit(folder, files, _map(files, len(folder), verify=True))
    except FileNotFoundError:
        pass  # never decoded (or cut short before the record): decode now
    except _Damaged as err:
        logger.warning("decoded world %s is damaged (%s): decoding the PNGs again", files.record.parent, err)
    try:
        _decode_all(folder, files, progress)
    except OSError as err:
        logger.warning("cannot write the decoded world at %s (%s): reading its PNGs at every read instead",
                       files.record.parent, err.strerror or err)
        return folder
    return DecodedSplit(folder, files, _map(files, len(folder), verify=False))
