"""``python run_all.py --suite NAME``: the suite command line, parsed into a call of ``zegbench.run_suite``.

The session itself (running, listing, reporting; ``harness/session.py``) knows nothing of argparse:
this module turns a parsed command line into its keyword arguments (``session_arguments``, the one
place) and prints the lines the session hands back. ``zegbench suite run|list|report`` uses the same
options (``suite_options``) and the same call (``suite_command``).
"""
from __future__ import annotations

import argparse

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

    return run_command(build_parser(), argv, suite_command)


def session_arguments(args: argparse.Namespace) -> dict:
    """``run_suite``'s keyword arguments from a parsed suite command line (``suite_options`` and the mode
    flags): ``--list`` wins over ``--report-only``; the executor's options stay a dict until the session
    knows the suite trains (a speed suite measures here whatever they say)."""
    mode = "list" if args.list else "report" if args.report_only else "run"
    executor = {"kind": args.executor, "nproc": args.nproc, "partition": args.slurm_partition,
                "gpus_per_node": args.slurm_gpus, "cpus_per_task": args.slurm_cpus, "timeout_min": args.slurm_time,
                "array_parallelism": args.slurm_array_parallelism,
                "cluster": None if args.slurm_cluster == "slurm" else args.slurm_cluster}
    return {"dataset": args.dataset, "seeds": args.seeds, "only": args.only, "jobs": args.jobs,
            "results": args.results, "reports": args.reports, "device": args.device, "data_root": args.data_root,
            "workers": args.workers, "force": args.force, "executor": executor, "mode": mode}


def suite_command(args: argparse.Namespace) -> int:
    """Run, list or report suite ``args.suite`` as ``run_all.py`` and ``zegbench suite`` do: the session's lines
    on stdout, its exit status (1 when a run failed)."""
    from zegbench.harness.session import run_suite

    return run_suite(args.suite, **session_arguments(args), echo=print).exit_code
