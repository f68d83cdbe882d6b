"""The run store under faults other than a kill: two suites on one store at once, a full disk,
a run's claim outliving it, and loading only safe formats. Crash safety is in test_reliability.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite_runs import ROOT, SUITE, finished, run_all, run_all_command, suite_file


def test_two_suites_on_one_store_never_run_a_run_twice(tmp_path):
    text = SUITE.replace("methods: [zegclip]", "methods: [zegclip, zegclip_dpt, zegclip_baseline_fix]").replace(
        "steps: 6", "steps: 30")
    suite, results = suite_file(tmp_path, text), tmp_path / "results"
    command = run_all_command(suite, results)
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = finished(results)
    assert len(done) == 3
    for result in done:  # a run trained by two processes at once would log its steps twice
        steps = [json.loads(line)["step"] for line in (result.parent / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(30))
    both = "\n".join(outputs)
    assert "another process" in both or "already finished" in both  # the two really met


def test_source_loads_only_safely():
    # Checkpoints with weights_only=True, YAML with safe_load, nothing evaluated from configs.
    import re

    for path in (ROOT / "zegbench").rglob("*.py"):
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"yaml\.(load|unsafe_load|full_load)\(", text), path
        assert not re.search(r"(?<![.\w])(eval|exec)\(", text), path


def test_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_run_resumes(tmp_path, monkeypatch):
    import errno

    import torch

    from zegbench.engine.identity import run_folder_for
    from zegbench.engine.resolve import resolve
    from zegbench.engine.run import resolve_and_run
    from zegbench.store import RunStore
    from zegbench.utils import io

    overrides = {"steps": 4, "batch_size": 2, "warmup": 1, "log_every": 1, "checkpoint_every": 2}
    writes = []

    def full_at_the_second_checkpoint(point):
        if point == "write:checkpoint.pt":
            writes.append(point)
            if len(writes) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io, "fault_point", full_at_the_second_checkpoint)
    with pytest.raises(OSError, match="No space left"):
        resolve_and_run("zegclip", "world_smoke", 0, overrides, store=RunStore(tmp_path), suite="s")
    run_dir = run_folder_for(resolve("zegclip", "world_smoke", 0, overrides), RunStore(tmp_path), "s").path
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 2  # the previous one, whole
    assert not list(run_dir.glob(".*.tmp"))
    failed = json.loads((run_dir / "failed.json").read_text())
    assert failed["error"].startswith(f"cannot write {run_dir / 'checkpoint.pt'}: No space left on device")
    monkeypatch.undo()  # space freed: the same call resumes at step 2 and finishes
    result = resolve_and_run("zegclip", "world_smoke", 0, overrides, store=RunStore(tmp_path), suite="s")
    assert result["status"] == "finished" and not (run_dir / "failed.json").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 3]


def test_a_full_disk_fails_each_run_cleanly_and_the_suite_goes_on(tmp_path):
    suite = suite_file(tmp_path, SUITE.replace("seeds: [0]", "seeds: [0, 1]"))
    results = tmp_path / "results"
    proc = run_all(suite, results, fault="ENOSPC@write:checkpoint.pt")
    assert proc.returncode == 1
    assert proc.stdout.count("FAILED") == 2 and "No space left on device" in proc.stdout  # both runs were tried
    for failed in sorted(results.glob("rel/*/failed.json")):
        assert "checkpoint.pt: No space left on device" in json.loads(failed.read_text())["error"]
    assert len(list(results.glob("rel/*/failed.json"))) == 2 and finished(results) == []


def _claimed_in_another_process(run_dir: Path) -> bool:
    """``is_claimed`` as another process sees it."""
    code = f"import pathlib, zegbench.utils.locks as c; print(c.is_claimed(pathlib.Path({str(run_dir)!r})))"
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return answer.stdout.strip() == "True"


def test_a_claim_survives_its_own_process_checking_it(tmp_path):
    # A record lock is lost when its process closes any descriptor of the file: checking a held
    # claim from the holder's own process must not open the lock file.
    from zegbench.utils.locks import claim, is_claimed

    run_dir = tmp_path / "suite" / "run"
    held = claim(run_dir)
    assert held is not None
    assert is_claimed(run_dir) and claim(run_dir) is None  # the holder's own process is refused too
    assert _claimed_in_another_process(run_dir)  # still held after those checks
    held.close()
    assert not is_claimed(run_dir) and not _claimed_in_another_process(run_dir)


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:  # it exited meanwhile
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _is_training(results: Path) -> bool:
    """Whether the suite's one run has logged a step (so its loader worker is running)."""
    logs = list(results.glob("rel/*/metrics.jsonl"))
    return bool(logs) and logs[0].read_text().count("\n") >= 1


def _run_and_its_loader_worker(runner: int, results: Path) -> tuple[int, int]:
    """The run process that ``runner`` (run_all.py) started, and that run's loader worker, once it trains."""
    deadline = time.monotonic() + 300  # a guard against a hang only: nothing here is timed
    while not _is_training(results):
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.2)
    (run,) = [pid for pid in _children(runner) if b"zegbench.harness.worker" in _command_line(pid)]
    (loader,) = [pid for pid in _children(run) if _command_line(pid) == _command_line(run)]  # forked by the loader
    return run, loader


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process tree from /proc")
def test_a_run_killed_while_its_loader_worker_lives_can_be_restarted_at_once(tmp_path):
    suite = suite_file(tmp_path, SUITE.replace("steps: 6", "steps: 100000"))  # killed long before its end
    results = tmp_path / "results"
    runner = subprocess.Popen(run_all_command(suite, results, "--workers", "1"), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loader = None
    try:
        run, loader = _run_and_its_loader_worker(runner.pid, results)
        os.kill(loader, signal.SIGSTOP)  # the orphaned worker stays alive as long as the test needs
        os.kill(run, signal.SIGKILL)
        runner.kill()  # it would wait for the end of its run's output, which the stopped worker keeps open
        runner.wait()
        assert Path(f"/proc/{loader}").exists()  # it outlived its run
        # Restarted at once (no loader workers this time): accepted, it trains until its fault kills it at step 1.
        restart = run_all(suite, results, "--workers", "0", fault="train")
        assert "another process" not in restart.stdout + restart.stderr
        assert "FAILED" in restart.stdout and "exit status -9" in restart.stdout, restart.stdout + restart.stderr
    finally:
        runner.kill()
        if loader is not None:
            os.kill(loader, signal.SIGKILL)
