"""One run: a resolved config and its folder in the store -> config, environment, log and result there.

The folder and its files are the run store's (``zegbench/store``: layout and typed result).
A finished run is reused, never overwritten; an unfinished one resumes from its checkpoint.
A finished run with the same config in another suite's folder is copied, not retrained.
A run that differs from a finished one only in inference keys (``Method.inference_keys``,
e.g. the two-stage ensemble rule) evaluates that run's checkpoint instead of training
(``trained_by`` in its result.json names it).
"""
from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

import torch

from zegbench.datasets.catalog import build_dataset, load_dataset_info
from zegbench.engine.config import TrainConfig
from zegbench.engine.environment import environment, intra_op_threads
from zegbench.engine.evaluate import evaluate
from zegbench.engine.identity import (
    config_hash,
    read_training_hash,
    run_folder_for,
    split_fingerprint,
    training_hash,
)
from zegbench.engine.memory import PeakMemory, memory_record, out_of_memory
from zegbench.engine.resolve import resolve
from zegbench.engine.train import train
from zegbench.errors import ZegbenchError, describe_error
from zegbench.methods import build_method
from zegbench.store import (
    RESULT_SCHEMA,
    RunFolder,
    RunStore,
    prepare_for_training,
    read_result,
    record_failure,
    write_image_counts,
    write_result,
)
from zegbench.store.layout import CHECKPOINT_FILE, LOG_FILE, write_config
from zegbench.store.tensorboard import RunEvents
from zegbench.utils import distributed
from zegbench.utils.faults import fault_point
from zegbench.utils.io import atomic_torch_save, atomic_write_json
from zegbench.utils.locks import claim


def resolve_and_run(method: str, dataset: str = "world", seed: int = 0, overrides: dict | None = None,
                    store: RunStore | None = None, suite: str = "adhoc", device: str = "cpu",
                    progress: bool = False, data_root: str | Path | None = None,
                    eval_on: list[str] | None = None, workers: int = 0) -> dict:
    """``zegbench run``'s edge: resolve (method, dataset, seed, overrides) once, then ``run_experiment`` it
    in its folder of suite ``suite`` in ``store`` (default: the store at ``results/``)."""
    resolved = resolve(method, dataset, seed, overrides, world_size=distributed.world_size(), eval_on=eval_on)
    folder = run_folder_for(resolved, store or RunStore("results"), suite)
    return run_experiment(resolved, folder, device, progress, data_root, workers)


def run_experiment(resolved: dict, folder: RunFolder, device: str = "cpu", progress: bool = False,
                   data_root: str | Path | None = None, workers: int = 0) -> dict:
    """Train and evaluate the run ``resolved`` describes in ``folder``; return its ``result.json`` content
    (reused if finished).

    ``resolved`` is the config as its caller resolved it (``engine/resolve.py``; a suite resolves each
    run once, before any is started), and ``folder`` the store's folder for it: nothing is resolved
    again here, so a YAML edited after a suite listed its runs cannot move a queued run elsewhere.

    ``workers``: data loader processes per training process (speed only: not part of
    the config or its hash; recorded in ``env.json``). ``resolved["eval_on"]``: datasets the
    trained model is also evaluated on, with all their classes (cross-dataset; results under
    ``cross_dataset`` in ``result.json``).

    Any exception is recorded in ``failed.json`` (one line and the traceback)
    before it propagates, so a suite can report it and go on. Under torchrun
    every rank calls this; rank 0 decides (claim, reuse) for all of them.
    """
    if folder.config_hash != config_hash(resolved):
        raise ZegbenchError(f"{folder.path} is not the folder of this config (its hash is {config_hash(resolved)}): "
                            f"take run folders from RunStore.run_folder or identity.run_folder_for")
    held, decision = None, None
    if distributed.is_main():
        decision, held = _claim_or_reuse(folder)
    decision = distributed.broadcast(decision)
    if decision == "claimed":
        raise RunClaimed(f"{folder.path} is being run by another process: let it finish (see `run_all.py --list`)")
    if decision == "done":
        return read_result(folder.path).to_record()
    try:
        with intra_op_threads(resolved["train"]["threads"]):  # fixed per run: the digits never follow the cores
            return _train_and_evaluate(resolved, folder, device, progress, data_root, workers)
    except Exception as err:  # Ctrl-C and kills are not recorded: the run stays 'interrupted'
        if distributed.is_main():
            _record_failure(err, folder.path)
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
        record_failure(run_dir, message, type(err).__name__, traceback.format_exc())
    except OSError:
        pass  # the original error propagates; it matters more than its record


def _claim_or_reuse(folder: RunFolder):
    """('done', None) for a finished or adopted run, ('claimed', None) when another process
    runs it, else ('run', claim handle) with the folder ready for training."""
    run_dir = folder.path
    if read_result(run_dir) is not None:
        return "done", None
    held = claim(run_dir)
    if held is None:
        return "claimed", None
    # Finished by another process between our check and our claim, or finished in another suite.
    if read_result(run_dir) is not None or folder.store.copy_finished_elsewhere(run_dir):
        held.close()
        return "done", None
    prepare_for_training(run_dir)
    return "run", held


class RunClaimed(ZegbenchError):
    """Another process holds this run's claim (it is training it now)."""


def _train_and_evaluate(resolved: dict, folder: RunFolder, device: str, progress: bool, data_root,
                        workers: int) -> dict:
    method, dataset, seed = resolved["method"], resolved["dataset"], resolved["seed"]
    run_dir = folder.path
    main = distributed.is_main()
    if main:
        write_config(run_dir, resolved)
        # Training precision is a config key (in the hash); env.json repeats it for the report tables.
        atomic_write_json({**environment(device, workers), "precision": resolved["train"]["precision"]},
                          folder.env_file)
    info = load_dataset_info(dataset)
    if not main:  # rank 0 generates the world (or checks the data) first; the others then read it
        distributed.barrier()
    train_set = build_dataset(dataset, "train", data_root=data_root, progress=progress and main)
    val_set = build_dataset(dataset, "val", data_root=data_root)
    if main:
        distributed.barrier()
    torch.manual_seed(seed)
    model = build_method(resolved["method_config"])
    started = time.time()
    donor = distributed.broadcast(_trained_elsewhere(resolved, folder) if main else None)
    if donor is not None and main:
        _take_trained_weights(donor, folder, resolved)
    distributed.barrier()  # the other ranks resume from the checkpoint rank 0 just wrote
    # With a donor's finished checkpoint in place, train() resumes at the last step: no training.
    with PeakMemory(device) as training:
        try:
            summary = train(model, train_set, info, TrainConfig(**resolved["train"]), run_dir, device, progress,
                            resolved, workers)
        except torch.cuda.OutOfMemoryError:  # a recipe too large for this GPU: say how to split it
            raise out_of_memory(resolved, device) from None
    fault_point("before_evaluate")
    with PeakMemory(device) as evaluation:
        metrics = evaluate(model, val_set, info, device=device)
    cross, cross_counts = {}, {}
    for other in resolved.get("eval_on", []):
        other_info = load_dataset_info(other)
        # Names the model trained on keep the seen-class calibration, as in evaluation and `segment`.
        seen = [c in set(info.seen) for c in other_info.classes]
        m = evaluate(model, build_dataset(other, "val", data_root=data_root), other_info, device=device, seen=seen)
        cross[other] = {k: m[k] for k in ("mIoU", "pAcc", "per_class")}
        cross_counts[other] = m["image_counts"]
    record = {
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
        "memory": memory_record(None if donor or summary.get("training_free") else training, evaluation),
        # Always the weights of the last step: never a checkpoint chosen by its score on the evaluation
        # set (which some official repositories do, and which inflates their numbers).
        "checkpoint_selection": "last",
        "evaluated_step": summary["steps"],
    }
    if donor:
        record["trained_by"] = donor["run"]  # <suite>/<run folder> whose weights were evaluated
    if cross:
        record["cross_dataset"] = cross
    if main:  # each evaluation's per-image counts first: result.json, written last, means "finished"
        events = RunEvents(run_dir)  # TensorBoard: the metrics at the evaluated step
        events.evaluation(summary["steps"], {k: metrics[k] for k in ("mIoU", "mIoU_seen", "mIoU_unseen", "hIoU",
                                                                     "pAcc")})
        for other, m in cross.items():
            events.evaluation(summary["steps"], {k: m[k] for k in ("mIoU", "pAcc")}, prefix=f"cross/{other}")
        events.close()
        write_image_counts(run_dir, metrics["image_counts"], record["config_hash"])
        for other, m in cross_counts.items():
            write_image_counts(run_dir, m, record["config_hash"], cross_dataset=other)
        write_result(run_dir, record)
    return record


def _trained_elsewhere(resolved: dict, folder: RunFolder) -> dict | None:
    """A finished run in this store with the same training hash (it differs only in inference keys).

    Returns ``{"run": "<suite>/<folder>", "path": ..., "train_seconds": ...}`` or None. Folders
    moved aside by ``--force`` and runs without a checkpoint (training-free) never serve.
    """
    want = training_hash(resolved)
    for other, trained in finished_trainings(folder.store):
        if other != folder.path and trained == want:
            return {"run": RunStore.folder_of(other).ref, "path": str(other),
                    "train_seconds": read_result(other).train_seconds}
    return None


def finished_trainings(store: RunStore):
    """(folder, training hash) of each finished run in the store whose checkpoint can lend its weights."""
    for folder in store.lendable_runs():
        yield folder, read_training_hash(folder)


def _take_trained_weights(donor: dict, folder: RunFolder, resolved: dict) -> None:
    """Put the donor's finished checkpoint (under this run's config) and training log into ``folder``."""
    source = Path(donor["path"])
    state = torch.load(source / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    state["config"] = resolved  # `zegbench.load` rebuilds this variant, not the donor's
    atomic_torch_save(state, folder.checkpoint_file)
    if (source / LOG_FILE).is_file():
        shutil.copyfile(source / LOG_FILE, folder.log_file)
