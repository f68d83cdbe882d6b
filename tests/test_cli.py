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
    assert len(out["classes"]) == 20 and all(c.startswith("dotted") for c in out["unseen"])


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
