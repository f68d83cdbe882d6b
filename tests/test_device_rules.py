"""GPU-only rules, checked on the CPU: what a CUDA run relies on, faked where no GPU is present.

NCCL rejects a collective on a CPU tensor, and CUDA kernels reject mixing a CPU tensor into a
GPU computation; gloo and the CPU accept both, so the distributed and method tests alone cannot
catch a tensor created on the default device. Here the default device is made ``meta`` while the
run's own tensors stay on the CPU: a tensor factory that forgets ``device=`` (on a GPU run: a CPU
tensor) then lands on another device than the run's, as it would on a GPU, and the test fails.
"""
from __future__ import annotations

import pytest
import torch

from zegbench.datasets import worlds
from zegbench.methods import create_method, list_methods, method_config
from zegbench.methods.base import method_class
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
