"""The training budget of world v3 and later: every ladder arm converged, on training images only.

World v2's budget was set by a linear-probe oracle at a constant learning rate
(``gates.budget_by_rule``); the ladder's own arms were then far from converged
at it. From world v3 on, the budget is the smallest of 1x, 2x, 4x and 8x a
base length (the world recipe's ``steps``) at which **every** arm of the
ladder has converged on seed 0, the same length for all arms. An arm of
length L has converged when

- its training loss has flattened: the moving average (window: 10% of its
  steps) falls by less than 5% over its last 20% of steps, and
- its seen classes have stopped improving: its seen-class mIoU on a fixed
  subset of training images gains less than 1 point between L and L/2 (a
  separate run of L/2 steps, with its own schedule), and
- it has learned something: that seen-class mIoU is at least 10. A flat loss
  while the arm predicts almost no seen class (world v2's DPT + NEL at 750
  steps) is a degenerate plateau, not convergence.

Only training images are read: no arm is evaluated on val, so the rule cannot
look at any number a claim is judged by. The rule and its thresholds were
written down on 2026-12-06, before world v3 existed and before any ladder run
on it, and are part of its pre-registration.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from zegbench.errors import ZegbenchError
from zegbench.store import RunStore

MULTIPLES = (1, 2, 4, 8)  # candidate budgets, in units of the recipe's base length
LOSS_WINDOW = 0.10  # moving-average window, as a fraction of the run's steps
LAST_FRACTION = 0.20  # the loss must be flat over this final fraction of the steps ...
LOSS_DROP_MAX = 0.05  # ... falling by less than this (relative to the average at its start)
SEEN_GAIN_MAX = 1.0  # train-subset seen mIoU gain from L/2 to L, in points
DEGENERATE_SEEN_MIOU = 10.0  # below this train-subset seen mIoU an arm has learned nothing
TRAIN_SUBSET = 200  # the first N training images (fixed, unaugmented) that measure seen mIoU
# A budget run checkpoints this often (about a minute of one core on world v3), so a run cut short (a
# machine's or a session's end) resumes there and ends exactly as an uninterrupted one (engine/train.py).
CHECKPOINT_EVERY = 250
# The ladder of the `ablations` suite (tests/test_budget.py checks the two agree).
LADDER_ARMS = ("zegclip_baseline_ft", "zegclip_baseline_fix", "zegclip_dpt", "zegclip_dpt_nel", "zegclip")


def moving_average_at(steps: np.ndarray, losses: np.ndarray, at: float, window: float) -> float:
    """Mean of the logged losses in ``(at - window, at]``; if none falls inside, the last one logged before
    ``at`` (the first one logged if none was: a run too short to log in between)."""
    inside = (steps > at - window) & (steps <= at)
    if inside.any():
        return float(losses[inside].mean())
    before = losses[steps <= at]
    return float(before[-1] if len(before) else losses[0])


def loss_drop(log: list[dict], total_steps: int) -> float:
    """Relative fall of the training loss's moving average over the last ``LAST_FRACTION`` of the run.

    ``log`` is the run's ``metrics.jsonl`` (``step`` is 0-based, ``loss`` the summed parts).
    Positive: the loss still falls; 0.03 means 3% lower at the end than at 80% of the steps.
    """
    steps = np.array([row["step"] + 1 for row in log], dtype=float)  # steps done when it was logged
    losses = np.array([row["loss"] for row in log], dtype=float)
    window = max(LOSS_WINDOW * total_steps, 1.0)
    start = moving_average_at(steps, losses, (1 - LAST_FRACTION) * total_steps, window)
    end = moving_average_at(steps, losses, float(total_steps), window)
    return (start - end) / abs(start) if start else 0.0


def arm_converged(drop: float, seen_miou: float, seen_miou_half: float) -> dict:
    """The rule for one arm at one length: each criterion and the verdict."""
    checks = {
        "loss_flat": drop < LOSS_DROP_MAX,
        "seen_stopped_improving": seen_miou - seen_miou_half < SEEN_GAIN_MAX,
        "not_degenerate": seen_miou >= DEGENERATE_SEEN_MIOU,
    }
    return {**checks, "converged": all(checks.values())}


def budget_by_convergence(records: dict[str, dict[int, dict]], base: int) -> dict:
    """Apply the rule to measured runs: ``records[arm][steps]`` holds ``loss_drop`` and ``seen_miou``.

    Returns the budget (steps; None if no multiple up to 8x has every arm
    converged, or the runs it needs are missing) and the verdict per multiple.
    Multiples are judged in order and the first where all arms converged wins.
    """
    verdicts = {}
    for multiple in MULTIPLES:
        length, half = multiple * base, multiple * base // 2
        if any(length not in runs or half not in runs for runs in records.values()):
            break
        verdicts[multiple] = {arm: arm_converged(runs[length]["loss_drop"], runs[length]["seen_miou"],
                                                 runs[half]["seen_miou"])
                              for arm, runs in records.items()}
        if all(v["converged"] for v in verdicts[multiple].values()):
            return {"budget_steps": length, "multiple": multiple, "verdicts": verdicts}
    return {"budget_steps": None, "multiple": None, "verdicts": verdicts}


class SeenOnly:
    """The first ``limit`` items of a dataset with labels mapped to seen-class indices (unseen -> 255)."""

    def __init__(self, dataset, to_seen, limit: int):
        self.dataset, self.to_seen, self.count = dataset, to_seen.numpy(), min(limit, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        image, label, *rest = self.dataset[i]
        return (image, self.to_seen[label], *rest)


def train_subset_seen_miou(model, dataset, info, device: str = "cpu") -> float:
    """Seen-class mIoU of ``model`` over the fixed training subset, predicting among seen classes only
    (what training optimised); never reads val."""
    from zegbench.engine.evaluate import evaluate
    from zegbench.engine.train import seen_label_map

    seen_info = info.model_copy(update={"classes": info.seen, "unseen": ()})
    subset = SeenOnly(dataset, seen_label_map(info), TRAIN_SUBSET)
    return float(evaluate(model, subset, seen_info, device=device)["mIoU"])


def measure_arm(arm: str, dataset: str, steps: int, store: RunStore, device: str = "cpu",
                progress: bool = False) -> dict:
    """Train ``arm`` for ``steps`` on seed 0 and measure what the rule reads (a finished measurement is reused).

    The run lives in the store's budget folder, named by its resolved config's hash (so a changed
    recipe, world or CLIP is measured again), and resumes from its checkpoint if it was cut short.
    """
    import torch

    from zegbench.datasets.catalog import build_dataset, load_dataset_info
    from zegbench.engine.config import TrainConfig
    from zegbench.engine.environment import intra_op_threads
    from zegbench.engine.identity import config_hash
    from zegbench.engine.resolve import resolve
    from zegbench.engine.train import train
    from zegbench.methods import build_method
    from zegbench.store.layout import LOG_FILE, write_config

    resolved = resolve(arm, dataset, seed=0, overrides={"steps": steps, "checkpoint_every": CHECKPOINT_EVERY})
    folder = store.budget_dir(dataset, arm, steps, config_hash(resolved))
    done = store.read_budget_record(folder)
    if done is not None:
        return done
    info = load_dataset_info(dataset)
    train_set = build_dataset(dataset, "train", progress=progress)
    torch.manual_seed(0)
    model = build_method(resolved["method_config"])
    folder.mkdir(parents=True, exist_ok=True)
    write_config(folder, resolved)
    started = time.time()
    with intra_op_threads(resolved["train"]["threads"]):  # as a suite's run computes: its own thread count
        train(model, train_set, info, TrainConfig(**resolved["train"]), folder, device, progress, resolved)
        seen_miou = train_subset_seen_miou(model, train_set, info, device)
    log = [json.loads(line) for line in (folder / LOG_FILE).read_text().splitlines()]
    record = {"arm": arm, "dataset": dataset, "steps": steps, "seed": 0, "config_hash": config_hash(resolved),
              "loss_drop": round(loss_drop(log, steps), 5), "seen_miou": round(seen_miou, 3),
              "train_subset": min(TRAIN_SUBSET, len(train_set)), "seconds": round(time.time() - started, 1)}
    store.write_budget_record(folder, record)
    return record


def _measure_arms(wanted: list[tuple[str, int]], dataset: str, store: RunStore, device: str, progress: bool,
                  jobs: int) -> list[dict]:
    """``measure_arm`` for each ``(arm, steps)`` of ``wanted``, in order; ``jobs`` > 1 runs them in that many
    processes. Each run is seeded and threaded by its own config, so the records do not depend on ``jobs``."""
    if jobs <= 1 or len(wanted) <= 1:
        return [measure_arm(arm, dataset, steps, store, device, progress) for arm, steps in wanted]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a fresh interpreter per worker, not a fork of a parent that may hold torch's thread pools
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(measure_arm, arm, dataset, steps, store, device, False) for arm, steps in wanted]
        for future in as_completed(futures):  # side by side, no bar: a line per finished run instead
            if progress:
                record = future.result()
                print(f"budget: {record['arm']} at {record['steps']} steps: loss drop {record['loss_drop']:.1%}, "
                      f"train seen mIoU {record['seen_miou']:.1f} ({record['seconds']:.0f} s)", file=sys.stderr)
        return [future.result() for future in futures]


def measure_budget(dataset: str, store: RunStore, arms: tuple[str, ...] = LADDER_ARMS, base: int | None = None,
                   device: str = "cpu", progress: bool = False, jobs: int = 1) -> dict:
    """Run the rule on world ``dataset``: train the arms at L/2 and L for L = 1x, 2x, ... the base, stop at
    the first L where all converged. Runs live in the store's budget folder and are reused; ``jobs``
    measures that many runs of one multiple at once (the longest first)."""
    from zegbench.datasets.catalog import load_dataset_info
    info = load_dataset_info(dataset)
    if info.world is None:
        raise ZegbenchError(f"`world gates --budget` measures a generated world; {dataset!r} is not one")
    base = base or int(info.recipe.train.get("steps", 750))
    records: dict[str, dict[int, dict]] = {arm: {} for arm in arms}
    outcome = {"budget_steps": None, "multiple": None, "verdicts": {}}
    for multiple in MULTIPLES:
        wanted = [(arm, steps) for steps in (multiple * base, multiple * base // 2) for arm in arms
                  if steps not in records[arm]]
        for (arm, steps), record in zip(wanted, _measure_arms(wanted, dataset, store, device, progress, jobs),
                                        strict=True):
            records[arm][steps] = record
        outcome = budget_by_convergence(records, base)
        if outcome["budget_steps"] is not None:
            break
    runs = {arm: dict(sorted(by_steps.items())) for arm, by_steps in records.items()}
    return {"dataset": dataset, "base_steps": base, **outcome, "runs": runs}
