"""One run: (method, dataset, seed, overrides) -> a folder with config, environment, log and result.

    <results>/<suite>/<method>-<dataset>-s<seed>-<hash>/
        config.yaml     the resolved config (method keys, training keys, dataset, seed)
        env.json        versions, device, threads, git commit
        metrics.jsonl   the training log
        checkpoint.pt   method + optimiser state (resume)
        result.json     versioned schema; written last, atomically: its presence means "finished"

A finished run is reused, never overwritten; an unfinished one resumes from its checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch
import yaml

from zegbench.datasets.catalog import build_dataset, load_dataset_info
from zegbench.errors import ZegbenchError
from zegbench.harness.evaluate import evaluate
from zegbench.harness.train import TrainConfig, train
from zegbench.methods import create_method, method_config
from zegbench.utils.io import atomic_write_json

RESULT_SCHEMA = 1
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def resolve(method: str, dataset: str, seed: int, overrides: dict | None = None) -> dict:
    """Merge method config, the dataset's recipe and ``overrides`` (keys of either kind)."""
    info = load_dataset_info(dataset)
    recipe = info.config.get("recipe") or {}
    method_keys = {**method_config(method), **(recipe.get("method") or {})}
    train_keys = {**asdict(TrainConfig()), **(recipe.get("train") or {})}
    for key, value in (overrides or {}).items():
        if key in TRAIN_KEYS:
            train_keys[key] = value
        else:
            method_keys[key] = value
    train_keys["seed"] = seed
    unknown = set(train_keys) - TRAIN_KEYS
    if unknown:
        raise ZegbenchError(f"configs/datasets/{dataset}.yaml: unknown training key {sorted(unknown)[0]!r} "
                            f"under recipe.train; known: {', '.join(sorted(TRAIN_KEYS))}")
    method_keys.pop("description", None)
    return {"method": method, "dataset": dataset, "seed": seed, "method_config": method_keys, "train": train_keys}


def config_hash(resolved: dict) -> str:
    return hashlib.sha1(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]


def run_dir_for(resolved: dict, results: str | Path, suite: str) -> Path:
    name = f"{resolved['method']}-{resolved['dataset']}-s{resolved['seed']}-{config_hash(resolved)}"
    return Path(results) / suite / name


def environment(device: str) -> dict:
    """Versions, device and git commit, recorded beside every run."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import open_clip

    return {"torch": torch.__version__, "open_clip": open_clip.__version__, "python": platform.python_version(),
            "device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "git_commit": commit, "precision": "bf16" if device.startswith("cuda") else "fp32"}


def run_experiment(method: str, dataset: str = "world", seed: int = 0, overrides: dict | None = None,
                   results: str | Path = "results", suite: str = "adhoc", device: str = "cpu",
                   progress: bool = False) -> dict:
    """Train and evaluate one configuration; return its ``result.json`` content (reused if finished)."""
    resolved = resolve(method, dataset, seed, overrides)
    run_dir = run_dir_for(resolved, results, suite)
    result_path = run_dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    atomic_write_json(environment(device), run_dir / "env.json")
    info = load_dataset_info(dataset)
    train_set = build_dataset(dataset, "train", progress=progress)
    val_set = build_dataset(dataset, "val")
    torch.manual_seed(seed)
    model = create_method(method, **{k: v for k, v in resolved["method_config"].items() if k != "class"})
    started = time.time()
    summary = train(model, train_set, info, TrainConfig(**resolved["train"]), run_dir, device, progress)
    metrics = evaluate(model, val_set, info, device=device)
    result = {
        "schema": RESULT_SCHEMA, "status": "finished", "method": method, "dataset": dataset, "seed": seed,
        "setting": resolved["method_config"].get("setting", "inductive"), "config_hash": config_hash(resolved),
        **{k: metrics[k] for k in ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")},
        "per_class": metrics["per_class"], **model.param_counts(),
        "train_seconds": summary["train_seconds"], "total_seconds": round(time.time() - started, 1),
        "inference": resolved["method_config"].get("inference", "whole"), "device": device,
    }
    atomic_write_json(result, result_path)
    return result
