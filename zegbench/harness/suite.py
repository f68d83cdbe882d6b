"""Suites: ``suites/<name>.yaml`` of a config folder expanded into runs, their status, and their execution.

A suite is a list of groups; a group is methods x datasets x seeds x the
combinations of its ``grid`` values, with ``set`` applied to all. Each run is
identified by the hash of its resolved config (``identity.run_folder_for``), so a
second invocation finds finished runs and trains nothing.

Runs execute in processes of their own (``harness/worker.py``; on the CPU forked from a
template that has imported torch once, ``harness/run_template.py``): a crash or an
out-of-memory kill ends one run, never the suite. Each run computes with its config's
``train.threads`` torch threads, whatever the machine; parallelism comes from runs side
by side (``jobs``, by default as many as the cores and memory hold: ``default_jobs``).
"""
from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import os
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from zegbench.config_dirs import config_file, config_names
from zegbench.datasets.loader import default_workers
from zegbench.engine.identity import run_folder_for, training_hash
from zegbench.engine.resolve import resolve
from zegbench.engine.run import finished_trainings
from zegbench.errors import ZegbenchError, check_name, validation_error
from zegbench.harness.executors import ExecutorOptions, LocalProcesses, gpu_groups, submit_slurm
from zegbench.harness.progress import SuiteProgress, format_duration
from zegbench.harness.suite_config import SuiteConfig
from zegbench.reports.variants import variant_label
from zegbench.store import RunStore, failure_line, read_config, read_result, run_status
from zegbench.utils.cores import available_cores, available_memory
from zegbench.utils.io import read_yaml_mapping

log = logging.getLogger(__name__)
TRAINING_FREE = "training-free: evaluates only"  # how --list marks a run with nothing to train
# What one CPU run may take, for -j's default: a world run's peak resident memory is about 1 GiB
# (result.json's `memory`, libraries included: 0.95 training, 0.97 evaluation on a 2-core Xeon,
# 2026-12-06), and half again for its loader worker, the template's pages and the page cache.
CPU_RUN_MEMORY = 1.5 * 2**30


def available() -> list[str]:
    """The suite names of every config folder (``zegbench.config_dirs``)."""
    return config_names("suites")


def suite_path(name: str) -> Path:
    """The file of suite ``name`` in the config folders, or ``name`` itself when it is a path to a YAML file."""
    if name.endswith((".yaml", ".yml")):
        check_name(Path(name).stem, "suite file")  # its stem names the results folder
        return Path(name)
    return config_file("suites", name)


def label_matches(label: str, pattern: str) -> bool:
    """``--only``: shell-style ``*`` and ``?`` anywhere in a run's label; brackets are literal,
    because labels contain them (``zegclip [world] seed 0``)."""
    literal = "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in pattern)
    return fnmatch.fnmatch(label, f"*{literal}*")


def load_suite(name: str) -> SuiteConfig:
    """Read and validate a suite by name (or path; see ``suite_path``)."""
    path = suite_path(name)
    if not path.is_file():  # a path given on the command line (a name is found or refused by suite_path)
        raise ZegbenchError(f"suite file {path} does not exist; known suites: {', '.join(available())}")
    try:
        return SuiteConfig.model_validate(read_yaml_mapping(path))
    except ValidationError as err:
        raise validation_error(err, str(path), schema=SuiteConfig) from None


@dataclass
class RunSpec:
    """One run of a suite, and where its folder is."""

    method: str
    dataset: str
    seed: int
    overrides: dict = field(default_factory=dict)
    group: str = ""
    shown: dict | None = None  # the overrides that tell this variant apart (set by ``expand``)
    suite: str = ""  # the suite whose folder holds the run (an included suite keeps its own)
    run_dir: Path | None = None
    eval_on: list[str] = field(default_factory=list)  # cross-dataset evaluations after training
    training_hash: str = ""  # equal for runs that train the same weights (identity.training_hash)
    resolved: dict = field(default_factory=dict, repr=False)  # its resolved config (run.resolve)

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.method} [{self.dataset}] seed {self.seed}" + (f" {extra}" if extra else "")

    @property
    def variant(self) -> str:
        """The row this run averages into: method plus the overrides that distinguish it (seeds pooled)."""
        return variant_label(self.method, self.overrides if self.shown is None else self.shown)


def expand(name: str, dataset: str | None = None, seeds: int | None = None, store: RunStore | None = None,
           only: str | None = None, _seen: tuple[str, ...] = (), world_size: int = 1,
           known: dict[tuple, dict] | None = None) -> list[RunSpec]:
    """The runs of suite ``name`` (``include``d suites first), each with its resolved config and run folder.

    ``dataset`` replaces the suite's dataset, ``seeds`` N replaces its seeds
    with 0..N-1, ``only`` keeps runs whose label matches the shell pattern,
    ``world_size`` > 1 expands data-parallel runs (the executor's processes per run).
    ``known``: configs this invocation already resolved (``resolved_by_run``), used instead of
    resolving those runs again, so one invocation sees each run's config once.
    """
    store = store or RunStore("results")
    if name in _seen:
        raise ZegbenchError(f"{suite_path(name)}: 'include' forms a cycle ({' -> '.join(_seen + (name,))})")
    suite = load_suite(name)
    folder = suite_path(name).stem  # the run store folder: results/<folder>/
    specs: list[RunSpec] = []
    for included in suite.include:
        specs += expand(included, dataset, seeds, store, only, _seen + (name,), world_size, known)
    for index, group in enumerate(suite.groups):
        keys = list(group.grid)
        datasets = [dataset] if dataset else (group.datasets or [suite.dataset])
        seed_list = list(range(seeds)) if seeds else (group.seeds or suite.seeds)
        for values in itertools.product(*(group.grid[k] for k in keys)):
            overrides = {**group.set, **dict(zip(keys, values, strict=True))}
            for ds, method, seed in itertools.product(datasets, group.methods, seed_list):
                spec = RunSpec(method, ds, seed, overrides, group=group.name or f"group{index}", suite=folder,
                               eval_on=list(group.eval_datasets))
                resolved = (known or {}).get(_run_key(spec, world_size)) or resolve(
                    method, ds, seed, overrides, world_size=world_size, eval_on=group.eval_datasets,
                    overrides_from=f"{suite_path(name)} (groups.{index}: set and grid)")
                spec.run_dir = run_folder_for(resolved, store, folder).path
                spec.training_hash = training_hash(resolved)
                spec.resolved = resolved
                specs.append(spec)
    if only:
        specs = [s for s in specs if label_matches(s.label, only)]
    specs = list({s.run_dir: s for s in specs}.values())  # a run listed twice (e.g. via include) runs once
    # Overrides every run shares (a smoke suite's few steps) name no variant: leave them out of labels.
    common = set.intersection(*(set(_items(s.overrides)) for s in specs)) if specs else set()
    for s in specs:
        s.shown = {k: v for k, v in s.overrides.items() if (k, _hashable(v)) not in common}
    return specs


def with_finished_runs(name: str, specs: list[RunSpec],
                       store: RunStore) -> tuple[list[RunSpec], list[Path]]:
    """``specs`` (what an invocation asked for) plus every finished run of suite ``name`` in the store;
    and the finished folders that match no run of the suite as it is defined now.

    A suite's summary and report cover all its finished runs, whatever subset one invocation ran
    (``--only``, ``--dataset``, ``--seeds``, ``--nproc``): the suite is expanded again for each
    dataset and world size found among its finished runs (and the invocation's), with enough
    seeds, and each run is labelled as that full expansion labels it. A folder matching none was
    made from an older suite, method or dataset definition; the report counts those.
    """
    known = resolved_by_run(specs)  # the invocation's own runs keep the configs they were listed (and trained) with
    suites = {s.suite for s in expand(name, store=store, known=known)} | {s.suite for s in specs}
    finished = set().union(*(store.result_folders(suite) for suite in suites))
    combos = {(s.dataset, s.resolved.get("world_size", 1)) for s in specs}
    top_seed = max((s.seed for s in specs), default=0)
    for run_dir in finished:
        config = read_config(run_dir)
        if config is not None and "dataset" in config and "seed" in config:
            combos.add((config["dataset"], config.get("world_size", 1)))
            top_seed = max(top_seed, config["seed"])
    asked = {s.run_dir for s in specs}
    covered: dict[Path, RunSpec] = {}
    for dataset, world_size in sorted(combos):
        try:
            candidates = expand(name, dataset, top_seed + 1, store, world_size=world_size, known=known)
        except ZegbenchError:  # a dataset no longer defined: its runs count as unmatched
            continue
        for spec in candidates:
            if spec.run_dir in finished or spec.run_dir in asked:  # asked: every run of ``specs`` is here
                covered.setdefault(spec.run_dir, spec)
    return list(covered.values()), sorted(finished - set(covered))


def plan(specs: list[RunSpec], store: RunStore) -> dict[Path, str]:
    """For ``--list``: how each unfinished run will be served, so a suite's cost can be told in advance.

    'copy of <suite>/' (finished in another suite), 'training-free: evaluates only' (a method
    with nothing to train, ``Method.training_free``), 'evaluates the weights of <suite>/<run>' (a
    finished run trained them), 'evaluates the weights of <label>' (an earlier run of this list
    will train them), else 'trains'.
    """
    from zegbench.methods import method_class

    donors = {}
    for folder, trained in finished_trainings(store):
        donors.setdefault(trained, RunStore.folder_of(folder).ref)
    notes, trainer = {}, {}
    for spec in specs:
        if run_status(spec.run_dir) in ("done", "damaged"):  # damaged: evaluated again from its checkpoint
            continue
        elsewhere = store.finished_elsewhere(spec.run_dir)
        if elsewhere is not None:
            notes[spec.run_dir] = f"copy of {elsewhere.parent.name}/"
        elif method_class(spec.resolved["method_config"]["class"]).training_free:
            notes[spec.run_dir] = TRAINING_FREE
        elif spec.training_hash in donors:
            notes[spec.run_dir] = f"evaluates the weights of {donors[spec.training_hash]}"
        elif spec.training_hash in trainer:
            notes[spec.run_dir] = f"evaluates the weights of {trainer[spec.training_hash]}"
        else:
            notes[spec.run_dir] = "trains"
            trainer[spec.training_hash] = spec.label
    return notes


def _run_key(spec: RunSpec, world_size: int) -> tuple:
    """What decides a run's resolved config within one invocation: its method, dataset, seed, overrides,
    world size and cross-dataset evaluations (the YAMLs are read once, by whichever expansion comes first)."""
    return (spec.method, spec.dataset, spec.seed, _hashable(spec.overrides), world_size, _hashable(spec.eval_on))


def resolved_by_run(specs: list[RunSpec]) -> dict[tuple, dict]:
    """``expand``'s ``known``: each expanded run's resolved config, by ``_run_key``."""
    return {_run_key(s, s.resolved.get("world_size", 1)): s.resolved for s in specs if s.resolved}


def _hashable(value):
    return json.dumps(value, sort_keys=True)


def _items(overrides: dict) -> list[tuple]:
    return [(k, _hashable(v)) for k, v in overrides.items()]


def _payload(spec: RunSpec, device: str, data_root: str | None, progress: bool, workers: int | None = None) -> dict:
    """``worker.main``'s argument: the run's config as ``expand`` resolved it and its folder, so the
    worker resolves nothing (``engine/run.py``); ``workers`` None: the worker's own default (a Slurm job's cores)."""
    return {"resolved": spec.resolved, "folder": RunStore.folder_of(spec.run_dir).as_payload(), "device": device,
            "data_root": data_root, "progress": progress, "workers": workers}


def _threads(spec: RunSpec) -> int:
    return spec.resolved["train"]["threads"]


def _on_cpu(device: str) -> bool:
    return device.split(":")[0] == "cpu"


def default_jobs(specs: list[RunSpec], device: str = "cpu", executor: ExecutorOptions | None = None,
                 cores: int | None = None, memory: int | None = None) -> int:
    """``-j`` when none is given: how many of ``specs`` run side by side.

    On the CPU, the usable cores (``available_cores``, the affinity mask) over each run's threads
    (the largest ``train.threads`` among them, times the executor's processes per run), at most as
    many as available memory holds at ``CPU_RUN_MEMORY`` a run (``available_memory``) and no more
    than there are runs. A GPU runs one at a time (as before: ``-j N`` spreads runs over GPUs), and
    so does Slurm's executor, which has its own ``--slurm-array-parallelism``.
    ``cores`` and ``memory`` (bytes) stand for this machine's.
    """
    executor = executor or ExecutorOptions()
    if not _on_cpu(device) or executor.kind == "slurm" or not specs:
        return 1
    cores = available_cores() if cores is None else cores
    memory = available_memory() if memory is None else memory
    per_run = max(_threads(s) for s in specs) * executor.nproc
    jobs = min(cores // per_run, len(specs))
    if memory is not None:
        jobs = min(jobs, int(memory // (CPU_RUN_MEMORY * executor.nproc)))
    return max(1, jobs)


def execute(specs: list[RunSpec], suite: str, store: RunStore, device: str = "cpu",
            data_root: str | None = None, jobs: int | None = None,
            executor: ExecutorOptions | None = None) -> dict[str, int]:
    """Run every spec that is not finished, ``jobs`` at a time (None: ``default_jobs``); returns counts
    of runs by final status.

    ``executor``: local processes (default), torchrun (``nproc`` processes a
    run) or Slurm jobs (``harness/executors.py``); the specs' run folders must
    have been expanded with the same world size (``expand(..., world_size=nproc)``).
    Each run gets ``cores // jobs`` of the usable cores: its ``train.threads``, and loader
    workers on the rest (``datasets.loader.default_workers``; none when runs fill the cores).
    """
    executor = executor or ExecutorOptions()
    statuses = {id(s): run_status(s.run_dir) for s in specs}
    busy = [s for s in specs if statuses[id(s)] == "running"]
    todo = [s for s in specs if statuses[id(s)] not in ("done", "running")]
    jobs = jobs or default_jobs(todo, device, executor)
    threads = sorted({_threads(s) for s in todo})
    log.info(f"suite {suite}: {len(specs)} runs, {sum(v == 'done' for v in statuses.values())} already finished, "
             f"{len(todo)} to run" + (f" ({jobs} at a time)" if jobs > 1 and todo else "")
             + (f", {' or '.join(map(str, threads))} torch thread{'s' if threads != [1] else ''} a run"
                if todo else "")
             + (f", {len(busy)} being run by another process (left to it)" if busy else ""))
    progress = SuiteProgress(len(todo), jobs if executor.kind != "slurm" else executor.array_parallelism)
    if executor.kind == "slurm":
        return _execute_on_slurm(todo, busy, suite, store, device, data_root, executor, progress)

    gpus = gpu_groups(device, jobs, executor.nproc)  # with -j N --device cuda: a GPU (group) per slot
    slots = queue.SimpleQueue()
    for slot in range(jobs):
        slots.put(slot)
    cores_per_process = max(1, available_cores() // (jobs * executor.nproc))
    env = dict(os.environ)
    processes = LocalProcesses(env, executor.nproc, forked=_on_cpu(device))

    def one(spec: RunSpec) -> str:
        started = time.time()
        if _copied(spec, store, progress):  # no process to start
            return "done"
        # The run's own progress bar: one run at a time, on a terminal, unless --quiet asked for less.
        shows_progress = jobs == 1 and sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
        payload = _payload(spec, device, data_root, shows_progress,
                           workers=default_workers(cores_per_process, _threads(spec)))
        slot = slots.get()
        run_env = {**env, "CUDA_VISIBLE_DEVICES": gpus[slot]} if gpus else env
        try:  # with -j 1 the run's own progress bar and messages go straight to the terminal
            returncode, output = processes.run(payload, run_env, own_stderr=jobs == 1)
        finally:
            slots.put(slot)
        return _report(spec, returncode, output, started, progress)

    # Runs that train the same weights (variants differing only in inference keys) go in one
    # chain, run in order: the first trains, the others then evaluate its checkpoint, even with -j N.
    chains = _chains(todo)
    try:
        if jobs == 1:
            final = [one(s) for chain in chains for s in chain]
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                final = [status for statuses in pool.map(lambda chain: [one(s) for s in chain], chains)
                         for status in statuses]
    finally:
        processes.close()
    final += ["running"] * len(busy)
    return {status: final.count(status) for status in set(final)}


def _copied(spec: RunSpec, store: RunStore, progress: SuiteProgress) -> bool:
    """Copy ``spec``'s run from another suite's folder if it finished there (logged); True if so."""
    source = store.reuse_finished_elsewhere(spec.run_dir)
    if source is not None:
        n, where = progress.finish()
        log.info(f"[{n}/{progress.total}] {spec.label}: reused the finished run in {source.parent.name}/; {where}")
    return source is not None


def _chains(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """``specs`` grouped by training hash, in first-appearance order (a run without one stands alone)."""
    chains: dict[str, list[RunSpec]] = {}
    for spec in specs:
        chains.setdefault(spec.training_hash or str(spec.run_dir), []).append(spec)
    return list(chains.values())


def _execute_on_slurm(todo, busy, suite, store: RunStore, device, data_root, executor, progress) -> dict[str, int]:
    """Unfinished runs as Slurm job arrays (submitit); copies of finished runs need no job.

    Two waves: the runs that train, then the variants that only evaluate their weights.
    """
    started = time.time()
    final = []
    chains = _chains(todo)
    for wave in ([c[0] for c in chains], [s for c in chains for s in c[1:]]):
        queued = []
        for spec in wave:
            if _copied(spec, store, progress):
                final.append("done")
            else:
                queued.append(spec)
        if queued:
            payloads = [_payload(s, device, data_root, False) for s in queued]
            codes = submit_slurm(payloads, executor, store.slurm_folder(suite))
            final += [_report(s, code, "", started, progress) for s, code in zip(queued, codes, strict=True)]
    final += ["running"] * len(busy)
    return {status: final.count(status) for status in set(final)}


def _report(spec: RunSpec, returncode: int, output: str, started: float, progress: SuiteProgress) -> str:
    """Log one finished process's outcome from the run store, with the suite's progress; returns the run's status."""
    status = run_status(spec.run_dir)
    seconds = time.time() - started
    n, where = progress.finish(seconds if status == "done" else None)  # failures say little about a run's length
    took = format_duration(seconds)
    if returncode == 3 or status == "running":
        log.info(f"[{n}/{progress.total}] {spec.label}: skipped, another process is running it; {where}")
        return "running"
    if status == "done":
        r = read_result(spec.run_dir)
        reused = f"; evaluated the weights of {r.trained_by}" if r.trained_by else ""
        log.info(f"[{n}/{progress.total}] {spec.label}: mIoU(S) {_num(r.mIoU_seen)} mIoU(U) {_num(r.mIoU_unseen)} "
                 f"hIoU {_num(r.hIoU)} ({took}{reused}); {where}")
    else:
        log.info(f"[{n}/{progress.total}] {spec.label}: FAILED ({took}): "
                 f"{_failure_line(spec.run_dir, returncode, output)}; {where}")
    return status


def _failure_line(run_dir: Path, returncode: int, output: str) -> str:
    recorded = failure_line(run_dir)
    if recorded is not None:
        return recorded
    tail = (output or "").strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return f"{tail[0]} (exit status {returncode}; killed or crashed before recording an error)"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"
