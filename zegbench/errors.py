"""The one exception type the CLI turns into a single clear error line, and the code that does it."""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable


class ZegbenchError(Exception):
    """A user-facing error: the message names the file or key and what to do.

    The command line prints ``error: <message>`` and exits with status 2 instead
    of a traceback. Raise it for bad input, never for bugs.
    """


def validation_error(err, where: str | Callable[[str], str], what: str = "key", schema=None,
                     advice: str = "") -> ZegbenchError:
    """The one error line for a pydantic ``ValidationError``: ``<where>: <what> '<dotted key>': <problem>``.

    ``where`` is the file, or a function from the key's first part to the layer that set it (a
    resolved config's keys come from several files and the command line). Given the ``schema``
    (the model validated against), a value out of its range is told with the whole allowed range
    of its field, not only the bound it broke. ``advice`` (what to do) ends the line. Every
    config schema's errors go through here.
    """
    key, msg = validation_problem(err, schema)
    place = where(key.split(".")[0]) if callable(where) else where
    return ZegbenchError(f"{place}: {what} '{key}': {msg}" + (f"; {advice}" if advice else ""))


def validation_problem(err, schema=None) -> tuple[str, str]:
    """(dotted key, message) of the first problem in a pydantic ``ValidationError`` (see ``validation_error``)."""
    e = err.errors()[0]
    key = ".".join(str(part) for part in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's and a dataclass's
        msg = "unknown key"
    if e["type"] in _RANGE_ERRORS:
        allowed = _allowed_range(_hint_at(schema, e["loc"])) if schema is not None else None
        msg += f" (got {e['input']!r}; allowed: {allowed})" if allowed else f" (got {e['input']!r})"
    return key, msg


# pydantic's error types for a value of the right type outside its field's range
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number", "multiple_of"}


def _hint_at(schema, loc: tuple):
    """The type hint of the value at ``loc`` in a pydantic model class (nested models, lists, tuples and
    dicts followed), or None where it cannot be told."""
    hint = schema
    for part in loc:
        hint = _without_none(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if isinstance(hint, type) and hasattr(hint, "model_fields") and part in hint.model_fields:
            field = hint.model_fields[part]
            hint = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        elif dataclasses.is_dataclass(hint) and isinstance(part, str):
            hint = typing.get_type_hints(hint, include_extras=True).get(part)
        elif origin is list and args:
            hint = args[0]
        elif origin is tuple and args:
            hint = args[part] if isinstance(part, int) and part < len(args) and args[-1] is not Ellipsis else args[0]
        elif origin is dict and len(args) == 2:
            hint = args[1]
        else:
            return None
    return hint


def _without_none(hint):
    """``X`` for the hint ``X | None``; any other hint as it is."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _allowed_range(hint) -> str | None:
    """``hint``'s range in words ('a whole number >= 1', 'a finite number in [0, 1]'), None if it states none."""
    bounds: list = []
    hint = _without_none(hint)
    while typing.get_origin(hint) is typing.Annotated:  # constraints may be nested FieldInfos: flatten them
        for item in hint.__metadata__:
            bounds += getattr(item, "metadata", None) or [item]
        hint = _without_none(typing.get_args(hint)[0])
    if not bounds:
        return None

    def bound(name):
        return next((getattr(b, name) for b in bounds if getattr(b, name, None) is not None), None)

    ge, gt, le, lt, step = bound("ge"), bound("gt"), bound("le"), bound("lt"), bound("multiple_of")
    finite = any(getattr(b, "allow_inf_nan", None) is False for b in bounds)
    kind = "a whole number" if hint is int else "a finite number" if finite else "a number"
    low = ("[", ">=", ge) if ge is not None else ("(", ">", gt) if gt is not None else None
    high = ("]", "<=", le) if le is not None else (")", "<", lt) if lt is not None else None
    if low and high:
        words = f"{kind} in {low[0]}{low[2]:g}, {high[2]:g}{high[0]}"
    elif low or high:
        _, sign, value = low or high
        words = f"{kind} {sign} {value:g}"
    else:
        words = kind
    return f"{words} and a multiple of {step:g}" if step is not None else words


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
