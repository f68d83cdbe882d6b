"""``reports/<speed suite>/``: the speed table, one-stage vs two-stage ratios, and speed vs accuracy.

A pure function of the speed records (``harness/speed_suite.py``) and, for the
accuracy axis, of the hIoU of finished runs of each method's default config on the
same dataset (the harness finds those: which config is a method's default is its knowledge).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from zegbench.reports import plots
from zegbench.reports.paper_numbers import paper_numbers
from zegbench.reports.scorecard import write_scorecard
from zegbench.reports.tables import to_latex, to_markdown
from zegbench.reports.verdicts import Verdict
from zegbench.store import RunStore

# Why two learnable counts (docs/fidelity.md, item 14).
PARAMS_NOTE = ("Learnable: the parameters built here; learnable, official count: the official code's count of the "
               "same model, the one its README and the paper print (ZegCLIP 13.8 M VOC, 14.6 M COCO): it adds "
               "the self-attention and norm1 that each official decoder layer builds and never uses "
               "(3 x 1,051,648 for ZegCLIP); '-' where no official count applies or the record predates it.")


def speed_frame(records: list[dict]) -> pd.DataFrame:
    """One row per speed record, the columns a table needs."""
    rows = []
    for r in records:
        test = r.get("test") or {}
        rows.append({
            "method": r["method"], "dataset": r["dataset"], "input": "x".join(map(str, r["input"])),
            "precision": r.get("precision", "fp32"),
            "params_total": r["params_total"], "params_trainable": r["params_trainable"],
            "params_official": r.get("params_trainable_official"),  # records before issue 31 F: absent
            "gflops": r["flops"] / 1e9, "gmacs": r["macs"] / 1e9, "latency_ms": r["whole"]["median_ms"],
            "p10_ms": r["whole"]["p10_ms"], "p90_ms": r["whole"]["p90_ms"], "fps": r["fps_whole"],
            "test": f"{r.get('test_mode', '-')} {'x'.join(map(str, r.get('test_input', [])))}".strip(),
            "fps_test": r.get("fps_test"), "test_ms": test.get("median_ms"),
            "regions": r.get("regions_per_image"), "mfu": r["mfu"], "peak_gflops": r["matmul_peak_gflops"],
            "peak_precision": r.get("peak_precision", "fp32"),  # records before bf16 peaks: always fp32
            "random_weights": r.get("random_weights", False),
            "paired_ratio": (r.get("paired_with_encoder") or {}).get("ratio"),
            # Speed schema 1 records hold no memory
            "memory_kind": (r.get("memory") or {}).get("kind"),
            "inference_gib": (r.get("memory") or {}).get("inference_gib"),
            "train_gib": (r.get("memory") or {}).get("train_gib"),
            "train_batch": (r.get("memory") or {}).get("train_batch"),
        })
    return pd.DataFrame(rows)


def latest_speed(store: RunStore) -> pd.DataFrame:
    """The newest fp32 speed record per (method, dataset) anywhere in the run store, as ``speed_frame`` rows."""
    frame = speed_frame([record for _, record in store.speed_records()])  # newest first
    if frame.empty:
        return frame
    return frame[frame["precision"] == "fp32"].drop_duplicates(["method", "dataset"], keep="first")


def speed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per speed record (``speed_frame``), as published: sizes, GFLOPs in both conventions, latency,
    FPS, MFU (written as the speed report's efficiency.md)."""
    def opt(v, fmt):
        return "-" if v is None or pd.isna(v) else format(v, fmt)
    return pd.DataFrame({
        "Method": frame["method"], "Dataset": frame["dataset"], "Input": frame["input"],
        "Precision": frame["precision"],
        "Params (M)": [f"{v / 1e6:.2f}" for v in frame["params_total"]],
        "Learnable (M)": [f"{v / 1e6:.2f}" for v in frame["params_trainable"]],
        "Learnable, official count (M)": [opt(v / 1e6 if v is not None else None, ".2f")
                                          for v in frame["params_official"]],
        "GMACs (fvcore)": [f"{v:.1f}" for v in frame["gmacs"]],
        "GFLOPs (2/MAC)": [f"{v:.1f}" for v in frame["gflops"]],
        "Latency ms [p10-p90]": [f"{m:.1f} [{a:.1f}-{b:.1f}]" for m, a, b
                                 in zip(frame["latency_ms"], frame["p10_ms"], frame["p90_ms"], strict=True)],
        "FPS": [f"{v:.2f}" for v in frame["fps"]],
        "Test protocol": frame["test"], "FPS test": [opt(v, ".2f") for v in frame["fps_test"]],
        "CLIP crops/img": [opt(v, ".0f") for v in frame["regions"]],
        "MFU %": [f"{100 * v:.1f}" for v in frame["mfu"]],
        "Inference memory, batch 1 (GiB)": [opt(v, ".2f") for v in frame["inference_gib"]],
        "Training memory at the recipe's batch (GiB)": [
            "-" if v is None or pd.isna(v) else f"{v:.2f} (batch {b:.0f})"
            for v, b in zip(frame["train_gib"], frame["train_batch"], strict=True)],
        "Memory kind": [opt(v, "s") for v in frame["memory_kind"]],
    })


def ratios(frame: pd.DataFrame) -> list[str]:
    """Sentences: two-stage vs ZegCLIP, and ZegCLIP vs the bare CLIP image encoder, per dataset and input."""
    lines = []
    for (dataset, size, precision), part in frame.groupby(["dataset", "input", "precision"], sort=False):
        by = part.set_index("method")
        if "zegclip" not in by.index:
            continue
        z = by.loc["zegclip"]
        for other in ("two_stage", "two_stage_zegformer"):
            if other not in by.index:
                continue
            o = by.loc[other]
            line = (f"{dataset} {size} {precision}: {other} / zegclip = "
                    f"**{o['latency_ms'] / z['latency_ms']:.1f}x latency**, "
                    f"{o['gflops'] / z['gflops']:.1f}x FLOPs ({o['regions']:.0f} CLIP crops per image)")
            if pd.notna(z["test_ms"]) and pd.notna(o["test_ms"]):
                line += f"; at test protocol ({z['test']} vs {o['test']}) {o['test_ms'] / z['test_ms']:.1f}x latency"
            lines.append(line + ".")
        if "clip_image_encoder" in by.index:
            e = by.loc["clip_image_encoder"]
            line = (f"{dataset} {size} {precision}: zegclip over the bare CLIP image encoder: "
                    f"{z['gflops'] / e['gflops']:.2f}x FLOPs")
            if pd.notna(z["paired_ratio"]):  # alternating calls: immune to the machine's drift
                line += f", **{z['paired_ratio']:.2f}x latency** (median of paired calls)"
            else:
                line += f", {z['latency_ms'] / e['latency_ms']:.2f}x latency (separate measurements)"
            lines.append(line + ".")
    return lines


def build_speed_report(suite: str, records: list[dict], reports_dir: str | Path = "reports",
                       accuracy: pd.DataFrame | None = None, verdicts: list[Verdict] | None = None) -> Path:
    """Write ``reports/<suite>/README.md`` (+ efficiency.md/.tex, speed_vs_hiou.png/.pdf, and the claims
    scorecard when ``verdicts``, from ``scorecard.evaluate_claims``, are given).

    ``accuracy``: per (method, dataset) the hIoU of the method's default config, pooled over seeds
    (columns method, dataset, hIoU, seeds; ``speed_suite.default_config_accuracy``), for the plot.
    """
    out = Path(reports_dir) / suite
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Speed report: suite `{suite}`", ""]
    if verdicts is not None:
        lines += write_scorecard(verdicts, out, suite)
    if not records:
        (out / "README.md").write_text("\n".join(lines + ["No speed records yet."]) + "\n")
        return out / "README.md"
    frame = speed_frame(records)
    table = speed_table(frame)
    (out / "efficiency.md").write_text(to_markdown(table))
    (out / "efficiency.tex").write_text(to_latex(table, f"Speed on one machine (suite {suite})", f"tab:{suite}-speed"))
    peaks = "; ".join(f"{precision}: " + ", ".join(f"{p:.0f}" for p in sorted(part["peak_gflops"].unique()))
                      for precision, part in frame.groupby("peak_precision"))
    lines += [PARAMS_NOTE, ""]
    lines += [f"Batch 1, median of the timed calls after warm-up; FPS = 1 / median; fp32 without TF32. MFU "
              f"against the peak of a matmul in the row's precision, measured in the same run ({peaks} GFLOP/s). "
              f"Protocol: README, \"Speed\".", "",
              "## Efficiency: [markdown](efficiency.md), [LaTeX](efficiency.tex)", "", to_markdown(table)]
    if frame["random_weights"].any():
        lines += ["Rows of datasets with real-scale models use random weights: speed does not depend on weight "
                  "values, except the two-stage method's number of non-empty proposals (CLIP crops), "
                  "shown per row.", ""]
    lines += ["## Ratios", ""] + [f"- {line}" for line in ratios(frame)] + [""]
    paper = pd.DataFrame(paper_numbers()["efficiency"]).fillna({"verified": True})
    lines += ["## The paper's efficiency rows (1080Ti, 512x512, fvcore GFLOPs = our GMACs column)", "",
              to_markdown(paper.assign(verified=paper["verified"].map({True: "yes", False: "no †"}))), ""]
    for r in records:
        if r.get("profile_top_ops"):
            ops = pd.DataFrame(r["profile_top_ops"])
            lines += [f"## Where the time goes: {r['method']} on {r['dataset']} "
                      f"({'x'.join(map(str, r['input']))}, MFU {100 * r['mfu']:.1f}%)", "", to_markdown(ops)]
    points = _with_latency(accuracy, frame)
    files = plots.speed_vs_hiou(points, out)
    if files:
        lines += ["## Speed vs accuracy", "", f"![speed vs hIoU]({files[0]})", "",
                  "hIoU from finished runs of each method's default config on the same dataset (any suite); "
                  f"[PDF]({files[1]}).", ""]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    return out / "README.md"


def _with_latency(accuracy: pd.DataFrame | None, frame: pd.DataFrame) -> pd.DataFrame:
    """The speed-vs-accuracy points: each measured (method, dataset) with an hIoU, and its latency."""
    if accuracy is None or accuracy.empty:
        return pd.DataFrame()
    latency = frame.drop_duplicates(["method", "dataset"])[["method", "dataset", "latency_ms"]]
    merged = latency.merge(accuracy, on=["method", "dataset"])
    return merged[["method", "dataset", "latency_ms", "hIoU", "seeds"]]
