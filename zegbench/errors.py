"""The one exception type the CLI turns into a single clear error line, and the code that does it."""
from __future__ import annotations

import sys


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


def run_reporting_errors(job, debug: bool = False) -> int:
    """Run ``job``; a user error or an operating-system error becomes one ``error:`` line and exit 2."""
    import traceback

    try:
        return job() or 0
    except BrokenPipeError:  # whoever read our output stopped (`zegbench suite list | head`): not an error
        _stdout_to_devnull()
        return 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away
    except (ZegbenchError, OSError) as err:
        if debug:
            traceback.print_exc()
        print(f"error: {describe_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to go on", file=sys.stderr)
        return 130


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of it does not fail a second time."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured or replaced): nothing to flush
        pass


def describe_error(err: Exception) -> str:
    """One line for a ``ZegbenchError`` or an ``OSError`` (which file, what happened, what to do)."""
    import errno

    if isinstance(err, ZegbenchError):
        return str(err)
    where = f" {err.filename}" if getattr(err, "filename", None) else ""
    verb = "write" if err.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT) else "access"
    advices = {errno.ENOSPC: "free some space and run again (finished runs are kept)",
               errno.EACCES: "choose a folder you can write (e.g. --results) or fix its permissions",
               errno.EROFS: "the file system is read-only: choose another folder (e.g. --results)",
               errno.EDQUOT: "the disk quota is exhausted: free some space and run again"}
    advice = advices.get(err.errno, "check the path")
    return f"cannot {verb}{where}: {err.strerror or err}; {advice}"


def check_name(name: str, kind: str) -> str:
    """``name`` if it is a plain config name (letters, digits, ``_ . -``); a path part never escapes its folder."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name or ""):
        raise ZegbenchError(f"{kind} name {name!r} is not a plain name (letters, digits, '_', '.', '-'): "
                            f"configs are looked up by name in their folder")
    return name
