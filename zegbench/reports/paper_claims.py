"""The paper's claims as data: ``claims/*.yaml`` of the config folders, read and checked before any verdict.

(Not to be confused with ``zegbench.utils.locks``, which holds runs' file locks.)

A claim compares two arms, each a registered method variant (``methods/``)
with optional overrides, on one metric, in the direction the paper states:

- accuracy metrics (``miou_seen``, ``miou_unseen``, ``hiou``, ``pacc``): the effect
  is the paired difference arm - baseline in points, claimed above 0 (``increase``)
  or below 0 (``decrease``);
- speed metrics (``latency``, ``gmacs``): the effect is the cost ratio arm / baseline
  from the speed suite's records, claimed above (``increase``) or below
  (``decrease``) ``threshold``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zegbench.config_dirs import config_files
from zegbench.errors import ZegbenchError, validation_error
from zegbench.reports.variants import variant_label
from zegbench.utils.io import read_yaml_mapping

STRICT = ConfigDict(extra="forbid")
# Claim metric -> result.json key (accuracy) or speed-record quantity.
ACCURACY_METRICS = {"miou_seen": "mIoU_seen", "miou_unseen": "mIoU_unseen", "hiou": "hIoU", "pacc": "pAcc"}
SPEED_METRICS = {"latency": "latency_ms", "gmacs": "gmacs"}
METRIC_LABELS = {"miou_seen": "mIoU(S)", "miou_unseen": "mIoU(U)", "hiou": "hIoU", "pacc": "pAcc",
                 "latency": "latency", "gmacs": "GMACs"}


class Arm(BaseModel):
    """A method variant: a registry name and the overrides that make it (``set``, as in a suite group)."""

    model_config = STRICT
    method: str
    set: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return variant_label(self.method, self.set)


class PaperEffect(BaseModel):
    """The paper's own effect size: a difference in points, or a cost ratio for speed claims."""

    model_config = STRICT
    value: float
    source: str  # the table and the cell(s) it is computed from
    verified: bool = True  # false: the reference could not re-check the numbers (marked with a dagger)


class SpeedInput(BaseModel):
    """Which speed records a speed claim reads: dataset, the ``whole`` input size, precision."""

    model_config = STRICT
    dataset: str
    input: tuple[int, int]
    precision: Literal["fp32", "bf16"] = "fp32"


class Claim(BaseModel):
    model_config = STRICT
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    sentence: str
    arm: Arm
    baseline: Arm
    metric: Literal["miou_seen", "miou_unseen", "hiou", "pacc", "latency", "gmacs"]
    direction: Literal["increase", "decrease"]
    suite: str  # the suite that runs both arms (named when they have not run)
    threshold: float | None = None  # speed claims: the ratio the claim is about
    speed: SpeedInput | None = None  # speed claims: which records
    paper_effect: PaperEffect | None = None

    @model_validator(mode="before")
    @classmethod
    def _arm_names(cls, data):
        """An arm may be written as a bare registry name."""
        if isinstance(data, dict):
            data = {**data, **{k: {"method": data[k]} for k in ("arm", "baseline") if isinstance(data.get(k), str)}}
        return data

    @model_validator(mode="after")
    def _speed_fields(self):
        is_speed = self.metric in SPEED_METRICS
        if is_speed and (self.threshold is None or self.speed is None):
            raise ValueError("a speed claim needs 'threshold' (the ratio arm / baseline) and 'speed' (which records)")
        if not is_speed and (self.threshold is not None or self.speed is not None):
            raise ValueError("'threshold' and 'speed' belong to speed claims (metric latency or gmacs) only")
        return self

    @property
    def is_speed(self) -> bool:
        return self.metric in SPEED_METRICS


class ClaimsFile(BaseModel):
    model_config = STRICT
    description: str = ""
    claims: list[Claim] = Field(min_length=1)


def read_claims(folder: Path | None = None) -> list[tuple[Path, Claim]]:
    """(file, claim) for every claim of every ``*.yaml`` in ``folder`` (default: ``claims/`` of every config
    folder), in the schema above, ids unique. Whether the arms name registered methods and suites is the
    harness's check (``harness.claim_check.load_claims``): the reports know no registry."""
    claims: list[tuple[Path, Claim]] = []
    paths = sorted(folder.glob("*.yaml")) if folder is not None else config_files("claims").values()
    for path in paths:
        try:
            parsed = ClaimsFile.model_validate(read_yaml_mapping(path))
        except ValidationError as err:
            raise validation_error(err, str(path), schema=ClaimsFile) from None
        for claim in parsed.claims:
            if any(c.id == claim.id for _, c in claims):
                raise ZegbenchError(f"{path}: claim id '{claim.id}' is used twice: ids must be unique")
            claims.append((path, claim))
    return claims
