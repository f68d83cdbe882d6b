"""``reports/<suite>/``: tables (markdown + LaTeX), plots (PNG + PDF) and a README that reads them.

Built at the end of every suite and by ``run_all.py --suite NAME --report-only``,
from the runs frame (``runs.runs_frame``) of every finished run of the suite
(``suite.with_finished_runs``), grouped by dataset when there are several. An
invocation whose runs all failed leaves the report as it was, with one line saying
so (``note_failed_invocation``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from zegbench.reports import plots
from zegbench.reports.miniatures import load_miniature_numbers, miniature_table, write_miniatures
from zegbench.reports.paper_claims import read_claims
from zegbench.reports.paper_numbers import paper_numbers
from zegbench.reports.runs import ENV_COLUMNS, METRICS, training_losses
from zegbench.reports.scorecard import write_scorecard
from zegbench.reports.speed_report import PARAMS_NOTE, latest_speed
from zegbench.reports.tables import (
    ablation_table,
    aggregate,
    mean_std,
    paper_comparison,
    size_and_training_table,
    to_latex,
    to_markdown,
)
from zegbench.reports.variants import BUDGET_KEYS, variant_label
from zegbench.reports.verdicts import Verdict
from zegbench.store import RunStore

FAILED_NOTE = "> **The last invocation failed**"
# runs.csv: one row per run, its identity, metrics, sizes and environment (the frame's nested columns left out)
RUNS_CSV_COLUMNS = ["group", "variant", "method", "dataset", "seed", "setting", *METRICS, "params_total",
                    "params_trainable", "params_trainable_official", "train_seconds", "train_memory_gib", "memory_kind",
                    *ENV_COLUMNS]


def _reading(part: pd.DataFrame, metric: str, label: str) -> str:
    """'best: X (m ± s, n seeds), ahead of Y by d' for one metric of one group."""
    ranked = part.dropna(subset=[f"{metric}_mean"]).sort_values(f"{metric}_mean", ascending=False)
    if ranked.empty:
        return f"no finished runs for {label}"
    best = ranked.iloc[0]
    text = (f"best {label}: `{best['variant']}` {mean_std(best[f'{metric}_mean'], best[f'{metric}_std'])} "
            f"over {best['n']} seed{'s' if best['n'] != 1 else ''}")
    if len(ranked) > 1:
        second = ranked.iloc[1]
        gap = best[f"{metric}_mean"] - second[f"{metric}_mean"]
        stds = [v for v in (best[f"{metric}_std"], second[f"{metric}_std"]) if not math.isnan(v)]
        spread = max(stds) if stds else math.nan
        text += f", ahead of `{second['variant']}` by {gap:.1f}"
        if not math.isnan(spread):
            text += " (within one seed std)" if gap < spread else " (more than one seed std)"
    return text


def _speed_points(agg: pd.DataFrame, speed: pd.DataFrame) -> pd.DataFrame:
    """(latency, hIoU) of each variant that is a method's default config and has a speed record."""
    if speed.empty:
        return pd.DataFrame()
    merged = agg[agg["variant"] == agg["method"]].merge(speed, on=["method", "dataset"])
    return pd.DataFrame({"method": merged["method"], "dataset": merged["dataset"], "latency_ms": merged["latency_ms"],
                         "hIoU": merged["hIoU_mean"], "seeds": merged["n"]})


def _budget_plot(runs: pd.DataFrame, out: Path) -> list[str]:
    """The budget curves, when the suite trains at more than one number of steps: each run at its steps, its
    variant named without the budget keys (one line across budgets)."""
    trained = runs[runs["steps"].notna()]
    if trained.empty or trained["steps"].nunique() < 2:
        return []
    frame = pd.DataFrame({
        "variant": [variant_label(method, {k: v for k, v in shown.items() if k not in BUDGET_KEYS})
                    for method, shown in zip(trained["method"], trained["shown"], strict=True)],
        "dataset": trained["dataset"], "steps": trained["steps"].astype(int), "seed": trained["seed"],
        **{label: trained[key] for key, label in (("mIoU_seen", "mIoU(S)"), ("mIoU_unseen", "mIoU(U)"),
                                                 ("hIoU", "hIoU"))}})
    return plots.budget_curves(frame.reset_index(drop=True), out)


def note_failed_invocation(suite: str, reports_dir: str | Path, failed: int) -> Path | None:
    """Leave ``reports/<suite>/README.md`` as it is but for one line saying the last invocation's
    ``failed`` runs all failed (replacing an earlier such line); its path, or None if there is no report."""
    readme = Path(reports_dir) / suite / "README.md"
    if not readme.is_file():
        return None
    lines = readme.read_text().splitlines()
    if len(lines) > 2 and lines[2].startswith(FAILED_NOTE):
        del lines[2:4]  # the earlier note and its blank line
    note = (f"{FAILED_NOTE} ({time.strftime('%Y-%m-%d %H:%M')}): its {failed} run{'s' if failed != 1 else ''} "
            f"all failed (`run_all.py --suite {suite} --list`); this report is from the runs finished before.")
    lines[2:2] = [note, ""]
    readme.write_text("\n".join(lines) + "\n")
    return readme


def _miniatures_section(suite: str, verdicts: list[Verdict], runs: pd.DataFrame, worlds: Mapping[str, Mapping],
                        out: Path) -> list[str]:
    """The claims across miniatures (``miniatures.py``), for the suite whose claims ``miniature_numbers.yaml``
    records; nothing for another suite."""
    numbers = load_miniature_numbers()
    if numbers.suite != suite:
        return []
    table = miniature_table(suite, verdicts, runs, worlds, [claim for _, claim in read_claims()], numbers)
    return write_miniatures(table, out) if table else []


def build_report(suite: str, runs: pd.DataFrame, unseen_classes: set[str], reports_dir: str | Path,
                 store: RunStore, verdicts: list[Verdict], unmatched: list[Path] = (),
                 worlds: Mapping[str, Mapping] | None = None) -> Path:
    """Write the report of ``suite`` and return its README path.

    ``runs``: the suite's finished runs (``runs.runs_frame``); ``store``: the run store they are in (speed
    records are read from it); ``verdicts``: ``scorecard.evaluate_claims`` of those runs; ``unmatched``:
    finished folders that match no run of the suite as defined now; ``worlds``: dataset -> world generator
    settings (``version``, ``seed``, ...) of the shipped world datasets and of those the suite ran, which place
    runs in the claims across miniatures (without it, that table holds the recorded miniatures only).
    """
    out = Path(reports_dir) / suite
    out.mkdir(parents=True, exist_ok=True)
    for pattern in ("ablation_*.*", "claims_forest.*", "budget_curves.*", "miniatures.*"):  # of what is gone
        for stale in out.glob(pattern):
            stale.unlink()
    claims_section = write_scorecard(verdicts, out, suite) + _miniatures_section(suite, verdicts, runs, worlds or {},
                                                                                 out)
    lines = [f"# Report: suite `{suite}`", ""]
    if unmatched:
        lines += [f"{len(unmatched)} finished run folder{'s' if len(unmatched) != 1 else ''} in "
                  f"`{Path(unmatched[0]).parent}` match no run of the suite as it is defined now (made from an "
                  f"older suite, method or dataset definition): kept there, not in these tables "
                  f"(e.g. `{Path(unmatched[0]).name}`).", ""]
    if runs.empty:
        lines += ["No finished runs yet.", "", *claims_section]
        (out / "README.md").write_text("\n".join(lines) + "\n")
        return out / "README.md"
    several = runs["dataset"].nunique() > 1
    agg = aggregate(runs)
    paper = paper_numbers()
    runs[RUNS_CSV_COLUMNS].to_csv(out / "runs.csv", index=False)
    lines += [f"{len(runs)} finished runs ({runs['seed'].nunique()} seeds) on "
              f"{', '.join(sorted(runs['dataset'].unique()))}; "
              f"device {', '.join(sorted(runs['device'].dropna().unique()))}. "
              "One row per run: [runs.csv](runs.csv).", ""]
    lines += claims_section
    metric_labels = list(METRICS.values())

    lines += ["## Ablation tables", ""]
    for dataset in dict.fromkeys(agg["dataset"]):
        of_dataset = agg[agg["dataset"] == dataset]
        for group in dict.fromkeys(of_dataset["group"]):
            table = ablation_table(of_dataset, group)
            stem = f"ablation_{group}_{dataset}" if several else f"ablation_{group}"
            title = f"{group} on {dataset}" if several else group
            (out / f"{stem}.md").write_text(to_markdown(table))
            (out / f"{stem}.tex").write_text(to_latex(table, f"Ablation: {title} (suite {suite})",
                                                      f"tab:{suite}-{stem[len('ablation_'):]}", metric_labels))
            part = of_dataset[of_dataset["group"] == group]
            lines += [f"### {title}: [markdown]({stem}.md), [LaTeX]({stem}.tex)", "", to_markdown(table),
                      f"- {_reading(part, 'hIoU', 'hIoU')}.", f"- {_reading(part, 'mIoU_unseen', 'mIoU(U)')}."]
            direction = paper["ablation_directions"].get(group)
            if direction:
                prefix = "Paper" if dataset in paper["results"] else "Paper's direction of effect"
                lines.append(f"- {prefix}: {direction.strip()}")
            lines.append("")

    comparison = paper_comparison(agg, paper["results"])
    (out / "paper_comparison.md").write_text(to_markdown(comparison))
    (out / "paper_comparison.tex").write_text(to_latex(comparison, f"Reproduced vs paper (suite {suite})",
                                                       f"tab:{suite}-paper", metric_labels))
    lines += ["## Beside the paper: [markdown](paper_comparison.md), [LaTeX](paper_comparison.tex)", ""]
    if (comparison.filter(like="paper") != "-").any().any():
        lines.append("Paper numbers from the reference (ViT-B/16); † marks numbers the reference could not verify.")
    else:
        lines.append("No paper numbers for these datasets (the embedded world has none): read the ablation "
                     "tables against the paper's direction of effect instead.")
    lines.append("")

    speed = latest_speed(store)
    efficiency = size_and_training_table(agg, speed)
    (out / "efficiency.md").write_text(to_markdown(efficiency))
    (out / "efficiency.tex").write_text(to_latex(efficiency, f"Size and training time (suite {suite})",
                                                 f"tab:{suite}-efficiency"))
    paper_eff = pd.DataFrame(paper["efficiency"]).fillna({"verified": True})
    lines += ["## Efficiency: [markdown](efficiency.md), [LaTeX](efficiency.tex)", "", to_markdown(efficiency),
              ("GMACs, latency and FPS (batch 1) are the newest records of the speed suite (`run_all.py --suite "
               "speed`) on this run store, for variants that are a method's default config." if "FPS" in efficiency
               else "GMACs, latency and FPS appear here once `run_all.py --suite speed` has measured these methods."),
              "", PARAMS_NOTE, "", "The paper's efficiency rows (fvcore GFLOPs, 1080Ti):", "",
              to_markdown(paper_eff.assign(verified=paper_eff["verified"].map({True: "yes", False: "no †"}))), ""]

    # Plots label each variant with its dataset when there are several (their class lists differ too).
    shown = runs.assign(variant=runs["variant"] + " [" + runs["dataset"] + "]") if several else runs
    figures = [("hIoU per variant", plots.hiou_by_variant(shown, out),
                "Bars are the mean over seeds, whiskers one sample std, dots single seeds."),
               ("Seen vs unseen", plots.seen_vs_unseen(shown, out),
                "Up is better on unseen classes, right on seen ones; "
                "a method that overfits seen classes sits low-right."),
               ("Per-class IoU", plots.per_class_heatmap(shown, unseen_classes, out),
                "Mean over seeds; unseen classes (U) are right of the white line."),
               ("Training curves", plots.training_curves(training_losses(shown), out),
                "Training loss, mean over seeds; NEL and CE losses are on different scales."),
               ("Speed vs accuracy", plots.speed_vs_hiou(_speed_points(agg, speed), out),
                "hIoU (mean over seeds) against the speed suite's batch-1 latency; up-left is better."),
               ("Metrics against the training budget", _budget_plot(runs, out),
                "Each variant at each budget of the suite (mean over seeds): does a gap hold at every budget or flip?")]
    lines += ["## Plots", ""]
    for title, files, reading in figures:
        if files:
            lines += [f"### {title} ([PDF]({files[1]}))", "", f"![{title}]({files[0]})", "", reading, ""]
    (out / "README.md").write_text("\n".join(lines))
    return out / "README.md"
