"""The speed protocol's parts (FLOP counting, latency statistics) and the speed suite end to end."""
from __future__ import annotations

import json

import torch

from zegbench.engine.identity import config_hash
from zegbench.engine.resolve import resolve
from zegbench.engine.speed import count_flops, latency_stats, synchronize, time_calls
from zegbench.harness.cli import main
from zegbench.store import RunStore

from fake_store import write_result


def test_flops_of_a_linear_layer_are_two_per_multiply_add():
    layer = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(4, 64)
    flops, _ = count_flops(layer, lambda: layer(x))
    assert flops == 2 * 4 * 64 * 32


def test_attention_is_counted_even_where_eval_mode_would_hide_it():
    e, length = 32, 10
    mha = torch.nn.MultiheadAttention(e, 4, batch_first=True).eval()
    x = torch.randn(1, length, e)
    flops, _ = count_flops(mha, lambda: mha(x, x, x, need_weights=False))
    macs = 3 * length * e * e + 2 * length * length * e + length * e * e  # q/k/v, QK^T, AV, out
    assert flops == 2 * macs
    assert not mha.training  # the counter restores the module's mode


def test_flops_split_over_the_parts_a_predict_call_uses():
    from zegbench.methods import create_method

    torch.manual_seed(0)
    method = create_method("two_stage", clip_weights="none", queries=4, hidden=32, decoder_layers=2, decoder_heads=4,
                           decoder_ffn=64, mask_dim=16, mask_threshold=0.0, templates="single",
                           region_templates="single").eval()  # every proposal goes to CLIP
    x = torch.randn(1, 3, 64, 64)
    names = ["blue striped", "red dotted"]
    method.text_embeddings(names)
    flops, parts = count_flops(method, lambda: method.predict(x, names, [True, False]))
    assert set(parts) == {"proposals", "clip_visual"} and all(v > 0 for v in parts.values())
    assert sum(parts.values()) <= flops  # the rest: the ensemble and the semantic map, outside any child
    clip_once, _ = count_flops(method.clip_visual, lambda: method.clip_visual(torch.randn(1, 3, 64, 64)))
    assert parts["clip_visual"] == 4 * clip_once  # one CLIP forward per proposal


def test_latency_statistics_and_timed_calls():
    stats = latency_stats([0.010, 0.030, 0.020, 0.040, 0.050])
    assert (stats["median_ms"], stats["min_ms"], stats["repeats"]) == (30.0, 10.0, 5)
    assert stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"] == 50.0
    calls = []
    times = time_calls(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


def _fake_gpus(monkeypatch) -> list:
    """Two fake GPUs that differ in name; returns the devices ``torch.cuda.synchronize`` was called with.
    A call without a device (the current one, cuda:0) is recorded as None."""
    synced = []
    names = {0: "Fake GPU zero", 1: "Fake GPU one"}

    def index(device):
        return 0 if device is None or torch.device(device).index is None else torch.device(device).index

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: names[index(device)])
    return synced


def test_timed_calls_on_a_second_gpu_wait_for_that_gpu(monkeypatch):
    synced = _fake_gpus(monkeypatch)
    times = time_calls(lambda: None, warmup=1, repeats=3, device="cuda:1")
    assert len(times) == 3
    assert len(synced) == 4 and all(torch.device(d) == torch.device("cuda:1") for d in synced if d is not None)
    assert None not in synced  # a bare synchronize() waits on cuda:0: cuda:1's latency would be launches only
    synced.clear()
    synchronize("cpu")
    assert synced == []


def test_the_environment_and_machine_key_name_the_runs_own_gpu(monkeypatch):
    from zegbench.engine.environment import environment
    from zegbench.harness.speed_suite import machine_key

    _fake_gpus(monkeypatch)
    assert environment("cuda:1")["device_name"] == "Fake GPU one"
    assert environment("cuda:0")["device_name"] == "Fake GPU zero"
    assert machine_key("cuda:1")["device_name"] == "Fake GPU one"  # a record of GPU 1 is named by GPU 1


def _speed_suite(tmp_path):
    path = tmp_path / "tinyspeed.yaml"
    path.write_text("kind: speed\ntargets:\n  - dataset: world_smoke\n    methods: [zegclip, maskclip]\n"
                    "    whole: [32, 32]\n    test: [32, 48]\n    warmup: 0\n    repeats: 2\n")
    return str(path)


def test_speed_suite_records_reuses_and_reports(tmp_path, capsys):
    suite = _speed_suite(tmp_path)
    results, reports = tmp_path / "results", tmp_path / "reports"
    # A finished accuracy run of maskclip's default config on the same dataset feeds the speed-vs-hIoU plot.
    resolved = resolve("maskclip", "world_smoke", 0)
    fake = results / "other" / f"maskclip-world_smoke-s0-{config_hash(resolved)}"
    fake.mkdir(parents=True)
    write_result(fake, seed=0, hIoU=12.5)
    args = ["--suite", suite, "--results", str(results), "--reports", str(reports)]
    assert main(args) == 0
    records = sorted(results.glob("tinyspeed/*/result.json"))
    assert [p.parent.name.split("-")[0] for p in records] == ["clip_image_encoder", "maskclip", "zegclip"]
    zegclip = json.loads(records[2].read_text())
    assert zegclip["macs"] * 2 == zegclip["flops"] > 0 and zegclip["whole"]["repeats"] == 2
    assert zegclip["test_mode"] == "whole" and zegclip["test_input"] == [32, 48]
    assert 0 < zegclip["mfu"] < 1 and zegclip["params_trainable"] > 0
    assert set(zegclip["flops_by_module"]) == {"encoder", "queries", "decoder"}
    assert sum(zegclip["flops_by_module"].values()) == zegclip["flops"]  # every FLOP is in one part
    paired = zegclip["paired_with_encoder"]  # the overhead, from alternating calls
    assert paired["ratio"] > 0 and paired["method"]["repeats"] == paired["encoder"]["repeats"] == 2
    assert (records[0].parent / "env.json").is_file()
    # Memory per target and batch: the timed batch-1 call, and the recipe's training step at its batch
    from zegbench.engine.memory import GIB, training_step_memory
    from zegbench.engine.resolve import resolve as resolve_recipe

    memory = zegclip["memory"]
    step = training_step_memory("zegclip", "world_smoke")
    assert memory["kind"] == "cpu_allocated" and memory["inference_gib"] > 0
    assert memory["train_batch"] == resolve_recipe("zegclip", "world_smoke", 0)["train"]["batch_size"]
    assert memory["train_gib"] == round(step.peak / GIB, 3) > memory["train_per_image_gib"] > 0
    free, bare = (json.loads(p.read_text())["memory"] for p in records[1::-1])  # maskclip, the bare encoder
    assert free["train_gib"] is None and bare["train_gib"] is None and free["inference_gib"] > 0
    capsys.readouterr()
    assert main(args) == 0  # the second invocation measures nothing
    assert "0 measured, 3 reused" in capsys.readouterr().out
    readme = (reports / "tinyspeed" / "README.md").read_text()
    assert "zegclip over the bare CLIP image encoder" in readme
    assert (reports / "tinyspeed" / "speed_vs_hiou.png").is_file()
    assert (reports / "tinyspeed" / "efficiency.tex").is_file()
    table = (reports / "tinyspeed" / "efficiency.md").read_text()
    assert "Inference memory, batch 1 (GiB)" in table and "Training memory at the recipe's batch (GiB)" in table


def _tf32_allowed():
    """A user's process that allows TF32 everywhere (cuDNN does by default); restored by the caller."""
    saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    return saved


def test_fp32_is_timed_without_tf32_and_the_flags_are_recorded_and_restored(monkeypatch):
    from zegbench.engine import speed
    from zegbench.engine.environment import fp32_math

    during = []
    real_time_calls = speed.time_calls
    monkeypatch.setattr(speed, "time_calls", lambda *a, **k: during.append(fp32_math()) or real_time_calls(*a, **k))
    saved = _tf32_allowed()
    try:
        record = speed.measure_speed("maskclip", "world_smoke", (32, 32), warmup=0, repeats=1, peak=1e12)
        after = fp32_math()
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]
    full = {"float32_matmul_precision": "highest", "tf32_matmul": False, "tf32_cudnn": False}
    assert during and all(flags == full for flags in during)  # every timed call, none partly TF32
    assert {k: record[k] for k in full} == full
    assert after == {"float32_matmul_precision": "high", "tf32_matmul": True, "tf32_cudnn": True}  # the user's again


def test_bf16_mfu_is_against_a_bf16_peak(monkeypatch):
    from zegbench.engine import speed

    peaks = {torch.float32: 1e12, torch.bfloat16: 4e12}
    monkeypatch.setattr(speed, "matmul_peak", lambda device="cpu", dtype=torch.float32, **_: peaks[dtype])
    record = speed.measure_speed("maskclip", "world_smoke", (32, 32), warmup=0, repeats=1, precision="bf16")
    assert (record["peak_precision"], record["matmul_peak_gflops"]) == ("bf16", 4000.0)
    assert record["mfu"] == round(record["flops"] / (record["whole"]["median_ms"] / 1000) / 4e12, 4)


def test_a_speed_suite_measures_one_peak_per_precision_and_records_full_fp32(tmp_path, monkeypatch):
    from zegbench.engine import speed
    from zegbench.harness.speed_suite import execute_speed, expand_speed
    from zegbench.harness.suite_config import SpeedTarget

    peaks, measured = {torch.float32: 1e12, torch.bfloat16: 4e12}, []
    monkeypatch.setattr(speed, "matmul_peak", lambda device="cpu", dtype=torch.float32, **_: measured.append(dtype)
                        or peaks[dtype])

    def fake_measure(method, dataset, whole, test, random_weights, warmup, repeats, profile, device, peak,
                     baseline_only, precision):
        return {"method": method, "precision": precision, "peak": peak, "whole": {"median_ms": 1.0}, "fps_whole": 1e3,
                "macs": 1, "mfu": 0.5}
    monkeypatch.setattr(speed, "measure_speed", fake_measure)
    targets = [SpeedTarget(dataset="world_smoke", methods=["maskclip"], whole=(32, 32), precision=p)
               for p in ("fp32", "bf16")]
    specs = expand_speed(targets, "s", RunStore(tmp_path))
    saved = _tf32_allowed()
    try:
        assert execute_speed(specs) == {"done": 2, "reused": 0}
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]
    assert measured == [torch.float32, torch.bfloat16]  # once each
    records = [json.loads((s.run_dir / "result.json").read_text()) for s in specs]
    assert [(r["precision"], r["peak"]) for r in records] == [("fp32", 1e12), ("bf16", 4e12)]
    env = json.loads((specs[0].run_dir / "env.json").read_text())
    assert (env["float32_matmul_precision"], env["tf32_matmul"], env["tf32_cudnn"]) == ("highest", False, False)


class _FakeProfile:
    """``torch.profiler.profile`` as a GPU run would fill it: two ops and the kernel one of them launched."""

    activities = None

    def __init__(self, activities):
        _FakeProfile.activities = list(activities)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def key_averages(self):
        from types import SimpleNamespace

        from torch.autograd import DeviceType

        def event(key, kind, cpu_us, gpu_us):
            return SimpleNamespace(key=key, device_type=kind, self_cpu_time_total=cpu_us,
                                   self_device_time_total=gpu_us, count=3)
        return [event("aten::add", DeviceType.CPU, 500, 100), event("aten::mm", DeviceType.CPU, 20, 900),
                event("sm90_gemm_kernel", DeviceType.CUDA, 0, 900)]


def test_profiled_ops_on_cuda_are_ranked_by_gpu_time(monkeypatch):
    from zegbench.engine.speed import profile_top_ops

    synced = _fake_gpus(monkeypatch)
    monkeypatch.setattr(torch.profiler, "profile", _FakeProfile)
    ops = profile_top_ops(lambda: None, device="cuda:1")
    assert torch.profiler.ProfilerActivity.CUDA in _FakeProfile.activities
    assert [(o["op"], o["self_ms"], o["share"], o["self_cpu_ms"]) for o in ops] == [
        ("aten::mm", 0.9, 90.0, 0.02), ("aten::add", 0.1, 10.0, 0.5)]  # the kernel's own row is not counted twice
    assert synced and torch.device(synced[-1]) == torch.device("cuda:1")
    ops = profile_top_ops(lambda: None)  # on a CPU: CPU activity, ranked by CPU time
    assert _FakeProfile.activities == [torch.profiler.ProfilerActivity.CPU]
    assert [o["op"] for o in ops] == ["aten::add", "aten::mm"] and "self_cpu_ms" not in ops[0]


def test_the_environment_records_fp32_math_and_the_cuda_version(monkeypatch):
    from zegbench.engine.environment import environment

    cpu = environment("cpu")
    assert cpu["tf32_cudnn"] is torch.backends.cudnn.allow_tf32 and "float32_matmul_precision" in cpu
    _fake_gpus(monkeypatch)
    assert environment("cuda:1")["cuda"] == torch.version.cuda
