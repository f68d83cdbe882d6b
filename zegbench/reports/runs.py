"""The runs frame: the only module of ``reports/`` that opens a run's files.

One row per finished run, each run's ``result.json``, ``config.yaml`` and ``env.json`` read once:
``runs_frame`` for a suite's runs (``store.SuiteRun``s: the tables, the scorecard, the plots, the
budget curves and the console summary), ``store_runs_frame`` for every finished run of a store (the
leaderboard). A run whose ``result.json`` is missing or damaged is no row (the harness sets a damaged
one aside and evaluates the run again). Two files are read here on demand only, for the few runs that
need them: the training log (``training_losses``, for the curves) and the per-image counts
(``image_counts``, large, for a claim's pairs). No other module of ``reports/`` reads a run's files
(``tests/test_reports.py`` checks it); speed records are not runs, and the scorecard and the speed
report read them from the store.

Columns: ``group``, ``variant`` (``variants.variant_label``), ``method``, ``dataset``, ``seed``,
``setting``, the metrics (``METRICS``, NaN where undefined), ``per_class`` (class -> IoU), the parameter
counts, ``train_seconds``, ``train_memory_gib``/``memory_kind``, ``device``, ``torch``, ``precision``,
``inference``, the budget (``steps``, ``global_batch`` = batch size x accumulation x world size; whole
numbers, None without a config), ``training_free`` (the record evaluated step 0), ``overrides`` and
``shown`` (the suite's overrides of the run, and those that tell its variant apart), ``config`` (the
resolved config, or None) and ``run_dir``; a store frame adds ``suites`` (every suite holding the run).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from zegbench.reports.variants import variant_label
from zegbench.store import (
    ImageCounts,
    RunResult,
    RunStore,
    SuiteRun,
    inspect_image_counts,
    read_config,
    read_json,
    read_result,
)
from zegbench.store.layout import ENV_FILE, LOG_FILE

METRICS = {"pAcc": "pAcc", "mIoU_seen": "mIoU(S)", "mIoU_unseen": "mIoU(U)", "hIoU": "hIoU"}  # key -> table label
ENV_COLUMNS = ["device", "torch", "precision", "inference"]
COLUMNS = ["group", "variant", "method", "dataset", "seed", "setting", *METRICS, "params_total", "params_trainable",
           "params_trainable_official", "train_seconds", "train_memory_gib", "memory_kind", *ENV_COLUMNS,
           "steps", "global_batch", "training_free", "per_class", "overrides", "shown", "config", "run_dir"]
WHOLE_NUMBERS = ("steps", "global_batch")  # kept as ints or None (a float column would print 1500.0 steps)


def runs_frame(specs: list[SuiteRun]) -> pd.DataFrame:
    """One row per finished run of ``specs``, in their order: the suite's identity of each (group, variant,
    overrides) and what its files hold."""
    rows = []
    for spec in specs:
        result = read_result(spec.run_dir)
        if result is None:
            continue
        shown = spec.overrides if spec.shown is None else spec.shown
        identity = {"group": spec.group, "variant": variant_label(spec.method, shown), "method": spec.method,
                    "dataset": spec.dataset, "seed": spec.seed, "overrides": spec.overrides, "shown": shown}
        rows.append(_row(spec.run_dir, result, read_config(spec.run_dir), identity))
    return _frame(rows, COLUMNS)


def store_runs_frame(store: RunStore) -> pd.DataFrame:
    """One row per finished training run of ``store``, across suites (``RunStore.finished_runs``: a run copied
    between suites is one row, ``suites`` names each holding it). Method, dataset and seed are its config's
    (None without one); group, variant, overrides and shown are a suite's, so None here."""
    rows = []
    for folder, result in store.finished_runs():
        config = read_config(folder)
        identity = {key: (config or {}).get(key) for key in ("method", "dataset", "seed")}
        rows.append({**_row(folder, result, config, identity), "suites": store.suites_holding(folder.name)})
    return _frame(rows, [*COLUMNS, "suites"])


def _row(run_dir: Path, result: RunResult, config: dict | None, identity: dict) -> dict:
    """A run's row: ``identity``, its record, its resolved config and what its env.json holds."""
    env = read_json(run_dir / ENV_FILE)
    memory = result.memory or {}  # records before 2026-12-06 have none: NaN, '-'
    return {**identity, "setting": result.setting, **{m: result.metric(m) for m in METRICS},
            "per_class": result.per_class, "params_total": result.params_total,
            "params_trainable": result.params_trainable, "params_trainable_official": result.params_trainable_official,
            "train_seconds": result.train_seconds, "train_memory_gib": memory.get("train_gib"),
            "memory_kind": memory.get("kind"), "device": env.get("device_name") or result.device,
            "torch": env.get("torch"), "precision": env.get("precision"), "inference": result.inference,
            **_budget(config), "training_free": result.evaluated_step == 0,  # older records: unknown, taken as trained
            "config": config, "run_dir": str(run_dir)}


def _budget(config: dict | None) -> dict:
    """``steps`` and ``global_batch`` of a resolved config (None for both without a config or its training keys)."""
    train = (config or {}).get("train")
    if not train:
        return {"steps": None, "global_batch": None}
    return {"steps": train["steps"],
            "global_batch": train["batch_size"] * train.get("accumulate", 1) * config.get("world_size", 1)}


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in WHOLE_NUMBERS:
        frame[column] = pd.Series([row[column] for row in rows], index=frame.index, dtype=object)
    return frame


def training_losses(runs: pd.DataFrame) -> pd.DataFrame:
    """Each logged step's training loss of every row of ``runs`` that has a training log: columns step, loss,
    variant, seed (empty when none has one)."""
    frames = []
    for variant, seed, run_dir in zip(runs["variant"], runs["seed"], runs["run_dir"], strict=True):
        log = Path(run_dir) / LOG_FILE
        if log.is_file():
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            frames.append(pd.DataFrame({"step": [x["step"] for x in lines], "loss": [x["loss"] for x in lines],
                                        "variant": variant, "seed": seed}))
    return pd.concat(frames) if frames else pd.DataFrame(columns=["step", "loss", "variant", "seed"])


def image_counts(run_dir: str | Path) -> tuple[ImageCounts | None, str | None]:
    """(a row's per-image counts, None), (None, why they are unreadable), or (None, None) when it has none
    (``store.inspect_image_counts``)."""
    return inspect_image_counts(Path(run_dir))
