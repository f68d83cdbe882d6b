"""Seaborn figures of a suite (PNG for reading, PDF for papers), from the runs frame (``runs.py``), the
verdict rows and the speed records: nothing here opens a run's files."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from zegbench.reports.verdicts import AccuracyVerdict, SpeedVerdict, Verdict  # noqa: E402


def _save(fig, out_dir: Path, stem: str) -> list[str]:
    fig.tight_layout()
    names = []
    for ext in ("png", "pdf"):
        fig.savefig(out_dir / f"{stem}.{ext}", dpi=150)
        names.append(f"{stem}.{ext}")
    plt.close(fig)
    return names


def hiou_by_variant(runs: pd.DataFrame, out_dir: Path) -> list[str]:
    """Mean hIoU per variant (bars, sample-std error bars) with each seed as a dot."""
    order = list(dict.fromkeys(runs["variant"]))
    fig, ax = plt.subplots(figsize=(5 + 0.07 * max(len(v) for v in order), 0.45 * len(order) + 1.5))
    sns.barplot(runs, y="variant", x="hIoU", order=order, errorbar="sd", color="#9ecae1", ax=ax)
    sns.stripplot(runs, y="variant", x="hIoU", order=order, color="#08306b", size=4, ax=ax)
    ax.set(xlabel="hIoU (%), mean ± std over seeds; dots are seeds", ylabel="")
    return _save(fig, out_dir, "hiou_by_variant")


def seen_vs_unseen(runs: pd.DataFrame, out_dir: Path) -> list[str]:
    """Each variant's mean mIoU on seen vs unseen classes, with std error bars."""
    agg = runs.groupby("variant", sort=False)[["mIoU_seen", "mIoU_unseen"]].agg(["mean", "std"]).fillna(0)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    palette = sns.color_palette("tab10", len(agg))
    for colour, (variant, row) in zip(palette, agg.iterrows(), strict=True):
        ax.errorbar(row[("mIoU_seen", "mean")], row[("mIoU_unseen", "mean")], xerr=row[("mIoU_seen", "std")],
                    yerr=row[("mIoU_unseen", "std")], fmt="o", color=colour, capsize=3, label=variant)
    ax.set(xlabel="mIoU on seen classes (%)", ylabel="mIoU on unseen classes (%)")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, out_dir, "seen_vs_unseen")


def per_class_heatmap(runs: pd.DataFrame, unseen: set[str], out_dir: Path) -> list[str]:
    """Per-class IoU (mean over seeds) for every variant of ``runs`` (``runs.runs_frame``); unseen
    classes are marked and come last."""
    rows = {}
    for variant, per_class in zip(runs["variant"], runs["per_class"], strict=True):
        rows.setdefault(variant, []).append(per_class)
    if not rows:
        return []
    frame = pd.DataFrame({v: pd.DataFrame(r).astype(float).mean() for v, r in rows.items()}).T
    classes = [c for c in frame.columns if c not in unseen] + [c for c in frame.columns if c in unseen]
    frame = frame[classes]
    fig, ax = plt.subplots(figsize=(0.42 * len(classes) + 3, 0.4 * len(frame) + 2.2))
    sns.heatmap(frame, annot=len(classes) <= 30, fmt=".0f", cmap="viridis", vmin=0, vmax=100,
                cbar_kws={"label": "IoU (%)"}, annot_kws={"size": 6}, ax=ax)
    ax.set_xticklabels([f"{c} (U)" if c in unseen else c for c in classes], rotation=60, ha="right", fontsize=7)
    seen_count = len(classes) - sum(c in unseen for c in classes)
    ax.axvline(seen_count, color="white", linewidth=2)
    ax.set(xlabel="class (U = unseen, right of the white line)", ylabel="")
    return _save(fig, out_dir, "per_class_iou")


def training_curves(losses: pd.DataFrame, out_dir: Path) -> list[str]:
    """Training loss per step, mean over seeds, one line per variant (log scale); ``losses``:
    ``runs.training_losses``."""
    if losses.empty:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.lineplot(losses, x="step", y="loss", hue="variant", errorbar=None, linewidth=1, ax=ax)
    ax.set(yscale="log", xlabel="training step", ylabel="training loss (log scale; losses differ by variant)")
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "training_curves")


def speed_vs_hiou(points: pd.DataFrame, out_dir: Path, stem: str = "speed_vs_hiou") -> list[str]:
    """hIoU (mean over seeds) against median latency per image, one labelled point per method.

    ``points`` columns: method, dataset, latency_ms, hIoU, seeds. Up-left is better.
    """
    if points.empty:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.scatterplot(points, x="latency_ms", y="hIoU", hue="method", style="dataset", s=70, ax=ax, legend=False)
    for row in points.itertuples():
        seeds = f"{row.seeds} seed" + ("s" if row.seeds != 1 else "")
        ax.annotate(f"{row.method} ({seeds})", (row.latency_ms, row.hIoU), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.margins(x=0.25, y=0.15)  # room for the labels
    ax.set(xlabel="median latency per image, batch 1 (ms, log scale)", ylabel="hIoU (%), mean over seeds")
    return _save(fig, out_dir, stem)


def forest_plot(rows: list[Verdict], out_dir: Path, stem: str = "claims_forest") -> list[str]:
    """One row per evaluated claim (and budget): the effect with its interval (green: reproduces, red:
    contradicts, grey: inconclusive), the paper's effect as a purple diamond, the no-effect line (0, or the
    claim's ratio threshold) dashed. Differences (points) and cost ratios (log scale) get a panel each."""
    panels = [(title, [r for r in rows if r.interval[0] is not None and isinstance(r, SpeedVerdict) == ratio])
              for title, ratio in (("arm - baseline (points)", False), ("cost ratio arm / baseline (log)", True))]
    panels = [(title, part) for title, part in panels if part]
    if not panels:
        return []
    height = 0.4 * max(len(part) for _, part in panels) + 1.6
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), height), squeeze=False)
    for ax, (title, part) in zip(axes[0], panels, strict=True):
        labels = [r.id + (f" @{r.budget['steps']}" if isinstance(r, AccuracyVerdict) and r.budget else "")
                  for r in part]
        ys = list(range(len(part)))[::-1]
        for y, r in zip(ys, part, strict=True):
            colour = {"reproduces": "#1a9850", "contradicts": "#d73027"}.get(r.verdict, "#636363")
            effect, low, high = r.interval
            if low is not None:
                ax.plot([low, high], [y, y], color=colour, linewidth=2)
            ax.plot(effect, y, "o", color=colour)
            if r.paper_effect:
                ax.plot(r.paper_effect["value"], y, "D", color="#7b3294", fillstyle="none", markersize=8)
            if isinstance(r, SpeedVerdict):  # each ratio claim has its own threshold
                ax.plot([r.threshold] * 2, [y - 0.4, y + 0.4], "--", color="black", linewidth=1)
        if isinstance(part[0], AccuracyVerdict):
            ax.axvline(0, linestyle="--", color="black", linewidth=1)
        else:
            ax.set_xscale("log")
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set(xlabel=title, ylim=(-0.7, len(part) - 0.3))
    return _save(fig, out_dir, stem)


def budget_curves(frame: pd.DataFrame, out_dir: Path, stem: str = "budget_curves") -> list[str]:
    """Each metric against training steps, one line per variant (mean over seeds), a panel per metric."""
    metrics = ["mIoU(S)", "mIoU(U)", "hIoU"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics) + 2.5, 3.6))
    for ax, metric in zip(axes, metrics, strict=True):
        sns.lineplot(frame, x="steps", y=metric, hue="variant", marker="o", errorbar=None, ax=ax,
                     legend=metric == metrics[-1])
        ax.set_xscale("log")
        ax.set_xticks(sorted(frame["steps"].unique()))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set(xlabel="training steps (log scale)", ylabel=f"{metric} (%), mean over seeds")
    axes[-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return _save(fig, out_dir, stem)
