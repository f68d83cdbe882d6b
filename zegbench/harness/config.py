"""Typed checks for configs: a run's method and training keys, and suite files.

Configs stay plain YAML; before anything runs they are validated with pydantic
against schemas derived from the code itself, so a schema never drifts from
what it describes:

- method keys: the implementing class's ``__init__`` signature (names, type
  hints, defaults);
- training keys: the fields of ``TrainConfig``;
- suites: ``SuiteConfig`` below.

A failure is one ``ZegbenchError`` line naming the file (or layer) and the key.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import fields
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from zegbench.errors import ZegbenchError, validation_problem

STRICT = ConfigDict(extra="forbid")


@lru_cache(maxsize=None)
def schema_for_class(cls: type) -> type[BaseModel]:
    """A pydantic model of ``cls.__init__``'s keyword arguments (unknown keys forbidden)."""
    hints = typing.get_type_hints(cls.__init__, include_extras=True)  # keep Annotated ranges (PositiveFloat)
    spec: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        spec[name] = (hints.get(name, Any), default)
    return create_model(f"{cls.__name__}Config", __config__=STRICT, **spec)


@lru_cache(maxsize=None)
def train_schema() -> type[BaseModel]:
    """A pydantic model of ``TrainConfig``'s fields; a field's ``metadata`` holds its bounds (``{"ge": 1}``)."""
    from zegbench.harness.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    return create_model("TrainConfigSchema", __config__=STRICT,
                        **{f.name: (hints[f.name], Field(f.default, **f.metadata)) for f in fields(TrainConfig)})


def validate_keys(schema: type[BaseModel], values: dict, origin: dict[str, str], what: str) -> dict:
    """Validate ``values`` against ``schema``; ``origin`` maps each key to the file or layer that set it.

    Returns the values as the schema typed them (e.g. ``steps: 1500.0`` -> 1500).
    """
    try:
        model = schema.model_validate(values)
    except ValidationError as err:
        key, msg = validation_problem(err)
        where = origin.get(key.split(".")[0], "the config")
        raise ZegbenchError(f"{where}: {what} key '{key}': {msg}") from None
    typed = model.model_dump()
    return {k: typed[k] for k in values}


class RunGroup(BaseModel):
    """Runs of a suite: every method x every combination of ``grid`` values, with ``set`` applied."""

    model_config = STRICT
    name: str | None = None
    methods: list[str] = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    datasets: list[str] | None = None  # default: the suite's dataset
    seeds: list[int] | None = None  # default: the suite's seeds
    eval_datasets: list[str] = Field(default_factory=list)  # also evaluate each trained model on these (cross-dataset)


class SpeedTarget(BaseModel):
    """Speed measurements of ``methods`` as configured for ``dataset`` (see ``harness/speed.py``)."""

    model_config = STRICT
    dataset: str
    methods: list[str] = Field(min_length=1)
    whole: tuple[int, int]  # (H, W) of the fixed input: one forward pass, FLOPs counted here
    test: tuple[int, int] | None = None  # a typical test image, through each method's test-time protocol
    random_weights: bool = False  # real-scale speed needs no downloaded weights
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: timed under autocast (on GPUs with bf16 units)
    encoder_baseline: bool = True  # also time the methods' speed baselines (ZegCLIP's: its bare CLIP image encoder)
    warmup: int = Field(2, ge=0)
    repeats: int = Field(10, ge=1)
    profile: bool = False  # add the top ops by self time, CPU or (on CUDA) GPU kernels: where the time goes


class SuiteConfig(BaseModel):
    """A suite file (``suites/NAME.yaml``): a grid of runs, a union of other suites (``include``), or speed targets."""

    model_config = STRICT
    description: str = ""
    kind: Literal["runs", "speed"] = "runs"  # train + evaluate, or measure speed (``targets``)
    dataset: str = "world"
    seeds: list[int] = Field(default_factory=lambda: [0])
    groups: list[RunGroup] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    targets: list[SpeedTarget] = Field(default_factory=list)
