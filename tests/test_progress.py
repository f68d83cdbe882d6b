"""The suite's position: the time-left estimate and the line logged after each run."""
from __future__ import annotations

import pytest

from zegbench.harness.progress import SuiteProgress, format_duration, time_left


@pytest.mark.parametrize("durations, remaining, parallel, expected", [
    ([], 3, 1, None),  # no run finished yet: no basis for an estimate
    ([10.0, 20.0], 3, 1, 45.0),  # mean 15 s x 3 runs
    ([10.0, 20.0], 3, 2, 30.0),  # two at a time: 2 waves of 15 s
    ([10.0, 20.0], 1, 4, 15.0),  # fewer runs left than slots: one wave
    ([10.0], 0, 1, 0.0),
    ([], 0, 1, 0.0),
])
def test_time_left_from_the_finished_runs(durations, remaining, parallel, expected):
    assert time_left(durations, remaining, parallel) == expected


def test_format_duration():
    assert [format_duration(s) for s in (4.4, 59.6, 123, 3900)] == ["4 s", "1 min 0 s", "2 min 3 s", "1 h 5 min"]


def test_each_ended_run_gives_its_number_and_the_suite_position():
    progress = SuiteProgress(total=4)
    n, line = progress.finish(None)  # a copy or a failure: counted, no duration to estimate from
    assert n == 1 and line.startswith("suite: ") and line.endswith(" in")
    n, line = progress.finish(10.0)
    assert n == 2 and line.endswith(" in, about 20 s left")  # 2 runs of 10 s left
    n, line = progress.finish(30.0)
    assert n == 3 and line.endswith(" in, about 20 s left")  # 1 run of (10 + 30) / 2 s
    assert progress.finish(None)[1].endswith(" in, done")
