"""``python run_all.py --suite NAME``: run a suite of training/evaluation runs, resumably.

Finished runs are reused (a second invocation trains nothing); failed and
interrupted runs are redone; ``--force`` moves the selected runs' folders aside
(``<run>.replaced-<time>``, never deleted) and runs them again. At the end the
suite's results are pooled over seeds into a console table and
``results/<suite>/summary.json``, and the report is written to ``reports/<suite>/``: both cover
every finished run of the suite in the store, and an invocation whose runs all failed leaves them as
they were.
Before anything runs, the whole invocation is checked (``harness/preflight.py``):
a problem is one error line and exit status 2, with nothing written.
"""
from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

from zegbench.errors import ZegbenchError

DEFAULT_SUITE = "ablations"


def suite_options() -> argparse.ArgumentParser:
    """What a suite invocation takes besides the suite's name: ``run_all.py``'s and ``zegbench suite``'s options."""
    from zegbench.cli_options import (
        ArgumentParser,
        data_root_option,
        dataset_option,
        device_option,
        positive_int,
        results_option,
        workers_option,
    )

    parent = ArgumentParser(add_help=False, parents=[
        dataset_option("run on this dataset instead of the suite's (e.g. voc12)"), data_root_option(),
        results_option(), device_option(), workers_option()])
    parent.add_argument("--only", metavar="PATTERN",
                        help="only runs whose label matches (shell pattern, e.g. 'zegclip_dpt*')")
    parent.add_argument("--seeds", type=positive_int, metavar="N", help="seeds 0..N-1 instead of the suite's")
    parent.add_argument("--force", action="store_true", help="redo selected runs even if finished (old folders kept)")
    parent.add_argument("-j", "--jobs", type=positive_int,
                        help="runs side by side (default on the CPU: as many as the usable cores hold at each run's "
                             "`threads`, within available memory; 1 with --device cuda)")
    parent.add_argument("--reports", metavar="DIR", default="reports", help="report folder (default: reports)")
    parent.add_argument("--executor", default="local", choices=["local", "torchrun", "slurm"],
                        help="local: a process per run on this machine (default); torchrun: each run over --nproc "
                             "processes (DDP); slurm: each run a Slurm job through submitit")
    parent.add_argument("--nproc", type=positive_int, default=1,
                        help="processes per run (torchrun, and within each Slurm job): "
                             "global batch = batch_size x nproc")
    parent.add_argument("--slurm-partition", help="Slurm partition")
    parent.add_argument("--slurm-gpus", type=positive_int, help="GPUs per job (gpus_per_node)")
    parent.add_argument("--slurm-cpus", type=positive_int, help="CPUs per job (cpus_per_task)")
    parent.add_argument("--slurm-time", type=positive_int, default=24 * 60,
                        help="time limit per job in minutes (default 1440)")
    parent.add_argument("--slurm-array-parallelism", type=positive_int, default=16,
                        help="jobs of the array running at once")
    parent.add_argument("--slurm-cluster", choices=["slurm", "local", "debug"], default="slurm",
                        help="submitit backend: slurm, or local/debug to try the executor without a cluster")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """``run_all.py``'s command line: ``--suite NAME`` and the mode flags ``--list`` and ``--report-only``."""
    from zegbench.cli_options import ArgumentParser, common_options

    parser = ArgumentParser(prog="run_all.py", parents=[common_options(), suite_options()],
                            description="Run a zegbench suite (suites/NAME.yaml of a config folder); "
                                        "`zegbench suite run|list|report` does the same.")
    parser.add_argument("--suite", default=DEFAULT_SUITE,
                        help=f"a suite name (`zegbench suite list` shows them; default {DEFAULT_SUITE}) "
                             f"or a path to a suite YAML")
    parser.add_argument("--list", action="store_true", help="list the suite's runs and their status; run nothing")
    parser.add_argument("--report-only", action="store_true", help="only pool the finished results into the summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    from zegbench.cli_options import run_command

    return run_command(build_parser(), argv, run_suite)


@contextmanager
def _loader_workers(workers: int | None):
    """``--workers`` for the run processes started inside the block (they inherit the environment)."""
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


def run_suite(args) -> int:
    """Run, list (``args.list``) or report (``args.report_only``) suite ``args.suite``: ``run_all.py``
    and ``zegbench suite`` alike."""
    started = time.time()  # before the imports: torch's is part of what a user waits for
    from zegbench.config_dirs import PACKAGE_CONFIGS, config_files
    from zegbench.datasets.catalog import load_dataset_info
    from zegbench.harness.claim_check import load_claims
    from zegbench.harness.suite import TRAINING_FREE, execute, expand, load_suite, plan, suite_path, with_finished_runs
    from zegbench.harness.summary import format_table, format_verdicts, summarize_runs
    from zegbench.reports.build import build_report, note_failed_invocation
    from zegbench.reports.runs import runs_frame
    from zegbench.reports.scorecard import evaluate_claims
    from zegbench.store import RunStore, run_status
    from zegbench.store.layout import SUMMARY_FILE
    from zegbench.utils.io import atomic_write_json

    config = load_suite(args.suite)
    claims = load_claims()  # a bad claims file fails now, not after the training
    if config.kind == "speed":
        if args.dataset or args.seeds:
            raise ZegbenchError(f"--dataset and --seeds do not apply to speed suite {args.suite!r}: its targets "
                                f"name their datasets and nothing is seeded; edit the suite file instead")
        code = _run_speed(args, config, claims)
        if not args.list:
            _print_wall_time(args.suite, started)
        return code
    from zegbench.harness.executors import ExecutorOptions, slurm_script
    from zegbench.harness.preflight import check_invocation

    executor = ExecutorOptions(args.executor, args.nproc, args.slurm_partition, args.slurm_gpus, args.slurm_cpus,
                               args.slurm_time, args.slurm_array_parallelism,
                               None if args.slurm_cluster == "slurm" else args.slurm_cluster)
    suite = suite_path(args.suite).stem  # its folder in the run store and in the reports
    store = RunStore(args.results)
    specs = expand(args.suite, args.dataset, args.seeds, args.results, args.only, world_size=executor.world_size)
    if not specs:
        raise ZegbenchError(f"suite {args.suite!r} has no runs"
                            + (f" matching --only {args.only!r}" if args.only else ""))
    if args.list:
        statuses = [run_status(s.run_dir) for s in specs]
        notes = plan(specs, args.results)
        for spec, status in zip(specs, statuses, strict=True):
            note = f"  ({notes[spec.run_dir]})" if spec.run_dir in notes and status != "running" else ""
            print(f"{status:<12} {spec.label:<60} {spec.run_dir}{note}")
        shown = (("done", "running", "failed", "interrupted", "pending")
                 + (("damaged",) if "damaged" in statuses else ()))
        served = list(notes.values())
        print(", ".join(f"{statuses.count(s)} {s}" for s in shown)
              + f"; {served.count('trains')} to train"
              + (f", {served.count(TRAINING_FREE)} training-free" if TRAINING_FREE in served else ""))
        if executor.kind == "slurm":  # what would be submitted, for checking before a cluster sees it
            print("the sbatch settings of each job (one array; submitit fills in the command):")
            pending = len(specs) - statuses.count("done")
            print(slurm_script(executor, store.slurm_folder(suite), pending))
        return 0
    failed = 0
    if not args.report_only:
        check_invocation(specs, args.data_root, executor, args.device)  # before anything is written
        store.check_writable()
        if args.force:
            store.move_aside([spec.run_dir for spec in specs])
        with _loader_workers(args.workers):
            counts = execute(specs, suite, args.results, args.device, args.data_root, args.jobs, executor=executor)
        failed = counts.get("failed", 0) + counts.get("interrupted", 0)
        print(f"suite {args.suite}: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                                         if counts else "nothing to run"))
        kept = note_failed_invocation(suite, args.reports, failed) if failed and not counts.get("done") else None
        if kept is not None:  # nothing new finished: the summary and report stay as they were
            print(f"report: {kept} kept as it was (every run of this invocation failed)")
            _print_wall_time(args.suite, started)
            return 1
    # The whole suite as the store has it, not only this invocation's subset: nothing drops out of the report.
    specs, unmatched = with_finished_runs(args.suite, specs, args.results)
    runs = runs_frame(specs)  # every result file read once, for the summary and the report
    rows = summarize_runs(specs, runs)
    print(format_table(rows))
    summary_path = store.suite_folder(suite) / SUMMARY_FILE
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json({"suite": args.suite, "rows": rows}, summary_path)
    print(f"summary: {summary_path}")
    unseen = set().union(*(load_dataset_info(d).unseen for d in {s.dataset for s in specs}))
    verdicts = evaluate_claims(runs, store, claims)
    # The worlds the report places runs on: the shipped ones and those this suite ran (a user's other configs unread)
    named = {s.dataset for s in specs} | {name for name, path in config_files("datasets").items()
                                          if path.is_relative_to(PACKAGE_CONFIGS)}
    worlds = {name: info.world for name in sorted(named) if (info := load_dataset_info(name)).world}
    report = build_report(suite, runs, unseen, args.reports, store, verdicts, unmatched, worlds)
    print(format_verdicts(verdicts))
    print(f"report: {report}")
    _print_wall_time(args.suite, started)
    return 1 if failed else 0


def _print_wall_time(suite: str, started: float) -> None:
    """The invocation's last line: its wall time, runs and report together."""
    from zegbench.harness.progress import format_duration

    seconds = time.time() - started
    print(f"suite {suite}: {format_duration(seconds)} wall time" + (f" ({seconds:.0f} s)" if seconds >= 60 else ""))


def _run_speed(args, config, claims) -> int:
    """A speed suite: measure what has no record on this machine, then write the speed report."""
    import pandas as pd

    from zegbench.harness.executors import ExecutorOptions
    from zegbench.harness.preflight import check_device
    from zegbench.harness.speed_suite import default_config_accuracy, execute_speed, expand_speed, speed_records
    from zegbench.harness.suite import suite_path
    from zegbench.harness.summary import format_verdicts
    from zegbench.reports.scorecard import evaluate_claims
    from zegbench.reports.speed_report import build_speed_report
    from zegbench.store import RunStore

    suite = suite_path(args.suite).stem
    store = RunStore(args.results)
    specs = expand_speed(config.targets, suite, args.results, args.device, args.only)
    if not specs:
        raise ZegbenchError(f"speed suite {args.suite!r} has no targets"
                            + (f" matching --only {args.only!r}" if args.only else ""))
    if args.list:
        for spec in specs:
            status = "done" if RunStore.has_speed_record(spec.run_dir) else "pending"
            print(f"{status:<12} {spec.label:<50} {spec.run_dir}")
        return 0
    if not args.report_only:
        check_device(args.device, ExecutorOptions())
        store.check_writable()
        if args.force:
            store.move_aside([spec.run_dir for spec in specs])
        counts = execute_speed(specs, args.device)
        print(f"suite {args.suite}: {counts['done']} measured, {counts['reused']} reused")
    everything = expand_speed(config.targets, suite, args.results, args.device) if args.only else specs
    verdicts = evaluate_claims(None, store, claims)  # the speed claims; the others need training suites
    records = speed_records(everything)  # --only: the report is still of the whole suite
    accuracy = pd.DataFrame(default_config_accuracy(records, store))
    report = build_speed_report(suite, records, args.reports, accuracy, verdicts)
    print(format_verdicts(verdicts))
    print(f"report: {report}")
    return 0
