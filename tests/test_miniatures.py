"""The claims across miniatures: the recorded numbers against the README's text, and the table from a fake store."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from zegbench.datasets.catalog import available, load_dataset_info
from zegbench.errors import ZegbenchError
from zegbench.harness.claim_check import load_claims
from zegbench.harness.suite import RunSpec
from zegbench.reports.build import build_report
from zegbench.reports.miniatures import MINIATURE_NUMBERS, load_miniature_numbers, miniature_table, write_miniatures
from zegbench.reports.runs import runs_frame
from zegbench.reports.scorecard import evaluate_claims, interval_text
from zegbench.reports.tables import mean_std
from zegbench.reports.verdicts import judge, paired_verdict
from zegbench.store import RunStore

from fake_store import write_result

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
NUMBERS = load_miniature_numbers()
LADDER = {c.id: c for c in load_claims() if c.suite == NUMBERS.suite}
T_975_2DF = 4.302653  # Student t, 97.5th percentile, 2 degrees of freedom (printed tables)


def _section(path: str) -> str:
    """The README from the last heading (or bold paragraph) of ``path`` ('A > B > C') on."""
    start = 0
    for part in path.split(" > "):
        found = re.search(rf"^(#+ |\*\*){re.escape(part)}", README[start:], re.MULTILINE)
        assert found, f"README has no heading {part!r} after the one before it"
        start += found.start()
    return README[start:]


def _row(text: str, label: str) -> list[str]:
    """The cells of the first markdown table row of ``text`` labelled ``label``."""
    line = next((line for line in text.splitlines() if line.startswith(f"| {label} |")), None)
    assert line is not None, f"no README row {label!r}"
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.parametrize("measurement", [m for m in NUMBERS.recorded if m.in_table and m.kind == "seeds" and m.claims],
                         ids=lambda m: m.id)
def test_recorded_cells_over_seeds_are_the_readmes(measurement):
    section = _section(measurement.readme_section)
    for claim in measurement.claims.values():
        # | claim | effect | ... | verdict |: columns between (the bootstrap over images) are not recorded
        label, effect, *_, verdict = _row(section, claim.readme_row)
        note = f" ({claim.note})" if claim.note else ""
        assert effect == interval_text(claim.effect, claim.low, claim.high) + note, label
        assert verdict.strip("*") == claim.verdict, label


@pytest.mark.parametrize("measurement", [m for m in NUMBERS.recorded if m.kind == "worlds"], ids=lambda m: m.id)
def test_recorded_cells_over_worlds_are_the_readmes(measurement):
    section = _section(measurement.readme_section)
    worlds = len(measurement.datasets)
    header = _row(section, "claim")
    assert header[1:1 + worlds] == measurement.datasets  # the README's world columns, in the data file's order
    for claim in measurement.claims.values():
        cells = _row(section, claim.readme_row)
        assert cells[1:1 + worlds] == [f"{claim.per_world[w]:+.1f}" for w in measurement.datasets], claim.readme_row
        note = f" ({claim.note})" if claim.note else ""
        assert cells[1 + worlds] == interval_text(claim.effect, claim.low, claim.high) + note, claim.readme_row
        if not measurement.verdicts_from:  # the table has a verdict column
            assert header[-1] == "verdict" and cells[-1].strip("*") == claim.verdict, claim.readme_row
    if measurement.verdicts_from:  # the verdicts are in the sentence under the table, copied whole
        assert " ".join(measurement.verdicts_from.split()) in " ".join(README.split())


def test_recorded_cells_given_in_prose_are_the_readmes():
    prose = " ".join(README.split())
    for measurement in (m for m in NUMBERS.recorded if not m.in_table):
        assert measurement.readme_section.split(" > ")[-1] in prose
        for claim in measurement.claims.values():
            text = interval_text(claim.effect, claim.low, claim.high)
            assert re.search(re.escape(claim.readme_row) + r" \(?" + re.escape(text), prose), claim.readme_row


def test_v1_records_variants_only_and_they_are_the_readmes():
    (v1,) = [m for m in NUMBERS.recorded if m.world_version == 1]
    assert v1.claims == {}  # the README gives no paired effect for world v1: none is made up
    section = _section(v1.readme_section)
    assert set(v1.variants) == {m for c in LADDER.values() for m in (c.arm.method, c.baseline.method)}
    for variant in v1.variants.values():
        cells = _row(section, variant.readme_row)
        assert cells[1:] == [mean_std(x.mean, x.std) for x in (variant.mIoU_seen, variant.mIoU_unseen, variant.hIoU)]


def test_recorded_verdicts_follow_the_verdict_rule_and_name_ladder_claims():
    for measurement in NUMBERS.recorded:
        assert set(measurement.claims) <= set(LADDER), measurement.id
        for claim_id, claim in measurement.claims.items():
            assert judge(claim.low, claim.high, LADDER[claim_id].direction)[0] == claim.verdict, claim_id
    complete = [m for m in NUMBERS.recorded if m.in_table and m.claims]
    assert complete and all(set(m.claims) == set(LADDER) for m in complete)


def test_recorded_over_worlds_intervals_follow_from_the_recorded_steps():
    # Each world's step is printed to 0.1, so the interval recomputed from them moves by up to about 0.25
    # (0.05 per step through the mean and t * sd / sqrt(3), and 0.05 for the printed interval's own rounding).
    measurements = [m for m in NUMBERS.recorded if m.kind == "worlds"]
    assert measurements
    for measurement in measurements:
        for claim_id, claim in measurement.claims.items():
            over = paired_verdict([claim.per_world[w] for w in measurement.datasets], LADDER[claim_id].direction)
            assert over.n == measurement.n == 3
            assert over.diff_mean == pytest.approx(claim.effect, abs=0.1), (measurement.id, claim_id)
            assert (over.ci_low, over.ci_high) == pytest.approx((claim.low, claim.high), abs=0.3), (measurement.id,
                                                                                                     claim_id)


def test_a_bad_numbers_file_is_one_error_line_naming_the_file_and_key(tmp_path):
    data = yaml.safe_load(MINIATURE_NUMBERS.read_text())
    data["recorded"][1]["claims"]["rd_raises_unseen"]["verdict"] = "holds"
    path = tmp_path / "miniature_numbers.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ZegbenchError, match=r"recorded\.1\.claims\.rd_raises_unseen\.verdict") as err:
        load_miniature_numbers(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def _run(root: Path, method: str, dataset: str, seed: int, unseen: float, steps: int = 750) -> RunSpec:
    """A finished ladder run of the fake store on ``dataset``: result.json (mIoU(U) = ``unseen``) and config.yaml."""
    run_dir = root / "ablations" / f"{method}-{dataset}-s{seed}-{steps}"
    run_dir.mkdir(parents=True)
    write_result(run_dir, method=method, dataset=dataset, seed=seed, pAcc=50.0, mIoU_seen=20.0, mIoU_unseen=unseen,
                 hIoU=15.0, per_class={"a": 20.0, "b": unseen}, params_total=10, params_trainable=5,
                 train_seconds=1.0, device="cpu")
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"method": method, "dataset": dataset, "seed": seed,
                                                         "train": {"steps": steps, "batch_size": 8}}))
    return RunSpec(method, dataset, seed, {}, "ladder", shown={}, suite="ablations", run_dir=run_dir)


@pytest.fixture
def ladder_store(tmp_path):
    """RD's step (zegclip - zegclip_dpt_nel, mIoU(U)) on two world versions: world_v2 seed 0: -2; world_v3 seeds
    0, 1, 2: +4, +5, +6; world_v3_seed1 and world_v3_seed2 seed 0: +1, +7. NEL's step (zegclip_dpt_nel -
    zegclip_dpt) has seed 0 on world_v3 (-3) and world_v3_seed1 (-1) only."""
    specs = [_run(tmp_path, "zegclip_dpt_nel", "world_v2", 0, 10.0), _run(tmp_path, "zegclip", "world_v2", 0, 8.0)]
    for dataset, seed, step in (("world_v3", 0, 4.0), ("world_v3", 1, 5.0), ("world_v3", 2, 6.0),
                                ("world_v3_seed1", 0, 1.0), ("world_v3_seed2", 0, 7.0)):
        specs += [_run(tmp_path, "zegclip_dpt_nel", dataset, seed, 10.0),
                  _run(tmp_path, "zegclip", dataset, seed, 10.0 + step)]
    specs += [_run(tmp_path, "zegclip_dpt", "world_v3", 0, 13.0),
              _run(tmp_path, "zegclip_dpt", "world_v3_seed1", 0, 11.0)]
    return specs


def _catalog_worlds() -> dict:
    """What the harness hands the report: every world dataset's generator settings."""
    return {name: info.world for name in available() if (info := load_dataset_info(name)).world}


def test_the_default_world_and_world_v3_are_one_world_in_the_over_worlds_check(tmp_path):
    """`world` is world_v3 under the default name (equal generator settings): a design holds it once, by the
    name the suite ran, so runs on `world` and the two seed worlds make the over-worlds cell; never 4 worlds."""
    worlds = _catalog_worlds()
    assert worlds["world"] == worlds["world_v3"]
    specs = []
    for dataset, step in (("world", 4.0), ("world_v3_seed1", 1.0), ("world_v3_seed2", 7.0)):
        specs += [_run(tmp_path, "zegclip_dpt_nel", dataset, 0, 10.0),
                  _run(tmp_path, "zegclip", dataset, 0, 10.0 + step)]
    runs = runs_frame(specs)
    table = miniature_table("ablations", evaluate_claims(runs, RunStore(tmp_path), list(LADDER.values())), runs,
                            worlds, list(LADDER.values()))
    by_header = {c.header: c for c in table.columns}
    assert by_header["v3 over 3 worlds"].datasets == ("world", "world_v3_seed1", "world_v3_seed2")
    over = table.cells["rd_raises_unseen", by_header["v3 over 3 worlds"].key]
    assert over.per_world == {"world": 4.0, "world_v3_seed1": 1.0, "world_v3_seed2": 7.0}
    assert over.text == "+4.0 [-3.5, +11.5] inconclusive"
    assert "v3: world" in by_header and "v3: world_v3" not in by_header


def test_table_from_a_store_with_runs_on_two_world_versions(ladder_store, tmp_path):
    runs = runs_frame(ladder_store)
    verdicts = evaluate_claims(runs, RunStore(tmp_path), list(LADDER.values()))
    table = miniature_table("ablations", verdicts, runs, _catalog_worlds(), list(LADDER.values()))
    headers = [c.header for c in table.columns]
    assert headers == ["v1 (recorded)", "v2 (recorded)", "v2: world_v2", "v2 over 3 worlds (recorded)", "v3 (recorded)",
                       "v3: world_v3", "v3 over 3 worlds (recorded)", "v3 over 3 worlds"]
    cell = {c.header: {r.id: table.cells[r.id, c.key] for r in table.rows} for c in table.columns}

    # this store's verdicts, labelled with their dataset: one seed on world_v2, three on world_v3
    assert cell["v2: world_v2"]["rd_raises_unseen"].text == "-2.0 (one seed) inconclusive"
    rd = cell["v3: world_v3"]["rd_raises_unseen"]
    half = T_975_2DF * 1.0 / 3 ** 0.5  # steps 4, 5, 6: mean 5, sample std 1
    assert (rd.n, rd.effect, rd.verdict) == (3, pytest.approx(5.0), "reproduces")
    assert (rd.low, rd.high) == pytest.approx((5 - half, 5 + half), abs=1e-5)
    assert rd.text == "+5.0 [+2.5, +7.5] reproduces"
    assert cell["v3: world_v3"]["nel_raises_unseen"].text == "-3.0 (one seed) inconclusive"
    assert cell["v3: world_v3"]["ft_raises_seen"].text == "not run"

    # over the three v3 worlds: the seed-0 steps 4 (world_v3), 1 and 7; mean 4, sample std 3
    over = cell["v3 over 3 worlds"]["rd_raises_unseen"]
    half = T_975_2DF * 3.0 / 3 ** 0.5
    assert over.per_world == {"world_v3": 4.0, "world_v3_seed1": 1.0, "world_v3_seed2": 7.0}
    assert (over.n, over.effect, over.verdict) == (3, pytest.approx(4.0), "inconclusive")
    assert (over.low, over.high) == pytest.approx((4 - half, 4 + half), abs=1e-5)
    assert over.text == "+4.0 [-3.5, +11.5] inconclusive"
    nel = cell["v3 over 3 worlds"]["nel_raises_unseen"]
    assert nel.text == "not run (2 of 3 worlds)" and nel.per_world == {"world_v3": -3.0, "world_v3_seed1": -1.0}

    # the recorded columns, as recorded; v1 gives the arms' means, never a difference
    assert cell["v2 (recorded)"]["rd_raises_unseen"].text == "+17.1 [+5.1, +29.0] reproduces"
    assert cell["v3 (recorded)"]["rd_raises_unseen"].text == "-5.3 [-33.1, +22.4] inconclusive"  # beside this store's
    assert cell["v2 over 3 worlds (recorded)"]["ft_lowers_unseen"].text == "+15.4 [+8.5, +22.3] contradicts"
    assert cell["v3 over 3 worlds (recorded)"]["ft_lowers_unseen"].text == "-21.1 [-28.8, -13.5] reproduces"
    assert cell["v1 (recorded)"]["ft_raises_seen"].text == "not recorded (arms 17.1 ± 1.1 vs 11.5 ± 1.0)"
    assert cell["v1 (recorded)"]["ft_raises_seen"].effect is None

    lines = write_miniatures(table, tmp_path)
    record = json.loads((tmp_path / "miniatures.json").read_text())
    assert [c["header"] for c in record["columns"]] == headers
    rd_cells = next(c for c in record["claims"] if c["id"] == "rd_raises_unseen")["cells"]
    assert [rd_cells[c["key"]]["text"] for c in record["columns"]] == [cell[h]["rd_raises_unseen"].text
                                                                        for h in headers]
    markdown = (tmp_path / "miniatures.md").read_text()
    assert "+4.0 [-3.5, +11.5] inconclusive" in markdown and "+4.0 [-3.5, +11.5] inconclusive" in "\n".join(lines)
    assert "Also recorded, v2 on world_v2" in markdown  # the partial re-run, under the table
    tex = (tmp_path / "miniatures.tex").read_text()
    assert r"v3: world\_v3" in tex and r"\toprule" in tex and "world_v3" not in tex.replace(r"world\_v3", "")


def test_without_runs_v3_and_its_worlds_are_recorded_and_other_suites_get_no_table(tmp_path):
    runs = runs_frame([])
    verdicts = evaluate_claims(runs, RunStore(tmp_path), list(LADDER.values()))
    table = miniature_table("ablations", verdicts, runs, _catalog_worlds(), list(LADDER.values()))
    by_header = {c.header: c for c in table.columns}
    # v3's ladder and its world-seed check are recorded: their columns stand in for runs the store does not
    # have (no `not run` column, and no pending over-worlds one)
    assert list(by_header) == ["v1 (recorded)", "v2 (recorded)", "v2 over 3 worlds (recorded)", "v3 (recorded)",
                               "v3 over 3 worlds (recorded)"]
    assert by_header["v3 (recorded)"].datasets == ("world_v3",)
    assert "--dataset world_v3" in by_header["v3 (recorded)"].about
    over = by_header["v3 over 3 worlds (recorded)"]
    assert over.datasets == ("world_v3", "world_v3_seed1", "world_v3_seed2")
    assert "--dataset world_v3_seed1" in over.about
    (recorded,) = [m for m in NUMBERS.recorded if m.id == over.key]
    assert [table.cells[r.id, over.key].text for r in table.rows] == [
        f"{interval_text(c.effect, c.low, c.high)} {c.verdict}" for c in (recorded.claims[r.id] for r in table.rows)]
    assert miniature_table("main", verdicts, runs, _catalog_worlds(), list(LADDER.values())) is None


def test_a_design_without_a_recorded_world_seed_check_waits_for_its_worlds(tmp_path):
    runs = runs_frame([])
    verdicts = evaluate_claims(runs, RunStore(tmp_path), list(LADDER.values()))
    numbers = NUMBERS.model_copy(update={"recorded": [m for m in NUMBERS.recorded if m.id != "v3-worlds"]})
    table = miniature_table("ablations", verdicts, runs, _catalog_worlds(), list(LADDER.values()), numbers)
    by_header = {c.header: c for c in table.columns}
    # the over-worlds check waits for the seed worlds, under the default world's name
    assert [h for h in by_header if h.startswith("v3")] == ["v3 (recorded)", "v3 over 3 worlds"]
    assert by_header["v3 over 3 worlds"].datasets == ("world", "world_v3_seed1", "world_v3_seed2")
    assert {table.cells[r.id, by_header["v3 over 3 worlds"].key].text for r in table.rows} == {
        "not run (0 of 3 worlds)"}


def test_a_version_with_neither_numbers_nor_runs_is_a_not_run_column_naming_the_command(tmp_path):
    runs = runs_frame([])
    verdicts = evaluate_claims(runs, RunStore(tmp_path), list(LADDER.values()))
    numbers = NUMBERS.model_copy(update={"recorded": [m for m in NUMBERS.recorded if m.world_version != 3]})
    table = miniature_table("ablations", verdicts, runs, _catalog_worlds(), list(LADDER.values()), numbers)
    by_header = {c.header: c for c in table.columns}
    # v3 is the default world: its not-run column names `world` (world_v3 under the default name)
    assert [h for h in by_header if h.startswith("v3")] == ["v3: world", "v3 over 3 worlds"]
    assert "--dataset world`" in by_header["v3: world"].about
    assert {table.cells[r.id, by_header["v3: world"].key].text for r in table.rows} == {"not run"}


def test_the_ablations_report_holds_the_section_after_its_claims(ladder_store, tmp_path):
    runs = runs_frame(ladder_store)
    verdicts = evaluate_claims(runs, RunStore(tmp_path), load_claims())
    readme = build_report("ablations", runs, {"b"}, tmp_path / "reports", RunStore(tmp_path), verdicts,
                          worlds=_catalog_worlds())
    text = readme.read_text()
    assert text.index("## Claims") < text.index("## The claims across miniatures") < text.index("## Ablation tables")
    assert "| v3: world_v3 " in text
    other = build_report("fixture", runs, {"b"}, tmp_path / "reports", RunStore(tmp_path), verdicts,
                         worlds=_catalog_worlds())
    assert "across miniatures" not in other.read_text() and not list(other.parent.glob("miniatures.*"))
