"""One run: (method, dataset, seed, overrides) -> a folder with config, environment, log and result.

    <results>/<suite>/<method>-<dataset>-s<seed>-<hash>/
        config.yaml     the resolved config (method keys, training keys, dataset, seed)
        env.json        versions, device, threads, loader workers, git commit
        metrics.jsonl   the training log
        checkpoint.pt   method + optimiser state (resume)
        result.json     versioned schema; written last, atomically: its presence means "finished"
                        (a damaged one, cut short or edited into another shape, is kept aside as
                        result.json.damaged-<time> and the run is evaluated again)
        failed.json     the error of a run that raised (removed when it is retried)

A finished run is reused, never overwritten; an unfinished one resumes from its checkpoint.
A finished run with the same config in another suite's folder is copied, not retrained.
A run that differs from a finished one only in inference keys (``Method.inference_keys``,
e.g. the two-stage ensemble rule) evaluates that run's checkpoint instead of training
(``trained_by`` in its result.json names it).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, fields
from pathlib import Path

import torch
import yaml

from zegbench.datasets.catalog import build_dataset, load_dataset_info
from zegbench.errors import ZegbenchError, describe_error
from zegbench.harness.config import schema_for_class, train_schema, validate_keys
from zegbench.harness.evaluate import evaluate
from zegbench.harness.identity import input_fingerprints, read_training_hash, split_fingerprint, training_hash
from zegbench.harness.results import RESULT_SCHEMA, inspect_result, read_result
from zegbench.harness.train import TrainConfig, train
from zegbench.methods import create_method, method_config
from zegbench.utils import distributed
from zegbench.utils.claims import claim, is_claimed
from zegbench.utils.faults import fault_point
from zegbench.utils.io import atomic_torch_save, atomic_write_json

TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def resolve(method: str, dataset: str, seed: int, overrides: dict | None = None, world_size: int = 1,
            eval_on: list[str] | None = None) -> dict:
    """Merge method config, the dataset's recipe and ``overrides`` (keys of either kind), then validate.

    Later wins: the method's YAML, ``recipe.method`` and ``recipe.train`` (every
    method on this dataset), ``recipe.per_class[class]`` (every method of one
    implementing class, e.g. all ZegCLIP variants), ``recipe.per_method[method]``
    (one method), then ``overrides``; the last three take method or training
    keys. Every key is checked against the method class's signature or
    ``TrainConfig`` (types included); an error names the layer that set the bad key.
    Keys nobody sets take the class's defaults, and those are recorded too.
    """
    from zegbench.methods.base import method_class

    info = load_dataset_info(dataset)
    recipe = info.config.get("recipe") or {}
    method_file, dataset_file = f"configs/methods/{method}.yaml", f"configs/datasets/{dataset}.yaml"
    method_keys, train_keys, origin = {}, asdict(TrainConfig()), {}
    cls_name = method_config(method)["class"]
    layers = [(method_config(method), method_file, "method"),
              (recipe.get("method") or {}, f"{dataset_file} (recipe.method)", "method"),
              (recipe.get("train") or {}, f"{dataset_file} (recipe.train)", "train"),
              ((recipe.get("per_class") or {}).get(cls_name) or {}, f"{dataset_file} (recipe.per_class.{cls_name})", None),
              ((recipe.get("per_method") or {}).get(method) or {}, f"{dataset_file} (recipe.per_method.{method})", None),
              (overrides or {}, "command-line override", None)]
    for values, where, kind in layers:
        for key, value in values.items():
            if kind == "train" or (kind is None and key in TRAIN_KEYS):
                train_keys[key] = value
            else:
                method_keys[key] = value
            origin[key] = where
    method_keys.pop("class")
    method_keys.pop("description", None)
    schema = schema_for_class(method_class(cls_name))
    method_keys = validate_keys(schema, method_keys, origin, f"method ({cls_name})")
    # Every key the class reads, its defaults included: a changed default (an official
    # behaviour made the default) gives new run folders rather than reusing old numbers.
    method_keys = {**{name: field.default for name, field in schema.model_fields.items()}, **method_keys}
    train_keys = validate_keys(train_schema(), {**train_keys, "seed": seed}, origin, "training")
    resolved = {"method": method, "dataset": dataset, "seed": seed, "method_config": {"class": cls_name, **method_keys},
                "train": train_keys}
    if world_size > 1:  # data-parallel: the global batch is batch_size x world_size x accumulate.
        resolved["world_size"] = world_size  # (absent for one process, so single-process hashes never change)
    eval_infos = [load_dataset_info(other) for other in eval_on or []]  # an unknown name fails now, not after training
    if eval_on:  # cross-dataset evaluations: part of what the run produces
        resolved["eval_on"] = list(eval_on)
    # Dataset definitions and the shipped CLIP checkpoint decide the numbers too: editing
    # either gives new run folders rather than reusing results made from the old ones.
    resolved["inputs"] = input_fingerprints([info, *[i for i in eval_infos if i.name != dataset]],
                                            resolved["method_config"])
    return resolved


def config_hash(resolved: dict) -> str:
    return hashlib.sha1(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]


def run_dir_for(resolved: dict, results: str | Path, suite: str) -> Path:
    name = f"{resolved['method']}-{resolved['dataset']}-s{resolved['seed']}-{config_hash(resolved)}"
    return Path(results) / suite / name


def cpu_name() -> str:
    """The CPU model and core count, e.g. 'Intel(R) Xeon(R) ... (2 cores)'."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def environment(device: str, loader_workers: int | None = None) -> dict:
    """Versions, device and git commit, recorded beside every run (with its data loader's workers, if it trains)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import open_clip

    env = {"torch": torch.__version__, "open_clip": open_clip.__version__, "python": platform.python_version(),
           "device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_name(),
           "threads": torch.get_num_threads(), "git_commit": commit}
    if loader_workers is not None:
        env["loader_workers"] = loader_workers
    return env


def run_status(run_dir: Path | None) -> str:
    """'done', 'running' (claimed by a live process), 'damaged' (a result.json that cannot be trusted:
    the run is evaluated again), 'failed' (raised; error in failed.json), 'interrupted' (started,
    no record) or 'pending'."""
    if run_dir is not None and read_result(run_dir) is not None:
        return "done"
    if run_dir is not None and is_claimed(run_dir):
        return "running"
    if run_dir is None or not run_dir.is_dir():
        return "pending"
    if (run_dir / "result.json").is_file():
        return "damaged"
    return "failed" if (run_dir / "failed.json").is_file() else "interrupted"


def _adopt(run_dir: Path) -> Path | None:
    """Copy the same run, finished in another suite's folder, into ``run_dir`` (caller holds the claim)."""
    other = finished_elsewhere(run_dir)
    if other is None or run_dir.exists():
        return None
    staging = run_dir.with_name(run_dir.name + ".copying")  # renamed only when complete
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(other, staging)
    staging.rename(run_dir)
    return other


def reuse_finished_elsewhere(run_dir: Path) -> Path | None:
    """If another suite finished this very run, copy it here (no training); returns where it came from."""
    if run_dir.exists():
        return None
    held = claim(run_dir)
    if held is None:
        return None
    with held:
        return _adopt(run_dir)


def finished_elsewhere(run_dir: Path) -> Path | None:
    """The same run (same name, so same config hash) finished in another suite's folder."""
    for other in sorted(run_dir.parent.parent.glob(f"*/{run_dir.name}")):
        if other != run_dir and read_result(other) is not None:
            return other
    return None


def run_experiment(method: str, dataset: str = "world", seed: int = 0, overrides: dict | None = None,
                   results: str | Path = "results", suite: str = "adhoc", device: str = "cpu",
                   progress: bool = False, data_root: str | Path | None = None,
                   eval_on: list[str] | None = None, workers: int = 0) -> dict:
    """Train and evaluate one configuration; return its ``result.json`` content (reused if finished).

    ``workers``: data loader processes per training process (speed only: not part of
    the config or its hash; recorded in ``env.json``).

    ``eval_on``: datasets the trained model is also evaluated on, with all their
    classes (cross-dataset; results under ``cross_dataset`` in ``result.json``).

    Any exception is recorded in ``failed.json`` (one line and the traceback)
    before it propagates, so a suite can report it and go on. Under torchrun
    every rank calls this; rank 0 decides (claim, reuse) for all of them.
    """
    resolved = resolve(method, dataset, seed, overrides, world_size=distributed.world_size(), eval_on=eval_on)
    run_dir = run_dir_for(resolved, results, suite)
    held, decision = None, None
    if distributed.is_main():
        decision, held = _claim_or_reuse(run_dir)
    decision = distributed.broadcast(decision)
    if decision == "claimed":
        raise RunClaimed(f"{run_dir} is being run by another process: let it finish (see `run_all.py --list`)")
    if decision == "done":
        return read_result(run_dir)
    try:
        return _train_and_evaluate(resolved, run_dir, device, progress, data_root, workers)
    except Exception as err:  # Ctrl-C and kills are not recorded: the run stays 'interrupted'
        if distributed.is_main():
            _record_failure(err, run_dir)
        raise
    finally:
        if held is not None:
            held.close()  # releases the claim


def _record_failure(err: Exception, run_dir: Path) -> None:
    """Write ``failed.json`` (the error line and the traceback); on a full or read-only disk, where
    that write fails too, the error still reaches the caller and the suite's log."""
    if isinstance(err, (ZegbenchError, OSError)):
        message = describe_error(err)
    else:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
    try:
        atomic_write_json({"error": message, "type": type(err).__name__, "traceback": traceback.format_exc()},
                          run_dir / "failed.json")
    except OSError:
        pass  # the original error propagates; it matters more than its record


def _claim_or_reuse(run_dir: Path):
    """('done', None) for a finished or adopted run, ('claimed', None) when another process
    runs it, else ('run', claim handle) with the folder ready for training."""
    if read_result(run_dir) is not None:
        return "done", None
    held = claim(run_dir)
    if held is None:
        return "claimed", None
    # Finished by another process between our check and our claim, or finished in another suite.
    if read_result(run_dir) is not None or _adopt(run_dir):
        held.close()
        return "done", None
    _set_aside_damaged_result(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "failed.json").unlink(missing_ok=True)
    for stale in run_dir.glob(".*.tmp"):  # temporary files of a write a kill interrupted
        stale.unlink()
    return "run", held


def _set_aside_damaged_result(run_dir: Path) -> None:
    """Rename a damaged result.json to ``result.json.damaged-<time>`` (kept, never deleted) and say so."""
    _, problem = inspect_result(run_dir)
    if problem is None:
        return
    kept = run_dir / f"result.json.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    (run_dir / "result.json").rename(kept)
    print(f"warning: {run_dir / 'result.json'} was damaged ({problem}): kept as {kept.name}; "
          f"the run is evaluated again", file=sys.stderr)


class RunClaimed(ZegbenchError):
    """Another process holds this run's claim (it is training it now)."""


def _train_and_evaluate(resolved: dict, run_dir: Path, device: str, progress: bool, data_root, workers: int) -> dict:
    method, dataset, seed = resolved["method"], resolved["dataset"], resolved["seed"]
    result_path = run_dir / "result.json"
    main = distributed.is_main()
    if main:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
        # Training precision is a config key (in the hash); env.json repeats it for the report tables.
        atomic_write_json({**environment(device, workers), "precision": resolved["train"]["precision"]}, run_dir / "env.json")
    info = load_dataset_info(dataset)
    if not main:  # rank 0 generates the world (or checks the data) first; the others then read it
        distributed.barrier()
    train_set = build_dataset(dataset, "train", data_root=data_root, progress=progress and main)
    val_set = build_dataset(dataset, "val", data_root=data_root)
    if main:
        distributed.barrier()
    torch.manual_seed(seed)
    model = create_method(method, **{k: v for k, v in resolved["method_config"].items() if k != "class"})
    started = time.time()
    donor = distributed.broadcast(_trained_elsewhere(resolved, run_dir) if main else None)
    if donor is not None and main:
        _take_trained_weights(donor, run_dir, resolved)
    distributed.barrier()  # the other ranks resume from the checkpoint rank 0 just wrote
    # With a donor's finished checkpoint in place, train() resumes at the last step: no training.
    summary = train(model, train_set, info, TrainConfig(**resolved["train"]), run_dir, device, progress, resolved,
                    workers)
    fault_point("before_evaluate")
    metrics = evaluate(model, val_set, info, device=device)
    cross = {}
    for other in resolved.get("eval_on", []):
        other_info = load_dataset_info(other)
        # Names the model trained on keep the seen-class calibration, as in evaluation and `segment`.
        seen = [c in set(info.seen) for c in other_info.classes]
        m = evaluate(model, build_dataset(other, "val", data_root=data_root), other_info, device=device, seen=seen)
        cross[other] = {k: m[k] for k in ("mIoU", "pAcc", "per_class")}
    result = {
        "schema": RESULT_SCHEMA, "status": "finished", "method": method, "dataset": dataset, "seed": seed,
        "setting": model.setting, "config_hash": config_hash(resolved),
        **{k: metrics[k] for k in ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")},
        "per_class": metrics["per_class"], **model.param_counts(),
        "train_seconds": donor["train_seconds"] if donor else summary["train_seconds"],
        "total_seconds": round(time.time() - started, 1),
        "inference": model.inference, "device": device,
        "world_size": distributed.world_size(),
        # Which class list and unseen split produced these numbers (the dataset YAML can change).
        "dataset_split": split_fingerprint(info),
    }
    if donor:
        result["trained_by"] = donor["run"]  # <suite>/<run folder> whose weights were evaluated
    if cross:
        result["cross_dataset"] = cross
    if main:
        atomic_write_json(result, result_path)
    return result


def _trained_elsewhere(resolved: dict, run_dir: Path) -> dict | None:
    """A finished run in this store with the same training hash (it differs only in inference keys).

    Returns ``{"run": "<suite>/<folder>", "path": ..., "train_seconds": ...}`` or None. Folders
    moved aside by ``--force`` and runs without a checkpoint (training-free) never serve.
    """
    want = training_hash(resolved)
    for other, trained in finished_trainings(run_dir.parent.parent):
        if other != run_dir and trained == want:
            return {"run": f"{other.parent.name}/{other.name}", "path": str(other),
                    "train_seconds": read_result(other).get("train_seconds")}
    return None


def finished_trainings(results: str | Path):
    """(folder, training hash) of each finished run in the store whose checkpoint can lend its weights."""
    for result_path in sorted(Path(results).glob("*/*/result.json")):
        other = result_path.parent
        if ".replaced-" in other.name or not (other / "checkpoint.pt").is_file() or read_result(other) is None:
            continue  # moved aside by --force, training-free, or a damaged record
        yield other, read_training_hash(other)


def _take_trained_weights(donor: dict, run_dir: Path, resolved: dict) -> None:
    """Put the donor's finished checkpoint (under this run's config) and training log into ``run_dir``."""
    source = Path(donor["path"])
    state = torch.load(source / "checkpoint.pt", map_location="cpu", weights_only=True)
    state["config"] = resolved  # `zegbench.load` rebuilds this variant, not the donor's
    atomic_torch_save(state, run_dir / "checkpoint.pt")
    if (source / "metrics.jsonl").is_file():
        shutil.copyfile(source / "metrics.jsonl", run_dir / "metrics.jsonl")
