"""A run's training settings (``TrainConfig``) and the typed checks of its method and training keys.

Configs stay plain YAML; before anything runs they are validated with pydantic
against schemas derived from the code itself, so a schema never drifts from
what it describes:

- method keys: the implementing class's ``__init__`` signature (names, type
  hints, defaults);
- training keys: the fields of ``TrainConfig``;

A failure is one ``ZegbenchError`` line naming the file (or layer) and the key.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from zegbench.errors import validation_error

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
        raise validation_error(err, lambda key: origin.get(key, "the config"), f"{what} key", schema) from None
    typed = model.model_dump()
    return {k: typed[k] for k in values}


@dataclass
class TrainConfig:
    """Optimisation settings (hyperparameters are data: see configs)."""

    steps: int = 400
    batch_size: int = 8  # images per forward pass
    accumulate: int = 1  # forward passes per optimiser step (global batch = batch_size x accumulate)
    lr: float = 2e-5  # base lr; methods multiply it per group (ZegCLIP: x10 encoder and head)
    weight_decay: float = 0.01
    warmup: int = 40
    warmup_ratio: float = 1e-6
    power: float = 0.9
    min_lr: float = 1e-6
    self_training_start: float = 0.5  # transductive: fraction of steps before pseudo-labels
    # fresh: self-training starts a new AdamW, as the official second run (--load-from loads weights
    # only); continue: keep the inductive phase's moment estimates.
    self_training_optimizer: Literal["fresh", "continue"] = "fresh"
    log_every: int = 10
    checkpoint_every: int = 0  # 0: only at the end
    seed: int = 0
    # The official code trains in fp32 (no fp16 key in ZegCLIP's configs); bf16 autocast is an
    # opt-in that is faster on GPUs with bf16 units and may move the numbers.
    precision: Literal["fp32", "bf16"] = "fp32"
    # Intra-op CPU threads of the run's process (torch.set_num_threads; engine/run.py sets them). The
    # thread count changes the order of float sums, so it is fixed and part of the run's identity rather
    # than taken from the machine's cores; on a GPU it bounds only the CPU-side ops.
    threads: int = field(default=1, metadata={"ge": 1})
