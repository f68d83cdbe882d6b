"""The ladder's claims across the embedded miniatures, side by side: world v1, v2 and v3 (issue 25, item 5).

Rows are the claims of the suite that ``miniature_numbers.yaml`` records (the ladder's: ``suite: ablations``);
columns are miniatures, each from one of two sources that its header names:

- *recorded*: what the README recorded for v1, v2 and v3, whose run folders are not in the repository:
  copied into ``miniature_numbers.yaml`` as written, with provenance, and never recomputed here;
- *this store*: the report's own verdict rows (``scorecard.evaluate_claims`` over the suite's runs) for each
  world the suite trained on, headed with its dataset; and, for a design drawn with several generator seeds
  (``world_v3``, ``world_v3_seed1``, ``world_v3_seed2``), the over-worlds check: each world's paired
  difference at training seed 0, mean and 95% t-interval over the worlds (``verdicts.paired_verdict``, n =
  the worlds), computed once every world of the design has its seed-0 pair.

Which dataset is which world is the harness's to say (``worlds``: dataset -> its generator settings, from the
dataset catalog, which ``reports/`` may not import): the settings' ``version`` is the miniature, and datasets
whose settings differ in ``seed`` alone are one design drawn again (datasets whose settings are equal, seed
included, are one world under two names: ``world`` and ``world_v3``). A world drawn with a generator seed other
than 0 feeds its design's over-worlds cell, not a column of its own; a version with neither numbers nor runs
gets a column of ``not run`` cells, and the legend names the command. Datasets that are not worlds are left
to the scorecard.

Writes ``miniatures.md``, ``miniatures.tex`` and ``miniatures.json``; returns the README's section.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zegbench.errors import validation_error
from zegbench.reports.paper_claims import ACCURACY_METRICS, Claim
from zegbench.reports.scorecard import budget_label, claimed_cell, interval_text, seed_differences
from zegbench.reports.tables import mean_std, to_latex, to_markdown
from zegbench.reports.verdicts import AccuracyVerdict, Verdict, paired_verdict
from zegbench.utils.io import atomic_write_json, read_yaml_mapping

MINIATURE_NUMBERS = Path(__file__).with_name("miniature_numbers.yaml")
RECORDED, STORE = "recorded", "this store"
STRICT = ConfigDict(extra="forbid")


class MeanStd(BaseModel):
    model_config = STRICT
    mean: float
    std: float


class RecordedVariant(BaseModel):
    """A variant's row of a README table: mean and std over seeds (the only numbers v1's ladder recorded)."""

    model_config = STRICT
    readme_row: str
    mIoU_seen: MeanStd
    mIoU_unseen: MeanStd
    hIoU: MeanStd


class RecordedClaim(BaseModel):
    """One claim's cell as the README recorded it: the effect in points, its 95% t-interval, the verdict."""

    model_config = STRICT
    readme_row: str  # the README's row label, or the words before the number where it is given in prose
    effect: float
    low: float
    high: float
    verdict: Literal["reproduces", "contradicts", "inconclusive"]
    note: str | None = None  # the README's remark beside the number ("it rose")
    per_world: dict[str, float] | None = None  # kind worlds: each world's step, as the README's columns


class Commit(BaseModel):
    model_config = STRICT
    commit: str
    date: datetime.date


class Recorded(BaseModel):
    """One measurement the README recorded: over training seeds on one world, or over worlds at seed 0."""

    model_config = STRICT
    id: str
    world_version: int
    kind: Literal["seeds", "worlds"]
    datasets: list[str] = Field(min_length=1)
    budget: dict[Literal["steps", "batch"], int]
    n: int
    readme_section: str
    measured: datetime.date | None  # None: the README gives no date
    recorded_in: Commit
    command: str
    machine: str
    in_table: bool = True  # False: a partial re-measurement, a note under the table
    caveat: str | None = None
    verdicts_from: str | None = None  # the README's sentence that gives the verdicts, where its table has none
    claims: dict[str, RecordedClaim]
    variants: dict[str, RecordedVariant] = Field(default_factory=dict)


class MiniatureNumbers(BaseModel):
    model_config = STRICT
    suite: str
    designs: dict[int, str]
    recorded: list[Recorded]


def load_miniature_numbers(path: Path = MINIATURE_NUMBERS) -> MiniatureNumbers:
    """``miniature_numbers.yaml``, checked (one error line naming the file and key)."""
    try:
        return MiniatureNumbers.model_validate(read_yaml_mapping(path))
    except ValidationError as err:
        raise validation_error(err, str(path), schema=MiniatureNumbers,
                               advice="fix the file (it copies the README's numbers)") from None


@dataclass(frozen=True)
class Column:
    """A miniature's column: its source (recorded or this store), kind (seeds: over training seeds on one world;
    worlds: over worlds at training seed 0), datasets, budget and the legend's line on where it comes from."""

    key: str
    header: str
    world_version: int
    source: str
    kind: str
    datasets: tuple[str, ...]
    budget: dict | None
    about: str


@dataclass(frozen=True)
class Cell:
    """'effect [low, high] verdict' and its parts; the verdict 'not run' or 'not recorded' where there is none."""

    text: str
    verdict: str
    effect: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    per_world: dict[str, float] | None = None


@dataclass(frozen=True)
class MiniatureTable:
    suite: str
    rows: list[AccuracyVerdict]  # one per claim: what the table says of it (id, sentence, metric, direction)
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]  # (claim id, column key) -> cell
    designs: dict[int, str]
    notes: list[str]


READING = ("Each cell: the claim's effect (arm - baseline, points), its 95% t-interval and the verdict (reproduces: "
           "the interval lies on the paper's side of 0; contradicts: on the other side; inconclusive: it covers 0). "
           "A miniature's column is over training seeds on one world; its over-worlds column takes each world's "
           "difference at training seed 0 and gives their mean and 95% t-interval over the worlds (n = the worlds). "
           "Recorded columns are the README's numbers as written (their runs are not in the repository); the "
           "others are this report's verdicts on the runs in this store. A claim that holds on every miniature is "
           "robust to how the miniature was built; one that flips points at a structural property in which the "
           "miniatures differ (issue 25's causes: (a) a CLIP that knows nothing beyond the task, so fine-tuning has "
           "nothing to forget; (b) few epochs; (c) a budget set for one model; (d) frozen patch features far weaker "
           "than real CLIP's; (e) every boundary pixel scored). Which property a flip points at is a reading, not a "
           "measurement.")


def miniature_table(suite: str, verdicts: list[Verdict], runs: pd.DataFrame, worlds: Mapping[str, Mapping],
                    claims: list[Claim], numbers: MiniatureNumbers | None = None) -> MiniatureTable | None:
    """The table of ``suite`` (None unless ``numbers`` records its claims): its accuracy claims (``claims``, for
    their arms) as ``verdicts`` judged them on ``runs`` (the suite's runs frame), beside the recorded numbers.
    ``worlds``: dataset -> world generator settings (the shipped world datasets and those the suite ran)."""
    numbers = numbers or load_miniature_numbers()
    if numbers.suite != suite:
        return None
    ladder = [r for r in verdicts if isinstance(r, AccuracyVerdict) and r.suite == suite]
    rows = list({r.id: r for r in reversed(ladder)}.values())[::-1]  # each claim's first row, in the claims' order
    if not rows:
        return None
    arms = {c.id: c for c in claims}
    diffs = {r.id: seed_differences(arms[r.id], runs) if r.id in arms else {} for r in rows}
    columns, cells, notes = [], {}, []
    ran = {r.dataset for r in ladder if r.verdict != "not run" and r.dataset}
    for version in sorted({m.world_version for m in numbers.recorded} | {int(s["version"]) for s in worlds.values()}):
        recorded = [m for m in numbers.recorded if m.world_version == version]
        notes += [_note(m) for m in recorded if not m.in_table]
        shown = [m for m in recorded if m.in_table]
        on_worlds = _designs(worlds, version, ran)
        seeds = [_recorded_column(m) for m in shown if m.kind == "seeds"]
        seeds += _dataset_columns(ladder, worlds, version)
        over = [_recorded_column(m) for m in shown if m.kind == "worlds"]
        main = max(on_worlds, key=len) if on_worlds else None  # the design a version's world-seed check draws again
        over += _worlds_columns(suite, rows, diffs, on_worlds, version, main if not over else None)
        if not seeds and main:
            seeds = [_not_run_column(suite, version, main[0])]
        for column in seeds + over:
            for row in rows:
                cells[row.id, column.key] = _cell(column, row, ladder, diffs, arms, numbers)
        columns += seeds + over
    _mark_budgets(columns)
    shown_versions = {c.world_version for c in columns}
    designs = {v: text for v, text in sorted(numbers.designs.items()) if v in shown_versions}
    return MiniatureTable(suite, rows, columns, cells, designs, notes)


def _designs(worlds: Mapping[str, Mapping], version: int, ran: set[str]) -> list[tuple[str, ...]]:
    """The designs of world ``version``: datasets whose generator settings differ in ``seed`` alone, each by
    generator seed. Datasets with the same settings, seed included, are one world under several names (``world``
    is ``world_v3`` under the default name): the design keeps one of them, the first the suite ran (``ran``),
    else the first by name."""
    groups: dict[str, dict[int, list[str]]] = {}
    for dataset, settings in worlds.items():
        if int(settings["version"]) == version:
            design = json.dumps({k: v for k, v in settings.items() if k != "seed"}, sort_keys=True, default=str)
            groups.setdefault(design, {}).setdefault(int(settings.get("seed", 0)), []).append(dataset)

    def first_world(by_seed: dict[int, list[str]]) -> tuple[int, str]:  # designs in order of their first world
        seed = min(by_seed)
        return seed, min(by_seed[seed])

    ordered = sorted(groups.values(), key=first_world)
    return [tuple(_one_name(by_seed[seed], ran) for seed in sorted(by_seed)) for by_seed in ordered]


def _one_name(names: list[str], ran: set[str]) -> str:
    """The name a world of several names goes by in a design: the first the suite ran, else the first."""
    return min((name for name in names if name in ran), default=min(names))


def _budget_key(budget: Mapping | None) -> str:
    return "-" if not budget else f"{budget['steps']}x{budget['batch']}"


def _recorded_column(m: Recorded) -> Column:
    header = f"v{m.world_version} (recorded)" if m.kind == "seeds" else \
        f"v{m.world_version} over {m.n} worlds (recorded)"
    measured = f"measured {m.measured}" if m.measured else "the README gives no date"
    about = (f"{', '.join(m.datasets)}, {budget_label(m.budget)}, n = {m.n} {m.kind}: README \"{m.readme_section}\" "
             f"({measured}; recorded in commit {m.recorded_in.commit}, {m.recorded_in.date}); {m.command}; "
             f"{m.machine}" + (f". {m.caveat[0].upper()}{m.caveat[1:]}" if m.caveat else ""))
    if not m.claims:
        about += (". The README records no paired effect here, only each variant's mean ± std over seeds: its cells "
                  "give the two arms' means (arm vs baseline), not a difference")
    return Column(m.id, header, m.world_version, RECORDED, m.kind, tuple(m.datasets), dict(m.budget), about + ".")


def _dataset_columns(rows: list[AccuracyVerdict], worlds: Mapping[str, Mapping], version: int) -> list[Column]:
    """One column per world of ``version`` drawn with generator seed 0 and budget at which the suite has runs."""
    found: dict[tuple[str, str], tuple[dict | None, set[int]]] = {}
    for row in rows:
        settings = worlds.get(row.dataset) if row.dataset else None
        if row.verdict == "not run" or settings is None or int(settings["version"]) != version \
                or int(settings.get("seed", 0)) != 0:
            continue
        found.setdefault((row.dataset, _budget_key(row.budget)), (row.budget, set()))[1].update(row.seeds)
    columns = []
    for (dataset, key), (budget, seeds) in sorted(found.items()):
        about = (f"{dataset}, {budget_label(budget)}: this store's runs of the suite, training seed"
                 f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds)))} (n per claim: the seeds both "
                 f"arms ran).")
        columns.append(Column(f"{dataset}@{key}", f"v{version}: {dataset}", version, STORE, "seeds", (dataset,),
                              budget, about))
    return columns


def _worlds_columns(suite: str, rows: list[AccuracyVerdict], diffs: dict, designs: list[tuple[str, ...]],
                    version: int, pending: tuple[str, ...] | None) -> list[Column]:
    """The over-worlds columns of ``version``: one per design of several worlds and budget at which a world
    drawn again (generator seed other than 0) has a pair at training seed 0; and, where there is none, one for
    the ``pending`` design (the version has no over-worlds column yet), at its first world's budget, whose
    cells say how many worlds have run and whose legend names the commands."""
    columns = []
    for design in (d for d in designs if len(d) > 1):
        at_seed_0 = {(dataset, steps, batch) for row in rows for (dataset, steps, batch), by_seed in
                     diffs[row.id].items() if dataset in design and 0 in by_seed}
        budgets = {(steps, batch) for dataset, steps, batch in at_seed_0 if dataset != design[0]}
        if not budgets and design == pending:
            budgets = {(steps, batch) for dataset, steps, batch in at_seed_0} or {(None, None)}
            budgets = {min(budgets, key=lambda b: (b[0] or 0, b[1] or 0))}
        for steps, batch in sorted(budgets, key=lambda b: (b[0] or 0, b[1] or 0)):
            budget = {"steps": steps, "batch": batch} if steps is not None else None
            how = (f"{design[0]}'s runs at training seed 0 and `run_all.py --suite {suite} --dataset NAME --seeds 1` "
                   f"for {' and '.join(design[1:])}")
            about = (f"{', '.join(design)}, {budget_label(budget)}: this store's runs, each world's difference at "
                     f"training seed 0; mean and 95% t-interval over the {len(design)} worlds once all have run "
                     f"({how}).")
            columns.append(Column(f"v{version}-worlds-{design[0]}@{_budget_key(budget)}",
                                  f"v{version} over {len(design)} worlds", version, STORE, "worlds", design, budget,
                                  about))
    return columns


def _not_run_column(suite: str, version: int, dataset: str) -> Column:
    """The column of a version with neither recorded numbers nor runs: ``not run``, and the command."""
    return Column(f"v{version}-{dataset}-not-run", f"v{version}: {dataset}", version, STORE, "seeds", (dataset,),
                  None, f"{dataset}: no runs of the suite in this store yet (`run_all.py --suite {suite} --dataset "
                        f"{dataset}`).")


def _mark_budgets(columns: list[Column]) -> None:
    """Two columns of one header (a world at two budgets) name their budgets in it."""
    headers = [c.header for c in columns]
    for i, column in enumerate(columns):
        if headers.count(column.header) > 1:
            columns[i] = dataclasses.replace(column, header=f"{column.header} at {budget_label(column.budget)}")


def _cell(column: Column, row: AccuracyVerdict, ladder: list[AccuracyVerdict], diffs: dict,
          arms: dict[str, Claim], numbers: MiniatureNumbers) -> Cell:
    """Claim ``row.id``'s cell in ``column``: recorded, this store's verdict row (``ladder``: the suite's claims'
    rows), or the over-worlds difference at training seed 0 (``diffs``: ``scorecard.seed_differences`` per claim)."""
    if column.source == RECORDED:
        m = next(m for m in numbers.recorded if m.id == column.key)
        got = m.claims.get(row.id)
        if got is None:
            return Cell(_not_recorded(m, arms.get(row.id)), "not recorded")
        return Cell(f"{interval_text(got.effect, got.low, got.high)} {got.verdict}", got.verdict, got.effect, got.low,
                    got.high, m.n, got.per_world)
    if column.kind == "seeds":  # this store's verdict of the claim on the column's world and budget
        found = next((r for r in ladder if r.id == row.id and r.dataset == column.datasets[0] and r.verdict != "not run"
                      and _budget_key(r.budget) == _budget_key(column.budget)), None)
        if found is None:
            return Cell("not run", "not run")
        return Cell(f"{interval_text(*found.interval)} {found.verdict}", found.verdict, found.diff_mean, found.ci_low,
                    found.ci_high, found.n)
    steps, batch = (column.budget or {}).get("steps"), (column.budget or {}).get("batch")
    at_seed_0 = {w: diffs[row.id][(w, steps, batch)][0] for w in column.datasets
                 if 0 in diffs[row.id].get((w, steps, batch), {})}
    if len(at_seed_0) < len(column.datasets):
        return Cell(f"not run ({len(at_seed_0)} of {len(column.datasets)} worlds)", "not run",
                    per_world=at_seed_0 or None)
    over = paired_verdict([at_seed_0[w] for w in column.datasets], row.direction)
    return Cell(f"{interval_text(over.diff_mean, over.ci_low, over.ci_high)} {over.verdict}", over.verdict,
                over.diff_mean, over.ci_low, over.ci_high, over.n, at_seed_0)


def _not_recorded(m: Recorded, claim: Claim | None) -> str:
    """'not recorded', with the arms' recorded means where the README kept only the variants' rows (v1)."""
    if claim is None or claim.arm.set or claim.baseline.set:
        return "not recorded"
    arm, base = (m.variants.get(a.method) for a in (claim.arm, claim.baseline))
    key = ACCURACY_METRICS[claim.metric]
    if arm is None or base is None or not hasattr(arm, key):
        return "not recorded"
    a, b = getattr(arm, key), getattr(base, key)
    return f"not recorded (arms {mean_std(a.mean, a.std)} vs {mean_std(b.mean, b.std)})"


def _note(m: Recorded) -> str:
    """A recorded measurement kept out of the table (a partial re-measurement), as one line under it."""
    effects = "; ".join(f"`{cid}` {interval_text(c.effect, c.low, c.high)} {c.verdict}" for cid, c in m.claims.items())
    return (f"Also recorded, v{m.world_version} on {', '.join(m.datasets)} ({budget_label(m.budget)}, n = {m.n}, "
            f"measured {m.measured}, README \"{m.readme_section}\", commit {m.recorded_in.commit}; {m.command}; "
            f"{m.machine}): {effects}" + (f". {m.caveat[0].upper()}{m.caveat[1:]}" if m.caveat else "") + ".")


def _frame(table: MiniatureTable) -> pd.DataFrame:
    data = {"Claim": [r.id for r in table.rows], "Paper says": [claimed_cell(r) for r in table.rows]}
    for column in table.columns:
        data[column.header] = [table.cells[r.id, column.key].text for r in table.rows]
    return pd.DataFrame(data)


def table_record(table: MiniatureTable) -> dict:
    """The table as ``miniatures.json`` holds it: the columns (source, kind, datasets, budget, provenance) and
    per claim each column's cell (text, verdict, effect, low, high, n, per_world)."""
    return {"suite": table.suite, "reading": READING,
            "designs": {f"v{version}": text for version, text in table.designs.items()},
            "columns": [dataclasses.asdict(c) for c in table.columns],
            "claims": [{"id": r.id, "sentence": r.sentence, "metric": r.metric, "direction": r.direction,
                        "cells": {c.key: dataclasses.asdict(table.cells[r.id, c.key]) for c in table.columns}}
                       for r in table.rows],
            "notes": table.notes}


def write_miniatures(table: MiniatureTable, out_dir: Path) -> list[str]:
    """Write miniatures.md/.tex/.json into ``out_dir``; return the README's section."""
    frame = _frame(table)
    legend = [f"How to read it: {READING}", "", "The miniatures:", "",
              *(f"- v{version}: {text}" for version, text in table.designs.items()), "", "The columns:", "",
              *(f"- **{c.header}**: {c.about}" for c in table.columns), ""]
    legend += [*table.notes, ""] if table.notes else []
    (out_dir / "miniatures.md").write_text("\n".join([f"# The claims across miniatures: suite `{table.suite}`", "",
                                                      to_markdown(frame), *legend]))
    tex = frame.rename(columns=lambda header: header.replace("_", r"\_"))  # to_latex escapes the cells only
    (out_dir / "miniatures.tex").write_text(to_latex(tex, f"The ladder's claims across miniatures (suite "
                                                          f"{table.suite})", f"tab:{table.suite}-miniatures"))
    atomic_write_json(table_record(table), out_dir / "miniatures.json")
    return ["## The claims across miniatures: [markdown](miniatures.md), [LaTeX](miniatures.tex), "
            "[JSON](miniatures.json)", "", to_markdown(frame), *legend]
