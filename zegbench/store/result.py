"""A run's ``result.json`` (accuracy runs; speed records have their own): a typed record, its writer and its reader.

A finished run's record is sound when it parses, is schema ``RESULT_SCHEMA`` with status
"finished", its metrics are numbers (or null), it has per-class IoUs, and its config hash is
its folder's. Anything else is damaged: the harness sets it aside and evaluates the run again,
and the reports leave it out, so a hand-edited or truncated file can never reach a table, a
plot or a verdict.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zegbench.utils.io import atomic_write_json

RESULT_SCHEMA = 1
RESULT_METRICS = ("pAcc", "mIoU", "mIoU_seen", "mIoU_unseen", "hIoU")
RESULT_FILE = "result.json"

# Strict: a metric written as "12.5" or true is damage, not a number to coerce.
Metric = Annotated[float | None, Field(strict=True)]


class RunResult(BaseModel):
    """The record of one finished run, as ``result.json`` holds it (percent metrics; None when undefined).

    Required: what a report cannot do without (schema, status, the config hash that ties the
    record to its folder, the metrics and per-class IoUs). The harness writes every other field
    too; they are optional only so that a record written by hand for a test reads as sound.
    Unknown keys are kept (a newer harness may add some).
    """

    model_config = ConfigDict(extra="allow")

    schema_: Literal[1] = Field(alias="schema")
    status: Literal["finished"]
    method: str | None = None
    dataset: str | None = None
    seed: Annotated[int | None, Field(strict=True)] = None
    setting: str = "inductive"  # 'inductive' or 'transductive'
    config_hash: str
    pAcc: Metric
    mIoU: Metric
    mIoU_seen: Metric
    mIoU_unseen: Metric
    hIoU: Metric
    per_class: dict[str, Metric]
    params_total: int | None = None
    params_trainable: int | None = None
    # The official code's count of the same model (ZegCLIP: + the decoder's built, never used self-attention)
    params_trainable_official: int | None = None
    train_seconds: float | None = None  # of the donor when the weights were trained by another run
    total_seconds: float | None = None
    inference: str | None = None  # the method's inference mode, e.g. 'whole' or 'slide'
    device: str | None = None
    world_size: int | None = None
    dataset_split: str | None = None  # identity.split_fingerprint: which class list and unseen split
    trained_by: str | None = None  # '<suite>/<run folder>' whose weights were evaluated (inference-only variants)
    cross_dataset: dict[str, dict[str, Any]] | None = None  # dataset -> {mIoU, pAcc, per_class}
    # {"kind": "cuda_allocated" | "cpu_peak_rss", "train_gib", "eval_gib"[, reserved on CUDA]} (engine/memory.py)
    memory: dict[str, Any] | None = None
    checkpoint_selection: str | None = None  # 'last': the final step's weights, never chosen on the evaluation set
    evaluated_step: int | None = None  # the training step whose weights were evaluated (0: training-free)

    def metric(self, key: str) -> float | None:
        """A metric by its ``result.json`` key (e.g. a claim's ``mIoU_unseen``)."""
        if key not in RESULT_METRICS:
            raise KeyError(f"{key!r} is not a result metric; one of {RESULT_METRICS}")
        return getattr(self, key)

    def to_record(self) -> dict:
        """The mapping ``result.json`` holds: the keys the record was made with, in the schema's order."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def _problem(err: ValidationError, record: dict) -> str:
    """One line for the first thing wrong in a record pydantic rejected."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return f"key {key!r} is missing"
    top = first["loc"][0]
    value = record.get(top, first.get("input")) if len(first["loc"]) == 1 else first.get("input")
    if top in RESULT_METRICS or top == "per_class":
        return f"key {key!r} is {value!r}, not a number or null"
    return f"key {key!r} is {value!r}: {first['msg']}"


def inspect_result(run_dir: Path) -> tuple[RunResult | None, str | None]:
    """(record, None) for a sound result.json, (None, what is wrong) for a damaged one, (None, None) for none."""
    path = run_dir / RESULT_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable JSON: {str(err).splitlines()[0]}"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if record.get("schema") != RESULT_SCHEMA or record.get("status") != "finished":
        return None, f"schema {record.get('schema')!r} status {record.get('status')!r}, not {RESULT_SCHEMA} 'finished'"
    if not isinstance(record.get("per_class"), dict):
        return None, "key 'per_class' is missing or not a mapping"
    try:
        result = RunResult.model_validate(record)
    except ValidationError as err:
        return None, _problem(err, record)
    if not run_dir.name.endswith(f"-{result.config_hash}"):  # copied from, or edited to, another run
        return None, f"config_hash {result.config_hash!r} is not this folder's"
    return result, None


def read_result(run_dir: Path) -> RunResult | None:
    """The record of a finished run, or None when ``run_dir`` has no sound ``result.json``
    (none yet, or a damaged one: cut short, not JSON, keys missing, of the wrong type or another run's)."""
    return inspect_result(run_dir)[0]


def write_result(run_dir: Path, record: dict) -> RunResult:
    """Check ``record`` against the schema and write it as ``run_dir/result.json``, atomically (written
    last: its presence means "finished"). The record goes through JSON first, so numpy numbers and
    tuples are checked as the reader will see them."""
    result = RunResult.model_validate(json.loads(json.dumps(record)))
    atomic_write_json(result.to_record(), run_dir / RESULT_FILE)
    return result
