"""Where runs live, and what each file of a run folder is.

    <results>/<suite>/<method>-<dataset>-s<seed>-<hash>/     a training run (``hash``: its resolved config)
        config.yaml     the resolved config (method keys, training keys, dataset, seed, inputs)
        env.json        versions, device, threads, fp32 math, loader workers, git commit
        metrics.jsonl   the training log
        checkpoint.pt   method + optimiser state, step, batch plan position, generator states (exact resume;
                        lent to inference-only variants)
        image_counts.npz            each evaluated image's per-class intersection and union (``image_counts``);
        image_counts.<dataset>.npz  one per cross-dataset evaluation; both written before result.json
        result.json     the typed record (``result.RunResult``); written last, atomically: its presence
                        means "finished" (a damaged one is kept aside as result.json.damaged-<time>)
        failed.json     the error of a run that raised (removed when it is retried)
    <results>/<suite>/<method>-<dataset>-speed-<hash>/       a speed record (env.json, result.json)
    <results>/<suite>/<run>.replaced-<time>/                  moved aside by ``--force``, never deleted
    <results>/<suite>/summary.json                            the suite pooled over seeds
    <results>/world-budget/<dataset>/<method>-s0-<steps>-<hash>/   a budget-rule run (``lab/budget.py``):
        config.yaml, metrics.jsonl, checkpoint.pt as a training run; budget.json (last) instead of result.json,
        since the rule reads training images only and never evaluates on val

The same run (same folder name, so same config hash) in two suites' folders is one run:
the second suite copies the first's folder instead of training it again.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from zegbench.errors import ZegbenchError
from zegbench.store.result import RESULT_FILE, RunResult, inspect_result, read_result
from zegbench.utils.io import atomic_write_json
from zegbench.utils.locks import claim, is_claimed

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
LOG_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
FAILED_FILE = "failed.json"
SUMMARY_FILE = "summary.json"
BUDGET_FILE = "budget.json"  # a budget-rule run's record (training images only)
BUDGET_FOLDER = "world-budget"
IMAGE_COUNTS_FILE = "image_counts.npz"  # the run's own evaluation; a cross-dataset one: image_counts_name(dataset)
SUBMITIT_FOLDER = ".submitit"  # a suite folder's Slurm job scripts and logs
REPLACED = ".replaced-"  # a folder moved aside by --force: '<run>.replaced-<time>'

log = logging.getLogger(__name__)


class SuiteRun(Protocol):
    """What the reports need to know of one run of a suite (the harness's ``suite.RunSpec`` is one)."""

    method: str
    dataset: str
    seed: int
    group: str
    overrides: dict
    shown: dict | None  # the overrides that tell this variant apart from the suite's other runs
    run_dir: Path

    @property
    def variant(self) -> str: ...


def image_counts_name(cross_dataset: str | None = None) -> str:
    """``image_counts.npz``, or ``image_counts.<dataset>.npz`` for a cross-dataset evaluation."""
    return IMAGE_COUNTS_FILE if cross_dataset is None else f"image_counts.{cross_dataset}.npz"


def read_config(run_dir: Path) -> dict | None:
    """A run folder's resolved config (``config.yaml``), or None when it is missing or cannot be read."""
    try:
        config = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) else None


def write_config(run_dir: Path, resolved: dict) -> None:
    """Write a run's resolved config as ``config.yaml``, in the order it was resolved."""
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))


def read_json(path: Path) -> dict:
    """A JSON file of a run folder (``env.json``, a speed record), or {} when it is absent."""
    return json.loads(path.read_text()) if path.is_file() else {}


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
    if (run_dir / RESULT_FILE).is_file():
        return "damaged"
    return "failed" if (run_dir / FAILED_FILE).is_file() else "interrupted"


def failure_line(run_dir: Path) -> str | None:
    """The one-line error of a run that raised (``failed.json``), or None."""
    path = run_dir / FAILED_FILE
    return json.loads(path.read_text())["error"] if path.is_file() else None


def record_failure(run_dir: Path, message: str, kind: str, traceback: str) -> None:
    """Write ``failed.json``: the error line, the exception's type and the traceback."""
    atomic_write_json({"error": message, "type": kind, "traceback": traceback}, run_dir / FAILED_FILE)


def prepare_for_training(run_dir: Path) -> None:
    """Make ``run_dir`` ready for a (re)start (caller holds its claim): a damaged result set aside,
    the last failure's record and the temporary files of a write a kill interrupted removed."""
    set_aside_damaged_result(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    for stale in run_dir.glob(".*.tmp"):
        stale.unlink()


def set_aside_damaged_result(run_dir: Path) -> None:
    """Rename a damaged result.json to ``result.json.damaged-<time>`` (kept, never deleted) and say so."""
    _, problem = inspect_result(run_dir)
    if problem is None:
        return
    kept = run_dir / f"{RESULT_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    (run_dir / RESULT_FILE).rename(kept)
    log.warning(f"warning: {run_dir / RESULT_FILE} was damaged ({problem}): kept as {kept.name}; "
                f"the run is evaluated again")


@dataclass(frozen=True)
class RunFolder:
    """One training run's folder in a store: its path, its ``<suite>/<run>`` reference and its files' paths.

    The store hands these out (``RunStore.run_folder``, ``RunStore.folder_of``); a caller never joins a run
    path or formats a run reference itself. Plain data, so it travels in a worker's payload
    (``as_payload``/``from_payload``) and the worker trains into the folder its suite listed.
    """

    root: Path  # the store's root (``--results``)
    suite: str
    name: str  # ``<method>-<dataset>-s<seed>-<config hash>``

    @property
    def path(self) -> Path:
        return self.root / self.suite / self.name

    @property
    def ref(self) -> str:
        """``<suite>/<run>``: how records and logs name a run (``trained_by``, donors, copies)."""
        return f"{self.suite}/{self.name}"

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)

    @property
    def config_hash(self) -> str:
        """The config hash the folder's name ends with."""
        return self.name.rsplit("-", 1)[-1]

    @property
    def env_file(self) -> Path:
        return self.path / ENV_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def checkpoint_file(self) -> Path:
        return self.path / CHECKPOINT_FILE

    def as_payload(self) -> dict:
        """The folder as JSON-ready data (a worker's payload)."""
        return {"results": str(self.root), "suite": self.suite, "name": self.name}

    @classmethod
    def from_payload(cls, data: dict) -> RunFolder:
        return cls(Path(data["results"]), data["suite"], data["name"])


class RunStore:
    """The run store at ``root`` (``--results``): suite folders of run folders and speed records."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def suite_folder(self, suite: str) -> Path:
        return self.root / suite

    def slurm_folder(self, suite: str) -> Path:
        """Where a suite's Slurm jobs keep their scripts and logs (submitit)."""
        return self.root / suite / SUBMITIT_FOLDER

    def run_folder(self, suite: str, method: str, dataset: str, seed: int, config_hash: str) -> RunFolder:
        """The folder of a training run: ``<suite>/<method>-<dataset>-s<seed>-<config hash>``."""
        return RunFolder(self.root, suite, f"{method}-{dataset}-s{seed}-{config_hash}")

    def run_dir(self, suite: str, method: str, dataset: str, seed: int, config_hash: str) -> Path:
        """``run_folder``'s path."""
        return self.run_folder(suite, method, dataset, seed, config_hash).path

    @staticmethod
    def folder_of(run_dir: Path) -> RunFolder:
        """The run folder at ``run_dir`` (``<results>/<suite>/<run>``), as the store names it."""
        return RunFolder(run_dir.parents[1], run_dir.parent.name, run_dir.name)

    def speed_dir(self, suite: str, method: str, dataset: str, digest: str) -> Path:
        """The folder of a speed record: ``<suite>/<method>-<dataset>-speed-<hash>``."""
        return self.root / suite / f"{method}-{dataset}-speed-{digest}"

    def budget_dir(self, dataset: str, method: str, steps: int, config_hash: str) -> Path:
        """The folder of a budget-rule run: ``world-budget/<dataset>/<method>-s0-<steps>-<config hash>``."""
        return self.root / BUDGET_FOLDER / dataset / f"{method}-s0-{steps}-{config_hash}"

    def check_writable(self) -> None:
        """Fail before any training if the store cannot be written (one line naming the folder)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{time.time_ns()}"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise ZegbenchError(f"results folder {self.root} is not writable ({err.strerror}): choose another "
                                f"--results or fix its permissions") from None

    # Lookups across suites ------------------------------------------------------------------

    def result_folders(self, suite: str) -> set[Path]:
        """The run folders of ``suite`` holding a result.json, sound or not (not those moved aside)."""
        return {p.parent for p in self.suite_folder(suite).glob(f"*/{RESULT_FILE}") if REPLACED not in p.parent.name}

    def finished_elsewhere(self, run_dir: Path) -> Path | None:
        """The same run (same name, so same config hash) finished in another suite's folder."""
        for other in sorted(self.root.glob(f"*/{run_dir.name}")):
            if other != run_dir and read_result(other) is not None:
                return other
        return None

    def copy_finished_elsewhere(self, run_dir: Path) -> Path | None:
        """Copy the same run, finished in another suite's folder, into ``run_dir`` (the caller holds
        its claim); returns where it came from, or None when there is none or ``run_dir`` exists."""
        other = self.finished_elsewhere(run_dir)
        if other is None or run_dir.exists():
            return None
        staging = run_dir.with_name(run_dir.name + ".copying")  # renamed only when complete
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(other, staging)
        staging.rename(run_dir)
        return other

    def reuse_finished_elsewhere(self, run_dir: Path) -> Path | None:
        """If another suite finished this very run, copy it here (no training); returns where it came from."""
        if run_dir.exists():
            return None
        held = claim(run_dir)
        if held is None:
            return None
        with held:
            return self.copy_finished_elsewhere(run_dir)

    def lendable_runs(self):
        """Finished run folders whose checkpoint can lend its weights to a variant that only evaluates:
        not moved aside by --force, not training-free (no checkpoint), not damaged."""
        for result_path in sorted(self.root.glob(f"*/*/{RESULT_FILE}")):
            folder = result_path.parent
            if REPLACED in folder.name or not (folder / CHECKPOINT_FILE).is_file() or read_result(folder) is None:
                continue
            yield folder

    def finished_runs(self) -> list[tuple[Path, RunResult]]:
        """(folder, record) of every sound finished training run in the store, across suites (not those moved
        aside, not speed records). The same run finished in two suites' folders (same name, so the same
        config hash) is one run: listed once, from the suite first in name order."""
        found: dict[str, tuple[Path, RunResult]] = {}
        for path in sorted(self.root.glob(f"*/*-s*-*/{RESULT_FILE}")):
            folder = path.parent
            if REPLACED in folder.name or folder.name in found:
                continue
            result = read_result(folder)
            if result is not None:
                found[folder.name] = (folder, result)
        return list(found.values())

    def suites_holding(self, run_name: str) -> list[str]:
        """The suites whose folder holds the finished run named ``run_name`` (a run copied between suites)."""
        return sorted(p.parent.parent.name for p in self.root.glob(f"*/{run_name}/{RESULT_FILE}")
                      if read_result(p.parent) is not None)

    def results_of(self, method: str, dataset: str) -> list[RunResult]:
        """Every sound record of ``method`` on ``dataset`` in any suite's folder (any seed, any config)."""
        found = []
        for path in sorted(self.root.glob(f"*/{method}-{dataset}-s*-*/{RESULT_FILE}")):
            result = read_result(path.parent) if REPLACED not in path.parent.name else None
            if result is not None:
                found.append(result)
        return found

    def move_aside(self, run_dirs) -> None:
        """``--force``: rename existing run folders to ``<run>.replaced-<time>``; nothing is deleted.

        Each run's claim is taken first: a run another process is training is refused (renaming
        its folder under it would split its files between two folders), and nothing is moved.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        existing = [run_dir for run_dir in run_dirs if run_dir.exists()]
        held = []
        try:
            for run_dir in existing:
                handle = claim(run_dir)
                if handle is None:
                    raise ZegbenchError(f"--force: {run_dir} is being run by another process now: let it finish "
                                        f"(or stop it) and force again; nothing was moved")
                held.append(handle)
            for run_dir in existing:
                run_dir.rename(run_dir.with_name(f"{run_dir.name}{REPLACED}{stamp}"))
        finally:
            for handle in held:
                handle.close()

    # Budget-rule runs ------------------------------------------------------------------------

    @staticmethod
    def read_budget_record(folder: Path) -> dict | None:
        """A finished budget-rule run's record, or None when it has not finished."""
        path = folder / BUDGET_FILE
        return read_json(path) if path.is_file() else None

    @staticmethod
    def write_budget_record(folder: Path, record: dict) -> None:
        """``budget.json``, written last and atomically: its presence means measured."""
        atomic_write_json(record, folder / BUDGET_FILE)

    # Speed records ---------------------------------------------------------------------------

    @staticmethod
    def has_speed_record(folder: Path) -> bool:
        return (folder / RESULT_FILE).is_file()

    @staticmethod
    def read_speed_record(folder: Path) -> dict:
        return json.loads((folder / RESULT_FILE).read_text())

    @staticmethod
    def write_speed_record(folder: Path, env: dict, record: dict) -> None:
        """``env.json`` then ``result.json`` (last: its presence means measured)."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(env, folder / ENV_FILE)
        atomic_write_json(record, folder / RESULT_FILE)

    def speed_records(self) -> list[tuple[str, dict]]:
        """(machine, record) of every speed record in the store, newest first (machine from its env.json)."""
        paths = sorted(self.root.glob(f"*/*-speed-*/{RESULT_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
        out = []
        for path in paths:
            machine = read_json(path.with_name(ENV_FILE)).get("device_name")
            out.append((machine or "unknown machine", json.loads(path.read_text())))
        return out
