"""What a variant is called in every report: ``method[key=value,...]``, built here and nowhere else.

A suite's run (``runs.runs_frame``), a claim's arm (``paper_claims.Arm``), a budget curve
(``build.py``, its budget keys left out) and a leaderboard setting (``leaderboard.py``, its keys
off the recipe) are all named by ``variant_label``; only the keys each passes differ.
No pandas here: the claims' schema imports it before a command has anything to report.
"""
from __future__ import annotations

from collections.abc import Mapping

# Overrides that set a run's training budget (the steps and the batch), not its variant: a claim pairs
# runs within one budget, and a budget curve draws one variant across budgets.
BUDGET_KEYS = ("steps", "batch_size")


def variant_label(method: str, keys: Mapping[str, object]) -> str:
    """``method`` alone, or ``method[k1=v1,k2=v2]`` for the keys that tell this variant apart (in their
    order; each value as ``str`` gives it, so a caller that shows a list otherwise passes it as text)."""
    extra = ",".join(f"{key}={value}" for key, value in keys.items())
    return f"{method}[{extra}]" if extra else method
