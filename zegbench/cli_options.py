"""Command-line options shared by ``zegbench`` and ``run_all.py``, each defined once as an argparse parent.

Numbers are checked where they are parsed (``positive_int`` and friends), and a usage
error is one ``error:`` line with exit status 2, as any other bad input: ``run_command``
parses, applies the common options, then runs the command.
"""
from __future__ import annotations

import argparse
import os
import sys

from zegbench.errors import ZegbenchError, run_reporting_errors


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors raise ``ZegbenchError`` (one line) instead of printing the usage."""

    def error(self, message: str):
        raise ZegbenchError(f"{message.removeprefix('argument ')} (see `{self.prog} --help`)")


def _whole_number(minimum: int):
    """An argparse ``type=``: an int of at least ``minimum``, or a message saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, not {text}")
        return value
    return parse


positive_int = _whole_number(1)  # counts, steps, sizes
non_negative_int = _whole_number(0)  # seeds, loader workers


def positive_float(text: str) -> float:
    """A number above 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def common_options() -> ArgumentParser:
    """``--debug``, ``--quiet``/``--verbose`` and ``--config-dir``: on every command.

    Their defaults are left out of the namespace (``SUPPRESS``), so ``zegbench --debug run``
    keeps the top-level flag when the subcommand does not repeat it; ``run_command`` fills them in.
    """
    parent = ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback behind an error line")
    loudness = parent.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=argparse.SUPPRESS,
                          help="print warnings and errors only")
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                          default=argparse.SUPPRESS, help="print debug messages too")
    parent.add_argument("--config-dir", metavar="DIR", action="append", default=argparse.SUPPRESS,
                        help="a folder of your own methods/, datasets/, suites/ and claims/ YAML files, added to the "
                             "shipped ones and to $ZEGBENCH_CONFIGS (repeatable; run processes see it too)")
    return parent


def _one_option(*flags: str, **options) -> ArgumentParser:
    """A parent parser holding the one option ``flags`` with ``options`` (argparse's ``add_argument``)."""
    parent = ArgumentParser(add_help=False)
    parent.add_argument(*flags, **options)
    return parent


def json_option() -> ArgumentParser:
    """``--json``: print one JSON object as the last line."""
    return _one_option("--json", action="store_true", help="print a JSON object as the last line")


def data_root_option() -> ArgumentParser:
    """``--data-root DIR``: where the real datasets are (default: ``$ZEGBENCH_DATA``)."""
    return _one_option("--data-root", metavar="DIR", default=os.environ.get("ZEGBENCH_DATA"),
                       help="folder holding the real datasets (default: $ZEGBENCH_DATA)")


def device_option() -> ArgumentParser:
    """``--device``: the torch device."""
    return _one_option("--device", default="cpu", help="torch device: cpu, cuda or cuda:N (default: cpu)")


def results_option() -> ArgumentParser:
    """``--results DIR``: the run store."""
    return _one_option("--results", metavar="DIR", default="results", help="run store folder (default: results)")


def workers_option() -> ArgumentParser:
    """``--workers N``: data loader processes (speed only, never results)."""
    return _one_option("--workers", type=non_negative_int, metavar="N",
                       help="data loader processes per training process (0: load in the training process; default: "
                            "the cores it gets beyond its threads, at most 16: none when runs side by side fill the "
                            "cores); changes speed only, never results")


def dataset_option(help: str, default: str | None = None, required: bool = False) -> ArgumentParser:
    """``--dataset NAME``: a dataset config's name (``zegbench`` commands differ in its default and meaning)."""
    return _one_option("--dataset", default=default, required=required, metavar="NAME", help=help)


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, job) -> int:
    """Parse ``argv``, apply the common options, run ``job(args)``: a usage or user error is one
    ``error:`` line and exit status 2 (``zegbench.errors.run_reporting_errors``)."""
    from zegbench.config_dirs import add_config_dirs
    from zegbench.utils.logs import configure

    try:
        args = parser.parse_args(argv)
    except ZegbenchError as err:  # nothing has run yet, nothing is written
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, default in (("debug", False), ("verbosity", 0), ("config_dir", [])):
        if not hasattr(args, name):
            setattr(args, name, default)

    def setup_and_run():
        configure(args.verbosity)
        add_config_dirs(args.config_dir)  # before anything reads a config
        return job(args)
    return run_reporting_errors(setup_and_run, args.debug)
