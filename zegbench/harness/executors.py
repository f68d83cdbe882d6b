"""Where a suite's runs execute: ``local`` (a process per run), ``torchrun`` (each run over N local
processes, data-parallel), ``slurm`` (each run a Slurm job through submitit, an optional extra).

Whichever executor runs them, runs land in the same run store with the same
folders: a run's hash covers its resolved config, and the number of processes
(``world_size``) is part of that config when it is more than one.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zegbench.errors import ZegbenchError
from zegbench.harness.run_template import RunTemplate, TemplateUnavailable, supported

log = logging.getLogger(__name__)

EXECUTORS = ("local", "torchrun", "slurm")


@dataclass
class ExecutorOptions:
    """How runs execute (``run_all.py --executor ...`` and its options)."""

    kind: str = "local"
    nproc: int = 1  # processes per run (torchrun; on Slurm, within each job)
    partition: str | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    timeout_min: int = 24 * 60
    array_parallelism: int = 16
    cluster: str | None = None  # submitit cluster: None (Slurm), "local" or "debug" (tests, no cluster)
    extra: dict = field(default_factory=dict)  # further submitit slurm_* parameters

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ZegbenchError(f"--executor must be one of {', '.join(EXECUTORS)}, not {self.kind!r}")
        if self.nproc < 1:
            raise ZegbenchError("--nproc must be at least 1")
        if self.kind == "local" and self.nproc > 1:
            raise ZegbenchError("--nproc > 1 needs --executor torchrun (or slurm): "
                                "the local executor runs one process per run")
        for flag, value in (("--slurm-time", self.timeout_min), ("--slurm-array-parallelism", self.array_parallelism),
                            ("--slurm-gpus", self.gpus_per_node), ("--slurm-cpus", self.cpus_per_task)):
            if value is not None and value < 1:
                raise ZegbenchError(f"{flag} must be at least 1, not {value}")
        slurm_only = {"--slurm-partition": self.partition, "--slurm-gpus": self.gpus_per_node,
                      "--slurm-cpus": self.cpus_per_task, "--slurm-cluster": self.cluster}
        given = [flag for flag, value in slurm_only.items() if value is not None]
        if self.kind != "slurm" and given:  # most likely a forgotten --executor slurm: do not run here instead
            raise ZegbenchError(f"{given[0]} applies to --executor slurm only; add --executor slurm or leave it out")

    @property
    def world_size(self) -> int:
        return self.nproc


def gpu_groups(device: str, jobs: int, nproc: int) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` for each of ``jobs`` runs side by side, each of ``nproc`` processes.

    With ``--device cuda`` (no index) and several runs at once, every run would otherwise take
    cuda:0 (and every torchrun job cuda:0 to cuda:nproc-1). Each slot gets its own ``nproc`` GPUs
    while there are enough; past that, slots share them round-robin (logged). None when there is
    nothing to spread: one run at a time, the CPU, or a device the user named by index.
    """
    if device != "cuda" or jobs == 1:  # (preflight has checked the device string)
        return None
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # the user's own selection is what we split
    ids = [i.strip() for i in visible.split(",") if i.strip()] if visible else []
    ids = ids or [str(i) for i in range(torch.cuda.device_count())]
    groups = [",".join(ids[i:i + nproc]) for i in range(0, len(ids) - nproc + 1, nproc)]
    if not groups:
        return None
    if jobs > len(groups):
        log.info(f"{jobs} runs at a time on {len(groups)} GPU group{'s' if len(groups) > 1 else ''} "
                 f"of {nproc}: runs share GPUs")
    return [groups[slot % len(groups)] for slot in range(jobs)]


def worker_command(payload: dict, nproc: int = 1) -> list[str]:
    """The command that runs one run: the worker module, under torchrun when ``nproc`` > 1."""
    worker = ["-m", "zegbench.harness.worker", json.dumps(payload)]
    if nproc == 1:
        return [sys.executable, *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *worker]


class LocalProcesses:
    """Starts the process of each run of the local and torchrun executors, and waits for it.

    ``forked`` (CPU runs of the local executor, on Linux): forked from a template process that
    has imported torch once (``run_template.py``); otherwise, and for the remaining runs if the
    template cannot start or dies (logged), ``worker_command`` as a fresh process.
    """

    def __init__(self, env: dict[str, str], nproc: int = 1, forked: bool = True):
        self.nproc = nproc
        self.template = RunTemplate(env) if forked and nproc == 1 and supported() else None
        self.forking = self.template is not None

    def run(self, payload: dict, env: dict[str, str], own_stderr: bool) -> tuple[int, str]:
        """Run ``payload`` in a process of its own with environment ``env``: (its exit status, its output).

        Output is its stdout and stderr together, or stdout alone when ``own_stderr`` (its stderr is
        then this process's: a progress bar reaches the terminal).
        """
        if self.forking:
            try:
                return self.template.run(payload, env, stderr_to_terminal=own_stderr)
            except TemplateUnavailable as err:
                if self.forking:  # several runs may meet it at once: say it once
                    log.warning(f"runs start as fresh processes from now on: {err}")
                self.forking = False
        stderr = None if own_stderr else subprocess.STDOUT
        proc = subprocess.run(worker_command(payload, self.nproc), env=env, stdout=subprocess.PIPE, stderr=stderr,
                              text=True)
        return proc.returncode, proc.stdout

    def close(self) -> None:
        """Let the template go, if one was started."""
        if self.template is not None:
            self.template.close()


def run_payload(payload: dict, nproc: int = 1) -> int:
    """Run one run in this process (or under torchrun on this node): a Slurm job's body."""
    if nproc > 1:
        return subprocess.run(worker_command(payload, nproc)).returncode
    from zegbench.harness.worker import main

    return main([json.dumps(payload)])


def slurm_executor(options: ExecutorOptions, folder: Path):
    """A configured ``submitit.AutoExecutor`` (raises a clear error when submitit is missing)."""
    try:
        import submitit
    except ImportError:
        raise ZegbenchError("--executor slurm needs submitit: pip install -e '.[slurm]'") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
    params = {"timeout_min": options.timeout_min, "slurm_array_parallelism": options.array_parallelism,
              "name": "zegbench"}
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.gpus_per_node:
        params["gpus_per_node"] = options.gpus_per_node
    if options.cpus_per_task:
        params["cpus_per_task"] = options.cpus_per_task
    params.update({f"slurm_{k}" if not k.startswith("slurm_") else k: v for k, v in options.extra.items()})
    executor.update_parameters(**params)
    return executor


def slurm_script(options: ExecutorOptions, folder: Path, count: int) -> str:
    """The sbatch script submitit would submit for ``count`` runs (``run_all.py --executor slurm --list``).

    One task per job: with ``nproc`` > 1 the job's body starts torchrun on its node.
    """
    from submitit.slurm import slurm

    return slurm._make_sbatch_string(
        command="python -u -m submitit.core._submit <folder>", folder=str(folder), job_name="zegbench",
        partition=options.partition, time=options.timeout_min, gpus_per_node=options.gpus_per_node,
        cpus_per_task=options.cpus_per_task, ntasks_per_node=1, array_parallelism=options.array_parallelism,
        map_count=max(count, 1), additional_parameters=options.extra or None)


def submit_slurm(payloads: list[dict], options: ExecutorOptions, folder: Path) -> list[int]:
    """Submit one job per payload as a Slurm array and wait; returns each job's exit status (99: the job failed)."""
    executor = slurm_executor(options, folder)
    jobs = executor.map_array(run_payload, payloads, [options.nproc] * len(payloads))
    log.info(f"submitted {len(jobs)} jobs ({jobs[0].job_id if jobs else '-'}...); logs in {folder}")
    codes = []
    for job in jobs:
        try:
            codes.append(int(job.result()))
        except Exception as err:  # submitit raises the job's failure (crash, timeout, preemption) here
            reason = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
            log.info(f"job {job.job_id} failed: {reason}")
            codes.append(99)
    return codes
