"""The allowed range of each kind of config value, as type hints the config schemas read.

A method's ``__init__`` signature, ``TrainConfig`` and the dataset schema use these hints;
``engine.config`` (method and training keys) and ``datasets.catalog`` (dataset files) build
pydantic schemas from them, so a value out of its range is one error line at resolve time,
before anything runs or is written. The hints only check: a value in range reaches the code
(and the run's hash) exactly as it was given.

Every float is finite: NaN and infinity compare false or overflow wherever they go (a NaN
calibration subtracts NaN from every seen score, and the run still finishes).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

Count = Annotated[int, Field(ge=1)]  # how many of something the code builds or loops over: at least one
NonNegativeInt = Annotated[int, Field(ge=0)]  # a number of steps, or an interval where 0 means "none"
Finite = Annotated[float, Field(allow_inf_nan=False)]  # any sign (a bias, an offset)
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # a weight or multiplier; 0 switches it off
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # a learning rate, a scale, a ratio
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # a probability or a share of a whole
