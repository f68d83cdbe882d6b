"""``zegbench leaderboard``: every finished run in the store, across suites, in one table.

A row is one *setting*: a method on a dataset with one resolved config but for its seed (the run
folders whose ``config.yaml`` differ in the seed alone), with its setting (inductive, transductive)
and budget (steps x global batch). A training-free method has no budget, and its training keys,
which decide nothing, are left out of its setting (two such runs of one seed are one model, counted
once). Its metrics are the mean ± sample std over those seeds, ``n`` their number. A run finished in
two suites' folders (a copy: the same folder name, so the same config) counts once; the Suites
column names both.

A row's variant is its method and the keys its config sets off the method's *recipe* on that
dataset (``recipe(method, dataset)``: the caller's resolved config, e.g. the shipped recipe that
``zegbench leaderboard`` resolves); where there is none (a method no longer defined), the keys that
differ between that method's settings on the dataset. Steps are the Budget column's, never the
label's. The paper's numbers (``paper_numbers.yaml``) stand beside a row whose config is the recipe's
exactly, budget included: a shorter run of the same method is not the paper's setting.

A pure function of the store's finished runs (``runs.store_runs_frame``) and of the recipes the
caller hands in. Cross-dataset evaluations (``cross_dataset`` in result.json) are not rows.
"""
from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import Callable

import pandas as pd

from zegbench.errors import ZegbenchError
from zegbench.reports.paper_numbers import paper_numbers
from zegbench.reports.runs import METRICS, store_runs_frame
from zegbench.reports.scorecard import budget_label
from zegbench.reports.tables import mean_std, to_latex, to_markdown
from zegbench.reports.variants import variant_label
from zegbench.store import RunStore, short_hash

Recipe = Callable[[str, str], "dict | None"]
SORTS = {"hiou": "hIoU", "miou_unseen": "mIoU_unseen", "miou_seen": "mIoU_seen", "pacc": "pAcc", "n": "n",
         "variant": "variant"}
FILES = ("leaderboard.md", "leaderboard.tex", "leaderboard.csv")


def _without_seed(config: dict, training_free: bool = False) -> dict:
    """A resolved config less its seed (top level and ``train.seed``): what the seeds of one setting share;
    ``training_free``: less its training keys too (nothing was trained: they decide nothing)."""
    out = {key: value for key, value in config.items() if key not in ("seed", "train")}
    if not training_free:
        out["train"] = {key: value for key, value in (config.get("train") or {}).items() if key != "seed"}
    return out


def _paths(nested: dict, prefix: str) -> dict:
    """``{"datasets": {"world": "c47"}}`` -> ``{"<prefix>.datasets.world": "c47"}``."""
    flat = {}
    for name, value in nested.items():
        flat.update(_paths(value, f"{prefix}.{name}") if isinstance(value, dict) else {f"{prefix}.{name}": value})
    return flat


def _keys(config: dict) -> dict:
    """The keys a variant label may name: method and training keys by their own name (they never clash), other
    keys by their path (``inputs.datasets.world``); steps left to the Budget column."""
    flat = {}
    for key, value in config.items():
        if key in ("method_config", "train"):
            flat.update({name: v for name, v in value.items() if name not in ("class", "seed", "steps")})
        elif key == "inputs":
            flat.update(_paths(value, "inputs"))
        elif key not in ("method", "dataset", "seed"):
            flat[key] = value
    return flat


def _text(value) -> str:
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def _off_recipe(keys: dict, recipe: dict) -> dict[str, str]:
    """The keys set off the recipe, shown as text (an input's fingerprint only where both have it: an
    evaluation-only dataset's is named by ``eval_on``); a key the recipe has and the run lacks shows as unset."""
    shown = {k: _text(v) for k, v in keys.items()
             if (k in recipe or not k.startswith("inputs.")) and recipe.get(k, object()) != v}
    return shown | {k: "unset" for k in recipe if k not in keys and not k.startswith("inputs.")}


def _finished(store: RunStore) -> list[dict]:
    """One entry per finished run (a row of ``runs.store_runs_frame``): its identity, setting, budget, metrics
    and the suites holding it."""
    runs = []
    for run in store_runs_frame(store).to_dict("records"):
        config = run["config"]
        if config is None or "method" not in config or "dataset" not in config:
            continue  # a hand-made record without its config: it cannot be grouped (a suite report still shows it)
        training_free = run["training_free"]
        budget = None if training_free else {"steps": run["steps"], "batch": run["global_batch"]}
        runs.append({"method": config["method"], "dataset": config["dataset"], "seed": config.get("seed"),
                     "setting": run["setting"], "config": _without_seed(config, training_free), "budget": budget,
                     "suites": run["suites"], **{m: run[m] for m in METRICS}})
    return runs


def _stats(values: list) -> tuple[float, float]:
    kept = [float(v) for v in values if not pd.isna(v)]  # undefined metrics are NaN in the runs frame
    if not kept:
        return math.nan, math.nan
    mean = sum(kept) / len(kept)
    std = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else math.nan
    return mean, std


def _variant(first: dict, groups: list[list[dict]], resolved: dict | None) -> tuple[str, dict | None]:
    """(a setting's variant label, its recipe less the seed, or None): the keys it sets off the recipe, or
    without one the keys that tell this method's settings on this dataset apart."""
    method, dataset, keys = first["method"], first["dataset"], _keys(first["config"])
    if resolved is not None:
        reference = _without_seed(resolved, first["budget"] is None)
        return variant_label(method, _off_recipe(keys, _keys(reference))), reference
    others = [_keys(g[0]["config"]) for g in groups if (g[0]["method"], g[0]["dataset"]) == (method, dataset)]
    return variant_label(method, {k: _text(v) for k, v in keys.items()
                                  if any(o.get(k, object()) != v for o in others)}), None


def _row(group: list[dict], groups: list[list[dict]], resolved: dict | None, paper: dict) -> dict:
    """One setting's row: identity, budget, seeds, suites, mean and std of each metric, the paper's numbers."""
    first = group[0]
    method, dataset, budget = first["method"], first["dataset"], first["budget"] or {}
    variant, reference = _variant(first, groups, resolved)
    ref = (paper.get(dataset) or {}).get(first["setting"], {}).get(method) if first["config"] == reference else None
    row = {"method": method, "variant": variant, "dataset": dataset, "setting": first["setting"],
           "steps": budget.get("steps"), "batch": budget.get("batch"), "training_free": first["budget"] is None,
           "n": len(group), "seeds": ",".join(str(s) for s in sorted(r["seed"] for r in group)),
           "suites": ",".join(sorted({s for r in group for s in r["suites"]}))}
    for metric in METRICS:
        row[f"{metric}_mean"], row[f"{metric}_std"] = _stats([r[metric] for r in group])
        row[f"paper_{metric}"] = (ref or {}).get(metric, math.nan)
    row["paper_verified"] = (ref or {}).get("verified", True) if ref else None
    return row


def leaderboard(store: RunStore, recipe: Recipe | None = None, datasets: list[str] | None = None,
                methods: str | None = None, sort: str = "hiou") -> pd.DataFrame:
    """One row per setting (method x variant x dataset x setting x budget) of every finished run in the store.

    ``datasets``: keep these only; ``methods``: a shell pattern on the method name; ``sort``: within each
    dataset (datasets in name order), by a metric's mean (best first), ``n`` or ``variant``. Columns:
    method, variant, dataset, setting, steps, batch, n, seeds, suites, ``<metric>_mean``/``_std`` and
    ``paper_<metric>`` (NaN without one), paper_verified.
    """
    if not store.root.is_dir():
        raise ZegbenchError(f"run store {store.root} does not exist: pass --results DIR, the folder suites wrote "
                            f"their runs into")
    runs = _finished(store)
    if not runs:
        raise ZegbenchError(f"run store {store.root} holds no finished runs: run a suite first "
                            f"(e.g. run_all.py --suite smoke --results {store.root})")
    found = sorted({r["dataset"] for r in runs})
    runs = [r for r in runs if (not datasets or r["dataset"] in datasets)
            and (methods is None or fnmatch.fnmatchcase(r["method"], methods))]
    if not runs:
        raise ZegbenchError(f"no finished run in {store.root} matches --dataset {' '.join(datasets or ['(any)'])} "
                            f"--method {methods or '*'}: its datasets are {', '.join(found)}")
    settings: dict[str, dict[int, dict]] = {}
    for run in runs:  # one run per seed: a training-free method's runs of one seed are one whatever their training keys
        same = settings.setdefault(short_hash(run["config"]), {}).setdefault(run["seed"], run)
        if same is not run:
            same["suites"] = sorted(set(same["suites"]) | set(run["suites"]))
    groups = [list(by_seed.values()) for by_seed in settings.values()]
    recipes = {pair: recipe(*pair) if recipe else None for pair in sorted({(r["method"], r["dataset"]) for r in runs})}
    paper = paper_numbers()["results"]
    rows = [_row(group, groups, recipes[group[0]["method"], group[0]["dataset"]], paper) for group in groups]
    frame = pd.DataFrame(rows).astype({"steps": "Int64", "batch": "Int64"})  # whole numbers, or <NA>: training-free
    order = SORTS[sort]
    by = f"{order}_mean" if order in METRICS else order
    keys = ["dataset", by] + (["variant"] if by != "variant" else [])
    frame = frame.sort_values(keys, ascending=[True, by == "variant", True][:len(keys)], na_position="last",
                              kind="stable")
    return frame.reset_index(drop=True)


def _paper_cell(row) -> str:
    values = [row[f"paper_{m}"] for m in METRICS]
    if all(math.isnan(v) for v in values):
        return "-"
    dagger = "" if row["paper_verified"] else "†"
    return " / ".join("-" if math.isnan(v) else f"{v:.1f}{dagger}" for v in values)


def leaderboard_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as shown: metrics as mean ± std over seeds, the paper's beside them."""
    table = pd.DataFrame({
        "Variant": frame["variant"], "Dataset": frame["dataset"], "Setting": frame["setting"],
        "Budget": ["training-free" if free else "-" if pd.isna(s) else budget_label({"steps": s, "batch": b})
                   for s, b, free in zip(frame["steps"], frame["batch"], frame["training_free"], strict=True)],
        "n": frame["n"].astype(str)})
    for metric, label in METRICS.items():
        table[label] = [mean_std(m, s) for m, s in zip(frame[f"{metric}_mean"], frame[f"{metric}_std"], strict=True)]
    table["Paper: " + " / ".join(METRICS.values())] = [_paper_cell(row) for _, row in frame.iterrows()]
    table["Suites"] = frame["suites"].str.replace(",", ", ")
    return table


READING = ("One row per setting: a method on a dataset with one config but for its seed, at one budget (steps x "
           "global batch); metrics are the mean ± sample std over its n seeds (percent). The variant names the keys "
           "its config sets off the method's recipe on that dataset. Paper numbers (ViT-B/16; † unverified) stand "
           "beside rows run exactly as the recipe says, budget included.")


def write_leaderboard(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write ``leaderboard.md`` (with a reading), ``.tex`` (booktabs, best mean of each metric in bold within the
    table) and ``.csv`` (the raw columns of ``leaderboard``) into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = leaderboard_table(frame)
    paths = [out / name for name in FILES]
    paths[0].write_text("\n".join(["# Leaderboard", "", READING, "", to_markdown(table)]))
    paths[1].write_text(to_latex(table, "Every finished setting in the run store", "tab:leaderboard",
                                 list(METRICS.values()) if frame["dataset"].nunique() == 1 else []))
    frame.to_csv(paths[2], index=False)
    return paths
