"""Training batches through ``torch.utils.data.DataLoader``: worker processes read and augment
images while the model trains on the previous batch.

What a batch holds is decided in the main process, before any worker sees it, from the
run's generator alone: ``BatchPlan`` draws each batch's image indices and one random
decision per image (the world's horizontal flip, or the seed of a real dataset's
``TrainTransform``), in the same order as ever. A worker only carries out a plan, so
the batches are the same with 0, 1 or 8 workers, and every data-parallel rank draws
the same global batch and keeps its own slice. The number of workers therefore
changes speed, never results: it is an execution option (``--workers``), recorded in
``env.json`` and kept out of the run hash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from zegbench.errors import ZegbenchError
from zegbench.utils.cores import available_cores

# Each worker keeps ``prefetch`` batches in shared memory (16 VOC crops: 17 MB each): 16 workers
# stay near 0.5 GB of /dev/shm. A GPU that needs more (README: an H200 at the VOC recipe) gets --workers.
MAX_DEFAULT_WORKERS = 16
WORKERS_ENV = "ZEGBENCH_LOADER_WORKERS"  # run_all.py --workers, passed to its run processes


def default_workers(cores: int | None = None, threads: int = 1) -> int:
    """Loader workers for a training process with ``cores`` CPU cores (default: the cores it may use,
    ``available_cores``) and ``threads`` intra-op threads, when none are asked for: the cores its threads
    leave free, at most ``MAX_DEFAULT_WORKERS``. A run that shares the cores with runs beside it
    (``-j``: a core per thread) therefore loads its data in-process.

    ``ZEGBENCH_LOADER_WORKERS`` (set by ``run_all.py --workers``) wins.
    """
    if os.environ.get(WORKERS_ENV):
        return check_workers(int(os.environ[WORKERS_ENV]))
    cores = cores or available_cores()
    return max(0, min(MAX_DEFAULT_WORKERS, cores - threads))


def check_workers(workers: int) -> int:
    if workers < 0:
        raise ZegbenchError(f"--workers must be 0 (load in the training process) or more, not {workers}")
    return workers


class BatchPlan(Sampler):
    """This rank's ``(index, draw)`` pairs for global batches ``start`` to ``batches - 1`` of ``batch_size * world``.

    The draws consume ``rng`` exactly as the loop without a loader did: per batch, the
    indices (without replacement), then one decision per image of the global batch.

    A resumed run passes ``start``, the batches it has trained on: they are drawn again and
    dropped, so the plan goes on exactly where the uninterrupted run's would. Why not save the
    generator's state in the checkpoint instead: the loader draws from the plan ahead of
    training (its workers prefetch), so when a checkpoint is written the generator is some
    batches past the ones trained on. The position is exact whatever the prefetching, and
    drawing again costs under 0.1 ms a batch (about 6 s for COCO-Stuff's 80,000 steps).
    """

    def __init__(self, size: int, batch_size: int, batches: int, rng: np.random.Generator, augmented: bool,
                 rank: int = 0, world: int = 1, start: int = 0):
        if batch_size * world > size:
            raise ZegbenchError(f"a global batch of {batch_size * world} images needs at least as many training "
                                f"images; the split has {size}: lower batch_size")
        self.size, self.batch_size, self.batches, self.rng = size, batch_size, batches, rng
        self.augmented, self.rank, self.world, self.start = augmented, rank, world, start

    def __len__(self) -> int:
        return self.batches - self.start

    def __iter__(self):
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        for number in range(self.batches):
            indices, draws = self._draw()
            if number >= self.start:
                yield list(zip((int(i) for i in indices), draws, strict=True))[mine]

    def _draw(self) -> tuple[np.ndarray, list]:
        """The next global batch's image indices and one random decision per image."""
        indices = self.rng.choice(self.size, self.batch_size * self.world, replace=False)
        if self.augmented:  # the seed of the transform's every random choice
            return indices, [int(self.rng.integers(0, 2**31 - 1)) for _ in indices]
        return indices, [bool(self.rng.uniform() < 0.5) for _ in indices]  # the world: a flip is the whole augmentation


@dataclass
class _Failed:
    """A user error met in a worker, carried to the main process as its message.

    (DataLoader re-raises a worker's exception with the worker's traceback in its
    message; the run's error line must stay the dataset's own one line.)
    """

    message: str


class AugmentedImages(Dataset):
    """``dataset[index]`` with its planned augmentation: ``(index, draw)`` -> (image uint8 HxWx3, label int HxW)."""

    def __init__(self, dataset, transform=None):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, planned: tuple[int, int | bool]):
        index, draw = planned
        try:
            image, label, _ = self.dataset[index]
        except ZegbenchError as err:
            return _Failed(str(err))
        if self.transform is not None:
            image, label = self.transform(image, label, draw)
        elif draw:
            image, label = image[:, ::-1], label[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(label)


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor] | _Failed:
    """Stacked images and labels; labels travel as uint8 (every label is 0..255), an eighth of
    int64's bytes through shared memory, pinned memory and the copy to the GPU."""
    failed = next((item for item in items if isinstance(item, _Failed)), None)
    if failed is not None:
        return failed
    labels = np.stack([lab for _, lab in items])
    if labels.min() < 0 or labels.max() > 255:
        raise ValueError("label values must be 0..255")  # a bug: the readers check labels against the class list
    return torch.from_numpy(np.stack([i for i, _ in items])), torch.from_numpy(labels.astype(np.uint8))


def training_batches(dataset, plan: BatchPlan, transform=None, workers: int = 0, pin_memory: bool = False,
                     prefetch: int = 2):
    """Yield (images uint8 [B, H, W, 3], labels uint8 [B, H, W]) for each batch of ``plan``, in order.

    ``workers`` > 0 reads and augments in that many processes, each keeping up to
    ``prefetch`` batches ready; they stay alive for the whole plan (``persistent_workers``).
    ``pin_memory`` (on CUDA) puts batches in page-locked memory, so the copy to the GPU
    can overlap compute (``.to(device, non_blocking=True)``).
    """
    options = {"num_workers": workers, "pin_memory": pin_memory}
    if workers > 0:
        options.update(persistent_workers=True, prefetch_factor=prefetch)
    # Its own generator: starting an iteration draws a seed for the workers, which must not
    # come from torch's global generator (training's dropout draws from that one).
    loader = DataLoader(AugmentedImages(dataset, transform), batch_sampler=plan, collate_fn=_collate,
                        generator=torch.Generator(), **options)
    for batch in loader:
        if isinstance(batch, _Failed):
            raise ZegbenchError(batch.message)
        yield batch
