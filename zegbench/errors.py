"""The one exception type the CLI turns into a single clear error line."""


class ZegbenchError(Exception):
    """A user-facing error: the message names the file or key and what to do.

    The command line prints ``error: <message>`` and exits with status 2 instead
    of a traceback. Raise it for bad input, never for bugs.
    """
