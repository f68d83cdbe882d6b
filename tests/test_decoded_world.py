"""A generated world decoded once (datasets/decoded.py): the same samples as its PNGs, never a stale or damaged file."""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import pickle
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from zegbench.datasets.catalog import build_dataset, load_dataset_info, split_layouts, world_spec
from zegbench.datasets.decoded import DecodedSplit, split_key
from zegbench.datasets.folder import SegmentationFolder
from zegbench.datasets.generate import ensure_world, fingerprint
from zegbench.datasets.loader import BatchPlan, training_batches

from real_layouts import write_voc

DATASET = "world_smoke"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A cache folder holding world_smoke's PNGs and nothing decoded (each test copies it)."""
    cache = tmp_path_factory.mktemp("generated")
    ensure_world(world_spec(load_dataset_info(DATASET)), cache)
    return cache


@pytest.fixture
def cache(generated, tmp_path):
    shutil.copytree(generated, tmp_path / "worlds")
    return tmp_path / "worlds"


def _png_reader(cache, split):
    """The split as it was read before the decoded arrays: every item decoded from its PNGs."""
    info = load_dataset_info(DATASET)
    root = ensure_world(world_spec(info), cache)
    return SegmentationFolder(root, **split_layouts(info, split)[0], num_classes=len(info.classes),
                              reduce_zero_label=info.reduce_zero_label, ignore_index=info.ignore_index)


def _assert_same_items(got, expected):
    assert len(got) == len(expected) and got.ids == expected.ids
    for index in range(len(expected)):
        for a, b in zip(got[index][:2], expected[index][:2], strict=True):
            assert type(a) is type(b) is np.ndarray
            assert a.dtype == b.dtype and a.shape == b.shape and a.flags.writeable == b.flags.writeable
            assert np.array_equal(a, b)
        assert got[index][2] == expected[index][2]


def _decoded_folder(cache):
    return ensure_world(world_spec(load_dataset_info(DATASET)), cache) / "decoded"


def _digest(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("split", ["train", "val"])
def test_samples_are_bit_identical_with_and_without_the_decoded_arrays(cache, split):
    first = build_dataset(DATASET, split, cache_dir=cache)  # decodes, then maps what it wrote
    again = build_dataset(DATASET, split, cache_dir=cache)  # maps the files a previous run wrote
    assert isinstance(first, DecodedSplit) and isinstance(again, DecodedSplit)
    pngs = _png_reader(cache, split)
    _assert_same_items(first, pngs)
    _assert_same_items(again, pngs)
    # What training sees: the loader's batches, with their planned flips, in and out of a worker.
    plan = lambda: BatchPlan(len(pngs), 4, 5, np.random.default_rng(3), augmented=False)  # noqa: E731
    expected = list(training_batches(pngs, plan()))
    for data, workers in ((again, 0), (again, 1)):
        for (images, labels), (want_images, want_labels) in zip(training_batches(data, plan(), workers=workers),
                                                                expected, strict=True):
            assert torch.equal(images, want_images) and torch.equal(labels, want_labels)


def test_a_decoded_split_is_written_once_and_never_reads_a_png_again(cache):
    build_dataset(DATASET, "train", cache_dir=cache)
    written = {p.name: p.stat().st_mtime_ns for p in _decoded_folder(cache).iterdir()}
    assert sorted(written) == sorted(n for n in written if n.startswith("train-"))  # 3 files, the record among them
    assert len(written) == 3
    expected = [build_dataset(DATASET, "train", cache_dir=cache)[i] for i in (0, 7)]
    root = _decoded_folder(cache).parent
    shutil.rmtree(root / "JPEGImages")
    shutil.rmtree(root / "SegmentationClass")
    data = build_dataset(DATASET, "train", cache_dir=cache)
    assert {p.name: p.stat().st_mtime_ns for p in _decoded_folder(cache).iterdir()} == written
    for index, (image, label, meta) in zip((0, 7), expected, strict=True):
        got = data[index]
        assert np.array_equal(got[0], image) and np.array_equal(got[1], label) and got[2] == meta


def test_a_decoded_split_travels_to_a_worker_as_file_names(cache):
    """A loader worker that is not forked gets the split pickled: it must map the files, not copy the arrays."""
    data = build_dataset(DATASET, "train", cache_dir=cache)
    payload = pickle.dumps(data)
    arrays = sum(p.stat().st_size for p in _decoded_folder(cache).glob("*.npy"))
    assert len(payload) < arrays / 20
    _assert_same_items(pickle.loads(payload), _png_reader(cache, "train"))


def test_the_key_changes_with_the_world_and_the_split_list(cache, tiny_spec):
    assert len({fingerprint(s) for s in (tiny_spec, replace(tiny_spec, seed=4), replace(tiny_spec, version=1),
                                         replace(tiny_spec, image_size=32), replace(tiny_spec, val_scenes=7),
                                         replace(tiny_spec, radius_range=(0.1, 0.3)))}) == 6
    folder = _png_reader(cache, "train")
    world = fingerprint(world_spec(load_dataset_info(DATASET)))
    fewer = _png_reader(cache, "train")
    fewer.ids = fewer.ids[:-1]
    keys = {split_key(folder, world), split_key(folder, fingerprint(tiny_spec)), split_key(fewer, world)}
    assert len(keys) == 3


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated images": lambda f: f.with_name(f.name.replace(".json", ".images.npy")).write_bytes(
        f.with_name(f.name.replace(".json", ".images.npy")).read_bytes()[:-1000]),
    "a flipped byte in the labels": lambda f: _flip_a_byte(f.with_name(f.name.replace(".json", ".labels.npy"))),
    "labels missing": lambda f: f.with_name(f.name.replace(".json", ".labels.npy")).unlink(),
    "a record that is not JSON": lambda f: f.write_text("{"),
    "a record of another count": lambda f: f.write_text(f.read_text().replace('"count": 48', '"count": 47')),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_arrays_are_decoded_again_not_read(cache, damage, caplog):
    build_dataset(DATASET, "train", cache_dir=cache)
    intact = _digest(_decoded_folder(cache))
    record = next(_decoded_folder(cache).glob("train-*.json"))
    DAMAGE[damage](record)
    assert _digest(_decoded_folder(cache)) != intact
    with caplog.at_level(logging.WARNING, logger="zegbench"):
        data = build_dataset(DATASET, "train", cache_dir=cache)
    assert "is damaged" in caplog.text and "decoding the PNGs again" in caplog.text
    assert _digest(_decoded_folder(cache)) == intact
    _assert_same_items(data, _png_reader(cache, "train"))


def _items_digest(cache, fault=None):
    """In a forked process: the train split's items, hashed; ``fault`` kills the process at that fault point."""
    if fault:  # faults reads ZEGBENCH_FAULT at import, long done in this forked process: set what it read
        import zegbench.utils.faults as faults

        faults._FAULT = fault
    data = build_dataset(DATASET, "train", cache_dir=cache)
    digest = hashlib.sha1()
    for index in range(len(data)):
        image, label, _ = data[index]
        digest.update(image.tobytes() + label.tobytes())
    return type(data).__name__, digest.hexdigest()


def test_two_runs_decoding_at_once_both_read_the_same_samples(cache):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(_items_digest, [(cache,), (cache,)])
    assert results[0] == results[1] and results[0][0] == "DecodedSplit"
    assert _items_digest(cache) == results[0]
    assert sorted(p.name for p in _decoded_folder(cache).iterdir() if p.name.startswith(".")) == []


def test_a_decode_killed_before_its_record_leaves_nothing_that_is_read(cache, caplog):
    folder = _png_reader(cache, "train")
    stem = f"train-{split_key(folder, fingerprint(world_spec(load_dataset_info(DATASET))))}"
    process = multiprocessing.get_context("fork").Process(target=_items_digest,
                                                          args=(cache, f"write:{stem}.json"))
    process.start()
    process.join()
    assert process.exitcode == -9  # SIGKILL between the record's temporary file and its rename
    assert not (_decoded_folder(cache) / f"{stem}.json").exists()
    assert (_decoded_folder(cache) / f"{stem}.labels.npy").exists()
    with caplog.at_level(logging.WARNING, logger="zegbench"):
        data = build_dataset(DATASET, "train", cache_dir=cache)
    assert caplog.text == ""  # an unfinished decode is not damage: decoded again, silently
    assert (_decoded_folder(cache) / f"{stem}.json").exists()
    _assert_same_items(data, _png_reader(cache, "train"))


def test_a_world_folder_that_cannot_take_the_arrays_is_read_from_its_pngs(cache, caplog):
    _decoded_folder(cache).write_text("a file where the decoded folder goes")
    with caplog.at_level(logging.WARNING, logger="zegbench"):
        data = build_dataset(DATASET, "val", cache_dir=cache)
    assert isinstance(data, SegmentationFolder) and "cannot write the decoded world" in caplog.text
    _assert_same_items(data, _png_reader(cache, "val"))


def test_real_datasets_are_read_from_their_files(tmp_path):
    write_voc(tmp_path, train=3, val=2)
    data = build_dataset("voc12", "val", data_root=tmp_path)
    assert isinstance(data, SegmentationFolder)
    assert not list(tmp_path.rglob("decoded"))
