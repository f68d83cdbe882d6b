"""Suites: expansion, validation, and the runner's resume / failure / force behaviour."""
from __future__ import annotations

import json

import pytest

from zegbench.errors import ZegbenchError
from zegbench.harness import suite as suite_mod
from zegbench.harness.cli import main
from zegbench.store import RunStore, run_status

TINY = {"steps": 2, "batch_size": 2, "warmup": 1}


@pytest.fixture
def suites(tmp_path, monkeypatch):
    """A config folder of the test's own (``$ZEGBENCH_CONFIGS``): write(name, text) adds a suite file."""
    folder = tmp_path / "configs" / "suites"
    folder.mkdir(parents=True)
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(folder.parent))

    def write(name: str, text: str):
        (folder / f"{name}.yaml").write_text(text)
    return write


def test_expand_grid_seeds_include_and_only(suites, tmp_path):
    suites("a", "dataset: world_smoke\nseeds: [0, 1]\ngroups:\n"
                "  - methods: [zegclip_baseline_fix, zegclip]\n    grid: {num_tokens: [2, 3]}\n")
    suites("b", "dataset: world_smoke\ninclude: [a]\ngroups:\n  - methods: [zegclip]\n    set: {steps: 3}\n")
    specs = suite_mod.expand("a", store=RunStore(tmp_path))
    assert len(specs) == 8 and len({s.run_dir for s in specs}) == 8
    assert {s.overrides["num_tokens"] for s in specs} == {2, 3} and {s.seed for s in specs} == {0, 1}
    both = suite_mod.expand("b", store=RunStore(tmp_path))
    assert len(both) == 9
    assert sum(s.run_dir.parent.name == "a" for s in both) == 8  # included runs live in their own suite
    assert len(suite_mod.expand("a", seeds=1, store=RunStore(tmp_path))) == 4
    only = suite_mod.expand("a", store=RunStore(tmp_path), only="zegclip_baseline_fix*num_tokens=3")
    assert [(s.method, s.overrides["num_tokens"]) for s in only] == [("zegclip_baseline_fix", 3)] * 2
    bracketed = suite_mod.expand("a", store=RunStore(tmp_path), only="zegclip [world")  # labels' brackets are literal
    assert {s.method for s in bracketed} == {"zegclip"} and len(bracketed) == 4


@pytest.mark.parametrize("text, expected", [
    ("groups:\n  - methods: [zegclip]\n    sett: {steps: 2}\n", "key 'groups.0.sett': unknown key"),
    ("seeds: first\ngroups: []\n", "key 'seeds'"),
    ("groups:\n  - methods: [nope]\n", "unknown method 'nope'"),
    ("groups:\n  - methods: [zegclip]\n    set: {num_tokens: ten}\n", "key 'num_tokens'"),
    ("include: [bad]\n", "forms a cycle"),
    ("groups: [\n", "not valid YAML"),
])
def test_bad_suite_is_one_clear_error(suites, tmp_path, text, expected):
    suites("bad", text)
    with pytest.raises(ZegbenchError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        suite_mod.expand("bad", store=RunStore(tmp_path))


def _snapshot(*folders):
    """Every file and folder under ``folders`` with its bytes (None for a folder)."""
    return {str(p): (None if p.is_dir() else p.read_bytes()) for folder in folders for p in sorted(folder.rglob("*"))}


def test_a_missing_data_root_is_one_error_line_and_changes_nothing(tmp_path):
    # The repro, as a user types it: six runs on a dataset folder that does not exist.
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "results" / "smoke" / "a-finished-run").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "a-finished-run" / "result.json").write_text('{"hIoU": 1.0}')
    (tmp_path / "reports" / "smoke").mkdir(parents=True)
    (tmp_path / "reports" / "smoke" / "README.md").write_text("# Report: six finished world runs\n")
    before = _snapshot(tmp_path)
    run_all = Path(__file__).resolve().parents[1] / "run_all.py"
    proc = subprocess.run([sys.executable, str(run_all), "--suite", "smoke", "--dataset", "voc12",
                           "--data-root", str(tmp_path / "some" / "missing" / "folder")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error: dataset voc12: ") and "does not exist" in proc.stderr
    assert _snapshot(tmp_path) == before


def test_runner_resumes_records_failures_and_forces(suites, tmp_path, capsys):
    # One run that works, one that raises while building (a switch value its class does not know; a number
    # out of its range, such as decoder_layers 0, is refused before the suite starts: test_config_ranges.py).
    suites("t", "dataset: world_smoke\nseeds: [0]\ngroups:\n"
                f"  - methods: [zegclip_baseline_fix]\n    set: {json.dumps(TINY)}\n"
                f"  - methods: [zegclip]\n    set: {json.dumps({**TINY, 'tuning': 'fancy'})}\n")
    results = tmp_path / "results"
    # a failed run makes the exit status 1
    assert main(["--suite", "t", "--results", str(results), "--reports", str(tmp_path / "reports")]) == 1
    good, bad = suite_mod.expand("t", store=RunStore(results))
    assert run_status(good.run_dir) == "done" and run_status(bad.run_dir) == "failed"
    assert "tuning must be one of" in json.loads((bad.run_dir / "failed.json").read_text())["error"]
    summary = json.loads((results / "t" / "summary.json").read_text())
    assert [r["finished"] for r in summary["rows"]] == [1, 0]
    stamp = (good.run_dir / "result.json").stat().st_mtime_ns
    capsys.readouterr()

    assert main(["--suite", "t", "--results", str(results), "--reports", str(tmp_path / "reports"), "--list"]) == 0
    listing = capsys.readouterr().out
    assert "1 done, 0 running, 1 failed, 0 interrupted, 0 pending" in listing

    # the failure is retried, the success kept
    assert main(["--suite", "t", "--results", str(results), "--reports", str(tmp_path / "reports")]) == 1
    assert "1 already finished, 1 to run" in capsys.readouterr().out
    assert (good.run_dir / "result.json").stat().st_mtime_ns == stamp

    assert main(["--suite", "t", "--results", str(results), "--reports", str(tmp_path / "reports"),
                 "--only", "zegclip_baseline_fix*", "--force"]) == 0
    assert run_status(good.run_dir) == "done"
    assert len(list((results / "t").glob(f"{good.run_dir.name}.replaced-*"))) == 1  # the old run is kept aside


def test_the_report_keeps_every_finished_run_and_survives_a_failed_invocation(suites, tmp_path, monkeypatch, capsys):
    import re

    suites("keep", "dataset: world_smoke\nseeds: [0]\ngroups:\n"
                   f"  - methods: [zegclip_baseline_fix, maskclip]\n    set: {json.dumps(TINY)}\n")
    # One at a time (-j 1), so the runs end in the suite's order whatever the cores.
    args = ["--suite", "keep", "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"),
            "-j", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out  # not a terminal: one line per finished run with the suite's position
    assert re.search(r"^\[1/2\] zegclip_baseline_fix .*; suite: .* in, about .* left$", out, re.M), out
    assert re.search(r"^\[2/2\] maskclip .*; suite: .* in, done$", out, re.M), out
    readme, summary = tmp_path / "reports" / "keep" / "README.md", tmp_path / "results" / "keep" / "summary.json"
    # An invocation of a subset still reports the whole suite as the store has it.
    assert main(args + ["--only", "maskclip*"]) == 0
    report = readme.read_text()
    assert "2 finished runs" in report and "`zegclip_baseline_fix`" in report
    kept_summary = summary.read_bytes()
    # Then every run of an invocation fails (killed before evaluating): report and summary stay.
    monkeypatch.setenv("ZEGBENCH_FAULT", "before_evaluate")
    for extra, failed in ((["--force"], "its 2 runs"), (["--only", "maskclip*"], "its 1 run")):
        assert main(args + extra) == 1  # the second replaces the first one's note rather than adding one
        after = readme.read_text().splitlines()
        notes = [line for line in after if line.startswith("> **The last invocation failed**")]
        assert len(notes) == 1 and f"{failed} all failed" in notes[0]
        assert after[:2] + after[4:] == report.splitlines()  # the note and its blank line, nothing else changed
        assert summary.read_bytes() == kept_summary


def test_list_marks_training_free_methods(suites, tmp_path, capsys):
    suites("free", "dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix, maskclip]\n"
                   f"    set: {json.dumps(TINY)}\n")
    assert main(["--suite", "free", "--results", str(tmp_path), "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "(trains)" in listed[0] and "(training-free: evaluates only)" in listed[1]
    assert listed[2].endswith("; 1 to train, 1 training-free")


def test_same_run_in_another_suite_is_copied_not_retrained(suites, tmp_path, capsys):
    suites("x", f"dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix]\n    set: {json.dumps(TINY)}\n")
    suites("y", f"dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix]\n    set: {json.dumps(TINY)}\n")
    results = tmp_path / "results"
    assert main(["--suite", "x", "--results", str(results), "--reports", str(tmp_path / "reports")]) == 0
    (run_x,) = suite_mod.expand("x", store=RunStore(results))
    assert main(["--suite", "y", "--results", str(results), "--reports", str(tmp_path / "reports")]) == 0
    (run_y,) = suite_mod.expand("y", store=RunStore(results))
    assert (json.loads((run_y.run_dir / "result.json").read_text())
            == json.loads((run_x.run_dir / "result.json").read_text()))
    # The log records wall-clock seconds: identical logs mean a copy, not a second training.
    assert (run_y.run_dir / "metrics.jsonl").read_text() == (run_x.run_dir / "metrics.jsonl").read_text()


@pytest.mark.slow
def test_kill_9_midway_then_rerun_equals_an_uninterrupted_suite(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    suite = tmp_path / "killed.yaml"
    suite.write_text("dataset: world_smoke\ngroups:\n  - methods: [zegclip_baseline_fix, zegclip]\n"
                     "    set: {steps: 60, batch_size: 4, warmup: 5, log_every: 5}\n")
    cmd = [sys.executable, "run_all.py", "--suite", str(suite), "--reports", str(tmp_path / "reports"), "--results"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(cmd + [str(tmp_path / "clean")], cwd=root, check=True, capture_output=True)
    proc = subprocess.Popen(cmd + [str(tmp_path / "killed")], cwd=root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "killed" / "killed"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once the first run finished and the second has logged a few steps
        logs = list(store.glob("zegclip-*/metrics.jsonl"))
        if list(store.glob("*/result.json")) and logs and len(logs[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(store.glob("*/result.json"))) == 1
    subprocess.run(cmd + [str(tmp_path / "killed")], cwd=root, check=True, capture_output=True)
    for clean in (tmp_path / "clean" / "killed").glob("*/result.json"):
        killed = store / clean.parent.name
        a, b = json.loads(clean.read_text()), json.loads((killed / "result.json").read_text())
        keys = ("mIoU_seen", "mIoU_unseen", "per_class")
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
        losses = [[json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]
                  for d in (clean.parent, killed)]
        assert losses[0] == losses[1]  # the killed run's partial log was cut back, not appended to


def test_parallel_runs_keep_the_threads_of_their_config(suites, tmp_path):
    suites("par", "dataset: world_smoke\nseeds: [0, 1]\ngroups:\n  - methods: [zegclip_baseline_fix]\n"
                  f"    set: {json.dumps(TINY)}\n")
    results = tmp_path / "results"
    assert main(["--suite", "par", "--results", str(results), "--reports", str(tmp_path / "reports"), "-j", "2"]) == 0
    for spec in suite_mod.expand("par", store=RunStore(results)):
        assert run_status(spec.run_dir) == "done"
        env = json.loads((spec.run_dir / "env.json").read_text())
        assert env["threads"] == spec.resolved["train"]["threads"] == 1  # not the cores over -j


def test_inference_only_variants_wait_for_the_run_that_trains_their_weights(suites, tmp_path, capsys):
    # With -j 2 both would start at once and train twice; chained, the ZegFormer variant evaluates
    # the zsseg run's checkpoint.
    group = f"  - methods: [two_stage, two_stage_zegformer]\n    set: {json.dumps({**TINY, 'clip_weights': 'none'})}\n"
    suites("two", "dataset: world_smoke\nseeds: [0]\ngroups:\n" + group)
    results = tmp_path / "results"
    assert main(["--suite", "two", "--results", str(results), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "(trains)" in listed and "(evaluates the weights of two_stage [world_smoke] seed 0" in listed
    assert "; 1 to train" in listed
    assert main(["--suite", "two", "--results", str(results), "--reports", str(tmp_path / "reports"), "-j", "2"]) == 0
    zsseg, zegformer = suite_mod.expand("two", store=RunStore(results))
    assert zsseg.training_hash == zegformer.training_hash
    assert json.loads((zegformer.run_dir / "result.json").read_text())["trained_by"] == f"two/{zsseg.run_dir.name}"
    # Another suite: the same runs are copies; a calibration variant evaluates the finished weights.
    suites("three", "dataset: world_smoke\nseeds: [0]\ngroups:\n" + group
           + group.replace('"none"}', '"none", "calibration": 0.2}'))
    capsys.readouterr()
    assert main(["--suite", "three", "--results", str(results), "--list"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("(copy of two/)") == 2 and "; 0 to train" in listed
    assert listed.count(f"(evaluates the weights of two/{zsseg.run_dir.name})") == 2


def test_on_slurm_the_training_runs_go_first_and_their_variants_in_a_second_array(suites, tmp_path, monkeypatch):
    from zegbench.harness.executors import ExecutorOptions

    suites("waves", "dataset: world_smoke\nseeds: [0, 1]\ngroups:\n"
                    "  - methods: [two_stage_zegformer, two_stage, zegclip]\n")
    arrays = []

    def fake_submit(payloads, executor, folder):  # what each job array would run; no cluster here
        arrays.append(sorted((p["resolved"]["method"], p["resolved"]["seed"]) for p in payloads))
        return [1] * len(payloads)

    monkeypatch.setattr(suite_mod, "submit_slurm", fake_submit)
    specs = suite_mod.expand("waves", store=RunStore(tmp_path))
    suite_mod.execute(specs, "waves", store=RunStore(tmp_path), executor=ExecutorOptions(kind="slurm"))
    assert arrays == [[("two_stage_zegformer", 0), ("two_stage_zegformer", 1), ("zegclip", 0), ("zegclip", 1)],
                      [("two_stage", 0), ("two_stage", 1)]]  # the first listed of a shared training trains it
