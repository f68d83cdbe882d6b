#!/usr/bin/env bash
# The prepared device check of issue 30, to run once on a machine with a GPU (at most 10 minutes):
#
#   bash tools/gpu_check.sh [OUT_DIR]             # on the GPU: writes OUT_DIR/gpu_check.json (+ logs/)
#   bash tools/gpu_check.sh --dry-run [OUT_DIR]   # the same steps on the CPU at tiny sizes
#
# Steps, results and options: tools/gpu_check.py (--help). Exit status 0 when every step passed.
# PYTHON names the interpreter (default: python3); nothing is downloaded.
set -u
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
limit=600  # the whole check, hard: the driver's own budget (570 s) ends it first and writes the JSON
for arg in "$@"; do
    [ "$arg" = "--dry-run" ] && limit=1500
done
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --kill-after=10 "$limit" "${PYTHON:-python3}" "$repo/tools/gpu_check.py" "$@"
