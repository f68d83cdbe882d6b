"""Real datasets in their own layouts (tiny fixtures written here): loading protocol, `data verify`, smoke runs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from zegbench.cli import main as zegbench_main
from zegbench.datasets.catalog import build_dataset
from zegbench.harness.cli import main as run_all_main

from real_layouts import WRITERS, save_palette_png, voc_palette, write_voc

# End-to-end runs on the real layouts check the data, the recipe's crops, test rescale and windows,
# not the backbone: a randomly initialised ViT-S/32 (about 1/16 of ViT-B/16's FLOPs at 512 px;
# ViT-B/16 at 512 cost CI minutes per run on a 2-core machine). ViT-B/16 itself runs in
# tests/bench (-m realscale) and in the method tests' parameter counts.
SMALL_RANDOM_CLIP = "clip: ViT-S-32, clip_weights: none"


def _verify(capsys, dataset, root, *extra):
    code = zegbench_main(["data", "verify", "--dataset", dataset, "--data-root", str(root), "--json", *extra])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("dataset", sorted(WRITERS))
def test_clean_copy_passes_verify(tmp_path, capsys, dataset):
    WRITERS[dataset](tmp_path)
    code, out = _verify(capsys, dataset, tmp_path, "--no-counts")
    assert code == 0 and out["ok"] and out["problems"] == []
    assert out["counts"] == {"train": 3, "val": 2}


def test_verify_compares_image_counts_with_the_benchmark(tmp_path, capsys):
    write_voc(tmp_path)
    code, out = _verify(capsys, "voc12", tmp_path)
    assert code == 1 and not out["ok"]
    assert {p["what"].split(",")[0] for p in out["problems"]} == {"3 train images", "2 val images"}
    assert any("the benchmark has 1449" in p["what"] for p in out["problems"])


def test_verify_names_every_planted_fault(tmp_path, capsys):
    base = write_voc(tmp_path, train=4, val=4)
    val_ids = (base / "ImageSets/Segmentation/val.txt").read_text().split()
    (base / "SegmentationClass" / f"{val_ids[0]}.png").unlink()  # a missing label
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(base / "SegmentationClass" / f"{val_ids[1]}.png")  # wrong size
    Image.fromarray(np.full((40, 56), 30, np.uint8)).save(base / "SegmentationClass" / f"{val_ids[2]}.png")  # 30 > 20
    (base / "JPEGImages" / f"{val_ids[3]}.jpg").write_bytes(b"not a jpeg")  # an unreadable image
    (base / "ImageSets/Segmentation/aug.txt").unlink()  # a missing split list
    code, out = _verify(capsys, "voc12", tmp_path, "--no-counts")
    assert code == 1 and not out["ok"]
    found = {p["where"]: p["what"] for p in out["problems"]}
    assert any(w.endswith("aug.txt") and "split list" in m for w, m in found.items())
    assert "listed in the split but missing" in found[f"val/{val_ids[0]}"]
    assert "its image is" in found[f"val/{val_ids[1]}"]
    assert "label value 29 outside 0..19" in found[f"val/{val_ids[2]}"]  # 30 after VOC's background shift
    assert "is corrupt" in found[f"val/{val_ids[3]}"]
    assert len(out["problems"]) == 5


def test_voc_train_is_voc_train_with_its_labels_then_sbd_aug_with_converted_labels(tmp_path, capsys):
    base = write_voc(tmp_path, train=5, aug=3)
    data = build_dataset("voc12", "train", data_root=tmp_path)
    assert len(data) == 5 and data.ids[:2] == ["2008_000000", "2008_000001"]  # VOC's train list first
    label_files = [data[i][2]["label_path"] for i in range(5)]
    assert [p.split("/")[-2] for p in label_files] == ["SegmentationClass"] * 2 + ["SegmentationClassAug"] * 3
    with pytest.raises(IndexError):
        data[5]
    # An id in both lists would be trained on twice: verify names it.
    (base / "ImageSets/Segmentation/aug.txt").write_text("2010_000000\n2010_000001\n2010_000002\n2008_000000\n")
    Image.open(base / "SegmentationClass/2008_000000.png").save(base / "SegmentationClassAug/2008_000000.png")
    code, out = _verify(capsys, "voc12", tmp_path, "--no-counts")
    assert code == 1 and [p["where"] for p in out["problems"]] == ["train/2008_000000"]
    assert "train.txt and again in" in out["problems"][0]["what"]


def test_deeplab_trainaug_layout_through_a_config_based_on_voc12(tmp_path, monkeypatch):
    (tmp_path / "configs" / "datasets").mkdir(parents=True)
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp_path / "configs"))  # a user's own dataset, beside the shipped ones
    (tmp_path / "configs" / "datasets" / "voc12_deeplab.yaml").write_text(  # as voc12.yaml's comment says
        "base: voc12\nname: voc12_deeplab\n"
        "splits: {train: {list: ImageSets/Segmentation/trainaug.txt, ann_dir: SegmentationClassAug}}\n")
    base = write_voc(tmp_path / "data", train=4, aug=3)
    (base / "ImageSets/Segmentation/trainaug.txt").write_text("2008_000000\n2010_000000\n2010_000001\n2010_000002\n")
    shutil.copy(base / "SegmentationClass/2008_000000.png", base / "SegmentationClassAug/2008_000000.png")
    data = build_dataset("voc12_deeplab", "train", data_root=tmp_path / "data")
    assert len(data) == 4 and {m["label_path"].split("/")[-2] for *_, m in (data[i] for i in range(4))} == {
        "SegmentationClassAug"}
    assert len(build_dataset("voc12_deeplab", "val", data_root=tmp_path / "data")) == 2  # val from voc12


def test_missing_dataset_folder_is_one_problem(tmp_path, capsys):
    code, out = _verify(capsys, "coco_stuff164k", tmp_path)
    assert code == 1 and len(out["problems"]) == 1 and "does not exist" in out["problems"][0]["what"]


@pytest.mark.parametrize("dataset, raw, expected", [
    ("voc12", [0, 1, 20, 255], [255, 0, 19, 255]),            # VOC-20: background ignored, classes shift down
    ("coco_stuff164k", [0, 19, 170, 255], [0, 19, 170, 255]),  # train ids as they are: 171 classes
    ("pascal_context59", [0, 1, 59], [255, 0, 58]),           # 59: background ignored
    ("pascal_context60", [0, 1, 59], [0, 1, 59]),             # 60: background is class 0
])
def test_label_protocol_per_dataset(tmp_path, dataset, raw, expected):
    WRITERS[dataset](tmp_path)
    data = build_dataset(dataset, "val", data_root=tmp_path)
    sid = data.ids[0]
    label = np.zeros((40, 56), np.uint8)
    label[0, :len(raw)] = raw
    Image.fromarray(label).save(data.ann_dir / f"{sid}{data.seg_suffix}")
    _, out, _ = data[0]
    assert out[0, :len(raw)].tolist() == expected


# COCO-Stuff's own run is slow (171 class names through a random text tower, a minute on 2 cores);
# the cross-dataset test below trains on the COCO layout and recipe in the fast tests.
@pytest.mark.parametrize("dataset", ["voc12", pytest.param("coco_stuff164k", marks=pytest.mark.slow),
                                     "pascal_context59"])
def test_smoke_run_on_each_layout(tmp_path, dataset):
    WRITERS[dataset](tmp_path / "data")
    suite = tmp_path / "real_smoke.yaml"
    # The dataset's own recipe (its crops, test rescale and sliding windows), one step of one image,
    # one template (COCO's 15 x 171 prompts through a random text tower take minutes).
    suite.write_text("dataset: world\nseeds: [0]\ngroups:\n  - methods: [zegclip]\n"
                     f"    set: {{{SMALL_RANDOM_CLIP}, templates: single, steps: 1, batch_size: 1, warmup: 1}}\n")
    assert run_all_main(["--suite", str(suite), "--dataset", dataset, "--data-root", str(tmp_path / "data"),
                         "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "rep")]) == 0
    result = json.loads(next((tmp_path / "r" / "real_smoke").glob("*/result.json")).read_text())
    assert result["dataset"] == dataset and result["hIoU"] is not None


def test_train_transform_crops_pads_and_repeats_with_its_seed():
    from zegbench.datasets.transforms import TrainTransform, TransformSpec, fit_scale

    assert fit_scale(375, 500, (2048, 512)) == (512, 683)  # VOC: short side 512
    assert fit_scale(100, 4000, (2048, 512)) == (51, 2048)  # a panorama: the long side bounds it
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    label = np.full((60, 90), 3, np.int64)
    label[:, :30] = 7
    label[:5] = 255
    t = TrainTransform(TransformSpec(crop=64, scale=(90, 60), ratio_range=(0.5, 0.5)))  # half size: must pad
    img, lab = t(image, label, seed=11)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and lab.shape == (64, 64)
    assert (lab[30:, :] == 255).all() and (lab[:, 45:] == 255).all()  # padding is ignore
    assert set(np.unique(lab)) <= {3, 7, 255}  # nearest resize: no invented classes
    again_img, again_lab = t(image, label, seed=11)
    assert np.array_equal(img, again_img) and np.array_equal(lab, again_lab)
    other_img, _ = t(image, label, seed=12)
    assert not np.array_equal(img, other_img)
    # cat_max_ratio: one random 32-crop of this 60x90 map is mixed enough (no class over 75%) only
    # about 1 time in 4; with up to 10 tries almost every crop is.
    same = TrainTransform(TransformSpec(crop=32, scale=(90, 60), ratio_range=(1.0, 1.0), photometric=False))
    mixed = 0
    for seed in range(20):
        _, crop = same(image, label, seed)
        values, counts = np.unique(crop[crop != 255], return_counts=True)
        mixed += len(values) == 2 and counts.max() / counts.sum() < 0.75
    assert mixed >= 15


def test_cross_dataset_run_evaluates_the_trained_model_on_other_datasets(tmp_path):
    for name in ("coco_stuff164k", "voc12", "pascal_context59"):
        WRITERS[name](tmp_path / "data")
    suite = tmp_path / "cross.yaml"  # the cross_dataset suite's shape, one step of one image
    suite.write_text("dataset: coco_stuff164k\nseeds: [0]\ngroups:\n  - methods: [zegclip]\n"
                     "    eval_datasets: [voc12, pascal_context59]\n"
                     f"    set: {{{SMALL_RANDOM_CLIP}, templates: single, steps: 1, batch_size: 1, warmup: 1}}\n")
    assert run_all_main(["--suite", str(suite), "--data-root", str(tmp_path / "data"),
                         "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "rep")]) == 0
    result = json.loads(next((tmp_path / "r" / "cross").glob("*/result.json")).read_text())
    assert result["dataset"] == "coco_stuff164k" and set(result["cross_dataset"]) == {"voc12", "pascal_context59"}
    assert len(result["dataset_split"]) == 8  # the class list and unseen split the numbers come from
    assert len(result["cross_dataset"]["voc12"]["per_class"]) == 20
    assert len(result["cross_dataset"]["pascal_context59"]["per_class"]) == 59
    bad = tmp_path / "bad.yaml"
    bad.write_text(suite.read_text().replace("pascal_context59]", "atlantis]"))
    assert run_all_main(["--suite", str(bad), "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "r"),
                         "--list"]) == 2  # an unknown evaluation dataset fails before any training


def test_palette_label_pngs_read_as_class_indices(tmp_path):
    """VOC ships labels as palette ('P') PNGs: the pixels are class indices, the palette only colours them."""
    from PIL import Image

    from zegbench.datasets.catalog import build_dataset

    base = write_voc(tmp_path / "data", train=2, val=1)
    (sid,) = (base / "ImageSets/Segmentation/val.txt").read_text().split()
    label = np.zeros((40, 56), np.uint8)
    label[5:20, 5:30], label[25:, 30:], label[0] = 15, 3, 255  # person, bird, VOC's boundary
    save_palette_png(label, base / "SegmentationClass" / f"{sid}.png")
    with Image.open(base / "SegmentationClass" / f"{sid}.png") as im:
        assert im.mode == "P" and im.getpalette()[15 * 3:16 * 3] == voc_palette()[15 * 3:16 * 3]
    _, read, _ = build_dataset("voc12", "val", data_root=tmp_path / "data")[0]
    assert read.shape == (40, 56)  # indices, not RGB
    expected = np.where(label == 0, 255, np.where(label == 255, 255, label.astype(np.int64) - 1))  # reduce_zero_label
    assert np.array_equal(read, expected)
