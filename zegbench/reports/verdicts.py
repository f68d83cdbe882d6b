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
"""
from __future__ import annotations

import math
import statistics

from scipy.stats import t as student_t

CONFIDENCE = 0.95


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


def paired_verdict(diffs: list[float], direction: str) -> dict:
    """Mean paired difference, its 95% t-interval over ``len(diffs)`` pairs, and the verdict.

    One pair gives no interval: inconclusive (n < 2), the difference still reported.
    """
    n = len(diffs)
    if n == 0:
        raise ValueError("paired_verdict needs at least one pair")
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"n": 1, "diff_mean": mean, "ci_low": None, "ci_high": None, "verdict": "inconclusive",
                "reason": "n < 2: one seed gives no interval"}
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * statistics.stdev(diffs) / math.sqrt(n)
    verdict, reason = judge(mean - half, mean + half, direction)
    return {"n": n, "diff_mean": mean, "ci_low": mean - half, "ci_high": mean + half, "verdict": verdict,
            "reason": reason}


def one_seed_reason(low: float, high: float, direction: str) -> str:
    """The reason of a one-seed claim that has an interval over images: where that interval lies, and that it
    is no evidence over training (the verdict stays inconclusive)."""
    _, where = judge(low, high, direction, what="the interval over images")
    return (f"one seed: image interval only: {where} (test-set sampling of this seed's two models, "
            f"not training variance)")


def ratio_verdict(ratio: float, low: float, high: float, direction: str, threshold: float, n: int | None) -> dict:
    """A cost ratio with its spread [low, high] against the claim's ``threshold``.

    ``n``: timed calls per arm (None for an exact count such as GMACs, whose spread is the ratio itself).
    """
    verdict, reason = judge(low, high, direction, threshold, "the exact ratio" if low == high else "the interval")
    return {"n": n, "diff_mean": ratio, "ci_low": low, "ci_high": high, "verdict": verdict, "reason": reason}
