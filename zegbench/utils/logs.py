"""How the command line shows the library's messages: ``logging``, configured once per process.

Library code logs to ``logging.getLogger(__name__)`` (under the ``zegbench`` logger) and prints
nothing; a user's own script can silence, redirect or format those messages as it likes. The
command line calls ``configure``: progress and results go to stdout, warnings and errors to
stderr, each as the bare message.
"""
from __future__ import annotations

import logging
import sys


class _Stream(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` / ``sys.stderr`` is at the time of each message
    (so a redirected or captured stream, e.g. under pytest, gets the lines)."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    @property
    def stream(self):
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property decides
        pass


def configure(verbosity: int = 0) -> None:
    """Show the ``zegbench`` logger's messages: INFO and up (``verbosity`` 0), WARNING and up (-1,
    ``--quiet``) or DEBUG and up (1, ``--verbose``). Below WARNING to stdout, the rest to stderr.
    Calling it again replaces the handlers it added (no line is printed twice)."""
    logger = logging.getLogger("zegbench")
    for handler in [h for h in logger.handlers if isinstance(h, _Stream)]:
        logger.removeHandler(handler)
    out, err = _Stream("stdout"), _Stream("stderr")
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))])
    logger.propagate = False  # the messages are shown here; a root handler would show them twice
