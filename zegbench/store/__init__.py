"""The run store: the folders runs and speed records live in, and the records they hold.

Everything that knows the layout of ``<results>/<suite>/<run>/`` is here, below the
harness (which trains and writes runs) and the reports (which only read them): neither
builds a run folder's path or parses its files itself. Importing it needs no torch.
"""
from zegbench.store.hashing import short_hash
from zegbench.store.image_counts import (
    ImageCounts,
    inspect_image_counts,
    read_image_counts,
    scores_from_counts,
    write_image_counts,
)
from zegbench.store.layout import (
    RunFolder,
    RunStore,
    SuiteRun,
    failure_line,
    prepare_for_training,
    read_config,
    read_json,
    record_failure,
    run_status,
)
from zegbench.store.result import RESULT_METRICS, RESULT_SCHEMA, RunResult, inspect_result, read_result, write_result

__all__ = ["RESULT_METRICS", "RESULT_SCHEMA", "ImageCounts", "RunFolder", "RunResult", "RunStore", "SuiteRun",
           "failure_line", "inspect_image_counts", "inspect_result", "prepare_for_training", "read_config",
           "read_image_counts", "read_json", "read_result", "record_failure", "run_status", "scores_from_counts",
           "short_hash", "write_image_counts", "write_result"]
