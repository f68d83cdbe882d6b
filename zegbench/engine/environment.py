"""What a run or speed record was made on: library versions, device, threads and git commit (``env.json``)."""
from __future__ import annotations

import os
import platform
import subprocess
from contextlib import contextmanager
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model and core count, e.g. 'Intel(R) Xeon(R) ... (2 cores)'."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def device_name(device: str) -> str:
    """The name of ``device`` itself (``cuda:1`` names GPU 1, not the current GPU); the CPU's for ``cpu``."""
    parsed = torch.device(device)
    return torch.cuda.get_device_name(parsed) if parsed.type == "cuda" else cpu_name()


def fp32_math() -> dict:
    """How this process runs fp32 math on CUDA (on Ampere and later GPUs): the matmul precision ('highest'
    is full fp32) and whether cuBLAS matmuls and cuDNN convolutions may use TF32. torch's defaults
    are 'highest', no TF32 in matmuls, TF32 in convolutions. A flag is None when the process set it
    through both of torch's APIs so that the legacy one cannot say."""
    def read(get):
        try:
            return get()
        except RuntimeError:
            return None
    return {"float32_matmul_precision": torch.get_float32_matmul_precision(),
            "tf32_matmul": read(lambda: torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": read(lambda: torch.backends.cudnn.allow_tf32)}


@contextmanager
def intra_op_threads(threads: int):
    """torch's intra-op threads set to ``threads`` inside the block (a run's ``train.threads``), as they were
    after it: a run in a process of its own or called from a script or a test alike.

    On every device: the key says what the run's process did, and a GPU run's math is in CUDA kernels, which
    it does not touch (its CPU-side ops are copies, the batch's assembly and the loss scalars' bookkeeping).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def environment(device: str, loader_workers: int | None = None) -> dict:
    """Versions, device, fp32 math and git commit, recorded beside every run (with its data loader's workers,
    if it trains). Only the device name, torch and threads name a machine (``speed_suite.machine_key``)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import open_clip

    env = {"torch": torch.__version__, "open_clip": open_clip.__version__, "python": platform.python_version(),
           "device": device, "device_name": device_name(device),
           "threads": torch.get_num_threads(), **fp32_math(), "git_commit": commit}
    if torch.device(device).type == "cuda":
        env["cuda"] = torch.version.cuda
    if loader_workers is not None:
        env["loader_workers"] = loader_workers
    return env
