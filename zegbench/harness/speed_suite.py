"""``run_all.py --suite speed``: speed targets -> one record folder per (method, target, machine).

    <results>/<suite>/<method>-<dataset>-speed-<hash>/
        env.json      versions, device, threads, fp32 math (no TF32 while measuring), git commit
        result.json   the record of ``engine.speed.measure_speed`` (kind: speed)

The hash covers the method's resolved config, the target's settings and the
machine (device name, torch version, threads), so a re-run on the same machine
reuses finished records and another machine measures afresh. Records are
never overwritten (``--force`` moves the folders aside first, as for runs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from zegbench.engine.environment import environment
from zegbench.harness.suite_config import SpeedTarget
from zegbench.store import RunStore, short_hash

# 2: records hold memory (inference at batch 1, the recipe's training step); schema 1 records lack it
SPEED_SCHEMA = 2
log = logging.getLogger(__name__)


@dataclass
class SpeedSpec:
    """One speed record to measure: a method (or the speed baseline of ``config_of``) on a target."""

    method: str
    config_of: str
    target: SpeedTarget
    run_dir: Path

    @property
    def label(self) -> str:
        size = "x".join(map(str, self.target.whole))
        return f"{self.method} [{self.target.dataset} {size} {self.target.precision}]"


def machine_key(device: str) -> dict:
    """What makes two machines' timings different records: device name, torch version, threads."""
    env = environment(device)
    return {"device_name": env["device_name"], "torch": env["torch"], "threads": env["threads"]}


def expand_speed(targets: list[SpeedTarget], suite: str, store: RunStore, device: str = "cpu",
                 only: str | None = None) -> list[SpeedSpec]:
    """Every (method, target) of a speed suite, plus the speed baselines its methods declare
    (``Method.speed_baseline``), each measured once with the config of the first method declaring it."""
    from zegbench.engine.speed import speed_baseline_of, speed_method_config
    from zegbench.harness.suite import label_matches

    machine = machine_key(device)
    specs = []
    for target in targets:
        entries = [(m, m) for m in target.methods]
        if target.encoder_baseline:
            for m in target.methods:
                baseline = speed_baseline_of(m)
                if baseline and baseline not in dict(entries):
                    entries.append((baseline, m))
        for name, config_of in entries:
            key = {"method": name, "config": speed_method_config(config_of, target.dataset, target.random_weights),
                   "target": target.model_dump(exclude={"methods"}), "machine": machine, "schema": SPEED_SCHEMA}
            spec = SpeedSpec(name, config_of, target, store.speed_dir(suite, name, target.dataset, short_hash(key)))
            if only is None or label_matches(spec.label, only):
                specs.append(spec)
    return specs


def execute_speed(specs: list[SpeedSpec], device: str = "cpu") -> dict[str, int]:
    """Measure every spec without a record (one process, one at a time: timings must not share cores)."""
    from zegbench.engine.speed import DTYPES, full_fp32, matmul_peak, measure_speed

    counts = {"done": 0, "reused": 0}
    todo = [s for s in specs if not RunStore.has_speed_record(s.run_dir)]
    counts["reused"] = len(specs) - len(todo)
    peaks = {}  # per precision, measured once: MFU of a bf16 target is against the bf16 peak
    with full_fp32():  # env.json then records the fp32 math the records were measured with
        env = environment(device) if todo else None  # one machine for every record of this invocation
    for i, spec in enumerate(todo, 1):
        t = spec.target
        if t.precision not in peaks:
            peaks[t.precision] = matmul_peak(device, dtype=DTYPES[t.precision])
        record = measure_speed(spec.config_of, t.dataset, t.whole, t.test, t.random_weights, t.warmup, t.repeats,
                               t.profile, device, peaks[t.precision], baseline_only=spec.method != spec.config_of,
                               precision=t.precision)
        RunStore.write_speed_record(spec.run_dir, env, {"schema": SPEED_SCHEMA, "kind": "speed", "status": "finished",
                                                        **record})
        log.info(f"[{i}/{len(todo)}] {spec.label}: {record['whole']['median_ms']:.1f} ms "
                 f"({record['fps_whole']:.2f} FPS), {record['macs'] / 1e9:.2f} GMACs, MFU {100 * record['mfu']:.1f}%")
        counts["done"] += 1
    return counts


def speed_records(specs: list[SpeedSpec]) -> list[dict]:
    """The finished records of ``specs``, in suite order."""
    return [RunStore.read_speed_record(s.run_dir) for s in specs if RunStore.has_speed_record(s.run_dir)]


def default_config_accuracy(records: list[dict], store: RunStore) -> list[dict]:
    """hIoU of each measured (method, dataset), from finished runs of the method's default config
    (any suite of ``store``), pooled over seeds: the speed report's accuracy axis.

    A run counts when its config hash is that of ``resolve(method, dataset, seed)`` with no
    overrides; the same run copied into two suites counts once.
    """
    from zegbench.engine.identity import config_hash
    from zegbench.engine.resolve import resolve
    from zegbench.errors import ZegbenchError

    points = []
    for method, dataset in dict.fromkeys((r["method"], r["dataset"]) for r in records):
        hious = {}
        for result in store.results_of(method, dataset):
            try:
                default = config_hash(resolve(method, dataset, result.seed))
            except ZegbenchError:  # a method or dataset config that no longer resolves
                continue
            if result.config_hash == default and result.hIoU is not None:
                hious[result.seed] = result.hIoU
        if hious:
            points.append({"method": method, "dataset": dataset, "hIoU": sum(hious.values()) / len(hious),
                           "seeds": len(hious)})
    return points
