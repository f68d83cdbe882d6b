"""Running a tiny suite through ``run_all.py`` in a subprocess, as a user would: shared by the
crash-safety tests (test_reliability.py) and the store's fault tests (test_store_faults.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ("dataset: world_smoke\nseeds: [0]\ngroups:\n"
         "  - methods: [zegclip]\n    set: {steps: 6, batch_size: 2, warmup: 1, log_every: 1}\n")
COMPARED = ("pAcc", "mIoU_seen", "mIoU_unseen", "hIoU", "per_class")


def suite_file(tmp_path: Path, text: str = SUITE) -> Path:
    """Write suite ``text`` (named ``rel``) into ``tmp_path``."""
    path = tmp_path / "rel.yaml"
    path.write_text(text)
    return path


def run_all_command(suite: Path, results: Path, *options: str) -> list[str]:
    """The command line of ``run_all.py`` on ``suite``, with store ``results`` and reports beside it (run from ROOT)."""
    return [sys.executable, "run_all.py", "--suite", str(suite), "--results", str(results),
            "--reports", str(results / "reports"), *options]


def run_all(suite: Path, results: Path, *options: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """Run ``run_all_command``; ``fault`` sets ZEGBENCH_FAULT (zegbench.utils.faults)."""
    env = {k: v for k, v in os.environ.items() if k != "ZEGBENCH_FAULT"}
    if fault:
        env["ZEGBENCH_FAULT"] = fault
    return subprocess.run(run_all_command(suite, results, *options), cwd=ROOT, env=env, capture_output=True,
                          text=True)


def finished(results: Path, suite: str = "rel") -> list[Path]:
    """The suite's finished runs: their result.json files."""
    return sorted(results.glob(f"{suite}/*/result.json"))


def losses(run_dir: Path) -> list[float]:
    """The training losses a run logged, step by step."""
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def log_without_wall_time(run_dir: Path) -> list[dict]:
    """A run's training log, every field but ``seconds`` (wall time, which differs between any two runs)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]
