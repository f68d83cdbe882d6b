"""Data-parallel training across processes (``torchrun``): process group, rank helpers, reductions.

A run launched by ``torchrun --nproc_per_node N -m zegbench.harness.worker`` joins
a process group (gloo on CPU, nccl on CUDA). Every rank trains on its slice of
each global batch (global batch = ``batch_size`` x world size x ``accumulate``),
evaluates every world-size-th image and sums its confusion matrix with the
others; only rank 0 claims the run and writes logs, checkpoints and results.
Without torchrun's environment everything here is a no-op for one process.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

# How long a rank waits in a collective before the job is declared hung. NCCL's default, 10 minutes,
# is shorter than what rank 0 may do alone while the others wait at a barrier: generate a world,
# scan a large dataset's folders, write a checkpoint to a slow shared disk.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> str:
    """Join the process group torchrun describes; returns this rank's device (``cuda:<local rank>`` on GPUs)."""
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def broadcast(value):
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(value) -> list:
    """Every rank's ``value`` (any picklable object), in rank order; ``[value]`` for one process.

    A collective: every rank must call it.
    """
    if world_size() == 1:
        return [value]
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over ranks (in place; returned for convenience)."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def mean_denominator(local_count: torch.Tensor) -> torch.Tensor:
    """What a rank divides its loss *sum* by so that DDP's gradient average equals one process's mean.

    DDP averages gradients over ranks, so dividing each rank's sum by
    (global count / world size) gives sum_r grad(S_r) / global count: exactly
    the single-process mean over the whole global batch, however unevenly the
    counted items (labelled pixels, present classes, matched masks) fall on
    ranks. One process: the local count itself.
    """
    count = local_count.detach().float().clone()
    if world_size() == 1:
        return count
    return all_reduce_sum(count) / world_size()
