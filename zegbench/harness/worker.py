"""One suite run in its own process: ``python -m zegbench.harness.worker '<json>'``.

The JSON payload (``suite._payload``) carries the run's resolved config and its folder in the store,
as the suite listed them; the worker trains that config into that folder.

The suite runner starts one worker per run so that a crash, a kill or an out-of-memory error
ends that run only. For CPU runs the process is forked from a template that has imported the
heavy libraries once (``python -m zegbench.harness.worker --template FD``, ``run_template.py``),
and calls ``main`` as a fresh worker would. The run's torch threads are its config's
``train.threads`` (``engine/run.py``); the payload's ``workers`` (the suite's choice, or
``run_all.py --workers``) its data loader's worker processes, by default, where the payload has
none (a Slurm job), the cores the job may use minus one. Started by ``torchrun`` (the torchrun
executor), the worker's processes train the run data-parallel (``utils/distributed.py``).
"""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    """Run the run ``argv[0]`` (JSON) describes. Exit status: 0 done, 2 an error line, 3 claimed elsewhere."""
    from zegbench.datasets.loader import default_workers
    from zegbench.engine.run import RunClaimed, run_experiment
    from zegbench.errors import ZegbenchError
    from zegbench.store import RunFolder
    from zegbench.utils import distributed
    from zegbench.utils.cores import available_cores
    from zegbench.utils.logs import configure

    configure()

    spec = json.loads(argv[0])
    try:
        device = distributed.setup(spec["device"])
        workers = spec.get("workers")
        if workers is None:
            workers = default_workers(available_cores() // distributed.world_size())
        # The config and folder the suite resolved when it listed its runs: nothing is resolved again
        run_experiment(spec["resolved"], RunFolder.from_payload(spec["folder"]), device, spec["progress"],
                       spec["data_root"], workers=workers)
    except RunClaimed as err:
        print(f"skipped: {err}", file=sys.stderr)
        return 3
    except (ZegbenchError, OSError) as err:
        from zegbench.errors import describe_error

        print(f"error: {describe_error(err)}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--template"]:
        from zegbench.harness.run_template import serve

        sys.exit(serve(int(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
