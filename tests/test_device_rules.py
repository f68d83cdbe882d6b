"""GPU-only rules, checked on the CPU: what a CUDA run relies on, faked where no GPU is present.

NCCL rejects a collective on a CPU tensor, and CUDA kernels reject mixing a CPU tensor into a
GPU computation; gloo and the CPU accept both, so the distributed and method tests alone cannot
catch a tensor created on the default device. Here the default device is made ``meta`` while the
run's own tensors stay on the CPU: a tensor factory that forgets ``device=`` (on a GPU run: a CPU
tensor) then lands on another device than the run's, as it would on a GPU, and the test fails.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError
from zegbench.methods import create_method, list_methods, method_class, method_config
from zegbench.store import RunStore
from zegbench.utils import distributed

SEEN = list(worlds.generator().SEEN_CLASSES)


@pytest.fixture
def nccl_like_two_ranks(monkeypatch):
    """World size 2 whose all-reduce enforces NCCL's rule (the tensor is on the run's device, here
    the CPU) and returns the sum over two identical ranks; the tensors checked are returned."""
    reduced = []

    def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
        assert tensor.device == torch.device("cpu"), f"a collective on a {tensor.device} tensor"
        reduced.append(tensor)
        return tensor.mul_(2)

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "all_reduce_sum", all_reduce_sum)
    return reduced


TRAINABLE = [name for name in list_methods() if not method_class(method_config(name)["class"]).training_free]


@pytest.mark.parametrize("name", TRAINABLE)
def test_training_step_keeps_every_tensor_on_the_runs_device(name, nccl_like_two_ranks):
    method = create_method(name, **method_class(method_config(name)["class"]).tiny_config)
    images = method.normalize(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8))
    labels = torch.randint(0, 4, (2, 32, 32))
    labels[:, :4] = 255
    method(images, SEEN[:4])  # fills the class-embedding cache: the tokenizer builds CPU tensors on purpose
    torch.set_default_device("meta")
    try:
        logits, aux = method(images, SEEN[:4])
        parts = method.loss(logits, labels, aux)
        sum(parts.values()).backward()
    finally:
        torch.set_default_device(None)
    assert nccl_like_two_ranks, "the loss's means over the global batch go through an all-reduce"
    assert all(p.grad is None or p.grad.device.type == "cpu" for p in method.parameters())


def test_class_embeddings_are_put_on_the_device_once_per_vocabulary(monkeypatch):
    """Each forward (each sliding window too) asks for the class embeddings; a host-to-GPU copy each
    time blocks the GPU's queue. Counted here: how often a vocabulary's embeddings are moved."""
    from zegbench.methods import base

    method = create_method("zegclip", **method_class("zegclip").tiny_config)
    moved = []
    real = base.class_embeddings

    def counted(*args, **kwargs):
        moved.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "class_embeddings", counted)
    first = method.text_embeddings(SEEN[:4])
    assert method.text_embeddings(SEEN[:4]) is first and len(moved) == 1
    method.text_embeddings(SEEN[:3])  # another vocabulary: its own entry
    assert len(moved) == 2 and torch.equal(method.text_embeddings(SEEN[:4]), first) and len(moved) == 2


class _NoHostReads(torch.overrides.TorchFunctionMode):
    """Fails on any read of a tensor's value by the host: on a GPU each one waits for the queue."""

    READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__float__,
             torch.Tensor.__int__}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        assert func not in self.READS, f"a host read ({func.__name__}) where the GPU must not wait"
        return func(*args, **(kwargs or {}))


def test_the_loss_check_reads_nothing_on_the_host_until_asked():
    from zegbench.engine.train import FiniteCheck

    check = FiniteCheck(["focal", "dice"], "cpu")
    with _NoHostReads():
        check.watch(0, torch.tensor([1.0, 2.0]))
        check.watch(1, torch.tensor([float("nan"), 0.5]))
        check.watch(2, torch.tensor([float("inf"), 0.25]))  # later non-finite steps keep the first
    with pytest.raises(ZegbenchError, match=r"became nan at step 1 \(focal nan, dice 0.5\)"):
        check.raise_if_seen()
    FiniteCheck(["focal"], "cpu").raise_if_seen()  # finite: silent


def test_ddp_all_reduces_gradients_once_per_optimiser_step(tmp_path):
    """With accumulate > 1, DDP must skip the gradient all-reduce on every micro-batch but the last."""
    import torch.distributed as dist

    from zegbench.engine.train import micro_batch_sync

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
        reductions = []

        def counting_hook(state, bucket):
            reductions.append(bucket.index())
            future = torch.futures.Future()
            future.set_result(bucket.buffer())
            return future

        model.register_comm_hook(None, counting_hook)
        accumulate = 3
        for micro in range(accumulate):
            with micro_batch_sync(model, last=micro == accumulate - 1):
                model(torch.randn(5, 4)).sum().backward()
        assert len(reductions) == 1
    finally:
        dist.destroy_process_group()


def test_resume_reads_the_checkpoint_to_the_cpu(tmp_path, monkeypatch):
    """Loaded to the GPU, AdamW's `step` counters stay there and cost a host sync per parameter per step."""
    from zegbench.datasets.catalog import build_dataset, load_dataset_info
    from zegbench.engine.config import TrainConfig
    from zegbench.engine.train import train

    info, data = load_dataset_info("world_smoke"), build_dataset("world_smoke", "train")
    cfg = TrainConfig(steps=1, batch_size=1, warmup=0)
    train(create_method("zegclip", **method_class("zegclip").tiny_config), data, info, cfg, run_dir=tmp_path)
    loads = []
    real_load = torch.load

    def spying_load(*args, **kwargs):
        loads.append(kwargs.get("map_location"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    method = create_method("zegclip", **method_class("zegclip").tiny_config)
    # "cpu:0" stands for the run's own device (cuda:N on a GPU), which the checkpoint must not be read to
    summary = train(method, data, info, replace(cfg, steps=2), run_dir=tmp_path, device="cpu:0")
    assert summary["resumed_from"] == 1 and loads == ["cpu"]


def test_gpu_groups_give_each_run_side_by_side_its_own_gpus(monkeypatch):
    from zegbench.harness.executors import gpu_groups

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert gpu_groups("cuda", jobs=4, nproc=1) == ["0", "1", "2", "3"]
    assert gpu_groups("cuda", jobs=2, nproc=2) == ["0,1", "2,3"]  # torchrun jobs of 2 processes
    assert gpu_groups("cuda", jobs=3, nproc=2) == ["0,1", "2,3", "0,1"]  # more runs than groups: shared
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # the user's own selection is what is split
    assert gpu_groups("cuda", jobs=2, nproc=1) == ["5", "7"]
    for device, jobs in (("cuda:1", 4), ("cpu", 4), ("cuda", 1)):  # a named GPU, the CPU, one run: as asked
        assert gpu_groups(device, jobs=jobs, nproc=1) is None


def test_runs_side_by_side_on_cuda_each_see_their_own_gpu(tmp_path, monkeypatch):
    """`-j 2 --device cuda`: each run process is started with its own CUDA_VISIBLE_DEVICES."""
    import subprocess

    from zegbench.harness import suite as suite_mod

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen = []

    def fake_run(cmd, env=None, **kwargs):
        seen.append(env.get("CUDA_VISIBLE_DEVICES"))
        return subprocess.CompletedProcess(cmd, 1, stdout="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    specs = suite_mod.expand("ablations", seeds=1, store=RunStore(tmp_path))  # 5 runs
    suite_mod.execute(specs, "ablations", RunStore(tmp_path), device="cuda", jobs=2)
    assert len(seen) == len(specs) and set(seen) == {"0", "1"}


def test_process_group_waits_longer_than_nccls_ten_minutes(monkeypatch):
    """Rank 0 may generate a world or scan a dataset alone while the others wait at a barrier."""
    from datetime import timedelta

    import torch.distributed as dist

    asked = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: asked.update(kwargs))
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: asked.update(device_index=index))
    assert distributed.setup("cuda") == "cuda:1"
    assert asked["backend"] == "nccl" and asked["device_index"] == 1
    assert asked["timeout"] >= timedelta(minutes=60)
