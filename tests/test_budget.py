"""World v3's budget rule (lab/budget.py): when an arm has converged, which budget wins, and that it
never reads val."""
from __future__ import annotations

import pytest
import torch
import yaml

from zegbench.config_dirs import config_file
from zegbench.lab import budget
from zegbench.lab.budget import DEGENERATE_SEEN_MIOU, LADDER_ARMS, arm_converged, budget_by_convergence, loss_drop
from zegbench.store import RunStore


def log_of(losses: list[float], every: int = 10) -> list[dict]:
    """A metrics.jsonl as train() writes it: step is 0-based, logged every ``every`` steps."""
    return [{"step": i * every, "loss": v} for i, v in enumerate(losses)]


def test_loss_drop_compares_moving_averages_at_80_percent_and_at_the_end():
    # 100 steps logged every 10 (steps done 1, 11, ..., 91): window 10 steps, one log each.
    losses = [5.0, 4.0, 3.0, 2.5, 2.2, 2.1, 2.0, 1.95, 1.8, 1.7]
    # At 80 steps done the window (70, 80] holds step 71 (index 7: 1.95); at 100, (90, 100] holds 91 (1.7).
    assert loss_drop(log_of(losses), 100) == pytest.approx((1.95 - 1.7) / 1.95)
    flat = [5.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert loss_drop(log_of(flat), 100) == 0.0


def test_loss_drop_averages_every_log_inside_the_window():
    # 200 steps logged every 5: window 20 steps holds 4 logs; a rising loss gives a negative drop.
    losses = [1.0] * 28 + [1.0, 1.0, 1.0, 1.0] + [1.0] * 4 + [2.0, 2.0, 2.0, 2.0]
    assert loss_drop(log_of(losses, every=5), 200) == pytest.approx(-1.0)


def test_an_arm_converges_only_when_its_loss_is_flat_its_seen_miou_stopped_and_it_learned_something():
    assert arm_converged(0.01, 40.0, 39.5)["converged"]
    assert not arm_converged(0.06, 40.0, 39.5)["converged"]  # the loss still falls by 6%
    assert not arm_converged(0.01, 40.0, 38.5)["converged"]  # seen mIoU gained 1.5 points since L/2
    # A degenerate plateau: flat loss, no gain, but the arm predicts (almost) no seen class.
    plateau = arm_converged(0.0, DEGENERATE_SEEN_MIOU - 0.1, DEGENERATE_SEEN_MIOU - 0.1)
    assert plateau["loss_flat"] and plateau["seen_stopped_improving"] and not plateau["converged"]


def runs(drop: float, seen: dict[int, float]) -> dict[int, dict]:
    return {steps: {"loss_drop": drop, "seen_miou": v} for steps, v in seen.items()}


def test_the_budget_is_the_smallest_multiple_at_which_every_arm_converged():
    records = {
        "fast": runs(0.01, {50: 40.0, 100: 40.5, 200: 40.6, 400: 40.6}),
        "slow": runs(0.01, {50: 5.0, 100: 20.0, 200: 30.0, 400: 30.5}),  # gains 10 points from 100 to 200
    }
    out = budget_by_convergence(records, base=100)
    assert out["budget_steps"] == 400 and out["multiple"] == 4
    assert not out["verdicts"][1]["slow"]["converged"] and out["verdicts"][1]["fast"]["converged"]
    assert not out["verdicts"][2]["slow"]["converged"]
    # One arm that never converges: no budget, and the verdicts say which multiples were judged.
    records["never"] = runs(0.2, {50: 1.0, 100: 2.0, 200: 3.0, 400: 4.0})
    out = budget_by_convergence(records, base=100)
    assert out["budget_steps"] is None and list(out["verdicts"]) == [1, 2, 4]  # 8x needs 800 steps: not measured


def test_the_ladder_arms_are_the_ablations_suites_ladder():
    suite = yaml.safe_load(config_file("suites", "ablations").read_text())
    ladder = next(g for g in suite["groups"] if g["name"] == "ladder")
    assert tuple(ladder["methods"]) == LADDER_ARMS


def test_the_budget_mode_trains_on_training_images_only_and_reuses_finished_measurements(tmp_path, monkeypatch):
    from zegbench.datasets import catalog

    real_build = catalog.build_dataset
    splits = []

    def build(name, split, *args, **kwargs):
        splits.append(split)
        return real_build(name, split, *args, **kwargs)

    monkeypatch.setattr(catalog, "build_dataset", build)
    monkeypatch.setattr(budget, "TRAIN_SUBSET", 8)
    out = budget.measure_budget("world_smoke", RunStore(tmp_path), arms=("zegclip_baseline_ft",), base=2)
    assert splits and set(splits) == {"train"}
    measured = out["runs"]["zegclip_baseline_ft"]
    assert {1, 2} <= set(measured)  # L/2 and L of the first multiple at least
    for steps, record in measured.items():
        assert record["steps"] == steps and record["train_subset"] == 8 and 0 <= record["seen_miou"] <= 100
    if out["budget_steps"] is not None:
        assert all(v["converged"] for v in out["verdicts"][out["multiple"]].values())
    # A second measurement trains nothing: every run's budget.json is read back.
    splits.clear()
    again = budget.measure_budget("world_smoke", RunStore(tmp_path), arms=("zegclip_baseline_ft",), base=2)
    assert splits == [] and again["runs"] == out["runs"]


def _without_seconds(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "seconds"}


class _Killed(Exception):
    """Stands in for a SIGKILL after a training step (a machine's or a session's end)."""


def test_a_budget_run_cut_short_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "TRAIN_SUBSET", 8)
    monkeypatch.setattr(budget, "CHECKPOINT_EVERY", 2)
    clean = budget.measure_arm("zegclip_baseline_ft", "world_smoke", 4, RunStore(tmp_path / "clean"))

    def kill_after_step_3(name):
        if name == "train:3":
            raise _Killed(name)

    cut = RunStore(tmp_path / "cut")
    with monkeypatch.context() as m:
        m.setattr("zegbench.engine.train.fault_point", kill_after_step_3)
        with pytest.raises(_Killed):
            budget.measure_arm("zegclip_baseline_ft", "world_smoke", 4, cut)
    (folder,) = (cut.root / "world-budget" / "world_smoke").iterdir()
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["step"] == 2  # the last checkpoint before the kill
    assert cut.read_budget_record(folder) is None  # not measured yet
    resumed = budget.measure_arm("zegclip_baseline_ft", "world_smoke", 4, cut)
    assert _without_seconds(resumed) == _without_seconds(clean)


def test_budget_records_do_not_depend_on_how_many_jobs_measure_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(budget, "MULTIPLES", (1,))  # read by the parent only; the workers measure with the defaults
    arms = ("zegclip_baseline_ft", "zegclip_dpt")
    one = budget.measure_budget("world_smoke", RunStore(tmp_path / "one"), arms=arms, base=2)
    two = budget.measure_budget("world_smoke", RunStore(tmp_path / "two"), arms=arms, base=2, jobs=2, progress=True)
    finished = sorted(line.split(":")[1].strip() for line in capsys.readouterr().err.splitlines()
                      if line.startswith("budget: "))  # a line per run, as each finishes
    assert finished == ["zegclip_baseline_ft at 1 steps", "zegclip_baseline_ft at 2 steps",
                        "zegclip_dpt at 1 steps", "zegclip_dpt at 2 steps"]
    assert list(two["runs"]["zegclip_dpt"]) == sorted(two["runs"]["zegclip_dpt"])  # by steps, whatever ran first
    assert {arm: {s: _without_seconds(r) for s, r in runs.items()} for arm, runs in two["runs"].items()} \
        == {arm: {s: _without_seconds(r) for s, r in runs.items()} for arm, runs in one["runs"].items()}
    assert two["budget_steps"] == one["budget_steps"] and two["verdicts"] == one["verdicts"]
