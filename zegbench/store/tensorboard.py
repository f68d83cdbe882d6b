"""A run's TensorBoard event files: ``<run>/tensorboard/``, beside ``metrics.jsonl``.

``metrics.jsonl`` stays the record of truth (reports read it); the event files are
for reading curves in TensorBoard (``tensorboard --logdir results/<suite>``). Written
through ``torch.utils.tensorboard`` (imported only when a run opens its writer, so
reading a store needs neither torch nor tensorboard).
"""
from __future__ import annotations

from pathlib import Path

TENSORBOARD_FOLDER = "tensorboard"


class RunEvents:
    """The event writer of one run folder; a resumed run continues at ``start_step``.

    Events of steps at or past ``start_step`` that a killed run had written are
    discarded by TensorBoard (``purge_step``), as ``metrics.jsonl`` cuts its tail.
    """

    def __init__(self, run_dir: Path, start_step: int = 0):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_FOLDER),
                                    purge_step=start_step or None)

    def training_step(self, step: int, losses: dict[str, float], lrs: dict[str, float]) -> None:
        """One logged training step: each loss part, their sum and each parameter group's lr."""
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("loss/total", sum(losses.values()), step)
        for group, lr in lrs.items():
            self.writer.add_scalar(f"lr/{group}", lr, step)

    def evaluation(self, step: int, metrics: dict[str, float | None], prefix: str = "val") -> None:
        """The run's evaluation metrics at the step whose weights were evaluated (None values left out)."""
        for name, value in metrics.items():
            if value is not None:
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def close(self) -> None:
        self.writer.close()
