"""One suite invocation: ``zegbench.run_suite``, the Python API under ``run_all.py`` and ``zegbench suite``.

An invocation runs, lists or reports a suite (``mode``). Running reuses finished runs (a second
invocation trains nothing) and redoes failed and interrupted ones; ``force`` moves the selected
runs' folders aside (``<run>.replaced-<time>``, never deleted) and runs them again. At the end the
suite's results are pooled over seeds into ``results/<suite>/summary.json`` and the report is
written to ``reports/<suite>/``: both cover every finished run of the suite in the store, and an
invocation whose runs all failed leaves them as they were. Before anything runs, the whole
invocation is checked (``harness/preflight.py``): a problem is one ``ZegbenchError``, with nothing
written.

Training suites and speed suites go through the one sequence of ``run_suite``; what differs
(expanding, listing, checking, executing, reporting) is each kind's (``_TrainingSuite``,
``_SpeedSuite``). The session returns a ``SuiteOutcome`` and prints nothing: ``echo`` receives the
lines the command line prints, in the order it prints them.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from zegbench.errors import ZegbenchError

if TYPE_CHECKING:  # everything the session calls is imported on first use: ``import zegbench`` stays light
    from zegbench.reports.verdicts import Verdict
    from zegbench.store import RunStore

MODES = ("run", "list", "report")


@dataclass
class ListedRun:
    """One run (or speed record) of a suite as ``mode="list"`` shows it."""

    label: str
    run_dir: Path
    status: str  # done, running, failed, interrupted, pending or damaged (a speed record: done or pending)
    plan: str | None = None  # how an unfinished run will be served (``suite.plan``): trains, copy of ..., ...


@dataclass
class SuiteOutcome:
    """What one invocation did. ``counts``: the statuses its unfinished runs ended in (``done`` counts a
    run copied from another suite and a speed record measured; ``running``: left to the process that
    holds it); ``reused``: the runs (records) it found finished."""

    suite: str  # the name or path as given
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    reused: int = 0
    summary: Path | None = None  # results/<suite>/summary.json (training suites)
    report: Path | None = None  # the report's README.md
    report_kept: bool = False  # every run of the invocation failed: summary and report left as they were
    rows: list[dict] = field(default_factory=list)  # the summary's rows: each variant pooled over seeds
    verdicts: list[Verdict] = field(default_factory=list)  # each claim's typed row (``reports.verdicts``)
    listed: list[ListedRun] = field(default_factory=list)  # mode "list": every selected run, in suite order
    wall_seconds: float = 0.0

    @property
    def finished(self) -> int:
        return self.counts.get("done", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def interrupted(self) -> int:
        return self.counts.get("interrupted", 0)

    @property
    def exit_code(self) -> int:
        """The command line's exit status: 1 when a run failed or was interrupted, else 0."""
        return 1 if self.failed or self.interrupted else 0


@dataclass
class _Invocation:
    """``run_suite``'s arguments, checked, with the suite's folder and its store."""

    name: str
    folder: str  # the suite's folder in the run store and in the reports
    store: RunStore
    reports: str | Path
    dataset: str | None
    seeds: int | None
    only: str | None
    jobs: int | None
    device: str
    data_root: str | None
    workers: int | None


def run_suite(name_or_path: str | Path, *, dataset: str | None = None, seeds: int | None = None,
              only: str | None = None, jobs: int | None = None, results: str | Path = "results",
              reports: str | Path = "reports", device: str = "cpu", data_root: str | None = None,
              workers: int | None = None, force: bool = False, executor=None, mode: str = "run",
              echo: Callable[[str], None] | None = None) -> SuiteOutcome:
    """Run (``mode="run"``), list (``"list"``) or report (``"report"``) a suite; a ``SuiteOutcome``.

    ``name_or_path``: a suite name (``suites/NAME.yaml`` of a config folder) or a suite YAML's path.
    ``dataset`` replaces the suite's dataset, ``seeds`` N its seeds with 0..N-1, ``only`` keeps runs
    whose label matches a shell pattern; ``jobs`` runs side by side (None: as the cores and memory
    hold), ``workers`` loader processes per run (None: the default), ``data_root`` the real datasets'
    folder (None: ``$ZEGBENCH_DATA``); ``executor``: an ``executors.ExecutorOptions``, its kind
    (``"local"``, ``"torchrun"``, ``"slurm"``) or a dict of its fields. A speed suite measures here, one
    record at a time: ``dataset``, ``seeds`` are refused and ``jobs``, ``workers``, ``executor`` unused.
    ``echo``: called with each line the command line prints (None: nothing is printed; progress is
    logged to the ``zegbench`` logger). Bad input raises ``ZegbenchError`` before anything is written.
    """
    started = time.time()  # before the imports: torch's is part of what a user waits for
    from zegbench.harness.claim_check import load_claims
    from zegbench.harness.suite import load_suite, suite_path
    from zegbench.harness.summary import format_verdicts
    from zegbench.reports.build import note_failed_invocation
    from zegbench.store import RunStore

    name = str(name_or_path)
    _check_arguments(mode, seeds, jobs, workers)
    say = echo or _silent
    config = load_suite(name)
    claims = load_claims()  # a bad claims file fails now, not after the training
    at = _Invocation(name, suite_path(name).stem, RunStore(results), reports, dataset, seeds, only, jobs,
                     device, os.environ.get("ZEGBENCH_DATA") if data_root is None else data_root, workers)
    kind = _SpeedSuite(at, config) if config.kind == "speed" else _TrainingSuite(at, executor)
    outcome = SuiteOutcome(name, mode)
    specs = kind.expand()
    if not specs:
        raise ZegbenchError(kind.nothing_selected + (f" matching --only {only!r}" if only else ""))
    if mode == "list":
        outcome.listed, lines = kind.listing(specs)
        for line in lines:
            say(line)
        outcome.wall_seconds = time.time() - started
        return outcome
    if mode == "run":
        kind.check(specs)  # before anything is written
        at.store.check_writable()
        if force:
            at.store.move_aside([spec.run_dir for spec in specs])
        outcome.counts, outcome.reused, line = kind.execute(specs)
        say(line)
        broken = outcome.failed + outcome.interrupted
        kept = note_failed_invocation(at.folder, reports, broken) if broken and not outcome.finished else None
        if kept is not None:  # nothing new finished: the summary and report stay as they were
            outcome.report, outcome.report_kept = kept, True
            say(f"report: {kept} kept as it was (every run of this invocation failed)")
            return _timed(outcome, started, say)
    outcome.summary, outcome.rows, outcome.verdicts, outcome.report = kind.report(specs, claims, say)
    say(format_verdicts(outcome.verdicts))
    say(f"report: {outcome.report}")
    return _timed(outcome, started, say)


def _silent(line: str) -> None:
    """``echo`` when none is given: a script's call prints nothing."""


def _check_arguments(mode: str, seeds, jobs, workers) -> None:
    """What the command line checks as it parses, checked for a call from Python."""
    if mode not in MODES:
        raise ZegbenchError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    for key, value, minimum in (("seeds", seeds, 1), ("jobs", jobs, 1), ("workers", workers, 0)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
            raise ZegbenchError(f"{key} must be a whole number of at least {minimum}, not {value!r}")


def _timed(outcome: SuiteOutcome, started: float, say) -> SuiteOutcome:
    """The invocation's last line: its wall time, runs and report together."""
    from zegbench.harness.progress import format_duration

    outcome.wall_seconds = seconds = time.time() - started
    say(f"suite {outcome.suite}: {format_duration(seconds)} wall time"
        + (f" ({seconds:.0f} s)" if seconds >= 60 else ""))
    return outcome


def _executor_options(executor):
    """``run_suite``'s ``executor`` as ``ExecutorOptions``: None (local), a kind, a dict of fields, or options."""
    from zegbench.harness.executors import ExecutorOptions

    if executor is None or isinstance(executor, ExecutorOptions):
        return executor or ExecutorOptions()
    if isinstance(executor, str):
        return ExecutorOptions(kind=executor)
    if isinstance(executor, dict):
        known = [f.name for f in fields(ExecutorOptions)]
        unknown = sorted(set(executor) - set(known))
        if unknown:
            raise ZegbenchError(f"executor option {unknown[0]!r} is not one of {', '.join(known)}")
        return ExecutorOptions(**executor)
    raise ZegbenchError(f"executor must be ExecutorOptions, a kind (local, torchrun, slurm) or a dict of options, "
                        f"not {type(executor).__name__}")


@contextmanager
def _loader_workers(workers: int | None):
    """``workers`` for the run processes started inside the block (they inherit the environment)."""
    from zegbench.datasets.loader import WORKERS_ENV

    if workers is None:
        yield
        return
    before = os.environ.get(WORKERS_ENV)
    os.environ[WORKERS_ENV] = str(workers)
    try:
        yield
    finally:
        if before is None:
            del os.environ[WORKERS_ENV]
        else:
            os.environ[WORKERS_ENV] = before


class _TrainingSuite:
    """The parts of an invocation particular to a suite of training (and evaluation) runs."""

    def __init__(self, at: _Invocation, executor):
        self.at = at
        self.executor = _executor_options(executor)
        self.nothing_selected = f"suite {at.name!r} has no runs"

    def expand(self) -> list:
        from zegbench.harness.suite import expand

        at = self.at
        return expand(at.name, at.dataset, at.seeds, at.store, at.only, world_size=self.executor.world_size)

    def listing(self, specs) -> tuple[list[ListedRun], list[str]]:
        """Each run's status and plan, a line each, the totals, and on Slurm the jobs' sbatch settings."""
        from zegbench.harness.executors import slurm_script
        from zegbench.harness.suite import TRAINING_FREE, plan
        from zegbench.store import run_status

        notes = plan(specs, self.at.store)
        listed = []
        for spec in specs:
            status = run_status(spec.run_dir)
            listed.append(ListedRun(spec.label, spec.run_dir, status,
                                    notes.get(spec.run_dir) if status != "running" else None))
        lines = [f"{run.status:<12} {run.label:<60} {run.run_dir}" + (f"  ({run.plan})" if run.plan else "")
                 for run in listed]
        statuses = [run.status for run in listed]
        shown = (("done", "running", "failed", "interrupted", "pending")
                 + (("damaged",) if "damaged" in statuses else ()))
        served = list(notes.values())
        lines.append(", ".join(f"{statuses.count(s)} {s}" for s in shown)
                     + f"; {served.count('trains')} to train"
                     + (f", {served.count(TRAINING_FREE)} training-free" if TRAINING_FREE in served else ""))
        if self.executor.kind == "slurm":  # what would be submitted, for checking before a cluster sees it
            lines.append("the sbatch settings of each job (one array; submitit fills in the command):")
            pending = len(specs) - statuses.count("done")
            lines.append(slurm_script(self.executor, self.at.store.slurm_folder(self.at.folder), pending))
        return listed, lines

    def check(self, specs) -> None:
        from zegbench.harness.preflight import check_invocation

        check_invocation(specs, self.at.data_root, self.executor, self.at.device)

    def execute(self, specs) -> tuple[dict[str, int], int, str]:
        """Run the unfinished runs: their final statuses, how many had finished before, and the line saying so."""
        from zegbench.harness.suite import execute

        at = self.at
        with _loader_workers(at.workers):
            counts = execute(specs, at.folder, at.store, at.device, at.data_root, at.jobs, executor=self.executor)
        line = f"suite {at.name}: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                                        if counts else "nothing to run")
        return counts, len(specs) - sum(counts.values()), line  # execute counts the runs it did not find done

    def report(self, specs, claims, say) -> tuple[Path, list[dict], list[Verdict], Path]:
        """The suite's table and summary.json (shown through ``say``), its verdicts and report: of the whole
        suite as the store has it, not only this invocation's subset, so nothing drops out of the report."""
        from zegbench.config_dirs import PACKAGE_CONFIGS, config_files
        from zegbench.datasets.catalog import load_dataset_info
        from zegbench.harness.suite import with_finished_runs
        from zegbench.harness.summary import format_table, summarize_runs
        from zegbench.reports.build import build_report
        from zegbench.reports.runs import runs_frame
        from zegbench.reports.scorecard import evaluate_claims
        from zegbench.store.layout import SUMMARY_FILE
        from zegbench.utils.io import atomic_write_json

        at = self.at
        specs, unmatched = with_finished_runs(at.name, specs, at.store)
        runs = runs_frame(specs)  # every result file read once, for the summary and the report
        rows = summarize_runs(specs, runs)
        say(format_table(rows))
        summary = at.store.suite_folder(at.folder) / SUMMARY_FILE
        summary.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json({"suite": at.name, "rows": rows}, summary)
        say(f"summary: {summary}")
        unseen = set().union(*(load_dataset_info(d).unseen for d in {s.dataset for s in specs}))
        verdicts = evaluate_claims(runs, at.store, claims)
        # The worlds the report places runs on: the shipped ones and this suite's (a user's other configs unread)
        named = {s.dataset for s in specs} | {name for name, path in config_files("datasets").items()
                                              if path.is_relative_to(PACKAGE_CONFIGS)}
        worlds = {name: info.world for name in sorted(named) if (info := load_dataset_info(name)).world}
        report = build_report(at.folder, runs, unseen, at.reports, at.store, verdicts, unmatched, worlds)
        return summary, rows, verdicts, report


class _SpeedSuite:
    """The parts of an invocation particular to a speed suite: records measured here, one at a time."""

    def __init__(self, at: _Invocation, config):
        if at.dataset or at.seeds:
            raise ZegbenchError(f"--dataset and --seeds do not apply to speed suite {at.name!r}: its targets "
                                f"name their datasets and nothing is seeded; edit the suite file instead")
        self.at = at
        self.targets = config.targets
        self.nothing_selected = f"speed suite {at.name!r} has no targets"

    def expand(self, everything: bool = False) -> list:
        from zegbench.harness.speed_suite import expand_speed

        at = self.at
        return expand_speed(self.targets, at.folder, at.store, at.device, None if everything else at.only)

    def listing(self, specs) -> tuple[list[ListedRun], list[str]]:
        from zegbench.store import RunStore

        listed = [ListedRun(spec.label, spec.run_dir, "done" if RunStore.has_speed_record(spec.run_dir) else "pending")
                  for spec in specs]
        return listed, [f"{run.status:<12} {run.label:<50} {run.run_dir}" for run in listed]

    def check(self, specs) -> None:
        from zegbench.harness.executors import ExecutorOptions
        from zegbench.harness.preflight import check_device

        check_device(self.at.device, ExecutorOptions())

    def execute(self, specs) -> tuple[dict[str, int], int, str]:
        from zegbench.harness.speed_suite import execute_speed

        counts = execute_speed(specs, self.at.device)
        line = f"suite {self.at.name}: {counts['done']} measured, {counts['reused']} reused"
        return {"done": counts["done"]}, counts["reused"], line

    def report(self, specs, claims, say) -> tuple[None, list[dict], list[Verdict], Path]:
        """The speed report of the whole suite (``only`` or not) and the speed claims' verdicts."""
        import pandas as pd

        from zegbench.harness.speed_suite import default_config_accuracy, speed_records
        from zegbench.reports.scorecard import evaluate_claims
        from zegbench.reports.speed_report import build_speed_report

        at = self.at
        everything = self.expand(everything=True) if at.only else specs
        verdicts = evaluate_claims(None, at.store, claims)  # the speed claims; the others need training suites
        records = speed_records(everything)
        accuracy = pd.DataFrame(default_config_accuracy(records, at.store))
        report = build_speed_report(at.folder, records, at.reports, accuracy, verdicts)
        return None, [], verdicts, report
