"""The ``zegbench`` logger on the console: ``--quiet`` and ``--verbose`` set how much it prints."""
from __future__ import annotations

import logging
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
