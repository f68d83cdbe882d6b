"""The README's pytest-benchmark command times its benchmarks and writes their stats, and ``-n`` still
hands each xdist worker whole files (tests/conftest.py's ``pytest_cmdline_main``).

Both run pytest in a subprocess from the repository root, as a user would. pytest-benchmark disables
every benchmark when it believes xdist is active, and says so only in a warning at the very end:
the tests pass and no JSON is written. These tests fail instead.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_BENCHMARK = "tests/bench/test_world_bench.py::test_render_scene"  # about a second of timing


def _documented_command() -> list[str]:
    """The README's benchmark command, as its words."""
    found = re.search(r"^python -m pytest tests/bench --benchmark-enable --benchmark-json=.*$",
                      (ROOT / "README.md").read_text(), re.MULTILINE)
    assert found, "README.md no longer shows the pytest-benchmark command this test runs"
    return shlex.split(found.group(0).split("--benchmark-json=")[0])


def _pytest(args: list[str]) -> subprocess.CompletedProcess:
    # Not this session's xdist worker identity or options: pytest-benchmark reads PYTEST_XDIST_WORKER.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # -p no:cacheprovider: the run writes no .pytest_cache into the repository.
    return subprocess.run([sys.executable, *args, "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_documented_benchmark_command_records_stats(tmp_path):
    words = _documented_command()
    assert words[:4] == ["python", "-m", "pytest", "tests/bench"]
    report = tmp_path / "bench.json"
    done = _pytest([*words[1:3], ONE_BENCHMARK, *words[4:], f"--benchmark-json={report}"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "automatically disabled" not in done.stdout + done.stderr
    assert report.is_file(), "no benchmark JSON written:\n" + done.stdout + done.stderr
    benchmarks = json.loads(report.read_text())["benchmarks"]
    assert [b["name"] for b in benchmarks] == ["test_render_scene"]
    stats = benchmarks[0]["stats"]
    assert stats["rounds"] >= 1 and stats["mean"] > 0


def test_xdist_workers_still_take_whole_files():
    done = _pytest(["-m", "pytest", "-n", "1", "-v", ONE_BENCHMARK])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scheduling tests via LoadFileScheduling" in done.stdout
