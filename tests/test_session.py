"""``zegbench.run_suite``, the suite session's Python API: what its outcome says, its modes, its errors,
and the command line as a layer that only parses and prints what the session hands back."""
from __future__ import annotations

import json
import re

import pytest

import zegbench
from zegbench.errors import ZegbenchError
from zegbench.harness.cli import main as run_all_main
from zegbench.store import run_status

TINY = {"steps": 2, "batch_size": 2, "warmup": 1}
# One run that finishes, one that raises while building (an unknown tuning, as test_suite's).
PAIR = ("dataset: world_smoke\nseeds: [0]\ngroups:\n"
        f"  - methods: [zegclip_baseline_fix]\n    set: {json.dumps(TINY)}\n"
        f"  - methods: [zegclip]\n    set: {json.dumps({**TINY, 'tuning': 'fancy'})}\n")
WALL_TIME = re.compile(r"^suite \S+: .+ wall time")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Suite file ``pair.yaml`` run once through the API, quietly: (suite, results, reports, outcome)."""
    tmp = tmp_path_factory.mktemp("session")
    suite = tmp / "pair.yaml"
    suite.write_text(PAIR)
    results, reports = tmp / "results", tmp / "reports"
    return suite, results, reports, zegbench.run_suite(suite, results=results, reports=reports, jobs=1)


def _snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_package_exports_the_session():
    from zegbench.harness import session

    assert zegbench.run_suite is session.run_suite and zegbench.SuiteOutcome is session.SuiteOutcome


def test_the_outcome_counts_the_runs_and_names_summary_and_report(pair):
    suite, results, reports, outcome = pair
    assert (outcome.finished, outcome.failed, outcome.interrupted, outcome.reused) == (1, 1, 0, 0)
    assert outcome.exit_code == 1 and not outcome.report_kept and outcome.wall_seconds > 0
    assert outcome.summary == results / "pair" / "summary.json"
    assert json.loads(outcome.summary.read_text())["rows"] == outcome.rows
    assert [row["finished"] for row in outcome.rows] == [1, 0]
    assert outcome.report.is_file() and outcome.report.parent == reports / "pair"
    written = json.loads((outcome.report.parent / "claims.json").read_text())
    assert [row.to_record() for row in outcome.verdicts] == written and written  # the report's verdicts


def test_list_mode_gives_each_runs_status_and_plan_and_writes_nothing(pair):
    suite, results, reports, _ = pair
    before = _snapshot(results.parent)
    outcome = zegbench.run_suite(suite, results=results, reports=reports, mode="list")
    assert [(run.label.split()[0], run.status, run.plan) for run in outcome.listed] == [
        ("zegclip_baseline_fix", "done", None), ("zegclip", "failed", "trains")]
    assert [run.status for run in outcome.listed] == [run_status(run.run_dir) for run in outcome.listed]
    assert outcome.counts == {} and outcome.report is None and outcome.summary is None
    assert _snapshot(results.parent) == before


def test_the_command_line_prints_the_lines_the_session_echoes(pair, capsys):
    suite, results, _, _ = pair
    lines = []
    zegbench.run_suite(str(suite), results=results, mode="list", echo=lines.append)
    assert capsys.readouterr().out == ""  # the echo got them, nothing was printed
    assert run_all_main(["--suite", str(suite), "--results", str(results), "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == lines and len(lines) == 3


def test_report_mode_rebuilds_summary_and_report_and_runs_nothing(pair, capsys):
    suite, results, reports, first = pair
    finished = {p: p.stat().st_mtime_ns for p in results.glob("pair/*/result.json")}
    lines = []
    outcome = zegbench.run_suite(suite, results=results, reports=reports, mode="report", echo=lines.append)
    assert outcome.counts == {} and outcome.reused == 0 and outcome.exit_code == 0
    assert outcome.rows == first.rows and outcome.summary == first.summary and outcome.report == first.report
    assert {p: p.stat().st_mtime_ns for p in results.glob("pair/*/result.json")} == finished
    assert f"summary: {outcome.summary}" in lines and f"report: {outcome.report}" in lines
    assert WALL_TIME.match(lines[-1])
    assert not set(lines) & set(capsys.readouterr().out.splitlines())  # echoed, not printed


def test_a_second_run_reuses_the_finished_run_and_keeps_the_report_when_all_it_ran_failed(pair, capsys):
    suite, results, reports, first = pair
    summary = first.summary.read_bytes()
    outcome = zegbench.run_suite(suite, results=results, reports=reports, jobs=1)
    printed = capsys.readouterr().out  # no echo: none of the command line's lines (the logger's are not ours)
    assert "suite pair: 1 failed" not in printed and "kept as it was" not in printed and "wall time" not in printed
    assert (outcome.finished, outcome.failed, outcome.reused) == (0, 1, 1) and outcome.exit_code == 1
    assert outcome.report_kept and outcome.report == first.report and outcome.summary is None
    assert first.summary.read_bytes() == summary


def test_a_speed_suite_counts_measured_and_reused_records(tmp_path):
    suite = tmp_path / "tinyspeed.yaml"
    suite.write_text("kind: speed\ntargets:\n  - dataset: world_smoke\n    methods: [maskclip]\n"
                     "    whole: [32, 32]\n    warmup: 0\n    repeats: 2\n")
    options = {"results": tmp_path / "results", "reports": tmp_path / "reports"}
    first = zegbench.run_suite(suite, **options)
    assert (first.finished, first.reused, first.exit_code) == (1, 0, 0)
    assert first.report.is_file() and first.summary is None and first.rows == []
    again = zegbench.run_suite(suite, **options)
    assert (again.finished, again.reused) == (0, 1)
    (listed,) = zegbench.run_suite(suite, mode="list", **options).listed
    assert listed.status == "done" and listed.label.startswith("maskclip") and listed.plan is None


@pytest.mark.parametrize("name, options, expected", [
    ("nope", {}, "unknown suite 'nope'"),
    ("smoke", {"mode": "train"}, "mode must be one of run, list, report, not 'train'"),
    ("smoke", {"seeds": 0}, "seeds must be a whole number of at least 1, not 0"),
    ("smoke", {"jobs": 1.5}, "jobs must be a whole number of at least 1, not 1.5"),
    ("smoke", {"workers": -1}, "workers must be a whole number of at least 0, not -1"),
    ("smoke", {"executor": {"kind": "local", "nprocs": 2}}, "executor option 'nprocs' is not one of"),
    ("smoke", {"executor": "ray"}, "--executor must be one of local, torchrun, slurm, not 'ray'"),
    ("smoke", {"only": "nothing*"}, "suite 'smoke' has no runs matching --only 'nothing*'"),
    ("speed", {"seeds": 2}, "do not apply to speed suite 'speed'"),
])
def test_bad_input_raises_one_error_and_writes_nothing(tmp_path, name, options, expected):
    with pytest.raises(ZegbenchError, match=re.escape(expected)):
        zegbench.run_suite(name, results=tmp_path / "results", reports=tmp_path / "reports", **options)
    assert list(tmp_path.iterdir()) == []
