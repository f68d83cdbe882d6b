"""What a training checkpoint carries besides weights, so that a resumed run is the run an
uninterrupted one would have been (``train.py`` writes and reads it).

After a checkpoint at step ``step``, the rest of a run depends on:

- the method's and the optimiser's state (AdamW's moments and step counts), saved by ``train.py``;
- the step: the lr schedule and the transductive phase are functions of it, so the phase needs
  no key of its own. A self-training run resumed after its switch loads the optimiser as the
  switch left it (fresh or continued); one resumed exactly at the switch clears it there, as
  the uninterrupted run did;
- the batch plan's position, ``batches_drawn``: ``datasets/loader.BatchPlan`` draws those
  batches again and drops them (its docstring says why a position, not a generator state);
- each rank's torch generators, ``generators``: the CPU one and, on a GPU, the CUDA one of the
  run's device (dropout's masks). Rank 0 writes the checkpoint, so the ranks' states are
  gathered to it first.

The loader has no state of its own: the plan decides each batch's images and augmentation, and
the seeds its workers get never reach an image.

None of this is part of a run's identity (its hash covers the resolved config only).
"""
from __future__ import annotations

import logging

import torch

from zegbench.utils import distributed

log = logging.getLogger(__name__)


def resume_state(done: int, accumulate: int, device: str) -> dict:
    """The checkpoint keys an exact resume after ``done`` steps needs, beyond weights and step.

    A collective under torchrun: every rank calls it (only rank 0 then writes).
    """
    return {"batches_drawn": done * accumulate, "generators": distributed.all_gather(_own_generators(device))}


def _own_generators(device: str) -> dict:
    """This process's torch generator states: CPU, and CUDA's for ``device`` if CUDA is already in use."""
    states = {"cpu": torch.get_rng_state()}
    if torch.device(device).type == "cuda" and torch.cuda.is_initialized():  # never start CUDA just for this
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def resume(checkpoint: dict, rank: int, device: str, accumulate: int, steps: int) -> int:
    """Put this rank's generators back as ``checkpoint`` saved them; returns the batches the run has trained on.

    A checkpoint written before zegbench saved generator states still resumes, with a warning:
    its batches are the uninterrupted run's, its dropout masks are not.
    """
    step = int(checkpoint["step"])
    saved = checkpoint.get("generators") or []
    if rank < len(saved):
        torch.set_rng_state(saved[rank]["cpu"].cpu())  # .cpu(): the checkpoint may be loaded onto the GPU
        if "cuda" in saved[rank] and torch.device(device).type == "cuda":
            torch.cuda.set_rng_state(saved[rank]["cuda"].cpu(), device)
    elif step < steps:
        log.warning(f"the checkpoint at step {step} holds no random generator states (written by an older "
                    f"zegbench): the run resumes with the uninterrupted run's batches but other dropout masks, "
                    f"so its remaining {steps - step} steps cannot match an uninterrupted run's")
    return int(checkpoint.get("batches_drawn", step * accumulate))
