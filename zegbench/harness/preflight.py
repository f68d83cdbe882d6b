"""A whole suite invocation checked before anything runs: device, executor, data, weights files.

``run_all.py`` expands a suite first, which resolves and validates every run's
config (``run.resolve``). ``check_invocation`` then checks what those configs
point at, so a problem that would fail every run (a missing data root, a
weights file that is not there, a GPU that is not there) is one error line and
exit status 2, with nothing written: no run folder, no ``failed.json``, no
summary, no report.

Generated worlds are checked by their generator settings only, not generated:
generation is deterministic (the images follow from the config and the
generator's code), so there is nothing the user supplied that could be missing,
and generating here would spend minutes and write the cache before a run was
sure to start. Real datasets get the cheap part of ``zegbench data verify``
(``datasets/verify.py``): the folders and split lists of the splits the runs
read exist, and the first image-label pair of each list reads.
"""
from __future__ import annotations

from pathlib import Path

from zegbench.errors import ZegbenchError
from zegbench.harness.executors import ExecutorOptions


def check_invocation(specs, data_root: str | None, executor: ExecutorOptions, device: str) -> None:
    """Raise ``ZegbenchError`` for the first problem that would fail runs of ``specs`` (suite.RunSpec)."""
    check_device(device, executor)
    check_executor(executor)
    needs: dict[str, set[str]] = {}  # dataset -> the splits some run reads
    for spec in specs:
        needs.setdefault(spec.dataset, set()).update(("train", "val"))
        for other in spec.eval_on:
            needs.setdefault(other, set()).add("val")
    for name, splits in needs.items():
        check_dataset(name, sorted(splits), data_root)
    for spec in specs:
        check_weights_files(spec.label, spec.resolved.get("method_config", {}))


def check_device(device: str, executor: ExecutorOptions) -> None:
    """``device`` parses, and a CUDA device exists here (not checked for Slurm: the jobs run elsewhere)."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ZegbenchError(f"--device {device!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if parsed.type != "cuda" or executor.kind == "slurm":
        return
    if not torch.cuda.is_available():
        raise ZegbenchError(f"--device {device} but torch sees no CUDA GPU on this machine: use --device cpu, "
                            f"or a torch build with CUDA")
    count = torch.cuda.device_count()
    if executor.kind == "torchrun" and executor.nproc > count:
        raise ZegbenchError(f"--nproc {executor.nproc} on --device {device} needs {executor.nproc} GPUs, "
                            f"this machine has {count}: lower --nproc")
    if (parsed.index or 0) >= count:
        raise ZegbenchError(f"--device {device}: this machine has {count} GPU{'s' if count != 1 else ''}, "
                            f"cuda:0 to cuda:{count - 1}")


def check_executor(executor: ExecutorOptions) -> None:
    """The Slurm executor's library is installed (the options themselves are checked by ``ExecutorOptions``)."""
    if executor.kind == "slurm":
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ZegbenchError("--executor slurm needs submitit: pip install -e '.[slurm]'") from None


def check_dataset(name: str, splits: list[str], data_root: str | None) -> None:
    """A world's generator settings, or a real dataset's folders, split lists and first pairs."""
    from zegbench.datasets.catalog import load_dataset_info, world_spec
    from zegbench.datasets.verify import verify_dataset

    info = load_dataset_info(name)
    if info.world is not None:
        world_spec(info)  # raises for bad generator settings; the images are generated on first use
        return
    problems, _ = verify_dataset(name, data_root, limit=1, check_counts=False, splits=splits)
    if problems:
        first = problems[0]
        what = first.what if first.where in first.what else f"{first.where}: {first.what}"
        more = (f" (and {len(problems) - 1} more: `zegbench data verify --dataset {name}` lists them all)"
                if len(problems) > 1 else "")
        raise ZegbenchError(f"dataset {name}: {what}{more}")


def check_weights_files(label: str, method_config: dict) -> None:
    """Every ``*_weights`` key naming a local file (``clip_weights``, ``backbone_weights``) names one that exists."""
    from zegbench.clip.loading import names_a_file

    for key, value in method_config.items():
        if key.endswith("_weights") and isinstance(value, str) and names_a_file(value) and not Path(value).is_file():
            raise ZegbenchError(f"run {label}: {key} {value} does not exist: pass an existing file, "
                                f"a pretrained tag or 'none'")
