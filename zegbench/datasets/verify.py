"""``zegbench data verify``: check a copy of a real dataset against its config, reporting every problem.

Checks, per split (and per part of a split made of several lists): the split
list (or image folder), the image and label folders, ids listed in two parts,
the number of images against the expected count, and for every pair
(or the first ``limit``): image and label present and readable, same size,
single-channel labels, label values within the class range (after the
dataset's ``reduce_zero_label``) or 255. Problems are collected, not raised,
so one run names all of them, each with the file and what to do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from zegbench.errors import ZegbenchError


@dataclass
class Problem:
    """One thing wrong: where (a file or folder) and what, with what to do."""

    where: str
    what: str


def verify_dataset(name: str, data_root: str | Path | None, limit: int | None = None,
                   check_counts: bool = True, splits: list[str] | None = None) -> tuple[list[Problem], dict]:
    """Every problem found in the copy of dataset ``name`` under ``data_root``, and per-split counts.

    ``check_counts`` False skips the comparison with the benchmark's image counts (a subset);
    ``splits`` limits the check to those splits (default: every split of the config).
    """
    from zegbench.datasets.catalog import dataset_root, load_dataset_info, split_layouts
    from zegbench.datasets.folder import SegmentationFolder

    info = load_dataset_info(name)
    if info.world is not None:
        raise ZegbenchError(f"{name} is generated, not verified: `zegbench world generate` writes it")
    root = dataset_root(info, data_root)
    if not root.is_dir():
        return [Problem(str(root), "the dataset folder does not exist: check --data-root "
                                   "(and the config's subdir)")], {}
    problems, counts = [], {}
    for split in splits if splits is not None else info.splits:
        first_seen: dict[str, str] = {}  # id -> the list it came from (an id in two parts is a problem)
        for layout in split_layouts(info, split):
            listing = str(root / (layout["split_file"] or layout["img_dir"]))
            for folder in ("img_dir", "ann_dir"):
                if not (root / layout[folder]).is_dir():
                    problems.append(Problem(str(root / layout[folder]), f"the {split} split's "
                                            f"{'image' if folder == 'img_dir' else 'label'} folder is missing"))
            try:
                data = SegmentationFolder(root, num_classes=len(info.classes),
                                          reduce_zero_label=info.reduce_zero_label, ignore_index=info.ignore_index,
                                          **layout)
            except ZegbenchError as err:
                problems.append(Problem(listing, str(err)))
                continue
            counts[split] = counts.get(split, 0) + len(data)
            for sid in data.ids:
                if sid in first_seen:
                    problems.append(Problem(f"{split}/{sid}", f"listed in {first_seen[sid]} and again in {listing}: "
                                                              f"keep each id in one list"))
                first_seen.setdefault(sid, listing)
            for i in range(len(data) if limit is None else min(limit, len(data))):
                try:
                    data[i]
                except ZegbenchError as err:
                    problems.append(Problem(f"{split}/{data.ids[i]}", str(err)))
        expected = info.expected.get(split)
        if check_counts and expected is not None and split in counts and counts[split] != expected:
            where = ", ".join(str(root / (lay["split_file"] or lay["img_dir"])) for lay in split_layouts(info, split))
            problems.append(Problem(where, f"{counts[split]} {split} images, the benchmark has {expected}: "
                                           f"an incomplete download or another version of the split"))
    return problems, counts


def report(problems: list[Problem]) -> dict:
    """The ``--json`` record: ``{"ok": bool, "problems": [{"where", "what"}, ...]}``."""
    return {"ok": not problems, "problems": [asdict(p) for p in problems]}
