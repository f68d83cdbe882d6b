"""``zegbench leaderboard`` on a hand-written store of three suites, two of which share a run."""
from __future__ import annotations

import csv
import math

import pytest

from zegbench.cli import LEADERBOARD_SORTS, main, shipped_recipe
from zegbench.engine.identity import run_folder_for
from zegbench.engine.resolve import resolve
from zegbench.reports.leaderboard import SORTS, leaderboard, leaderboard_table
from zegbench.store import RunStore
from zegbench.store.layout import write_config

from fake_store import write_result


def _run(results, suite, method, dataset, seed, hiou, overrides=None, **fields):
    """A finished run as the harness leaves it: its resolved config.yaml and a result.json (hIoU and mIoU(U))."""
    resolved = resolve(method, dataset, seed, overrides)
    run_dir = run_folder_for(resolved, RunStore(results), suite).path
    run_dir.mkdir(parents=True)
    write_config(run_dir, resolved)
    write_result(run_dir, method=method, dataset=dataset, seed=seed, pAcc=50.0, mIoU_seen=40.0,
                 mIoU_unseen=hiou - 1, hIoU=hiou, per_class={}, **fields)
    return run_dir


@pytest.fixture
def store(tmp_path):
    results = tmp_path / "results"
    for seed, hiou in enumerate((20.0, 22.0, 24.0)):
        _run(results, "ablations", "zegclip", "world_v2", seed, hiou)
    for seed, hiou in enumerate((14.0, 15.0)):
        _run(results, "ablations", "zegclip_baseline_fix", "world_v2", seed, hiou)
    shared = _run(results, "ablations_full", "zegclip", "world_v2", 0, 20.0)  # the same run, copied into a 2nd suite
    assert shared.name == next((results / "ablations").glob("zegclip-world_v2-s0-*")).name
    _run(results, "ablations_full", "zegclip", "world_v2", 0, 11.0, {"ignore_negatives": True})
    _run(results, "budget", "zegclip", "world_v2", 0, 30.0, {"steps": 375})
    _run(results, "main", "zegclip", "voc12", 0, 80.0)
    # Training-free: the training keys of its config decide nothing, so these two are one setting
    _run(results, "main", "maskclip", "world_v2", 0, 12.0, evaluated_step=0)
    _run(results, "smoke", "maskclip", "world_v2", 1, 16.0, {"steps": 4, "batch_size": 2}, evaluated_step=0)
    _run(results, "two_stage", "maskclip", "world_v2", 0, 12.0, {"steps": 10}, evaluated_step=0)  # main's seed 0 again
    (results / "main" / "summary.json").write_text("{}")  # not a run
    return results


def test_one_row_per_setting_with_the_shared_run_counted_once(store):
    board = leaderboard(RunStore(store), shipped_recipe)
    frame = board.set_index(["dataset", "variant", "steps"])
    recipe = frame.loc[("world_v2", "zegclip", 750)]
    assert recipe["n"] == 3 and recipe["seeds"] == "0,1,2"  # seed 0 is in two suites' folders: one run
    assert recipe["suites"] == "ablations,ablations_full"
    assert recipe["hIoU_mean"] == pytest.approx(22.0) and recipe["hIoU_std"] == pytest.approx(2.0)
    assert frame.loc[("world_v2", "zegclip_baseline_fix", 750)]["hIoU_std"] == pytest.approx(math.sqrt(0.5))
    ignoring = frame.loc[("world_v2", "zegclip[ignore_negatives=True]", 750)]
    assert ignoring["n"] == 1 and math.isnan(ignoring["hIoU_std"])
    shorter = frame.loc[("world_v2", "zegclip", 375)]  # the same variant at another budget: a row of its own
    assert shorter["batch"] == 8 and shorter["suites"] == "budget"
    voc = frame.loc[("voc12", "zegclip", 20000)]
    assert (voc["paper_mIoU_unseen"], voc["paper_hIoU"]) == (77.8, 84.3)  # the recipe as shipped: the paper's setting
    assert math.isnan(shorter["paper_hIoU"]) and math.isnan(recipe["paper_hIoU"])  # no paper numbers for the world
    training_free = board[board["variant"] == "maskclip"]
    assert len(training_free) == 1 and training_free.iloc[0]["n"] == 2 and training_free.iloc[0]["training_free"]
    assert training_free.iloc[0]["suites"] == "main,smoke,two_stage" and training_free.iloc[0]["hIoU_mean"] == 14.0
    assert training_free.iloc[0]["seeds"] == "0,1"  # seed 0's two runs are one model: counted once
    assert len(board) == 6


def test_variants_are_named_against_the_recipe_or_else_by_what_differs(store):
    with_recipe = leaderboard(RunStore(store), shipped_recipe)
    assert set(with_recipe["variant"]) == {"zegclip", "zegclip_baseline_fix", "zegclip[ignore_negatives=True]",
                                           "maskclip"}
    # no recipe to compare with: the keys that differ between zegclip's world settings
    without = leaderboard(RunStore(store))
    assert set(without["variant"]) == {"zegclip[ignore_negatives=False]", "zegclip[ignore_negatives=True]",
                                       "zegclip_baseline_fix", "zegclip", "maskclip"}
    assert without["paper_hIoU"].isna().all()  # nothing is known to be the paper's setting


def test_filters_and_sort_within_each_dataset(store):
    frame = leaderboard(RunStore(store), shipped_recipe, sort="hiou")
    assert list(frame["dataset"]) == ["voc12"] + ["world_v2"] * 5
    world = frame[frame["dataset"] == "world_v2"]
    assert list(world["hIoU_mean"]) == sorted(world["hIoU_mean"], reverse=True)
    assert list(leaderboard(RunStore(store), shipped_recipe, datasets=["voc12"])["dataset"]) == ["voc12"]
    fix_only = leaderboard(RunStore(store), shipped_recipe, methods="zegclip_base*")
    assert set(fix_only["variant"]) == {"zegclip_baseline_fix"}
    assert list(leaderboard(RunStore(store), shipped_recipe, sort="n")["n"])[1:] == [3, 2, 2, 1, 1]
    assert LEADERBOARD_SORTS == list(SORTS)


def test_the_command_writes_markdown_latex_and_csv_and_prints_the_table(store, tmp_path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(store), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    markdown = (out / "leaderboard.md").read_text()
    table = printed[:printed.rindex("|") + 1]
    assert table in markdown and "94.6 / 91.9 / 77.8 / 84.3" in table  # VOC's row, the paper beside it
    assert "22.0 ± 2.0" in table and "ablations, ablations_full" in table
    assert "6 settings from 10 finished runs" in printed
    assert r"\toprule" in (out / "leaderboard.tex").read_text()
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(rows) == 6 and float(rows[0]["hIoU_mean"]) == 80.0 and rows[0]["paper_hIoU"] == "84.3"
    assert rows[0]["steps"] == "20000"  # whole numbers, though a training-free row has none


def test_the_table_shows_mean_and_std_of_each_metric(store):
    table = leaderboard_table(leaderboard(RunStore(store), shipped_recipe))
    assert list(table.columns[:5]) == ["Variant", "Dataset", "Setting", "Budget", "n"]
    assert table.iloc[0]["Budget"] == "20000 steps x 16" and table.iloc[0]["hIoU"] == "80.0"
    assert table.set_index("Variant").loc["maskclip", "Budget"] == "training-free"
