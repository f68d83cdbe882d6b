"""The reproduction scorecard: each paper claim checked against a suite's runs and the speed records.

Accuracy claims pair the two arms' finished runs (rows of the runs frame, ``runs.runs_frame``) by
seed within one dataset and one training budget (the frame's steps and global batch), so a suite
holding several budgets gets a verdict per budget. Each seed's pair of runs also gets a paired
bootstrap over the test images from their per-image counts (``bootstrap.py``): shown per seed
beside the interval over seeds, never deciding the verdict (``verdicts.one_seed_reason``). Speed
claims read the newest pair of matching speed records measured on one machine, anywhere in the
run store. A claim whose arms have no such runs is ``not run``, with the suite that would run it.
Each row is typed (``verdicts.AccuracyVerdict``, ``verdicts.SpeedVerdict``).

Writes ``claims.json`` (one object per claim and dataset/budget), ``claims.md``,
``claims.tex`` and the forest plot; returns the README's "Claims" section.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from zegbench.reports import plots
from zegbench.reports.bootstrap import BOOTSTRAP_SEED, RESAMPLES, paired_bootstrap
from zegbench.reports.paper_claims import ACCURACY_METRICS, METRIC_LABELS, Arm, Claim
from zegbench.reports.runs import image_counts, runs_frame
from zegbench.reports.tables import to_latex, to_markdown
from zegbench.reports.variants import BUDGET_KEYS
from zegbench.reports.verdicts import (
    AccuracyVerdict,
    SpeedVerdict,
    Verdict,
    one_seed_reason,
    paired_verdict,
    ratio_verdict,
)
from zegbench.store import RunStore
from zegbench.utils.io import atomic_write_json


def budget_label(budget: dict | None) -> str:
    return "-" if not budget else f"{budget['steps']} steps x {budget['batch']}"


def arm_matches(run, arm: Arm) -> bool:
    """Whether a row of the runs frame is a run of ``arm``: its method, ``arm.set``'s overrides, and no other
    override that tells variants apart (budget keys and overrides every run of the suite shares are allowed)."""
    if run.method != arm.method:
        return False
    if any(key not in run.overrides or run.overrides[key] != value for key, value in arm.set.items()):
        return False
    return all(key in arm.set or key in BUDGET_KEYS for key in run.shown)


def _arm_results(runs: pd.DataFrame, arm: Arm, key: str) -> dict[tuple, dict[int, tuple[float, str]]]:
    """(dataset, steps, global batch) -> seed -> (metric, run folder), over the finished runs of ``arm``."""
    out: dict[tuple, dict[int, tuple[float, str]]] = {}
    for run in runs.itertuples(index=False):
        value = getattr(run, key)
        if arm_matches(run, arm) and not pd.isna(value):
            out.setdefault((run.dataset, run.steps, run.global_batch), {}).setdefault(
                run.seed, (float(value), run.run_dir))
    return out


def seed_differences(claim: Claim, runs: pd.DataFrame) -> dict[tuple, dict[int, float]]:
    """(dataset, steps, global batch) -> seed -> arm - baseline on ``claim``'s metric: the pairs ``accuracy_rows``
    judges, one per seed where both arms have a finished run (``runs``: the runs frame)."""
    key = ACCURACY_METRICS[claim.metric]
    arm, base = _arm_results(runs, claim.arm, key), _arm_results(runs, claim.baseline, key)
    return {group: {seed: arm[group][seed][0] - base[group][seed][0]
                    for seed in sorted(set(arm[group]) & set(base[group]))}
            for group in set(arm) & set(base)}


NO_COUNTS = "no per-image counts (run predates them)"


def _image_interval(arm_dir: str, base_dir: str, key: str) -> tuple[dict | None, str | None]:
    """(the paired bootstrap over images of one seed's two runs, None) or (None, why there is none)."""
    found = []
    for run_dir in (arm_dir, base_dir):
        counts, problem = image_counts(run_dir)
        if counts is None:
            unreadable = f"per-image counts of {Path(run_dir).name} unreadable ({problem})"
            return None, NO_COUNTS if problem is None else unreadable
        found.append(counts)
    if not found[0].same_images(found[1]):
        return None, "the arms were evaluated on different images"
    return paired_bootstrap(found[0], found[1], key), None


def _facts(claim: Claim) -> dict:
    """The fields of ``verdicts.ClaimFacts``: what every row says of its claim."""
    paper = claim.paper_effect.model_dump() if claim.paper_effect else None
    return {"id": claim.id, "sentence": claim.sentence,
            "arms": {"arm": claim.arm.label, "baseline": claim.baseline.label},
            "metric": claim.metric, "direction": claim.direction,
            "effect": "ratio arm / baseline" if claim.is_speed else "difference arm - baseline (points)",
            "threshold": claim.threshold, "paper_effect": paper, "suite": claim.suite}


def _not_run(claim: Claim, why: str) -> Verdict:
    reason = f"{why}: run_all.py --suite {claim.suite}"
    if claim.is_speed:
        return SpeedVerdict(**_facts(claim), dataset=None, input=None, machine=None, n=0, ratio=None, ratio_low=None,
                            ratio_high=None, verdict="not run", reason=reason)
    return AccuracyVerdict(**_facts(claim), image_intervals=[], image_missing=[], dataset=None, budget=None, seeds=[],
                           n=0, diff_mean=None, ci_low=None, ci_high=None, verdict="not run", reason=reason)


def accuracy_rows(claim: Claim, runs: pd.DataFrame) -> list[AccuracyVerdict]:
    """One row per (dataset, budget) where both arms have runs of the same seeds (``runs``: the runs frame)."""
    key = ACCURACY_METRICS[claim.metric]
    arm, base = _arm_results(runs, claim.arm, key), _arm_results(runs, claim.baseline, key)
    rows = []
    for group in sorted(set(arm) & set(base), key=lambda g: (g[0], g[1] or 0, g[2] or 0)):
        seeds = sorted(set(arm[group]) & set(base[group]))
        if not seeds:
            continue
        difference = paired_verdict([arm[group][s][0] - base[group][s][0] for s in seeds], claim.direction)
        intervals, missing = [], []
        for seed in seeds:  # per seed: each seed's two models are another pair (see README, "Claims")
            interval, why = _image_interval(arm[group][seed][1], base[group][seed][1], key)
            if interval is None:
                missing.append({"seed": seed, "reason": why})
            else:
                intervals.append({"seed": seed, **interval})
        reason = difference.reason
        if len(seeds) == 1 and intervals and intervals[0]["low"] is not None:
            reason = one_seed_reason(intervals[0]["low"], intervals[0]["high"], claim.direction)
        budget = {"steps": group[1], "batch": group[2]} if group[1] is not None else None
        rows.append(AccuracyVerdict(**_facts(claim), image_intervals=intervals, image_missing=missing,
                                    dataset=group[0], budget=budget, seeds=seeds, n=difference.n,
                                    diff_mean=difference.diff_mean, ci_low=difference.ci_low,
                                    ci_high=difference.ci_high, verdict=difference.verdict, reason=reason))
    if rows:
        return rows
    missing_arms = [a.label for a, found in ((claim.arm, arm), (claim.baseline, base)) if not found]
    return [_not_run(claim, f"no finished runs of {' and '.join(missing_arms)} in this suite" if missing_arms
                     else "no runs of both arms with the same seed, dataset and budget")]


def _pair_on_one_machine(claim: Claim, records: list[tuple[str, dict]]) -> tuple[str, dict, dict] | None:
    """The newest records of both arms measured on the same machine (a ratio across machines means nothing)."""
    want = claim.speed
    by_machine: dict[str, dict[str, dict]] = {}
    for machine, r in records:
        if ((r["dataset"], list(r["input"]), r.get("precision", "fp32"))
                == (want.dataset, list(want.input), want.precision)):
            by_machine.setdefault(machine, {}).setdefault(r["method"], r)  # newest first: the first one stays
    for machine, found in by_machine.items():
        if claim.arm.method in found and claim.baseline.method in found:
            return machine, found[claim.arm.method], found[claim.baseline.method]
    return None


def speed_rows(claim: Claim, records: list[tuple[str, dict]]) -> list[SpeedVerdict]:
    """The cost ratio arm / baseline on the claim's input: exact for GMACs; for latency the median
    ratio with the spread p10/p90 .. p90/p10 of single calls (paired calls for ZegCLIP vs its encoder)."""
    want = claim.speed
    pair = _pair_on_one_machine(claim, records)
    if pair is None:
        return [_not_run(claim, f"no speed records of both {claim.arm.method} and {claim.baseline.method} on one "
                                f"machine at {want.dataset} {'x'.join(map(str, want.input))} {want.precision}")]
    machine, a, b = pair
    if claim.metric == "gmacs":
        ratio = a["macs"] / b["macs"]
        cost = ratio_verdict(ratio, ratio, ratio, claim.direction, claim.threshold, None)
    else:
        paired = a.get("paired_with_encoder") if b["method"] == "clip_image_encoder" else None
        ta, tb = (paired["method"], paired["encoder"]) if paired else (a["whole"], b["whole"])
        ratio = paired["ratio"] if paired else ta["median_ms"] / tb["median_ms"]
        cost = ratio_verdict(ratio, ta["p10_ms"] / tb["p90_ms"], ta["p90_ms"] / tb["p10_ms"], claim.direction,
                             claim.threshold, min(ta["repeats"], tb["repeats"]))
    return [SpeedVerdict(**_facts(claim), dataset=want.dataset, input=f"{'x'.join(map(str, want.input))} "
                         f"{want.precision}", machine=machine, n=cost.n, ratio=cost.ratio, ratio_low=cost.ratio_low,
                         ratio_high=cost.ratio_high, verdict=cost.verdict, reason=cost.reason)]


def evaluate_claims(runs: pd.DataFrame | None, store: RunStore, claims: list[Claim]) -> list[Verdict]:
    """Every claim's rows: accuracy claims over ``runs`` (a suite's runs frame; None for a speed suite, whose
    accuracy claims are then not run), speed claims over the newest speed records in ``store`` (``claims``: as
    the harness loaded and checked them)."""
    runs = runs_frame([]) if runs is None else runs
    records = store.speed_records() if any(c.is_speed for c in claims) else []
    rows: list[Verdict] = []
    for claim in claims:
        rows += speed_rows(claim, records) if claim.is_speed else accuracy_rows(claim, runs)
    return rows


def _number(value: float, ratio: bool) -> str:
    return f"{value:.2f}x" if ratio else f"{value:+.1f}"


def effect_cell(row: Verdict) -> str:
    """'+2.3 [+0.5, +4.1]', '+2.3 (one seed)', '14.0x [12.5x, 15.5x]', '16.6x (exact)' or '-'."""
    return interval_text(*row.interval, ratio=isinstance(row, SpeedVerdict))


def interval_text(value: float | None, low: float | None, high: float | None, ratio: bool = False) -> str:
    """An effect with its interval as every table shows it: '+2.3 [+0.5, +4.1]', '+2.3 (one seed)' (no interval),
    '16.6x (exact)' (a ratio whose spread is itself; ``ratio``: a cost ratio, not a difference) or '-'."""
    if value is None:
        return "-"
    text = _number(value, ratio)
    if low is None:
        return f"{text} (one seed)"
    if low == high:
        return f"{text} (exact)"
    return f"{text} [{_number(low, ratio)}, {_number(high, ratio)}]"


def image_cell(row: Verdict) -> str:
    """The interval over images of each seed: '+2.1 [+1.0, +3.3]' for one seed, 's0 +2.1 [...]; s1 ...' for
    several; why there is none (a run that predates per-image counts); '-' for speed claims and claims not run."""
    if not isinstance(row, AccuracyVerdict) or row.verdict == "not run":
        return "-"
    several = len(row.seeds) > 1
    cells = []
    for interval in row.image_intervals:
        text = _number(interval["diff"], False)
        text += " (undefined)" if interval["low"] is None else \
            f" [{_number(interval['low'], False)}, {_number(interval['high'], False)}]"
        cells.append(f"s{interval['seed']} {text}" if several else text)
    for missing in row.image_missing:
        cells.append(f"s{missing['seed']}: {missing['reason']}" if several else missing["reason"])
    return "; ".join(cells) or "-"


def claimed_cell(row: Verdict) -> str:
    label = METRIC_LABELS[row.metric]
    if isinstance(row, AccuracyVerdict):
        return f"{label} {'up' if row.direction == 'increase' else 'down'}"
    return f"{label} ratio {'above' if row.direction == 'increase' else 'below'} {row.threshold:g}x"


def where_cell(row: Verdict) -> str:
    """Where the claim was checked: an accuracy claim's budget ('750 steps x 8'), a speed claim's input
    ('512x512 fp32'); '-' for a claim not run."""
    return budget_label(row.budget) if isinstance(row, AccuracyVerdict) else row.input or "-"


def verdict_cell(row: Verdict) -> str:
    """The verdict with its short why: 'inconclusive (one seed)', 'inconclusive (covers 0)', 'not run (suite X)'."""
    if row.verdict == "not run":
        return f"not run (suite {row.suite})"
    if row.verdict == "inconclusive":
        if isinstance(row, AccuracyVerdict) and row.n < 2:
            with_images = any(i["low"] is not None for i in row.image_intervals)
            return f"inconclusive (one seed{': image interval only' if with_images else ''})"
        return f"inconclusive (covers {row.threshold if row.threshold is not None else 0:g})"
    return row.verdict


def scorecard_table(rows: list[Verdict], with_arms: bool = True) -> pd.DataFrame:
    """The scorecard as a table (``with_arms``: name both arms; the README's copy leaves them to claims.md)."""
    def paper(row):
        p = row.paper_effect
        if not p:
            return "-"
        return _number(p["value"], isinstance(row, SpeedVerdict)) + ("" if p["verified"] else "†")

    table = pd.DataFrame({
        "Claim": [r.id for r in rows], "Paper says": [claimed_cell(r) for r in rows],
        "Arm vs baseline": [f"{r.arms['arm']} vs {r.arms['baseline']}" for r in rows],
        "Dataset": [r.dataset or "-" for r in rows],
        "Budget": [where_cell(r) for r in rows],
        "n": [str(r.n) if r.n is not None else "-" for r in rows],
        SEED_COLUMN: [effect_cell(r) for r in rows], IMAGE_COLUMN: [image_cell(r) for r in rows],
        "Paper": [paper(r) for r in rows],
        "Verdict": [verdict_cell(r) for r in rows]})
    return table if with_arms else table.drop(columns=["Arm vs baseline"])


SEED_COLUMN = "Over seeds (training variance)"
IMAGE_COLUMN = "Over images (test-set sampling, this seed only)"
READING = ("Accuracy claims: arm minus baseline in points, paired by seed within one dataset and training budget, "
           "mean and 95% t-interval over the seeds (n pairs). Over images: for each seed, the difference of its two "
           f"runs on the whole test set and its 95% percentile interval from a paired bootstrap over the test images "
           f"({RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED}, the same images drawn for both arms, the metric "
           "recomputed from the summed per-image counts): how the difference moves with the test set for those two "
           "trained models, not with training (another seed trains other models). Speed claims: cost ratio arm / "
           "baseline from the speed suite's newest records (latency: median, with the 10th-90th percentile spread of "
           "single calls; GMACs: exact). A claim reproduces when the whole interval over seeds lies on the paper's "
           "side of 0 (or of the ratio threshold), contradicts when it lies on the other side, and is inconclusive "
           "otherwise; with one seed it stays inconclusive, and says so when the interval over images is all there "
           "is. Paper effects are the paper's VOC numbers († unverified); the world has none of its own.")


def write_scorecard(rows: list[Verdict], out_dir: Path, suite: str) -> list[str]:
    """Write claims.json/.md/.tex and the forest plot into ``out_dir``; return the README's Claims section."""
    atomic_write_json([r.to_record() for r in rows], out_dir / "claims.json")
    table = scorecard_table(rows)
    sentences = [f"- `{c.id}`: {c.sentence.strip()} (suite `{c.suite}`)" for c in {r.id: r for r in rows}.values()]
    reasons = [f"- `{r.id}`{_at_budget(r)}: {r.verdict}, {r.reason}" for r in rows]
    (out_dir / "claims.md").write_text("\n".join([f"# Claims: suite `{suite}`", "", READING, "", to_markdown(table),
                                                  "## The claims", "", *sentences, "", "## Why each verdict", "",
                                                  *reasons]) + "\n")
    (out_dir / "claims.tex").write_text(to_latex(table, f"The paper's claims (suite {suite})", f"tab:{suite}-claims"))
    files = plots.forest_plot(rows, out_dir)
    counts = pd.Series([r.verdict for r in rows]).value_counts()
    lines = ["## Claims: [markdown](claims.md), [LaTeX](claims.tex), [JSON](claims.json)", "",
             ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + ".", "",
             to_markdown(scorecard_table(rows, with_arms=False)), READING, ""]
    if files:
        lines += [f"![claims forest plot]({files[0]})", "",
                  f"One row per claim and budget: the effect with its interval (green: reproduces, red: contradicts, "
                  f"grey: inconclusive); the purple diamond is the paper's effect; the dashed line is no effect (0, or "
                  f"the claimed ratio). [PDF]({files[1]})", ""]
    return lines


def _at_budget(row: Verdict) -> str:
    """' at 750 steps x 8' for an accuracy row with a budget; '' for a speed row or a claim not run."""
    return f" at {budget_label(row.budget)}" if isinstance(row, AccuracyVerdict) and row.budget else ""


def verdict_lines(rows: list[Verdict]) -> str:
    """One console line per claim (and budget): verdict, effect with its interval over seeds, n, the interval over
    images of each seed (accuracy claims), and why."""
    width = max((len(r.id) for r in rows), default=0)
    lines = []
    for r in rows:
        if r.verdict == "not run":
            lines.append(f"claim {r.id:<{width}}  {'not run':<12} {claimed_cell(r)} ({r.reason})")
            continue
        accuracy = isinstance(r, AccuracyVerdict)
        images = f"; over images: {image_cell(r)}" if accuracy else ""
        lines.append(f"claim {r.id:<{width}}  {r.verdict:<12} {claimed_cell(r)}: "
                     f"{'over seeds ' if accuracy else ''}{effect_cell(r)}, "
                     f"n={r.n if r.n is not None else 'exact'} [{r.dataset}, {where_cell(r)}]{images} ({r.reason})")
    return "\n".join(lines)
