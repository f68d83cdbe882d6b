"""Speed of a method as the user's machine runs it: parameters, FLOPs, latency, FPS, FLOP utilisation.

Protocol (also in the README, because published FPS numbers rarely agree on it):

- What is timed: one ``predict`` call on one image (batch 1): the method's whole
  inference path from a normalised tensor to per-class scores at input size,
  including every CLIP forward and, for ZegCLIP, the seen-class calibration.
  Not timed: image decoding and resizing, the argmax, class text embeddings
  (computed once per vocabulary and cached; the warm-up fills the cache).
- How: ``torch.inference_mode``, ``warmup`` untimed calls, then ``repeats``
  timed calls; on CUDA each call is synchronised. Reported: median latency,
  the 10th-90th percentile spread, and FPS = 1 / median.
- Two inputs: ``whole``, a fixed square input with one forward pass (the
  number papers compare), and ``test``, a typical test image run through the
  method's own test-time protocol (ZegCLIP on VOC: a 512 window slid with
  stride 426 over 512x683; two-stage methods and MaskCLIP run whole images).
- FLOPs per image of the ``whole`` input, counted by ``torch.utils.flop_counter``
  with attention decomposed into matmuls (module in train mode, math SDPA
  kernel, no grad: the fused kernels are invisible to the counter). Two
  conventions: ``flops`` counts a multiply-add as 2; ``macs`` as 1, like fvcore,
  which is where papers' "GFLOPs" usually come from.
- fp32 is full fp32: on CUDA, no TF32 in matmuls (matmul precision 'highest')
  nor in cuDNN convolutions (``cudnn.allow_tf32``, which torch turns on by
  default) while a record is measured; the flags are restored afterwards and
  recorded with the record. bf16 targets run under bf16 autocast; what
  autocast leaves in fp32 is full fp32 too.
- Model FLOP utilisation (MFU): flops / median latency / the peak of a large
  matmul in the target's precision (fp32 or bf16) measured on the same machine
  in the same process (``peak_precision`` in the record).
- A method class may declare a speed baseline (``Method.speed_baseline``, ZegCLIP:
  its bare CLIP image encoder): it gets its own record, and the method's latency
  is also timed in alternation with it for a drift-free ratio.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch

from zegbench.datasets.catalog import load_dataset_info
from zegbench.engine.environment import fp32_math
from zegbench.engine.memory import inference_memory, training_memory_record, training_step_memory
from zegbench.methods import create_method, method_class, method_config

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def speed_baseline_of(method: str) -> str | None:
    """The record name of ``method``'s speed baseline (its class's ``speed_baseline``); None if it has none."""
    return method_class(method_config(method)["class"]).speed_baseline


def synchronize(device: str | torch.device) -> None:
    """Wait for ``device``'s queued kernels (a no-op off CUDA). The device itself, not the current one:
    with ``--device cuda:1`` a bare ``torch.cuda.synchronize()`` waits on cuda:0 and times launches only."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn, warmup: int, repeats: int, device: str | torch.device = "cpu") -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def time_paired(fn_a, fn_b, warmup: int, repeats: int,
                device: str | torch.device = "cpu") -> tuple[list[float], list[float]]:
    """Alternate calls of ``fn_a`` and ``fn_b``: a ratio of the two is then immune to the machine's
    speed drifting between measurements (shared virtual machines drift by 20% and more)."""
    for _ in range(warmup):
        fn_a(), fn_b()
    a, b = [], []
    for _ in range(repeats):
        a += time_calls(fn_a, 0, 1, device)
        b += time_calls(fn_b, 0, 1, device)
    return a, b


def latency_stats(times: list[float]) -> dict:
    """Median, 10th/90th percentiles and min of call times, in milliseconds."""
    ordered = sorted(times)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
    return {"median_ms": round(1000 * statistics.median(ordered), 3), "p10_ms": round(1000 * pct(0.1), 3),
            "p90_ms": round(1000 * pct(0.9), 3), "min_ms": round(1000 * ordered[0], 3), "repeats": len(ordered)}


@contextmanager
def full_fp32():
    """fp32 math in full fp32 while the block runs: matmul precision 'highest' (no TF32 in cuBLAS
    matmuls) and no TF32 in cuDNN convolutions; the process's settings are restored afterwards.

    torch allows TF32 in convolutions by default and a user may allow it in matmuls: on an Ampere
    or later GPU an "fp32" timing would then be partly TF32. No effect on a CPU at torch's defaults.
    """
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn


def matmul_peak(device: str | torch.device = "cpu", size: int = 2048, repeats: int = 5,
                dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of a ``size`` x ``size`` matmul (2 size^3 FLOPs) in ``dtype`` on ``device``: this machine's
    practical peak in that precision (fp32 in full fp32, see ``full_fp32``)."""
    with full_fp32():
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        best = min(time_calls(lambda: a @ b, warmup=2, repeats=repeats, device=device))
    return 2 * size ** 3 / best


def count_flops(method: torch.nn.Module, fn) -> tuple[int, dict[str, int]]:
    """FLOPs (a multiply-add = 2) of ``fn()`` and their split over ``method``'s direct children.

    The module is put in train mode for the count (and restored): in eval mode
    under no_grad, ``nn.MultiheadAttention`` takes a fused path the counter
    cannot see. The math SDPA backend makes attention plain matmuls.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    was_training = method.training
    trainable = [p for p in method.parameters() if p.requires_grad]
    method.train()
    # The counter's module tracker hooks every input that requires grad; a view of a trainable
    # parameter taken under no_grad still says it does, without a grad_fn, which breaks the hook.
    for p in trainable:
        p.requires_grad_(False)
    counter = FlopCounterMode(display=False)
    try:
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), counter:
            fn()
    finally:
        method.train(was_training)
        for p in trainable:
            p.requires_grad_(True)
    by_module = split_by_child(method, {k: int(sum(ops.values())) for k, ops in counter.get_flop_counts().items()})
    return int(counter.get_total_flops()), by_module


def split_by_child(method: torch.nn.Module, counts: dict[str, int]) -> dict[str, int]:
    """FLOPs per direct child of ``method`` from the counter's per-module totals.

    The counter names modules by their path from whichever module was entered
    first, spelled with its class name: "ZegCLIP.decoder" when ``forward`` ran,
    "ProposalNetwork.backbone" when ``predict`` called a child directly. A
    container (ModuleList) is never entered, so only its members appear. Each
    key is mapped back to a path in ``method``; per child, the outermost paths
    are summed (a module's total already includes its submodules').
    """
    root = type(method).__name__
    by_class = {}
    for name, child in method.named_children():
        by_class.setdefault(type(child).__name__, name)
    paths = set()
    resolved = {}
    for key, flops in counts.items():
        first, _, rest = key.partition(".")
        if first == root:
            path = rest
        elif first in by_class:
            path = by_class[first] + ("." + rest if rest else "")
        else:
            continue
        if path:
            resolved[path] = flops
            paths.add(path)
    out: dict[str, int] = {}
    for path, flops in resolved.items():
        parts = path.split(".")
        if any(".".join(parts[:i]) in paths for i in range(1, len(parts))):
            continue  # inside a module already counted
        out[parts[0]] = out.get(parts[0], 0) + flops
    return out


def profile_top_ops(fn, top: int = 8, device: str | torch.device = "cpu") -> list[dict]:
    """The ops with the most self time in one call of ``fn`` (share of the total, in %).

    On a CPU, self CPU time. On CUDA, where the CPU only launches kernels, the profiler records
    the GPU too and ops are ranked by the self time of the kernels they launched (``self_ms``),
    with their self CPU time beside it (``self_cpu_ms``).
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from zegbench.utils.logs import native_stderr_silenced

    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with native_stderr_silenced(), profile(activities=activities) as prof:
        fn()
        synchronize(device)

    def self_us(event) -> float:
        return event.self_device_time_total if cuda else event.self_cpu_time_total
    # The ops (CPU events): a kernel's own row would count its time a second time.
    events = [e for e in prof.key_averages() if e.device_type == DeviceType.CPU and self_us(e) > 0]
    total = sum(map(self_us, events)) or 1
    events.sort(key=self_us, reverse=True)
    rows = []
    for e in events[:top]:
        row = {"op": e.key, "self_ms": round(self_us(e) / 1000, 2), "share": round(100 * self_us(e) / total, 1),
               "calls": e.count}
        if cuda:
            row["self_cpu_ms"] = round(e.self_cpu_time_total / 1000, 2)
        rows.append(row)
    return rows


def speed_method_config(method: str, dataset: str, random_weights: bool) -> dict:
    """The method's config as resolved for ``dataset`` (its recipe), with random weights when asked.

    Speed does not depend on weight values, so the real-scale setting can be
    measured without downloading CLIP or an ImageNet backbone.
    """
    from zegbench.engine.resolve import resolve

    cfg = resolve(method, dataset, 0)["method_config"]
    return with_random_weights(cfg) if random_weights else {k: v for k, v in cfg.items() if k != "class"}


def with_random_weights(method_config: dict) -> dict:
    """A resolved ``method_config`` as ``create_method`` keywords, every pretrained weight left random."""
    cfg = {k: v for k, v in method_config.items() if k != "class"}
    cfg["clip_weights"] = "none"
    if "backbone_weights" in cfg:
        cfg["backbone_weights"] = "none"
    return cfg


@full_fp32()  # the whole measurement, the matmul peak included
def measure_speed(method_name: str, dataset: str, whole: tuple[int, int], test: tuple[int, int] | None = None,
                  random_weights: bool = False, warmup: int = 2, repeats: int = 10, profile: bool = False,
                  device: str = "cpu", peak: float | None = None, baseline_only: bool = False,
                  precision: str = "fp32") -> dict:
    """Speed record of one method as configured for ``dataset`` (see the module docstring).

    ``baseline_only`` measures the method's speed baseline instead (the bare
    network ``Method.speed_baseline`` names; ZegCLIP's overhead is measured
    against it); ``peak`` is the matmul peak (FLOP/s) in ``precision``, for
    MFU, measured here when not given. ``precision`` 'fp32' is full fp32 (no
    TF32, see ``full_fp32``); 'bf16' times the calls under bf16 autocast (FLOPs
    are counted in fp32, the same number) and its MFU is against a bf16 matmul's peak.
    """
    if precision not in DTYPES:
        raise ValueError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
    info = load_dataset_info(dataset)
    names, seen = list(info.classes), [c not in info.unseen for c in info.classes]
    cls = method_class(method_config(method_name)["class"])
    cfg = speed_method_config(method_name, dataset, random_weights)
    if baseline_only:
        cfg.update(cls.speed_baseline_overrides)
    torch.manual_seed(0)
    method = create_method(method_name, **cfg).to(device).eval()
    counts = method.param_counts()
    x = torch.randn(1, 3, *whole, device=device)
    if baseline_only:  # the bare network alone, nothing learnable
        baseline = method.speed_baseline_module()
        counts = {"params_total": sum(p.numel() for p in baseline.parameters()), "params_trainable": 0}
        run = lambda: baseline(x)  # noqa: E731
    else:
        method.text_embeddings(names)  # cached now: text encoding is not part of the timed path
        run = lambda: method.predict(x, names, seen)  # noqa: E731
    flops, by_module = count_flops(method, run)
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.inference_mode(), autocast:
        stats = latency_stats(time_calls(run, warmup, repeats, device))
    record = {"method": cls.speed_baseline if baseline_only else method_name, "config_of": method_name,
              "dataset": dataset, "input": list(whole), **counts, "flops": flops, "macs": flops // 2,
              "flops_by_module": by_module, "whole": stats, "fps_whole": round(1000 / stats["median_ms"], 3),
              "random_weights": random_weights, "precision": precision, **fp32_math()}
    regions = method.regions_per_image()
    if regions is not None:
        record["regions_per_image"] = regions
    peak = peak or matmul_peak(device, dtype=DTYPES[precision])
    record["matmul_peak_gflops"], record["peak_precision"] = round(peak / 1e9, 2), precision
    record["achieved_gflops"] = round(flops / (stats["median_ms"] / 1000) / 1e9, 2)
    record["mfu"] = round(flops / (stats["median_ms"] / 1000) / peak, 4)
    if cls.speed_baseline and not baseline_only:  # the overhead over the bare network, paired
        torch.manual_seed(0)
        bare = create_method(method_name, **{**cfg, **cls.speed_baseline_overrides}).to(device).eval()
        bare_run = bare.speed_baseline_module()
        with torch.inference_mode(), autocast:
            ours, enc = time_paired(run, lambda: bare_run(x), warmup, repeats, device)
        ratio = statistics.median(o / e for o, e in zip(ours, enc, strict=True))
        record["paired_with_encoder"] = {"method": latency_stats(ours), "encoder": latency_stats(enc),
                                         "ratio": round(ratio, 4)}
        del bare, bare_run
    # Memory at batch 1 (the timed call) and, for a method that trains, its recipe's training step
    # (``engine/memory.py``: measured at 1 and 2 images, scaled to the recipe's batch)
    def timed_call():  # as timed: no autograd, the target's precision
        with torch.inference_mode(), autocast:
            run()
    record["memory"] = inference_memory(timed_call, baseline if baseline_only else method, device)
    trains = not baseline_only and not cls.training_free
    record["memory"].update(training_memory_record(
        training_step_memory(method_name, dataset, device) if trains else None))
    if test is not None and not baseline_only:
        xt = torch.randn(1, 3, *test, device=device)
        with torch.inference_mode(), autocast:
            test_stats = latency_stats(time_calls(lambda: method.predict(xt, names, seen), warmup, repeats, device))
        record.update({"test_input": list(test), "test_mode": method.inference, "test": test_stats,
                       "fps_test": round(1000 / test_stats["median_ms"], 3)})
    if profile:
        with torch.inference_mode(), autocast:
            record["profile_top_ops"] = profile_top_ops(run, device=device)
    return record
