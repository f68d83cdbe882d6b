"""Reports from a hand-written run store: seed aggregation and golden markdown / LaTeX tables."""
from __future__ import annotations

import json

import pytest

from zegbench.harness.claim_check import load_claims
from zegbench.harness.suite import RunSpec
from zegbench.reports.build import build_report
from zegbench.reports.runs import runs_frame
from zegbench.reports.scorecard import evaluate_claims
from zegbench.reports.tables import ablation_table, aggregate, paper_comparison, to_latex, to_markdown
from zegbench.store import RunStore

from fake_store import write_result

# variant -> seed -> metrics (percent). Chosen so means and sample stds are easy by hand.
FIXTURE = {
    "zegclip_baseline_fix": {0: (50.0, 20.0, 10.0, 13.0), 1: (52.0, 22.0, 12.0, 15.0)},
    "zegclip": {0: (60.0, 30.0, 20.0, 24.0)},
}


@pytest.fixture
def specs(tmp_path):
    out = []
    for method, seeds in FIXTURE.items():
        for seed, (pacc, s, u, h) in seeds.items():
            run_dir = tmp_path / "fixture" / f"{method}-s{seed}"  # <results>/<suite>/<run>
            run_dir.mkdir(parents=True)
            write_result(run_dir, method=method, dataset="voc12", seed=seed, setting="inductive", pAcc=pacc,
                         mIoU_seen=s, mIoU_unseen=u, hIoU=h, per_class={"aeroplane": s, "tvmonitor": u},
                         params_total=2_000_000, params_trainable=500_000, train_seconds=100.0 + seed,
                         inference="whole", device="cpu")
            (run_dir / "env.json").write_text(json.dumps({"torch": "2.14.1", "device_name": "Test CPU (2 cores)",
                                                          "precision": "fp32"}))
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "loss": 1.0 / (i + 1)}) + "\n"
                                                           for i in range(3)))
            out.append(RunSpec(method, "voc12", seed, {}, "ladder", shown={}, suite="fixture", run_dir=run_dir))
    return out


def _verdicts(specs, store):
    """The shipped claims' verdicts on ``specs``, as the harness computes them before a report."""
    return evaluate_claims(runs_frame(specs), RunStore(store), load_claims())


def test_seed_aggregation(specs):
    agg = aggregate(runs_frame(specs))
    fix = agg.set_index("variant").loc["zegclip_baseline_fix"]
    assert fix["n"] == 2 and fix["hIoU_mean"] == pytest.approx(14.0)
    assert fix["hIoU_std"] == pytest.approx(2 ** 0.5)  # sample std of 13 and 15
    assert fix["train_seconds"] == pytest.approx(100.5) and fix["device"] == "Test CPU (2 cores)"
    one = agg.set_index("variant").loc["zegclip"]
    assert one["n"] == 1 and one["hIoU_mean"] == 24.0 and one["hIoU_std"] != one["hIoU_std"]  # NaN for one seed


# The expected output verbatim: its rows are wider than a line, and split they would no longer read as a table.
GOLDEN_MARKDOWN = """\
| Variant              | Seeds   | pAcc       | mIoU(S)    | mIoU(U)    | hIoU       | Δ U vs row above   | Δ h vs row above   |
|:---------------------|:--------|:-----------|:-----------|:-----------|:-----------|:-------------------|:-------------------|
| zegclip_baseline_fix | 2       | 51.0 ± 1.4 | 21.0 ± 1.4 | 11.0 ± 1.4 | 14.0 ± 1.4 | -                  | -                  |
| zegclip              | 1       | 60.0       | 30.0       | 20.0       | 24.0       | +9.0               | +10.0              |
"""  # noqa: E501

GOLDEN_LATEX = r"""\begin{table}
\caption{Ablation: ladder}
\label{tab:ladder}
\begin{tabular}{lrrrrrrr}
\toprule
Variant & Seeds & pAcc & mIoU(S) & mIoU(U) & hIoU & $\Delta$ U vs row above & $\Delta$ h vs row above \\
\midrule
zegclip\_baseline\_fix & 2 & 51.0 $\pm$ 1.4 & 21.0 $\pm$ 1.4 & 11.0 $\pm$ 1.4 & 14.0 $\pm$ 1.4 & - & - \\
zegclip & 1 & \textbf{60.0} & \textbf{30.0} & \textbf{20.0} & \textbf{24.0} & +9.0 & +10.0 \\
\bottomrule
\end{tabular}
\end{table}
"""


def test_golden_ablation_table(specs):
    table = ablation_table(aggregate(runs_frame(specs)), "ladder")
    assert to_markdown(table) == GOLDEN_MARKDOWN
    assert to_latex(table, "Ablation: ladder", "tab:ladder", ["pAcc", "mIoU(S)", "mIoU(U)", "hIoU"]) == GOLDEN_LATEX


def test_paper_comparison_shows_paper_number_and_difference(specs):
    paper = {"voc12": {"inductive": {"zegclip": {"mIoU_unseen": 77.8, "hIoU": 84.3},
                                     "zegclip_baseline_fix": {"hIoU": 10.0, "verified": False}}}}
    table = paper_comparison(aggregate(runs_frame(specs)), paper).set_index("Variant")
    assert table.loc["zegclip", "mIoU(U) paper"] == "77.8" and table.loc["zegclip", "mIoU(U) Δ"] == "-57.8"
    assert table.loc["zegclip", "pAcc paper"] == "-"  # no paper number: no difference either
    assert table.loc["zegclip_baseline_fix", "hIoU paper"] == "10.0†"  # unverified numbers are marked
    assert table.loc["zegclip_baseline_fix", "hIoU Δ"] == "+4.0"


def test_build_report_writes_tables_plots_and_readme(specs, tmp_path):
    readme = build_report("fixture", runs_frame(specs), {"tvmonitor"}, tmp_path / "reports", RunStore(tmp_path),
                          _verdicts(specs, tmp_path))
    folder = readme.parent
    for name in ("ablation_ladder.md", "ablation_ladder.tex", "paper_comparison.md", "efficiency.md", "runs.csv",
                 "hiou_by_variant.png", "seen_vs_unseen.pdf", "per_class_iou.png", "training_curves.png"):
        assert (folder / name).is_file(), name
    text = readme.read_text()
    assert ("best hIoU: `zegclip` 24.0 over 1 seed, ahead of `zegclip_baseline_fix` by 10.0 "
            "(more than one seed std)") in text
    assert "(hiou_by_variant.png)" in text and "77.8" in (folder / "paper_comparison.md").read_text()


def test_report_joins_speed_records_of_default_configs(specs, tmp_path):
    speed_dir = tmp_path / "speed" / "zegclip-voc12-speed-abcd1234"
    speed_dir.mkdir(parents=True)
    (speed_dir / "result.json").write_text(json.dumps({
        "method": "zegclip", "dataset": "voc12", "input": [512, 512], "params_total": 1, "params_trainable": 1,
        "flops": 220e9, "macs": 110e9, "whole": {"median_ms": 125.0, "p10_ms": 120.0, "p90_ms": 130.0},
        "fps_whole": 8.0, "mfu": 0.5, "matmul_peak_gflops": 100.0}))
    readme = build_report("fixture", runs_frame(specs), {"tvmonitor"}, tmp_path / "reports", RunStore(tmp_path),
                          _verdicts(specs, tmp_path)).read_text()
    efficiency = (tmp_path / "reports" / "fixture" / "efficiency.md").read_text()
    row = next(line for line in efficiency.splitlines() if line.startswith("| zegclip "))
    assert "110.00" in row and "125.0" in row and "8.0" in row
    fix = next(line for line in efficiency.splitlines() if line.startswith("| zegclip_baseline_fix"))
    assert "| -" in fix  # not measured: no numbers invented
    assert "speed_vs_hiou.png" in readme and (tmp_path / "reports" / "fixture" / "speed_vs_hiou.pdf").is_file()


def test_several_datasets_are_reported_apart(specs, tmp_path):
    import shutil
    from dataclasses import replace

    others = []
    for spec in specs:  # the same runs again on a second dataset
        run_dir = spec.run_dir.with_name(spec.run_dir.name + "-world")
        shutil.copytree(spec.run_dir, run_dir)
        record = json.loads((run_dir / "result.json").read_text())
        (run_dir / "result.json").write_text(json.dumps({**record, "config_hash": "world"}))  # its folder's hash
        others.append(replace(spec, dataset="world_smoke", run_dir=run_dir))
    readme = build_report("fixture", runs_frame(specs + others), {"tvmonitor"}, tmp_path / "reports",
                          RunStore(tmp_path), _verdicts(specs + others, tmp_path)).read_text()
    assert "### ladder on voc12:" in readme and "### ladder on world_smoke:" in readme
    folder = tmp_path / "reports" / "fixture"
    assert (folder / "ablation_ladder_voc12.md").is_file() and (folder / "ablation_ladder_world_smoke.md").is_file()
    # Each table holds its own dataset's rows: one per variant, not one per variant and dataset.
    assert (folder / "ablation_ladder_voc12.md").read_text().count("| zegclip ") == 1
    assert "| Dataset" in (folder / "efficiency.md").read_text()


# What opens a run's files: the store's readers, its file names, and its listings of finished runs.
RUN_READERS = {"read_result", "inspect_result", "read_config", "read_json", "inspect_image_counts",
               "read_image_counts", "RESULT_FILE", "CONFIG_FILE", "ENV_FILE", "LOG_FILE", "IMAGE_COUNTS_FILE",
               "finished_runs", "suites_holding", "results_of", "lendable_runs"}


def test_only_the_runs_module_of_the_reports_opens_a_run_s_files():
    import ast
    from pathlib import Path

    import zegbench

    readers = {}
    for path in sorted((Path(zegbench.__file__).parent / "reports").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("zegbench.store"):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
        if names & RUN_READERS:
            readers[path.name] = sorted(names & RUN_READERS)
    assert list(readers) == ["runs.py"], readers


def test_the_runs_frame_holds_each_run_s_budget_and_per_class_iou(specs):
    import yaml

    config = {"method": "zegclip", "world_size": 2, "train": {"steps": 300, "batch_size": 4, "accumulate": 2}}
    (specs[0].run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    runs = runs_frame(specs)
    assert len(runs) == len(specs) and runs.iloc[0]["per_class"] == {"aeroplane": 20.0, "tvmonitor": 10.0}
    assert (runs.iloc[0]["steps"], runs.iloc[0]["global_batch"]) == (300, 16)  # 4 images x 2 accumulated x 2 ranks
    assert type(runs.iloc[0]["steps"]) is int  # a whole number, as config.yaml has it
    assert runs.iloc[1]["steps"] is None and runs.iloc[1]["global_batch"] is None  # no config.yaml: no budget


@pytest.mark.parametrize("suite", ["ablations_full", "smoke", "budget"])
def test_the_reports_name_each_variant_as_the_suite_does(suite):
    from zegbench.harness.suite import expand
    from zegbench.reports.variants import variant_label

    for spec in expand(suite):
        assert variant_label(spec.method, spec.overrides if spec.shown is None else spec.shown) == spec.variant
