"""Typed checks of suite files (``suites/NAME.yaml``): ``SuiteConfig``, its run groups and speed targets.

Validated with pydantic before anything runs; a failure is one ``ZegbenchError`` line naming the file and key.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zegbench.utils.ranges import Count, NonNegativeInt

STRICT = ConfigDict(extra="forbid")


class RunGroup(BaseModel):
    """Runs of a suite: every method x every combination of ``grid`` values, with ``set`` applied."""

    model_config = STRICT
    name: str | None = None
    methods: list[str] = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    datasets: list[str] | None = None  # default: the suite's dataset
    seeds: list[NonNegativeInt] | None = None  # default: the suite's seeds
    eval_datasets: list[str] = Field(default_factory=list)  # also evaluate each trained model on these (cross-dataset)


class SpeedTarget(BaseModel):
    """Speed measurements of ``methods`` as configured for ``dataset`` (see ``engine/speed.py``)."""

    model_config = STRICT
    dataset: str
    methods: list[str] = Field(min_length=1)
    whole: tuple[Count, Count]  # (H, W) of the fixed input: one forward pass, FLOPs counted here
    test: tuple[Count, Count] | None = None  # a typical test image, through each method's test-time protocol
    random_weights: bool = False  # real-scale speed needs no downloaded weights
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: timed under autocast (on GPUs with bf16 units)
    encoder_baseline: bool = True  # also time the methods' speed baselines (ZegCLIP's: its bare CLIP image encoder)
    warmup: NonNegativeInt = 2
    repeats: Count = 10
    profile: bool = False  # add the top ops by self time, CPU or (on CUDA) GPU kernels: where the time goes


class SuiteConfig(BaseModel):
    """A suite file (``suites/NAME.yaml``): a grid of runs, a union of other suites (``include``), or speed targets."""

    model_config = STRICT
    description: str = ""
    kind: Literal["runs", "speed"] = "runs"  # train + evaluate, or measure speed (``targets``)
    dataset: str = "world"
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [0])
    groups: list[RunGroup] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    targets: list[SpeedTarget] = Field(default_factory=list)
