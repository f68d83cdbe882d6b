"""Result tables from the runs frame (``runs.runs_frame``): seed aggregates and paper-shaped tables.

Everything here is a pure function of that frame (one row per finished run of the suite) and of the
speed records handed in. Markdown goes through pandas + tabulate, LaTeX through pandas' Styler with
booktabs rules and the best mean of each metric in bold.
"""
from __future__ import annotations

import math

import pandas as pd

from zegbench.reports.runs import ENV_COLUMNS, METRICS

GROUP_KEYS = ["group", "variant", "dataset", "setting"]


def _joined(values: pd.Series) -> str:
    unique = [str(v) for v in dict.fromkeys(values.dropna())]
    return ", ".join(unique) if unique else "-"


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Seeds pooled: per (group, variant, dataset, setting) the mean, sample std and n of each metric."""
    out = []
    for keys, part in runs.groupby(GROUP_KEYS, sort=False):
        row = dict(zip(GROUP_KEYS, keys, strict=True))
        row["method"] = part["method"].iloc[0]
        row["n"] = len(part)
        for metric in METRICS:
            values = part[metric].dropna().astype(float)
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        for column in ("params_total", "params_trainable", "params_trainable_official", "train_seconds",
                       "train_memory_gib"):
            row[column] = part[column].dropna().mean() if part[column].notna().any() else math.nan
        row["memory_kind"] = _joined(part["memory_kind"])
        for column in ENV_COLUMNS:
            row[column] = _joined(part[column])
        out.append(row)
    return pd.DataFrame(out)


def mean_std(mean: float, std: float) -> str:
    """'41.2 ± 0.8'; the mean alone for one seed; '-' when undefined."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.1f}" if std is None or math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def _signed(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:+.1f}"


def ablation_table(agg: pd.DataFrame, group: str) -> pd.DataFrame:
    """Rows of one ablation group: metrics as mean ± std over seeds, and the unseen and harmonic
    change against the row above (the paper's ablations add one component per row)."""
    part = agg[agg["group"] == group].reset_index(drop=True)
    table = pd.DataFrame({"Variant": part["variant"], "Seeds": part["n"]})
    for metric, label in METRICS.items():
        table[label] = [mean_std(m, s) for m, s in zip(part[f"{metric}_mean"], part[f"{metric}_std"], strict=True)]
    for metric, label in (("mIoU_unseen", "Δ U"), ("hIoU", "Δ h")):
        means = part[f"{metric}_mean"]
        table[f"{label} vs row above"] = ["-"] + [_signed(b - a) for a, b in zip(means, means[1:], strict=False)]
    return table


def paper_comparison(agg: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """Every (variant, dataset, setting) with the paper's number and the difference for each metric.

    ``paper`` is ``paper_numbers.yaml``'s ``results``. Rows without a paper
    number say so; unverified paper numbers carry a dagger.
    """
    rows = []
    for _, row in agg.iterrows():
        ref = (paper.get(row["dataset"]) or {}).get(row["setting"], {}).get(row["method"])
        out = {"Variant": row["variant"], "Dataset": row["dataset"], "Setting": row["setting"], "Seeds": row["n"]}
        for metric, label in METRICS.items():
            out[label] = mean_std(row[f"{metric}_mean"], row[f"{metric}_std"])
            value = (ref or {}).get(metric)
            dagger = "" if (ref or {}).get("verified", True) else "†"
            out[f"{label} paper"] = "-" if value is None else f"{value:.1f}{dagger}"
            out[f"{label} Δ"] = "-" if value is None else _signed(row[f"{metric}_mean"] - value)
        rows.append(out)
    return pd.DataFrame(rows)


def size_and_training_table(agg: pd.DataFrame, speed: pd.DataFrame | None = None) -> pd.DataFrame:
    """A suite report's efficiency.md: parameter counts, training time and peak memory per variant (and dataset,
    when there are several); GMACs, latency and FPS where the speed suite measured the variant's method on its
    dataset (``speed``: ``speed_report.latest_speed``). The speed report's own table is ``speed_report.speed_table``."""
    seen = agg.drop_duplicates(["variant", "dataset"])
    table = pd.DataFrame({
        "Variant": seen["variant"],
        **({"Dataset": seen["dataset"]} if seen["dataset"].nunique() > 1 else {}),
        "Params total (M)": [f"{v / 1e6:.2f}" for v in seen["params_total"]],
        "Params learnable (M)": [f"{v / 1e6:.3f}" for v in seen["params_trainable"]],
        # The official code's count of the same model (ZegCLIP: + the decoder's built, never used self-attention)
        "Params learnable, official count (M)": ["-" if pd.isna(v) else f"{v / 1e6:.3f}"
                                                 for v in seen["params_trainable_official"]],
        "Train time / run (s)": [f"{v:.0f}" for v in seen["train_seconds"]],
        # CUDA: peak allocated on the GPU; CPU: the process's peak resident set, libraries included
        "Train peak memory (GiB)": ["-" if pd.isna(v) else f"{v:.2f} ({kind})"
                                    for v, kind in zip(seen["train_memory_gib"], seen["memory_kind"], strict=True)],
    })
    lookup = {} if speed is None else {(r.method, r.dataset): r for r in speed.itertuples()}
    # Only a variant that is its method's default config was measured (overrides may change the cost).
    hits = [lookup.get((m, d)) if v == m else None
            for v, m, d in zip(seen["variant"], seen["method"], seen["dataset"], strict=True)]
    if any(hits):
        table["GMACs (fvcore)"] = [f"{h.gmacs:.2f}" if h else "-" for h in hits]
        table["Latency (ms)"] = [f"{h.latency_ms:.1f}" if h else "-" for h in hits]
        table["FPS"] = [f"{h.fps:.1f}" if h else "-" for h in hits]
    for label, column in (("Device", "device"), ("Precision", "precision"), ("Inference", "inference"),
                          ("torch", "torch")):
        table[label] = seen[column].tolist()
    return table


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def _leading_number(cell) -> float:
    try:
        return float(str(cell).split(" ")[0].rstrip("†"))
    except ValueError:
        return math.nan


def to_latex(table: pd.DataFrame, caption: str, label: str, bold_columns: list[str] | None = None) -> str:
    """Booktabs LaTeX; in each of ``bold_columns`` the cell with the highest leading number is bold."""
    bold_columns = [c for c in (bold_columns or []) if c in table.columns]
    escaped = table.copy()
    escaped.columns = [str(c).replace("%", r"\%").replace("Δ", r"$\Delta$") for c in table.columns]
    escaped = escaped.map(lambda v: str(v).replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("_", r"\_"))
    styler = escaped.style.hide(axis="index")
    for column in bold_columns:
        values = table[column].map(_leading_number)
        if values.notna().any():
            best = values.max()
            target = escaped.columns[list(table.columns).index(column)]
            hit = (values == best).tolist()  # bound as a default: the styler applies it after the loop
            styler = styler.apply(lambda col, hit=hit: ["textbf:--rwrap;" if h else "" for h in hit], subset=[target])
    return styler.to_latex(hrules=True, caption=caption, label=label,
                           column_format="l" + "r" * (len(table.columns) - 1))
