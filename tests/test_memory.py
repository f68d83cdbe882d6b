"""A recipe's training-step memory, estimated on the CPU (``zegbench methods memory``), and the loss's dtypes."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from zegbench.cli import main as zegbench_main
from zegbench.engine.memory import CUDA_CONTEXT, GIB, MemoryEstimate, _peak_cpu_bytes, training_step_memory
from zegbench.methods.losses import nel_loss

MB = 1024**2


def test_cpu_peak_counts_what_is_alive_at_once():
    def step():
        a = torch.ones(MB)  # 4 MiB
        b = torch.ones(2 * MB)  # 8 MiB while a lives: the peak
        del a, b
        c = torch.ones(MB)  # 4 MiB after both are freed: not a new peak
        del c

    assert _peak_cpu_bytes(step) == pytest.approx(12 * MB, rel=0.01)


def test_estimate_scales_with_the_batch_and_advises_a_global_batch_preserving_split():
    e = MemoryEstimate("m", "d", "cpu", crop=512, batch_size=16, accumulate=1, weights=GIB // 2, fixed=GIB // 2,
                       per_image=2 * GIB)
    assert e.peak == 33 * GIB and e.peak_at(2) - e.peak_at(1) == 2 * GIB
    assert e.needed == int(33 * GIB * 1.1 + CUDA_CONTEXT)
    assert e.advice(80 * GIB) == "fits in 80.0 GiB"
    assert e.advice(40 * GIB).startswith("fits")  # 33 x 1.1 + 1 = 37.3 GiB
    # 24 GiB: 9 images fit (1 + 18 = 19 x 1.1 + 1 = 21.9 GiB), 10 do not (23 GiB); the largest
    # divisor of the global batch of 16 that fits is 8, so accumulate 2
    assert e.batch_that_fits(24 * GIB) == 9
    assert "--set batch_size=8 --set accumulate=2" in e.advice(24 * GIB)
    assert "even at one image" in e.advice(3 * GIB)


def test_measured_step_counts_at_least_the_logits_and_grows_with_the_batch():
    e = training_step_memory("zegclip", "world_smoke")
    seen = 15  # the default world's seen classes
    logits = seen * e.crop * e.crop * 4  # one image's float logits: the loss keeps several such maps
    assert e.per_image > 3 * logits and e.weights > 0
    assert e.batch_size == 8 and e.peak == e.weights + e.fixed + 8 * e.per_image


def test_memory_command_says_whether_a_gpu_fits(capsys):
    assert zegbench_main(["methods", "memory", "zegclip", "--dataset", "world_smoke", "--gpu-memory", "0.5",
                          "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # the JSON comes last
    assert out["budget"] == GIB // 2 and "does not fit" in out["advice"]


def test_nel_targets_are_never_built_as_int64_at_full_resolution():
    """F.one_hot's int64 is 8 bytes a pixel per class: 4.9 GiB at the COCO-Stuff recipe before a float copy."""

    class LargeInt64(TorchDispatchMode):
        found = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.dtype == torch.int64 and out.numel() >= 2 * 6 * 40 * 40:
                LargeInt64.found.append(func)
            return out

    logits = torch.randn(2, 6, 40, 40, requires_grad=True)
    labels = torch.randint(0, 6, (2, 40, 40))
    labels[:, :5] = 255
    with LargeInt64():
        sum(nel_loss(logits, labels).values()).backward()
    assert LargeInt64.found == []


def test_a_run_records_its_peak_memory_and_which_weights_it_evaluated(tmp_path):
    from zegbench.engine.identity import run_folder_for
    from zegbench.engine.resolve import resolve
    from zegbench.engine.run import resolve_and_run
    from zegbench.store import RunStore, read_result

    tiny = {"steps": 2, "batch_size": 2, "warmup": 1}
    for method in ("zegclip", "maskclip"):
        resolve_and_run(method, "world_smoke", 0, tiny, store=RunStore(tmp_path), suite="s")
    zegclip = read_result(run_folder_for(resolve("zegclip", "world_smoke", 0, tiny), RunStore(tmp_path), "s").path)
    trained = zegclip.memory
    assert trained["kind"] == "cpu_peak_rss" and trained["train_gib"] > 0.1  # torch alone is a few hundred MB
    assert trained["eval_gib"] >= trained["train_gib"]  # a process's peak only grows
    maskclip = read_result(run_folder_for(resolve("maskclip", "world_smoke", 0, tiny), RunStore(tmp_path), "s").path)
    free = maskclip.memory
    assert free["train_gib"] is None and free["eval_gib"] > 0  # training-free: nothing trained, nothing to report
    # The last step's weights, never a checkpoint picked on the evaluation set, and the record says so.
    assert (zegclip.checkpoint_selection, zegclip.evaluated_step) == ("last", 2)
    assert (maskclip.checkpoint_selection, maskclip.evaluated_step) == ("last", 0)


@pytest.fixture
def fake_cuda_memory(monkeypatch):
    """A GPU without a GPU: the CUDA memory calls record what they were asked of which device (the list
    returned), and the peaks are 3 GiB allocated, 4 GiB reserved."""
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: calls.append(("sync", device)))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: calls.append(("reset", device)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device: 4 * GIB)
    return calls


def test_peak_memory_on_cuda_is_the_runs_own_device_within_the_stretch(fake_cuda_memory):
    from zegbench.engine.memory import PeakMemory, memory_record

    calls = fake_cuda_memory
    with PeakMemory("cuda:1") as stretch:
        assert calls == [("sync", "cuda:1"), ("reset", "cuda:1")]  # the peak starts with the stretch
    assert (stretch.peak, stretch.reserved) == (3 * GIB, 4 * GIB)
    assert memory_record(stretch, stretch) == {"kind": "cuda_allocated", "train_gib": 3.0, "eval_gib": 3.0,
                                               "train_reserved_gib": 4.0, "eval_reserved_gib": 4.0}


def test_inference_memory_on_cuda_is_the_calls_peak_on_the_runs_own_device(fake_cuda_memory):
    from zegbench.engine.memory import inference_memory

    calls = fake_cuda_memory
    record = inference_memory(lambda: calls.append(("call", None)), torch.nn.Linear(2, 2), "cuda:1")
    assert calls == [("sync", "cuda:1"), ("reset", "cuda:1"), ("call", None), ("sync", "cuda:1")]
    assert record == {"kind": "cuda_allocated", "inference_gib": 3.0, "inference_reserved_gib": 4.0}


def test_inference_memory_on_the_cpu_counts_the_weights_and_what_the_call_allocates():
    from zegbench.engine.memory import inference_memory

    model = torch.nn.Linear(256, 256)  # 257 x 256 floats of weights
    weights = 257 * 256 * 4
    quiet = inference_memory(lambda: None, model, "cpu")
    big = inference_memory(lambda: torch.ones(64, 1024, 1024), model, "cpu")  # a 256 MiB activation
    assert quiet == {"kind": "cpu_allocated", "inference_gib": round(weights / GIB, 3)}
    assert big["inference_gib"] == pytest.approx((weights + 256 * 2**20) / GIB, abs=0.002)


def test_a_run_out_of_gpu_memory_is_one_line_with_a_split_that_keeps_the_global_batch(tmp_path, monkeypatch):
    """A COCO-Stuff recipe on a 40 GB card: the first GPU user must learn what to do, not read a traceback."""
    from zegbench.engine.run import resolve_and_run
    from zegbench.errors import ZegbenchError
    from zegbench.methods.zegclip import ZegCLIP
    from zegbench.store import RunStore

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.43 GiB")

    monkeypatch.setattr(ZegCLIP, "loss", out_of_memory)
    with pytest.raises(ZegbenchError) as caught:
        resolve_and_run("zegclip", "world_smoke", 0, {"steps": 2, "batch_size": 4, "warmup": 1},
                        store=RunStore(tmp_path), suite="s")
    line = str(caught.value)
    assert "ran out of GPU memory while training with 4 images per forward pass" in line and "\n" not in line
    assert "zegbench methods memory zegclip --dataset world_smoke" in line
    assert "--set batch_size=2 --set accumulate=2" in line


def test_the_profilers_native_lines_are_not_printed_and_stderr_comes_back(capfd):
    """torch's profiler writes USDT start/stop lines (and, without a GPU, an ERROR line) to fd 2 from C++:
    a speed suite measures memory for every record, so they would be printed for every record."""
    import sys

    peak = _peak_cpu_bytes(lambda: torch.ones(1000))
    print("after the profiler", file=sys.stderr)
    err = capfd.readouterr().err
    assert peak == 4000
    assert "USDT" not in err and "profiler_start" not in err and "gpuGetDeviceCount" not in err
    assert "after the profiler" in err  # fd 2 restored
