"""The claims scorecard: statistics by hand, the claims file's schema, and reports from a fake run store."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from zegbench.errors import ZegbenchError
from zegbench.harness.claim_check import load_claims
from zegbench.harness.cli import main
from zegbench.harness.suite import RunSpec, expand
from zegbench.harness.summary import format_verdicts
from zegbench.reports.build import build_report
from zegbench.reports.paper_claims import Claim
from zegbench.reports.runs import runs_frame
from zegbench.reports.scorecard import (
    IMAGE_COLUMN,
    SEED_COLUMN,
    arm_matches,
    evaluate_claims,
    verdict_cell,
    write_scorecard,
)
from zegbench.reports.verdicts import paired_verdict, ratio_verdict
from zegbench.store import RunStore

from fake_store import paired_counts, write_counts, write_result

T_975_2DF = 4.302653  # Student t, 97.5th percentile, 2 degrees of freedom (printed tables)


def test_paired_interval_matches_the_hand_computation():
    # diffs 2, 3, 4: mean 3, sample std 1, half-width t(0.975, 2) * 1 / sqrt(3)
    half = T_975_2DF / 3 ** 0.5
    row = paired_verdict([2.0, 3.0, 4.0], "increase")
    assert row.n == 3 and row.diff_mean == pytest.approx(3.0)
    assert row.ci_low == pytest.approx(3 - half, abs=1e-5) and row.ci_high == pytest.approx(3 + half, abs=1e-5)
    assert row.ci_low == pytest.approx(0.51585, abs=1e-4)
    assert row.verdict == "reproduces"


def test_wrong_side_contradicts_and_covering_zero_is_inconclusive():
    assert paired_verdict([2.0, 3.0, 4.0], "decrease").verdict == "contradicts"
    assert paired_verdict([-2.0, -3.0, -4.0], "increase").verdict == "contradicts"
    covers = paired_verdict([1.0, -1.0, 3.0], "increase")  # mean 1, half-width 4.97
    assert covers.verdict == "inconclusive" and "covers 0" in covers.reason


def test_one_pair_is_inconclusive_with_its_difference():
    row = paired_verdict([5.0], "increase")
    assert row.verdict == "inconclusive" and "n < 2" in row.reason
    assert row.n == 1 and row.diff_mean == 5.0 and row.ci_low is None


def test_ratio_verdict_against_the_threshold():
    assert ratio_verdict(16.6, 16.6, 16.6, "increase", 5, None).verdict == "reproduces"
    assert ratio_verdict(5.2, 4.0, 6.0, "increase", 5, 10).verdict == "inconclusive"
    assert ratio_verdict(1.3, 1.2, 1.4, "decrease", 1.1, 10).verdict == "contradicts"


def test_shipped_claims_file_loads_with_the_issues_claims():
    ids = {c.id for c in load_claims()}
    assert {"ft_raises_seen", "ft_lowers_unseen", "dpt_raises_unseen", "nel_raises_unseen", "rd_raises_unseen",
            "full_beats_baseline_hiou", "transductive_raises_unseen", "beats_two_stage_hiou",
            "one_stage_faster_latency", "one_stage_fewer_flops", "little_over_encoder_latency"} <= ids


GOOD = {"id": "x", "sentence": "s", "arm": "zegclip", "baseline": "zegclip_dpt_nel", "metric": "hiou",
        "direction": "increase", "suite": "ablations"}


@pytest.mark.parametrize("change, expected", [
    ({"metrc": "hiou"}, "key 'claims.0.metrc': unknown key"),
    ({"arm": "zegclip_nope"}, "claim 'x' arm: unknown variant 'zegclip_nope'"),
    ({"baseline": {"method": "zegclip", "set": {"num_tokenz": 5}}}, "baseline.set: unknown key 'num_tokenz'"),
    ({"metric": "latency"}, "a speed claim needs 'threshold'"),
    ({"suite": "nope"}, "unknown suite 'nope'"),
])
def test_bad_claims_file_is_one_error_line_naming_the_file(tmp_path, monkeypatch, capsys, change, expected):
    path = tmp_path / "claims" / "mine.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"claims": [{**GOOD, **change}]}))
    with pytest.raises(ZegbenchError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        load_claims(path.parent)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(tmp_path))  # a user's claims: the command line checks them first
    assert main(["--suite", "ablations", "--list", "--results", str(tmp_path / "r")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}")


def _run(root, method, seed, steps, metrics, overrides=None, shown=None):
    """A finished run in the fake store: result.json with (mIoU_seen, mIoU_unseen, hIoU) and its config.yaml."""
    overrides = overrides or {}
    run_dir = root / "fake" / f"{method}-{'-'.join(f'{k}{v}' for k, v in overrides.items())}-s{seed}-{steps}"
    run_dir.mkdir(parents=True)
    s, u, h = metrics
    write_result(run_dir, method=method, dataset="world", seed=seed, pAcc=50.0, mIoU_seen=s, mIoU_unseen=u,
                 hIoU=h, per_class={"a": s, "b": u}, params_total=10, params_trainable=5, train_seconds=1.0,
                 device="cpu")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"method": method, "train": {"steps": steps, "batch_size": 8}}))
    return RunSpec(method, "world", seed, overrides, "ladder", shown=overrides if shown is None else shown,
                   suite="fake", run_dir=run_dir)


def _claim(**change) -> Claim:
    return Claim.model_validate({**GOOD, **change})


@pytest.fixture
def store(tmp_path):
    """Two budgets: at 1500 steps zegclip beats dpt_nel on unseen in every seed, at 750 it loses in every seed."""
    specs = []
    for seed in range(3):
        specs.append(_run(tmp_path, "zegclip_dpt_nel", seed, 1500, (20.0, 10.0, 13.0)))
        specs.append(_run(tmp_path, "zegclip", seed, 1500, (20.0, 12.0 + seed, 15.0)))  # diffs 2, 3, 4
        specs.append(_run(tmp_path, "zegclip_dpt_nel", seed, 750, (10.0, 8.0, 9.0)))
        specs.append(_run(tmp_path, "zegclip", seed, 750, (10.0, 6.0 - seed, 7.0)))  # diffs -2, -3, -4
    specs.append(_run(tmp_path, "zegclip", 0, 1500, (1.0, 1.0, 1.0), {"ignore_negatives": True}))
    return specs


def test_verdict_per_budget_and_not_run(store, tmp_path):
    claims = [_claim(id="rd", metric="miou_unseen"), _claim(id="tr", arm="zegclip_transductive", suite="transductive")]
    rows = evaluate_claims(runs_frame(store), RunStore(tmp_path), claims)
    rd = {r.budget["steps"]: r for r in rows if r.id == "rd"}
    assert rd[1500].verdict == "reproduces" and rd[1500].diff_mean == pytest.approx(3.0)  # the variant
    assert rd[750].verdict == "contradicts" and rd[750].seeds == [0, 1, 2]  # with ignore_negatives is not paired
    (missing,) = [r for r in rows if r.id == "tr"]
    assert missing.verdict == "not run" and "zegclip_transductive" in missing.reason
    assert "run_all.py --suite transductive" in missing.reason
    lines = format_verdicts(rows).splitlines()
    assert len(lines) == 3 and "reproduces" in lines[1] and "750 steps x 8" in lines[0]


def test_arm_with_overrides_matches_only_its_variant(store):
    plain, ignoring = _claim().arm, _claim(arm={"method": "zegclip", "set": {"ignore_negatives": True}}).arm
    last_two = list(runs_frame(store[-2:]).itertuples(index=False))
    assert [arm_matches(run, plain) for run in last_two] == [True, False]
    assert [arm_matches(run, ignoring) for run in last_two] == [False, True]


def test_speed_claims_pair_records_of_one_machine(tmp_path):
    records = (("zegclip", "cpu", 100.0, 110e9), ("two_stage", "cpu", 1500.0, 1830e9),
               ("zegclip", "gpu", 10.0, 110e9))  # the newest, but its machine has no two-stage record
    for age, (method, machine, median, macs) in enumerate(reversed(records)):
        folder = tmp_path / "speed" / f"{method}-voc12-speed-{machine}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({
            "method": method, "dataset": "voc12", "input": [512, 512], "precision": "fp32", "macs": macs,
            "whole": {"median_ms": median, "p10_ms": 0.9 * median, "p90_ms": 1.1 * median, "repeats": 3}}))
        (folder / "env.json").write_text(json.dumps({"device_name": machine}))
        os.utime(folder / "result.json", (1000 - age, 1000 - age))
    fast = {"arm": "two_stage", "baseline": "zegclip", "direction": "increase", "threshold": 5, "suite": "speed",
            "speed": {"dataset": "voc12", "input": [512, 512]}}
    claims = [_claim(id="lat", metric="latency", **fast), _claim(id="flops", metric="gmacs", **fast),
              _claim(id="enc", metric="gmacs", **{**fast, "arm": "zegclip", "baseline": "clip_image_encoder"})]
    lat, flops, enc = evaluate_claims(None, RunStore(tmp_path), claims)
    assert lat.ratio == pytest.approx(15.0) and lat.n == 3 and lat.verdict == "reproduces"
    assert lat.machine == "cpu"
    assert lat.ratio_low == pytest.approx(0.9 * 15 / 1.1) and lat.ratio_high == pytest.approx(1.1 * 15 / 0.9)
    assert flops.ratio == pytest.approx(1830 / 110) and flops.ratio_low == flops.ratio_high
    assert enc.verdict == "not run" and "clip_image_encoder" in enc.reason


def test_report_writes_claims_json_tables_and_plots(store, tmp_path):
    runs = runs_frame(store)
    readme = build_report("fake", runs, {"b"}, tmp_path / "reports", RunStore(tmp_path),
                          evaluate_claims(runs, RunStore(tmp_path), load_claims()))
    folder = readme.parent
    rows = json.loads((folder / "claims.json").read_text())
    keys = {"id", "arms", "metric", "n", "paper_effect", "verdict"}
    accuracy, speed = keys | {"diff_mean", "ci_low", "ci_high", "budget"}, keys | {"ratio", "ratio_low", "ratio_high"}
    assert all((speed if r["threshold"] is not None else accuracy) <= set(r) for r in rows)
    assert len({r["id"] for r in rows}) == len(load_claims())
    assert not any("diff_mean" in r for r in rows if r["threshold"] is not None)  # a ratio is not a difference
    two_stage = next(r for r in rows if r["id"] == "beats_two_stage_hiou")
    assert two_stage["paper_effect"]["value"] == 6.8 and two_stage["verdict"] == "not run"
    rd = [r for r in rows if r["id"] == "rd_raises_unseen"]
    assert [(r["budget"]["steps"], r["verdict"]) for r in rd] == [(750, "contradicts"), (1500, "reproduces")]
    for name in ("claims.md", "claims.tex", "claims_forest.png", "claims_forest.pdf", "budget_curves.png"):
        assert (folder / name).is_file(), name
    text = readme.read_text()
    assert text.index("## Claims") < text.index("## Ablation tables") and "(claims_forest.png)" in text
    assert "rd_raises_unseen" in (folder / "claims.md").read_text()
    assert r"\toprule" in (folder / "claims.tex").read_text()


def test_report_only_prints_a_verdict_line_per_claim(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results"
    mine = tmp_path / "configs" / "datasets"  # a user's dataset config, broken and unused: the report never reads it
    mine.mkdir(parents=True)
    (mine / "unused.yaml").write_text("name: unused\nclasses: 3\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(mine.parent))
    for spec in expand("ablations", seeds=2, store=RunStore(results)):
        spec.run_dir.mkdir(parents=True)
        u = 10.0 + spec.seed + (3.0 if spec.method == "zegclip_baseline_fix" else 0.0)
        write_result(spec.run_dir, seed=spec.seed, pAcc=50.0, mIoU_seen=20.0, mIoU_unseen=u, hIoU=13.0,
                     per_class={"solid circle": 20.0, "dotted circle": u})
        (spec.run_dir / "config.yaml").write_text(yaml.safe_dump({"train": {"steps": 1500, "batch_size": 8}}))
    assert main(["--suite", "ablations", "--seeds", "2", "--report-only", "--results", str(results),
                 "--reports", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    verdicts = [line for line in out.splitlines() if line.startswith("claim ")]
    assert len(verdicts) == len(load_claims())
    ft = next(line for line in verdicts if line.startswith("claim ft_lowers_unseen "))
    assert "reproduces" in ft and "-3.0" in ft and "n=2" in ft  # unseen 3 points lower in both seeds
    assert (tmp_path / "reports" / "ablations" / "claims.json").is_file()
    # the harness names the worlds, so the claims across miniatures place these runs as world v3's (`world`)
    miniatures = json.loads((tmp_path / "reports" / "ablations" / "miniatures.json").read_text())
    column = next(c for c in miniatures["columns"] if c["header"] == "v3: world")
    ft_cell = next(c for c in miniatures["claims"] if c["id"] == "ft_lowers_unseen")["cells"][column["key"]]
    assert (ft_cell["verdict"], ft_cell["n"], ft_cell["effect"]) == ("reproduces", 2, pytest.approx(-3.0))


def _counted_run(root, method, seed, counts):
    """A finished run with per-image counts (its result.json's metrics are theirs), 750 steps of 8."""
    run_dir = root / "fake" / f"{method}-world-s{seed}-c{seed}"
    run_dir.mkdir(parents=True)
    write_counts(run_dir, counts, method=method, dataset="world", seed=seed)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"method": method, "train": {"steps": 750, "batch_size": 8}}))
    return RunSpec(method, "world", seed, {}, "ladder", shown={}, suite="fake", run_dir=run_dir)


def _counted_pairs(root, seeds):
    specs = []
    for seed in seeds:
        arm, base = paired_counts(seed)
        specs += [_counted_run(root, "zegclip", seed, arm), _counted_run(root, "zegclip_dpt_nel", seed, base)]
    return specs


def test_one_seed_shows_its_interval_over_images_and_stays_inconclusive(tmp_path):
    specs = _counted_pairs(tmp_path, [0])
    (row,) = evaluate_claims(runs_frame(specs), RunStore(tmp_path), [_claim(id="rd", metric="miou_unseen")])
    assert row.n == 1 and row.verdict == "inconclusive"
    (interval,) = row.image_intervals
    assert interval["seed"] == 0 and 0 < interval["low"] < interval["diff"] < interval["high"]
    assert interval["diff"] == pytest.approx(row.diff_mean, abs=1e-3)  # result.json's metrics are the counts'
    assert verdict_cell(row) == "inconclusive (one seed: image interval only)"
    assert "the interval over images lies above 0" in row.reason and "not training variance" in row.reason
    write_scorecard([row], tmp_path, "fake")
    cell = f"{interval['diff']:+.1f} [{interval['low']:+.1f}, {interval['high']:+.1f}]"
    markdown = (tmp_path / "claims.md").read_text()
    assert SEED_COLUMN in markdown and IMAGE_COLUMN in markdown and cell in markdown
    assert cell in (tmp_path / "claims.tex").read_text()
    assert json.loads((tmp_path / "claims.json").read_text())[0]["image_intervals"] == [interval]
    assert f"over images: {cell}" in format_verdicts([row])


def test_several_seeds_show_an_interval_over_images_each_and_keep_the_seed_verdict(tmp_path):
    specs = _counted_pairs(tmp_path, [0, 1, 2])
    (specs[4].run_dir / "image_counts.npz").unlink()  # seed 2's arm: a run finished before per-image counts
    (row,) = evaluate_claims(runs_frame(specs), RunStore(tmp_path), [_claim(id="rd", metric="miou_unseen")])
    assert row.n == 3 and row.verdict == "reproduces" and row.ci_low > 0  # by the seeds, as before
    assert [i["seed"] for i in row.image_intervals] == [0, 1]
    assert row.image_missing == [{"seed": 2, "reason": "no per-image counts (run predates them)"}]
    line = format_verdicts([row])
    assert "over images: s0 +" in line and "; s1 +" in line and "; s2: no per-image counts (run predates them)" in line


def test_claims_over_runs_without_counts_say_so(store, tmp_path):
    rows = evaluate_claims(runs_frame(store), RunStore(tmp_path), [_claim(id="rd", metric="miou_unseen")])
    assert all(r.image_intervals == [] and len(r.image_missing) == 3 for r in rows)
    assert "s0: no per-image counts (run predates them)" in format_verdicts(rows)
