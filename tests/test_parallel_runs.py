"""Runs side by side: ``-j``'s default, a thread count fixed per run (so the digits depend neither on
``-j`` nor on the machine's cores), and run processes forked from the template process, each still a
process of its own whose parent is the suite."""
from __future__ import annotations

import json
import logging
import os
import sys

import pytest
import torch

from zegbench.engine.environment import intra_op_threads
from zegbench.harness import suite as suite_mod
from zegbench.harness.executors import ExecutorOptions
from zegbench.harness.run_template import supported
from zegbench.store import RunStore, read_config, run_status
from zegbench.utils.cores import available_memory

from suite_runs import COMPARED

RUN = {"steps": 3, "batch_size": 2, "warmup": 1}
# A method whose process leaves with os._exit(7) at its first loss, as a crash in native code would,
# after noting its parent and command line.
EXITS = '''
import json
import os
from pathlib import Path

import torch

from zegbench.methods import Method


class Exits(Method):
    def __init__(self, clip: str = "", templates: str = "single", note: str = ""):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.note = note

    def forward(self, images, class_names):
        return self.weight * images.new_zeros(images.shape[0], len(class_names), *images.shape[-2:]), {}

    def loss(self, logits, labels, aux=None):
        command = Path("/proc/self/cmdline").read_bytes().replace(b"\\0", b" ").decode()
        Path(self.note).write_text(json.dumps({"parent": os.getppid(), "command": command}))
        os._exit(7)

    def predict(self, images, class_names, seen):
        return self(images, class_names)[0]
'''


def _specs(threads: list[int]) -> list[suite_mod.RunSpec]:
    return [suite_mod.RunSpec("m", "d", seed, resolved={"train": {"threads": t}}) for seed, t in enumerate(threads)]


def test_jobs_default_to_the_runs_the_cores_and_memory_hold():
    run = suite_mod.CPU_RUN_MEMORY
    ample = 100 * run

    def jobs(threads, **options):
        return suite_mod.default_jobs(_specs(threads), **{"cores": 8, "memory": ample, **options})

    assert jobs([1] * 20) == 8
    assert jobs([1] * 3) == 3  # no more than there are runs
    assert jobs([1, 2] + [1] * 18) == 4  # the largest thread count decides
    assert jobs([1] * 20, memory=2.5 * run) == 2
    assert jobs([1] * 20, memory=None) == 8  # nothing known of the memory: the cores decide
    assert jobs([4], cores=2) == 1  # never less than one
    assert jobs([1] * 20, device="cuda") == jobs([1] * 20, device="cuda:1") == 1  # a GPU: one at a time, as before
    assert jobs([1] * 20, executor=ExecutorOptions(kind="torchrun", nproc=2)) == 4  # processes a run count
    assert jobs([1] * 20, executor=ExecutorOptions(kind="slurm")) == 1  # Slurm has its own parallelism


def test_available_memory_is_the_kernels_memavailable(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683772 kB\nMemFree:          150000 kB\nMemAvailable:    2048 kB\n")
    assert available_memory(meminfo) == 2048 * 1024
    assert available_memory(tmp_path / "absent") is None


def test_a_runs_threads_hold_inside_it_and_are_given_back():
    before = torch.get_num_threads()
    with intra_op_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """One suite run at ``-j 1`` and at ``-j 2`` into two stores: a run at 1 thread, the same at 2, and a
    run whose process leaves with ``os._exit(7)``; each invocation's suite log and the crashed run's note."""
    tmp = tmp_path_factory.mktemp("side_by_side")
    (tmp / "code").mkdir()
    (tmp / "code" / "exits_method.py").write_text(EXITS)
    for sub in ("methods", "suites"):
        (tmp / "configs" / sub).mkdir(parents=True)
    (tmp / "configs" / "methods" / "exits.yaml").write_text("class: exits_method:Exits\n")
    (tmp / "configs" / "suites" / "pair.yaml").write_text(
        "dataset: world_smoke\nseeds: [0]\ngroups:\n"
        f"  - methods: [zegclip_baseline_fix]\n    grid: {{threads: [1, 2]}}\n    set: {json.dumps(RUN)}\n"
        f"  - methods: [exits]\n    set: {json.dumps({**RUN, 'note': str(tmp / 'note.json')})}\n")
    logs, notes = {}, {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZEGBENCH_CONFIGS", str(tmp / "configs"))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(tmp / "code"), *filter(None, [os.environ.get("PYTHONPATH")])]))
        patch.syspath_prepend(str(tmp / "code"))
        for jobs in (1, 2):
            results = tmp / f"j{jobs}"
            specs = suite_mod.expand("pair", store=RunStore(results))
            handler, logger = _Collect(), logging.getLogger("zegbench")
            level = logger.level
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            try:
                counts = suite_mod.execute(specs, "pair", RunStore(results), jobs=jobs)
            finally:
                logger.removeHandler(handler)
                logger.setLevel(level)
            logs[jobs], notes[jobs] = handler.lines, json.loads((tmp / "note.json").read_text())
            assert counts == {"done": 2, "interrupted": 1}, handler.lines
    sys.modules.pop("exits_method", None)
    return tmp, logs, notes


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_runs_side_by_side_give_the_digits_of_runs_one_at_a_time(side_by_side):
    tmp, _, _ = side_by_side
    one = sorted(tmp.glob("j1/pair/*/result.json"))
    two = {path.parent.name: path for path in tmp.glob("j2/pair/*/result.json")}
    assert len(one) == 2 and sorted(two) == [path.parent.name for path in one]  # the same runs, the same folders
    for path in one:
        a, b = json.loads(path.read_text()), json.loads(two[path.parent.name].read_text())
        assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
        threads = read_config(path.parent)["train"]["threads"]
        for run in (path.parent, two[path.parent.name].parent):  # what the run used is what its config says
            assert json.loads((run / "env.json").read_text())["threads"] == threads
    assert sorted(json.loads((p.parent / "env.json").read_text())["threads"] for p in one) == [1, 2]


def test_a_run_that_crashes_ends_alone_and_was_a_child_of_the_suite(side_by_side):
    tmp, logs, notes = side_by_side
    for jobs in (1, 2):
        (failed,) = [line for line in logs[jobs] if "FAILED" in line]
        assert failed.startswith("[") and "exits [world_smoke] seed 0" in failed and "exit status 7" in failed
        (crashed,) = [d for d in (tmp / f"j{jobs}" / "pair").iterdir() if d.name.startswith("exits-")]
        assert run_status(crashed) == "interrupted"  # nothing recorded: the rerun trains it again
        assert notes[jobs]["parent"] == os.getpid()  # the suite waits for it as for a subprocess
        if supported():  # Linux: forked from the template, which paid the imports once
            assert "zegbench.harness.worker --template" in notes[jobs]["command"]


def test_without_a_template_runs_start_as_fresh_processes(monkeypatch, caplog):
    import subprocess

    from zegbench.harness import executors
    from zegbench.harness.run_template import RunTemplate, TemplateUnavailable

    def unavailable(self, payload, env, stderr_to_terminal):
        raise TemplateUnavailable("the template process ended while importing")

    started = []

    def fresh(cmd, env=None, **kwargs):  # what would start: the worker module, as a process of its own
        started.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="done\n")

    monkeypatch.setattr(RunTemplate, "run", unavailable)
    monkeypatch.setattr(subprocess, "run", fresh)
    processes = executors.LocalProcesses({}, forked=True)
    with caplog.at_level(logging.WARNING, logger="zegbench"):
        assert [processes.run({"seed": seed}, {}, own_stderr=False) for seed in (0, 1)] == [(0, "done\n")] * 2
    processes.close()
    assert [cmd[1:3] for cmd in started] == [["-m", "zegbench.harness.worker"]] * 2
    assert [r.getMessage() for r in caplog.records] == [
        "runs start as fresh processes from now on: the template process ended while importing"]  # said once
    assert executors.LocalProcesses({}, forked=False).template is None  # a GPU run: never forked
