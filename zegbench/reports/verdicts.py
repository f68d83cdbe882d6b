"""A claim's verdict from its effect and interval: reproduces, contradicts or inconclusive (and why).

Accuracy claims: the mean of paired differences (arm - baseline, one pair per
seed) with a 95% t-interval over the seeds. Speed claims: a cost ratio with the
spread of single calls. Either way the claim reproduces when the whole interval
lies on the paper's side of the reference (0 for a difference, the claim's
threshold for a ratio), contradicts when it lies wholly on the other side, and
is inconclusive when it covers the reference or cannot be computed.

An accuracy claim also carries, per seed, the paired bootstrap's interval over test images
(``reports/bootstrap.py``). It never decides a verdict: it measures how the difference between two
trained models moves with the test set, not how it moves when the models are trained again. With
one seed the verdict stays inconclusive and says that the image interval is all there is
(``one_seed_reason``): a qualifier, not a verdict of its own, so that ``reproduces`` and
``contradicts`` always mean evidence over training seeds.

The scorecard's rows are typed: an ``AccuracyVerdict`` (a paired difference in points, per dataset and
budget) or a ``SpeedVerdict`` (a cost ratio, named ``ratio``), each what ``claims.json`` holds of it.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """An accuracy claim's effect over seeds: the mean of ``n`` paired differences arm - baseline (points), its
    95% t-interval (None with one pair) and the verdict with its reason."""

    n: int
    diff_mean: float
    ci_low: float | None
    ci_high: float | None
    verdict: str
    reason: str


@dataclass(frozen=True)
class CostRatio:
    """A speed claim's effect: the cost ratio arm / baseline with its spread (equal to it for an exact count),
    ``n`` timed calls per arm (None for an exact count) and the verdict with its reason."""

    n: int | None
    ratio: float
    ratio_low: float
    ratio_high: float
    verdict: str
    reason: str


@dataclass(frozen=True)
class ClaimFacts:
    """What each verdict row repeats of its claim (``paper_claims.Claim``)."""

    id: str
    sentence: str
    arms: dict[str, str]  # {"arm": label, "baseline": label}
    metric: str
    direction: str
    effect: str  # what the effect is: "difference arm - baseline (points)" or "ratio arm / baseline"
    threshold: float | None  # speed claims: the claimed ratio
    paper_effect: dict | None
    suite: str

    def to_record(self) -> dict:
        """The row as ``claims.json`` holds it (fields in their order)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AccuracyVerdict(ClaimFacts):
    """An accuracy claim on one dataset and budget: the paired difference over seeds (``PairedDifference``'s
    fields), and per seed the paired bootstrap over images or why there is none. A claim not run has no
    dataset, budget, seeds or difference."""

    # in claims.json's order, as the scorecard always wrote it: the intervals over images first
    image_intervals: list[dict]  # per seed: {"seed", "diff", "low", "high", "images", "resamples", "undefined"}
    image_missing: list[dict]  # per seed without one: {"seed", "reason"}
    dataset: str | None
    budget: dict | None  # {"steps": N, "batch": global batch}
    seeds: list[int]
    n: int
    diff_mean: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str
    reason: str

    @property
    def interval(self) -> tuple[float | None, float | None, float | None]:
        """(effect, low, high): the mean difference and its interval over seeds."""
        return self.diff_mean, self.ci_low, self.ci_high


@dataclass(frozen=True)
class SpeedVerdict(ClaimFacts):
    """A speed claim: the cost ratio of the newest pair of records on one machine (``CostRatio``'s fields),
    at its input (e.g. '512x512 fp32'). A claim not run has no dataset, input, machine or ratio."""

    dataset: str | None
    input: str | None
    machine: str | None
    n: int | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    verdict: str
    reason: str

    @property
    def interval(self) -> tuple[float | None, float | None, float | None]:
        """(effect, low, high): the ratio and its spread."""
        return self.ratio, self.ratio_low, self.ratio_high


Verdict = AccuracyVerdict | SpeedVerdict


def judge(low: float, high: float, direction: str, reference: float = 0.0,
          what: str = "the interval") -> tuple[str, str]:
    """(verdict, reason) for an interval [low, high] against ``reference`` and the claimed direction."""
    above, below = low > reference, high < reference
    if not (above or below):
        return "inconclusive", f"{what} covers {reference:g}"
    side = f"{what} lies {'above' if above else 'below'} {reference:g}"
    if (above and direction == "increase") or (below and direction == "decrease"):
        return "reproduces", f"{side}, the paper's side"
    return "contradicts", f"{side}, against the paper"


def paired_verdict(diffs: list[float], direction: str) -> PairedDifference:
    """Mean paired difference, its 95% t-interval over ``len(diffs)`` pairs, and the verdict.

    One pair gives no interval: inconclusive (n < 2), the difference still reported.
    """
    n = len(diffs)
    if n == 0:
        raise ValueError("paired_verdict needs at least one pair")
    mean = statistics.fmean(diffs)
    if n < 2:
        return PairedDifference(1, mean, None, None, "inconclusive", "n < 2: one seed gives no interval")
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    verdict, reason = judge(mean - half, mean + half, direction)
    return PairedDifference(n, mean, mean - half, mean + half, verdict, reason)


def one_seed_reason(low: float, high: float, direction: str) -> str:
    """The reason of a one-seed claim that has an interval over images: where that interval lies, and that it
    is no evidence over training (the verdict stays inconclusive)."""
    _, where = judge(low, high, direction, what="the interval over images")
    return (f"one seed: image interval only: {where} (test-set sampling of this seed's two models, "
            f"not training variance)")


def ratio_verdict(ratio: float, low: float, high: float, direction: str, threshold: float,
                  n: int | None) -> CostRatio:
    """A cost ratio with its spread [low, high] against the claim's ``threshold``.

    ``n``: timed calls per arm (None for an exact count such as GMACs, whose spread is the ratio itself).
    """
    verdict, reason = judge(low, high, direction, threshold, "the exact ratio" if low == high else "the interval")
    return CostRatio(n, ratio, low, high, verdict, reason)
