"""A suite's results pooled over seeds for the console: one row per (variant, dataset).

The pooling is the report's (``reports.tables.aggregate``); this adds the runs
still missing, so a partly finished suite shows what it lacks.
"""
from __future__ import annotations

import math
from collections import Counter

from zegbench.reports.runs import runs_frame
from zegbench.reports.tables import METRICS, aggregate


def _plain(value):
    """NaN (undefined) -> None, numpy scalars -> Python numbers: ready for JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def summarize_runs(specs, runs=None) -> list[dict]:
    """Rows in suite order: variant, dataset, runs finished/listed, seeds, ``<metric>_mean``/``_std``."""
    runs = runs_frame(specs) if runs is None else runs
    pooled = aggregate(runs) if len(runs) else None
    rows = []
    for (variant, dataset), listed in Counter((s.variant, s.dataset) for s in specs).items():
        done = runs[(runs["variant"] == variant) & (runs["dataset"] == dataset)] if len(runs) else runs
        row = {"variant": variant, "dataset": dataset, "finished": len(done), "runs": listed,
               "seeds": [int(s) for s in done["seed"]] if len(done) else []}
        match = pooled[(pooled["variant"] == variant) & (pooled["dataset"] == dataset)] if pooled is not None else []
        for key in [f"{m}_{stat}" for m in METRICS for stat in ("mean", "std")] + ["train_seconds"]:
            column = key if key != "train_seconds" else "train_seconds_mean"
            row[column] = _plain(match.iloc[0][key]) if len(match) else None
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table for the console (mean +- sample std over seeds)."""
    def cell(row, metric):
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        if mean is None:
            return "n/a"
        return f"{mean:5.1f} +- {std:4.1f}" if std is not None else f"{mean:5.1f}"

    width = max([len("variant")] + [len(r["variant"]) for r in rows])
    head = f"{'variant':<{width}}  {'dataset':<10} seeds  " + "  ".join(f"{label:>12}" for label in METRICS.values())
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['variant']:<{width}}  {r['dataset']:<10} {r['finished']}/{r['runs']:<3} "
                     + "  ".join(f"{cell(r, m):>12}" for m in METRICS))
    return "\n".join(lines)


def format_verdicts(rows) -> str:
    """One console line per claim (and budget): ``reports.scorecard.verdict_lines``."""
    from zegbench.reports.scorecard import verdict_lines

    return verdict_lines(rows)
