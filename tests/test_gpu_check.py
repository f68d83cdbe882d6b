"""tools/gpu_check.py, the prepared device check: its driver runs here, its GPU-only branches with a faked CUDA."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", TOOLS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def _gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"
    except (FileNotFoundError, IndexError):
        return True


def test_a_failed_or_hung_step_is_recorded_and_the_next_step_still_runs(tmp_path, gpu_check):
    sizes = replace(gpu_check.DRY, budget_s=600, timeouts={"a": 60, "b": 2, "c": 60, "d": 60, "e": 60})
    check = gpu_check.Check(tmp_path / "out", tmp_path / "work", sizes, dry=True)
    py = sys.executable
    check.run("a", [py, "-c", "import sys; print('boom'); sys.exit(3)"])
    pid_file = tmp_path / "child.pid"
    hang = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('hanging', flush=True); time.sleep(300)")
    check.run("b", [py, "-c", hang])
    check.run("c", [py, "-c", "print('fine')"], collect=lambda: {"x": 1})
    check.run("d", [py, "-c", "pass"], collect=lambda: {}["missing"])  # ran, but left no numbers
    check.started -= 600  # the check's budget is spent: the last step is not started
    check.run("e", [py, "-c", "pass"])
    doc = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert doc["summary"] == {"a": "failed", "b": "timeout", "c": "ok", "d": "failed", "e": "skipped"}
    assert not doc["ok"]
    a, b, c, d = (doc["steps"][k] for k in "abcd")
    assert a["exit_code"] == 3 and a["error_tail"] == ["boom"] and a["command"].startswith(py)
    assert b["timed_out"] and "hanging" in b["error_tail"]
    for _ in range(50):  # the step's process group was killed, its children too
        if _gone(int(pid_file.read_text())):
            break
        time.sleep(0.1)
    assert _gone(int(pid_file.read_text()))
    assert c["numbers"] == {"x": 1} and "error_tail" not in c and c["seconds"] >= 0
    assert d["numbers_error"].startswith("KeyError")
    assert (tmp_path / "out" / "logs" / "a.log").read_text() == "boom\n"


@pytest.mark.parametrize("gpus", [1, 2])
def test_on_a_gpu_the_steps_run_the_recipes_on_cuda(tmp_path, gpu_check, monkeypatch, gpus):
    from zegbench.engine.resolve import resolve

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(gpu_check, "machine", lambda: {"gpus": ["Fake GPU"] * gpus})
    monkeypatch.setattr(gpu_check, "write_voc_fixture", lambda root, **sizes: None)
    commands = {}

    def fake_run(self, name, command, collect=None, env=None):
        commands[name] = command
        if name == "voc_train":
            self.voc_run = Path("RUN")
        return self._done(name, {"status": "ok", "seconds": 0})
    monkeypatch.setattr(gpu_check.Check, "run", fake_run)
    doc = gpu_check.check(tmp_path / "out", tmp_path / "work", gpu_check.GPU, False, gpu_check.STEPS)
    assert doc["ok"] and list(doc["summary"]) == gpu_check.STEPS

    def payload(name):
        return json.loads(commands[name][-1])
    voc = " ".join(commands["voc_train"])
    assert "--device cuda" in voc and "--workers 4" in voc  # loader workers on, beside an initialised CUDA
    assert '"clip_weights": "none"' in (tmp_path / "work" / "gpu_check_voc.yaml").read_text()  # no download
    ddp = commands["ddp_two_stage"]
    if gpus == 2:
        assert ddp[-4:] == ["--executor", "torchrun", "--nproc", "2"] and "--device" in ddp
        assert doc["steps"]["ddp_two_stage"]["backend"] == "nccl"
    else:
        assert ddp[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        assert payload("ddp_two_stage")["device"] == "cuda:0" and "gloo" in doc["steps"]["ddp_two_stage"]["backend"]
    speed = commands["speed_gpu"]
    assert speed[speed.index("--suite") + 1] == "speed_gpu" and speed[speed.index("--device") + 1] == "cuda"
    coco = payload("coco_memory")
    assert coco["device"] == "cuda"
    recipe = resolve("zegclip", "coco_stuff164k", 0, coco["overrides"])  # the recipe's own batch, prompts, text side
    assert recipe["train"]["batch_size"] == 16 and recipe["train"]["steps"] == 1
    assert recipe["method_config"]["num_tokens"] == 100 and recipe["method_config"]["templates"] == "coco15"
    assert recipe["method_config"]["clip"] == "ViT-B-16-quickgelu"
    segment = payload("segment_12mp")
    assert segment["size"] == [4000, 3000] and segment["run"] == "RUN" and segment["device"] == "cuda"


def test_peak_memory_is_read_from_the_runs_own_gpu(gpu_check, monkeypatch):
    asked = []

    def stat(value):
        return lambda device=None: asked.append(device) or value
    monkeypatch.setattr(torch.cuda, "synchronize", stat(None))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", stat(3 * 2 ** 30))
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", stat(4 * 2 ** 30))
    monkeypatch.setattr(torch.cuda, "get_device_properties", stat(SimpleNamespace(total_memory=80 * 2 ** 30)))
    numbers = gpu_check.peak_memory("cuda:1")
    assert (numbers["gpu_peak_allocated_gib"], numbers["gpu_peak_reserved_gib"], numbers["gpu_total_gib"]) == (3, 4, 80)
    assert asked and all(torch.device(d) == torch.device("cuda:1") for d in asked)
    assert "gpu_peak_allocated_gib" not in gpu_check.peak_memory("cpu") and numbers["host_peak_rss_gib"] > 0


def test_the_one_gpu_stand_in_for_nccl_rejects_tensors_off_the_runs_device(gpu_check):
    reduced = []
    strict = gpu_check.on_device_only(lambda tensor, *args, **kwargs: reduced.append(tensor.device), "cuda:0")
    with pytest.raises(RuntimeError, match="NCCL rejects it"):
        strict(torch.tensor(1.0))  # a CPU count, as set_loss built one: NCCL would refuse it
    gpu_check.on_device_only(lambda tensor, *args, **kwargs: reduced.append(tensor.device), "meta")(
        torch.empty(1, device="meta"))
    assert reduced == [torch.device("meta")]


@pytest.mark.slow
def test_the_dry_run_passes_end_to_end(tmp_path):
    """Every step on the CPU at tiny sizes (about 3 minutes on 2 cores)."""
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(TOOLS / "gpu_check.sh"), "--dry-run", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True)
    doc = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert proc.returncode == 0 and doc["ok"], doc["summary"]
    steps = doc["steps"]
    assert steps["voc_train"]["numbers"]["loader_workers"] == 1 and steps["voc_train"]["numbers"]["steps"] == 2
    assert steps["ddp_two_stage"]["numbers"]["world_size"] == 2
    assert {r["peak_precision"] for r in steps["speed_gpu"]["numbers"]} == {"fp32", "bf16"}
    assert steps["speed_profile"]["numbers"][0]["profile_top_ops"]
    assert steps["coco_memory"]["numbers"]["seen_classes"] == 156
    assert steps["memory_estimate"]["numbers"]["batch_size"] == 2 and steps["memory_estimate"]["numbers"]["peak"] > 0
    assert steps["segment_12mp"]["numbers"]["exit_code"] == 0 and steps["segment_12mp"]["numbers"]["classes"] == 171
