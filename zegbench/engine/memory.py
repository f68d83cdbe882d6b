"""How much memory a recipe's training step needs, before anyone launches it on a GPU; and how much a
run used (``PeakMemory``, recorded in its ``result.json``).

Protocol: the method is built as the dataset's recipe configures it, with random weights
(memory does not depend on weight values). One training step (forward, loss, backward,
AdamW's step, which creates its moments) runs on random images of the recipe's crop and
labels of its seen classes with a band of 255 pixels, at 1 and at 2 images per forward pass.

- On CUDA, each step's peak is ``torch.cuda.max_memory_allocated`` above what was allocated
  before it.
- On the CPU, torch's profiler (``profile_memory``) reports every allocation and free of the
  CPU allocator; the peak of the running sum over the step is the same quantity.

The two steps give a part that grows with the batch (activations, the loss's full-resolution
maps) and a fixed part (gradients, AdamW's moments, the weights, measured by counting them).
The estimate at the recipe's batch is fixed + batch_size x per image.

What it leaves out, and a GPU adds: the CUDA context and kernels (about 0.5-1 GiB), the caching
allocator's rounding and cached blocks (``memory_reserved`` runs some 5-15% above allocated),
and library workspaces. GPU attention kernels may also keep less than the CPU's. Read the
estimate as ``max_memory_allocated``, and leave a margin.
"""
from __future__ import annotations

import math
import resource
from dataclasses import asdict, dataclass

import torch

from zegbench.engine.resolve import resolve
from zegbench.errors import ZegbenchError

GIB = 1024**3
# What a GPU adds to the tensors' peak (module docstring): the caching allocator's margin and the context.
ALLOCATOR_MARGIN = 1.10
CUDA_CONTEXT = 1 * GIB


@dataclass
class MemoryEstimate:
    """A recipe's training-step memory, in bytes (``describe`` turns it into GiB lines)."""

    method: str
    dataset: str
    device: str  # where it was measured
    crop: int
    batch_size: int  # images per forward pass in the recipe
    accumulate: int
    weights: int  # parameters and buffers
    fixed: int  # step peak that does not grow with the batch (gradients, AdamW's moments, ...)
    per_image: int

    def peak_at(self, batch: int) -> int:
        """Estimated peak allocated memory of one training step at ``batch`` images per forward pass."""
        return self.weights + self.fixed + batch * self.per_image

    @property
    def peak(self) -> int:
        """``peak_at`` the recipe's batch: compare with ``torch.cuda.max_memory_allocated``."""
        return self.peak_at(self.batch_size)

    @property
    def needed(self) -> int:
        """What to plan for on a GPU: the peak with the allocator's margin and the CUDA context."""
        return int(self.peak * ALLOCATOR_MARGIN + CUDA_CONTEXT)

    def batch_that_fits(self, budget_bytes: float) -> int:
        """The most images per forward pass (up to the recipe's) that fit ``budget_bytes`` with the margins."""
        fitting = [b for b in range(1, self.batch_size + 1)
                   if self.peak_at(b) * ALLOCATOR_MARGIN + CUDA_CONTEXT <= budget_bytes]
        return max(fitting, default=0)

    def advice(self, budget_bytes: float) -> str:
        """One line: fits, or the ``batch_size``/``accumulate`` that keeps the recipe's global batch."""
        if self.needed <= budget_bytes:
            return f"fits in {_gib(budget_bytes)} GiB"
        fits = self.batch_that_fits(budget_bytes)
        global_batch = self.batch_size * self.accumulate
        # the largest divisor of the global batch that fits, so the global batch stays the recipe's
        per_pass = max((d for d in range(1, fits + 1) if global_batch % d == 0), default=0)
        if per_pass == 0:
            return f"does not fit in {_gib(budget_bytes)} GiB even at one image per forward pass"
        return (f"does not fit in {_gib(budget_bytes)} GiB: use --set batch_size={per_pass} "
                f"--set accumulate={global_batch // per_pass} (the same global batch of {global_batch})")

    def as_dict(self) -> dict:
        return {**asdict(self), "peak": self.peak, "needed": self.needed}


def _peak_cpu_bytes(step) -> int:
    """Peak of live CPU-allocator bytes while ``step()`` runs, above those live when it starts."""
    from torch.profiler import ProfilerActivity, profile

    from zegbench.utils.logs import native_stderr_silenced

    with native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    # Each op's own allocations minus frees, and the frees attributed to no op ("[memory]"),
    # in the order they happened.
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    live = peak = 0
    for event in events:
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def _peak_cuda_bytes(step, device: str) -> int:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def training_step_memory(method_name: str, dataset: str, device: str = "cpu", overrides: dict | None = None,
                         seed: int = 0) -> MemoryEstimate:
    """Measure one training step of ``method_name`` on ``dataset``'s recipe at 1 and 2 images (module docstring)."""
    from zegbench.datasets.catalog import load_dataset_info
    from zegbench.engine.speed import with_random_weights
    from zegbench.methods import create_method

    overrides = dict(overrides or {})
    resolved = resolve(method_name, dataset, seed, overrides)
    train_cfg = resolved["train"]
    info = load_dataset_info(dataset)
    crop = info.train_transform.crop if info.train_transform else int((info.world or {}).get("image_size", 512))
    method_cfg = with_random_weights(resolved["method_config"])  # overrides included: resolved once
    torch.manual_seed(seed)
    method = create_method(method_name, **method_cfg).to(device).train()
    seen = list(info.seen)
    for templates in {None, getattr(method, "region_templates", None)}:  # class embeddings are cached in a run
        method.text_embeddings(seen, templates)
    weights = weight_bytes(method)

    def peak_at(batch: int) -> int:
        images = torch.randn(batch, 3, crop, crop, device=device)
        labels = torch.randint(0, len(seen), (batch, crop, crop), device=device)
        labels[:, : crop // 8] = 255  # some ignored pixels, as padding and unseen classes give
        optimizer = torch.optim.AdamW(method.param_groups(train_cfg["lr"]))

        def step():
            logits, aux = method(images, seen)
            sum(method.loss(logits, labels, aux).values()).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        # A new optimizer for each measurement: its moments are created inside the measured step.
        return _peak_cuda_bytes(step, device) if device.startswith("cuda") else _peak_cpu_bytes(step)

    one, two = peak_at(1), peak_at(2)
    per_image = max(0, two - one)
    return MemoryEstimate(method_name, dataset, device, crop, train_cfg["batch_size"], train_cfg["accumulate"],
                          weights, max(0, one - per_image), per_image)


def inference_memory(call, model: torch.nn.Module, device: str) -> dict:
    """Peak memory of one inference ``call`` of ``model`` (a speed record's batch-1 predict), in GiB.

    On CUDA: ``max_memory_allocated`` within the call (reset when it starts), so it includes what is
    live then (weights, cached class embeddings), and ``max_memory_reserved`` beside it. On the CPU:
    the weights' bytes plus the peak of the CPU allocator's live bytes above the call's start
    (``_peak_cpu_bytes``), the same quantity up to the small caches. Each is labelled by its kind.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        torch.cuda.synchronize(device)
        return {"kind": "cuda_allocated", "inference_gib": _in_gib(torch.cuda.max_memory_allocated(device)),
                "inference_reserved_gib": _in_gib(torch.cuda.max_memory_reserved(device))}
    return {"kind": "cpu_allocated", "inference_gib": _in_gib(weight_bytes(model) + _peak_cpu_bytes(call))}


def training_memory_record(estimate: MemoryEstimate | None) -> dict:
    """A speed record's training memory: the recipe's step peak at its batch (``training_step_memory``),
    its parts, and what to plan for on a GPU; all None for a method that does not train."""
    if estimate is None:
        return {"train_batch": None, "train_gib": None, "train_per_image_gib": None, "train_needed_gib": None}
    return {"train_batch": estimate.batch_size, "train_gib": _in_gib(estimate.peak),
            "train_per_image_gib": _in_gib(estimate.per_image), "train_needed_gib": _in_gib(estimate.needed)}


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of ``model``'s parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def _in_gib(n: int | None) -> float | None:
    """Bytes as GiB for a record, to the MiB; None stays None (nothing was measured)."""
    return None if n is None else round(n / GIB, 3)


class PeakMemory:
    """The peak memory of one stretch of a run (training, evaluation), for its ``result.json``.

    On CUDA: the run's device's peak allocated and reserved bytes within the stretch
    (``max_memory_allocated``/``max_memory_reserved``, reset when it starts). On the CPU: the
    process's peak resident set (``ru_maxrss``, KiB on Linux), which only grows, so an evaluation
    after training reports the larger of the two; it includes the libraries (about 1 GiB with
    torch and open_clip) and not the loader's worker processes. Under torchrun: rank 0's.
    """

    def __init__(self, device: str):
        self.device = device
        self.cuda = torch.device(device).type == "cuda"
        self.peak: int | None = None
        self.reserved: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            self.reserved = torch.cuda.max_memory_reserved(self.device)
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def out_of_memory(resolved: dict, device: str) -> ZegbenchError:
    """The one error line for a run's training that ran out of GPU memory: how to find a split that fits."""
    method, dataset, train = resolved["method"], resolved["dataset"], resolved["train"]
    batch, accumulate = train["batch_size"], train["accumulate"]
    gpu = ""
    if torch.device(device).type == "cuda":
        gpu = f" (a {torch.cuda.get_device_properties(torch.device(device)).total_memory / GIB:.1f} GiB GPU)"
    split = (f"--set batch_size={batch // 2} --set accumulate={accumulate * 2}" if batch % 2 == 0
             else "--set batch_size=B --set accumulate=K with B x K the same global batch")
    return ZegbenchError(f"{method} on {dataset} ran out of GPU memory while training with {batch} images per "
                         f"forward pass on {device}{gpu}: `zegbench methods memory {method} --dataset {dataset}` "
                         f"estimates what a split needs; halving the forward pass keeps the global batch: {split}")


def memory_record(training: PeakMemory | None, evaluation: PeakMemory) -> dict:
    """``result.json``'s ``memory``: its kind, and GiB for training (None when the run did not train:
    training-free, or another run's weights) and evaluation."""
    record = {"kind": "cuda_allocated" if evaluation.cuda else "cpu_peak_rss",
              "train_gib": _in_gib(training.peak) if training else None, "eval_gib": _in_gib(evaluation.peak)}
    if evaluation.cuda:
        record.update(train_reserved_gib=_in_gib(training.reserved) if training else None,
                      eval_reserved_gib=_in_gib(evaluation.reserved))
    return record


def _gib(n: float) -> str:
    return f"{math.ceil(n / GIB * 10) / 10:.1f}"


def describe(estimate: MemoryEstimate, budget_bytes: float | None = None) -> list[str]:
    """Lines for the command line: the estimate, its parts and, with a budget, whether it fits."""
    e = estimate
    lines = [f"{e.method} on {e.dataset}'s recipe ({e.batch_size} images of {e.crop}x{e.crop} per forward pass, "
             f"accumulate {e.accumulate}): plan for about {_gib(e.needed)} GiB of GPU memory",
             f"  tensors' peak {_gib(e.peak)} GiB (measured on {e.device} at 1 and 2 images, scaled): "
             f"weights {e.weights / GIB:.2f}, fixed {e.fixed / GIB:.2f} (gradients, AdamW's moments), "
             f"{e.per_image / GIB:.2f} per image",
             f"  plus {ALLOCATOR_MARGIN - 1:.0%} for the caching allocator and {_gib(CUDA_CONTEXT)} GiB "
             f"for the CUDA context; `--set accumulate=K` with batch_size / K lowers the per-image part"]
    if budget_bytes is not None:
        lines.append(f"  {e.advice(budget_bytes)}")
    return lines
