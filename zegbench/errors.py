"""The one exception type the CLI turns into a single clear error line."""


class ZegbenchError(Exception):
    """A user-facing error: the message names the file or key and what to do.

    The command line prints ``error: <message>`` and exits with status 2 instead
    of a traceback. Raise it for bad input, never for bugs.
    """


def validation_problem(err) -> tuple[str, str]:
    """(dotted key, message) of the first problem in a pydantic ``ValidationError``."""
    e = err.errors()[0]
    key = ".".join(str(part) for part in e["loc"])
    return key, e["msg"].replace("Extra inputs are not permitted", "unknown key")
