"""The command line: JSON last lines, and one clear error line (exit 2) for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from zegbench.cli import main


def _run(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "zegbench", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_world_describe_json_names_the_split(capsys):
    assert main(["world", "describe", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["classes"]) == 20 and all(c.endswith(" dotted") for c in out["unseen"])


def test_methods_list_shows_the_registry(capsys):
    assert main(["methods", "list", "zegclip_baseline*", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["methods"] == ["zegclip_baseline_fix", "zegclip_baseline_ft"]


@pytest.mark.parametrize("args,expected", [
    (["world", "generate", "--dataset", "atlantis"], "unknown dataset 'atlantis'"),
    (["clip", "zero-shot", "--checkpoint", "/nonexistent/clip.pt"], "does not exist"),
    (["methods", "describe", "nope"], "unknown method 'nope'"),
])
def test_bad_input_is_one_error_line_and_exit_2(args, expected):
    proc = _run(*args)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in proc.stderr


def test_corrupt_checkpoint_from_the_command_line(tmp_path):
    bad = tmp_path / "clip.pt"
    bad.write_bytes(b"\x00" * 64)
    proc = _run("clip", "zero-shot", "--checkpoint", str(bad))
    assert proc.returncode == 2 and "unreadable" in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_cache_from_the_command_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _run("world", "generate", "--cache-dir", str(blocker / "sub"))
    assert proc.returncode == 2 and "cannot write the world cache" in proc.stderr


def test_overrides_parse_numbers_written_without_a_dot():
    from zegbench.cli import _parse_overrides

    assert _parse_overrides(["lr=1e-4", "steps=20", "tuning=dpt", "crop=null"]) == {
        "lr": 1e-4, "steps": 20, "tuning": "dpt", "crop": None}


def _write_predictions(folder, transform):
    """One <id>.png per world_smoke val label, each ``transform``ed."""
    import numpy as np
    from PIL import Image

    from zegbench.datasets.catalog import build_dataset

    data = build_dataset("world_smoke", "val")
    folder.mkdir()
    for index, sid in enumerate(data.ids):
        label = data[index][1]
        Image.fromarray(transform(label).astype(np.uint8)).save(folder / f"{sid}.png")
    return data


def test_evaluate_scores_a_prediction_folder(tmp_path, capsys):
    import numpy as np

    perfect = tmp_path / "perfect"
    _write_predictions(perfect, lambda y: np.where(y == 255, 0, y))  # ground truth; background set to 0
    assert main(["evaluate", "--pred", str(perfect), "--dataset", "world_smoke", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["miou_seen"] == out["miou_unseen"] == out["hiou"] == out["pacc"] == 100.0

    abstain = tmp_path / "abstain"
    _write_predictions(abstain, lambda y: np.full_like(y, 255))  # "no prediction" everywhere is all misses
    assert main(["evaluate", "--pred", str(abstain), "--dataset", "world_smoke", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pacc"] == 0.0 and out["miou_seen"] == 0.0 and out["miou_unseen"] == 0.0


def test_evaluate_rejects_incomplete_or_invalid_predictions(tmp_path):
    import numpy as np

    bad = tmp_path / "bad"
    data = _write_predictions(bad, lambda y: np.full_like(y, 20))  # 20 classes: 20 is out of range
    proc = _run("evaluate", "--pred", str(bad), "--dataset", "world_smoke")
    assert proc.returncode == 2 and "has value 20" in proc.stderr and "Traceback" not in proc.stderr
    (bad / f"{data.ids[0]}.png").unlink()
    proc = _run("evaluate", "--pred", str(bad), "--dataset", "world_smoke")
    assert proc.returncode == 2 and f"lacks 1 of the {len(data.ids)} predictions" in proc.stderr


def test_suite_subcommands_are_run_all(tmp_path, capsys):
    from zegbench.harness.cli import main as run_all_main

    options = ["--results", str(tmp_path / "r"), "--only", "zegclip*", "--seeds", "2"]
    assert run_all_main(["--suite", "smoke", "--list", *options]) == 0
    by_run_all = capsys.readouterr().out
    assert main(["suite", "list", "smoke", *options]) == 0
    assert capsys.readouterr().out == by_run_all and "zegclip [world_smoke] seed 1" in by_run_all


def test_numbers_are_checked_where_they_are_parsed(capsys):
    assert main(["run", "--method", "zegclip", "--seeds", "-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --seeds: must be a whole number of at least 0, not -2 (see `zegbench run --help`)"]


class _ClosedPipe:
    """Standard output whose reader has gone away (``zegbench suite list | head -1``)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_a_reader_that_stops_early_is_not_an_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["suite", "list"]) == 141  # as a shell reports a command whose pipe closed
    assert capsys.readouterr().err == ""  # no "error: cannot access: Broken pipe" line
