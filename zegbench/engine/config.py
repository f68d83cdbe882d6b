"""A run's training settings (``TrainConfig``) and the typed checks of its method and training keys.

Configs stay plain YAML; before anything runs they are validated with pydantic
against schemas derived from the code itself, so a schema never drifts from
what it describes:

- method keys: the implementing class's ``__init__`` signature (names, type
  hints, defaults);
- training keys: the fields of ``TrainConfig``.

Type hints carry each value's range (``utils/ranges.py``: ``Count``, ``Fraction``, ...), so a
value out of range fails here too. A failure is one ``ZegbenchError`` line naming the file (or
layer), the key and the allowed range.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from zegbench.errors import validation_error
from zegbench.utils.ranges import Count, Fraction, NonNegative, NonNegativeInt, Positive

STRICT = ConfigDict(extra="forbid")


@lru_cache(maxsize=None)
def schema_for_class(cls: type) -> type[BaseModel]:
    """A pydantic model of ``cls.__init__``'s keyword arguments (unknown keys forbidden)."""
    hints = typing.get_type_hints(cls.__init__, include_extras=True)  # keep the Annotated ranges (Count, ...)
    spec: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        spec[name] = (hints.get(name, Any), default)
    return create_model(f"{cls.__name__}Config", __config__=STRICT, **spec)


@lru_cache(maxsize=None)
def train_schema() -> type[BaseModel]:
    """A pydantic model of ``TrainConfig``'s fields, their ranges included (``Count``, ...)."""
    hints = typing.get_type_hints(TrainConfig, include_extras=True)
    return create_model("TrainConfigSchema", __config__=STRICT,
                        **{f.name: (hints[f.name], f.default) for f in fields(TrainConfig)})


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

    steps: Count = 400
    batch_size: Count = 8  # images per forward pass
    accumulate: Count = 1  # forward passes per optimiser step (global batch = batch_size x accumulate)
    lr: Positive = 2e-5  # base lr; methods multiply it per group (ZegCLIP: x10 encoder and head)
    weight_decay: NonNegative = 0.01
    warmup: NonNegativeInt = 40  # 0: no warm-up
    warmup_ratio: Fraction = 1e-6  # the warm-up starts at this share of each group's lr
    power: NonNegative = 0.9  # poly decay (1 - t) ** power; a negative power would grow the lr to the end
    min_lr: NonNegative = 1e-6
    self_training_start: Fraction = 0.5  # transductive: fraction of steps before pseudo-labels
    # fresh: self-training starts a new AdamW, as the official second run (--load-from loads weights
    # only); continue: keep the inductive phase's moment estimates.
    self_training_optimizer: Literal["fresh", "continue"] = "fresh"
    log_every: Count = 10
    checkpoint_every: NonNegativeInt = 0  # 0: only at the end
    seed: NonNegativeInt = 0  # numpy's generators take no negative seed
    # The official code trains in fp32 (no fp16 key in ZegCLIP's configs); bf16 autocast is an
    # opt-in that is faster on GPUs with bf16 units and may move the numbers.
    precision: Literal["fp32", "bf16"] = "fp32"
    # Intra-op CPU threads of the run's process (torch.set_num_threads; engine/run.py sets them). The
    # thread count changes the order of float sums, so it is fixed and part of the run's identity rather
    # than taken from the machine's cores; on a GPU it bounds only the CPU-side ops.
    threads: Count = 1
