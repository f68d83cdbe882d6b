"""One suite run in its own process: ``python -m zegbench.harness.worker '<json>'``.

The suite runner starts one worker per run so that a crash, a kill or an
out-of-memory error ends that run only. ``ZEGBENCH_THREADS`` sets torch's
thread count (the runner divides the cores between parallel runs);
``ZEGBENCH_LOADER_WORKERS`` (``run_all.py --workers``) the data loader's worker
processes, by default one fewer than the cores each training process has. Started by
``torchrun`` (the torchrun executor), the worker's processes train the run
data-parallel (``utils/distributed.py``).
"""
from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    import torch

    from zegbench.datasets.loader import default_workers
    from zegbench.errors import ZegbenchError
    from zegbench.harness.run import RunClaimed, run_experiment
    from zegbench.utils import distributed
    from zegbench.utils.cores import available_cores
    from zegbench.utils.logs import configure

    configure()

    spec = json.loads(argv[0])
    if os.environ.get("ZEGBENCH_THREADS"):
        torch.set_num_threads(int(os.environ["ZEGBENCH_THREADS"]))
    try:
        device = distributed.setup(spec["device"])
        cores = int(os.environ.get("ZEGBENCH_THREADS") or available_cores() // distributed.world_size())
        run_experiment(spec["method"], spec["dataset"], spec["seed"], spec["overrides"], spec["results"],
                       spec["suite"], device, spec["progress"], spec["data_root"], spec.get("eval_on"),
                       workers=default_workers(cores))
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
    sys.exit(main(sys.argv[1:]))
