"""The ``zegbench`` logger on the console: ``--quiet`` and ``--verbose`` set how much it prints."""
from __future__ import annotations

import contextlib
import logging
import os
import sys

LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # --quiet, neither, --verbose


class _ConsoleHandler(logging.StreamHandler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when a record comes, not as they were
    when the handler was made (a redirected stream, pytest's capture among them, is followed)."""

    def __init__(self, stream_name: str):
        self.stream_name = stream_name
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property above decides
        pass


def configure(verbosity: int = 0) -> logging.Logger:
    """Print the ``zegbench`` logger's records as bare messages: below WARNING to stdout, the rest to stderr.

    ``verbosity``: -1 (``--quiet``) shows warnings and errors only, 0 adds info, 1
    (``--verbose``) adds debug records. Calling it again changes the level and adds no
    second pair of handlers.
    """
    logger = logging.getLogger("zegbench")
    logger.setLevel(LEVELS[verbosity])
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        out, err = _ConsoleHandler("stdout"), _ConsoleHandler("stderr")
        out.addFilter(lambda record: record.levelno < logging.WARNING)
        err.setLevel(logging.WARNING)
        logger.addHandler(out)
        logger.addHandler(err)
    return logger


@contextlib.contextmanager
def native_stderr_silenced():
    """Discard what native code writes to file descriptor 2 while the block runs.

    torch's profiler prints ``USDT ... profiler_start``/``profiler_stop`` lines, and without a GPU an
    ``ERROR ... gpuGetDeviceCount failed`` line, straight to fd 2 from C++ (neither ``KINETO_LOG_LEVEL``
    nor ``TORCH_CPP_LOG_LEVEL`` stops the first); a speed suite would print them for every record.
    Python's own ``sys.stderr`` writes inside the block are flushed first and lost too, so keep the
    block to the profiler itself. An exception raised in the block propagates after fd 2 is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
