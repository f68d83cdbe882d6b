"""A suite's results pooled over seeds: one row per (variant, dataset), mean and std of each metric.

Read only from ``result.json`` files, so it can be rebuilt at any time
(``--report-only``). The full reports (paper tables, plots) build on the same rows.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict

METRICS = ("mIoU_seen", "mIoU_unseen", "hIoU", "pAcc")


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def summarize_runs(specs) -> list[dict]:
    """Rows in suite order: variant, dataset, seeds finished/listed, and ``<metric>_mean``/``_std``."""
    groups: OrderedDict[tuple[str, str], list] = OrderedDict()
    for spec in specs:
        groups.setdefault((spec.variant, spec.dataset), []).append(spec)
    rows = []
    for (variant, dataset), members in groups.items():
        results = [json.loads((s.run_dir / "result.json").read_text()) for s in members
                   if (s.run_dir / "result.json").is_file()]
        row = {"variant": variant, "dataset": dataset, "finished": len(results), "runs": len(members),
               "seeds": [r["seed"] for r in results]}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std([r.get(metric) for r in results])
        row["train_seconds_mean"] = _mean_std([r.get("train_seconds") for r in results])[0]
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table for the console (mean +- sample std over seeds)."""
    def cell(row, metric):
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        return "n/a" if mean is None else f"{mean:5.1f} +- {std:4.1f}"

    width = max([len("variant")] + [len(r["variant"]) for r in rows])
    head = f"{'variant':<{width}}  {'dataset':<10} seeds  {'mIoU(S)':>12}  {'mIoU(U)':>12}  {'hIoU':>12}  {'pAcc':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['variant']:<{width}}  {r['dataset']:<10} {r['finished']}/{r['runs']:<3} "
                     + "  ".join(f"{cell(r, m):>12}" for m in METRICS))
    return "\n".join(lines)
