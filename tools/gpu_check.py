"""A one-shot device check for a machine with a GPU (issue 30): ``bash tools/gpu_check.sh [--dry-run] [OUT_DIR]``.

Each step runs in its own process with its own time limit, so one hang or crash costs that step
only; the next step runs whatever happened. After every step ``OUT_DIR/gpu_check.json`` is
rewritten with what is known so far: per step the command, exit status, seconds, its key numbers
and, when it failed, the tail of its output (full logs in ``OUT_DIR/logs/``). The runs' own files
(fixture datasets, run folders, checkpoints, the 12 MP image) go to a scratch folder that is
removed at the end (``--keep`` keeps it).

Steps (on ``--device cuda``; ``--dry-run`` runs the same steps on the CPU at tiny sizes):

1. ``voc_train``: a short VOC-recipe ZegCLIP run on a fixture VOC folder (``tests/real_layouts.py``),
   data loader workers on, randomly initialised CLIP (nothing is downloaded).
2. ``ddp_two_stage``: the two-stage method trained by 2 processes: torchrun + NCCL when 2 GPUs exist;
   on one GPU both ranks share it over gloo, whose all-reduces are made to reject a tensor that is
   not on the run's device, as NCCL does.
3. ``speed_gpu``: ``run_all.py --suite speed_gpu``; then ``speed_profile``, ZegCLIP's profiled top
   ops (GPU kernel time on CUDA).
4. ``coco_memory``: one training step of the COCO-Stuff recipe (batch 16, 512 crops, 100 prompt
   tokens, 156 seen classes, ViT-B/16 at random) through the harness's ``train``: peak GPU memory
   allocated and reserved.
5. ``segment_12mp``: ``zegbench segment`` of a synthetic 4000x3000 image into COCO-Stuff's 171
   class names with step 1's run: seconds and peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT_FILE = "gpu_check.json"
TAIL_LINES = 40


@dataclass
class Sizes:
    """What differs between the GPU check and its dry run on a CPU."""

    device: str
    budget_s: int  # the whole check; each step also has its own limit
    workers: int  # data loader processes of the training runs
    voc: dict  # fixture VOC: images, and the run's overrides of the VOC recipe
    ddp: dict  # the two-stage run's overrides (world_smoke)
    speed_suite: str | None  # None: the shipped speed_gpu suite; else a tiny suite's YAML
    profile_target: str
    coco: dict  # overrides of the COCO-Stuff recipe (none: the recipe's batch, crop, prompts, templates)
    segment_size: tuple[int, int]  # (W, H) of the synthetic photo
    timeouts: dict = field(default_factory=dict)


GPU = Sizes(
    device="cuda", budget_s=570, workers=4,
    voc={"train": 16, "val": 2, "size": (375, 500),
         "set": {"clip_weights": "none", "steps": 10, "batch_size": 8, "warmup": 1, "log_every": 1}},
    ddp={"steps": 4, "batch_size": 2, "warmup": 1, "log_every": 1},
    speed_suite=None,
    profile_target="{dataset: voc12, methods: [zegclip], whole: [512, 512], random_weights: true, "
                   "encoder_baseline: false, warmup: 3, repeats: 5, profile: true}",
    coco={"clip_weights": "none", "steps": 1, "warmup": 1},
    segment_size=(4000, 3000),
    timeouts={"voc_train": 120, "ddp_two_stage": 90, "speed_gpu": 180, "speed_profile": 45, "coco_memory": 75,
              "memory_estimate": 60, "segment_12mp": 90},
)

DRY = Sizes(
    device="cpu", budget_s=1200, workers=1,
    voc={"train": 2, "val": 1, "size": (40, 56),
         "set": {"clip": "ViT-S-32", "clip_weights": "none", "steps": 2, "batch_size": 2, "warmup": 1,
                 "log_every": 1}},
    ddp={"steps": 2, "batch_size": 2, "warmup": 1, "log_every": 1},
    speed_suite="kind: speed\ntargets:\n"
                "  - {dataset: world_smoke, methods: [zegclip, maskclip], whole: [32, 32], test: [32, 48], "
                "warmup: 0, repeats: 2}\n"
                "  - {dataset: world_smoke, methods: [zegclip, maskclip], whole: [32, 32], test: [32, 48], "
                "warmup: 0, repeats: 2, precision: bf16}\n",
    profile_target="{dataset: world_smoke, methods: [zegclip], whole: [32, 32], encoder_baseline: false, "
                   "warmup: 0, repeats: 2, profile: true}",
    coco={"clip": "ViT-S-32", "clip_weights": "none", "templates": "single", "steps": 1, "batch_size": 2,
          "warmup": 1},
    segment_size=(400, 300),
    timeouts={"voc_train": 240, "ddp_two_stage": 240, "speed_gpu": 180, "speed_profile": 90, "coco_memory": 180,
              "memory_estimate": 180, "segment_12mp": 180},
)

STEPS = ["voc_train", "ddp_two_stage", "speed_gpu", "speed_profile", "coco_memory", "memory_estimate",
         "segment_12mp"]


# ----------------------------------------------------------------------------------------------
# The driver: one subprocess per step, a time limit each, one JSON of results.
# ----------------------------------------------------------------------------------------------

class Check:
    """The state of one check: its folders, sizes, the steps done so far and the JSON they make."""

    def __init__(self, out: Path, work: Path, sizes: Sizes, dry: bool):
        self.out, self.work, self.sizes, self.dry = out, work, sizes, dry
        self.started = time.time()
        self.steps: dict[str, dict] = {}
        self.voc_run: Path | None = None
        (out / "logs").mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        self.header = {"dry_run": dry, "device": sizes.device, "budget_s": sizes.budget_s, "machine": machine(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S"), "work_dir": str(work)}

    def left(self) -> float:
        return self.sizes.budget_s - (time.time() - self.started)

    def write(self) -> None:
        summary = {name: step.get("status") for name, step in self.steps.items()}
        doc = {**self.header, "seconds": round(time.time() - self.started, 1),
               "ok": all(s == "ok" for s in summary.values()) and len(summary) > 0, "summary": summary,
               "steps": self.steps}
        tmp = self.out / (RESULT_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(self.out / RESULT_FILE)

    def run(self, name: str, command: list[str], collect=None, env: dict | None = None) -> dict:
        """Run ``command`` within the step's limit (and the check's), record it, return its record."""
        limit = int(min(self.sizes.timeouts[name], self.left()))
        record = {"command": shlex.join(command), "timeout_s": limit}
        if self.left() < 10:
            record.update(status="skipped", reason="the check's time budget is spent")
            return self._done(name, record)
        log_path = self.out / "logs" / f"{name}.log"
        start = time.time()
        with log_path.open("w") as log:
            proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **(env or {})})
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the step's whole process group: torchrun ranks, loader workers
                code = proc.wait()
                record["timed_out"] = True
        record.update(exit_code=code, seconds=round(time.time() - start, 1))
        record["status"] = "ok" if code == 0 else ("timeout" if record.get("timed_out") else "failed")
        if collect is not None:
            try:
                record["numbers"] = collect()
            except Exception as err:  # a step that ran but left no numbers is a failure too
                record["numbers_error"] = f"{type(err).__name__}: {err}"
                if record["status"] == "ok":
                    record["status"] = "failed"
        if record["status"] != "ok":
            record["error_tail"] = log_path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        return self._done(name, record)

    def last_json_line(self, name: str) -> dict:
        """The last JSON object a step printed (a command's ``--json`` output; warnings may follow it)."""
        lines = (self.out / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
        return json.loads(next(line for line in reversed(lines) if line.startswith("{")))

    def skip(self, name: str, reason: str) -> dict:
        return self._done(name, {"status": "skipped", "reason": reason})

    def _done(self, name: str, record: dict) -> dict:
        self.steps[name] = record
        self.write()
        print(f"[gpu_check] {name}: {record['status']}"
              + (f" in {record['seconds']} s" if "seconds" in record else f" ({record.get('reason', '')})"),
              flush=True)
        return record


def machine() -> dict:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpus = [torch.cuda.get_device_name(i) for i in range(count)]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": gpus, "python": platform.python_version(),
            "cpus": os.cpu_count(), "git_commit": commit}


def helper(name: str, payload: dict) -> list[str]:
    """The command that runs one of this file's in-process helpers (``--helper NAME JSON``) in its own process."""
    return [sys.executable, str(Path(__file__).resolve()), "--helper", name, json.dumps(payload)]


def run_all(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "run_all.py"), *args]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def only_run(results: Path, suite: str) -> Path:
    runs = sorted(p.parent for p in (results / suite).glob("*/result.json"))
    if len(runs) != 1:
        raise RuntimeError(f"expected one finished run in {results / suite}, found {len(runs)}")
    return runs[0]


def run_numbers(run: Path) -> dict:
    result, env = read_json(run / "result.json"), read_json(run / "env.json")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {"run": run.name, "device_name": env.get("device_name"), "loader_workers": env.get("loader_workers"),
            "world_size": result.get("world_size"), "steps": len(log), "first_loss": log[0]["loss"],
            "last_loss": log[-1]["loss"], "train_seconds": result.get("train_seconds"), "hIoU": result.get("hIoU"),
            "mIoU_seen": result.get("mIoU_seen"), "mIoU_unseen": result.get("mIoU_unseen")}


def speed_numbers(results: Path, suite: str) -> list[dict]:
    rows = []
    for path in sorted((results / suite).glob("*/result.json")):
        r = read_json(path)
        rows.append({"method": r["method"], "precision": r.get("precision"), "whole_ms": r["whole"]["median_ms"],
                     "fps": r["fps_whole"], "test_fps": r.get("fps_test"), "gmacs": round(r["macs"] / 1e9, 2),
                     "mfu": r["mfu"], "peak_gflops": r["matmul_peak_gflops"], "peak_precision": r.get("peak_precision"),
                     "tf32": [r.get("tf32_matmul"), r.get("tf32_cudnn")],
                     "paired_ratio": (r.get("paired_with_encoder") or {}).get("ratio"),
                     "profile_top_ops": r.get("profile_top_ops", [])[:6] or None})
    if not rows:
        raise RuntimeError(f"no speed records in {results / suite}")
    return rows


def check(out: Path, work: Path, sizes: Sizes, dry: bool, steps: list[str]) -> dict:
    import torch

    c = Check(out, work, sizes, dry)
    c.write()
    data, results, reports = work / "data", work / "results", work / "reports"
    device = sizes.device
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # the GPU machine may have no network

    if "voc_train" in steps:  # 1. the VOC recipe on fixture folders, loader workers on
        suite = work / "gpu_check_voc.yaml"
        suite.write_text("dataset: voc12\nseeds: [0]\ngroups:\n  - methods: [zegclip]\n"
                         f"    set: {json.dumps(sizes.voc['set'])}\n")
        write_voc_fixture(data, **{k: sizes.voc[k] for k in ("train", "val", "size")})

        def voc_collect():
            c.voc_run = only_run(results, "gpu_check_voc")
            return run_numbers(c.voc_run)
        c.run("voc_train", run_all("--suite", str(suite), "--data-root", str(data), "--results", str(results),
                                   "--reports", str(reports), "--device", device, "--workers", str(sizes.workers)),
              voc_collect, env=offline)

    if "ddp_two_stage" in steps:  # 2. two-stage over 2 processes
        suite = work / "gpu_check_ddp.yaml"
        suite.write_text(f"dataset: world_smoke\nseeds: [0]\ngroups:\n  - methods: [two_stage]\n"
                         f"    set: {json.dumps(sizes.ddp)}\n")
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.startswith("cuda") and gpus >= 2:
            command = run_all("--suite", str(suite), "--results", str(results), "--reports", str(reports),
                              "--device", device, "--executor", "torchrun", "--nproc", "2")
            backend = "nccl"
        else:  # one GPU (or the dry run): both ranks on one device over gloo, all-reduces checked as NCCL would
            from zegbench.engine.identity import run_folder_for
            from zegbench.engine.resolve import resolve
            from zegbench.store import RunStore

            # The worker's payload as a suite writes it: the config resolved once, for 2 ranks, and its folder
            resolved = resolve("two_stage", "world_smoke", 0, sizes.ddp, world_size=2)
            payload = {"resolved": resolved, "folder": run_folder_for(resolved, RunStore(results), "gpu_check_ddp")
                       .as_payload(), "progress": False, "data_root": None,
                       "device": "cuda:0" if device.startswith("cuda") else "cpu"}
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       *helper("ddp_gloo", payload)[1:]]
            backend = "gloo (all-reduces must be on the run's device)"
        record = c.run("ddp_two_stage", command, lambda: run_numbers(only_run(results, "gpu_check_ddp")), env=offline)
        record["backend"] = backend
        c.write()

    if "speed_gpu" in steps:  # 3. the speed suite (a tiny one in the dry run), then a profiled target
        if sizes.speed_suite is None:
            suite_arg, suite_name = "speed_gpu", "speed_gpu"
        else:
            (work / "gpu_check_speed.yaml").write_text(sizes.speed_suite)
            suite_arg, suite_name = str(work / "gpu_check_speed.yaml"), "gpu_check_speed"
        c.run("speed_gpu", run_all("--suite", suite_arg, "--results", str(results), "--reports", str(reports),
                                   "--device", device), lambda: speed_numbers(results, suite_name), env=offline)
    if "speed_profile" in steps:
        (work / "gpu_check_profile.yaml").write_text(f"kind: speed\ntargets:\n  - {sizes.profile_target}\n")
        c.run("speed_profile", run_all("--suite", str(work / "gpu_check_profile.yaml"), "--results", str(results),
                                       "--reports", str(reports), "--device", device),
              lambda: speed_numbers(results, "gpu_check_profile"), env=offline)

    if "coco_memory" in steps:  # 4. one COCO-Stuff training step's peak memory
        payload = {"root": str(work / "coco"), "overrides": sizes.coco, "device": device,
                   "out": str(work / "coco_memory.json")}
        c.run("coco_memory", helper("coco_memory", payload), lambda: read_json(work / "coco_memory.json"),
              env=offline)

    if "memory_estimate" in steps:  # 4b. what `zegbench methods memory` predicts for step 4, to compare
        sets = [arg for key, value in sizes.coco.items() for arg in ("--set", f"{key}={value}")]
        command = [sys.executable, "-m", "zegbench", "methods", "memory", "zegclip", "--dataset", "coco_stuff164k",
                   "--device", device, "--json", *sets]
        c.run("memory_estimate", command, lambda: c.last_json_line("memory_estimate"), env=offline)

    if "segment_12mp" in steps:  # 5. segment a 12 MP photo with step 1's run
        if c.voc_run is None:
            c.skip("segment_12mp", "needs the run of step voc_train, which did not finish")
        else:
            payload = {"run": str(c.voc_run), "size": list(sizes.segment_size), "device": device,
                       "dir": str(work / "segment"), "out": str(work / "segment.json")}
            c.run("segment_12mp", helper("segment", payload), lambda: read_json(work / "segment.json"), env=offline)

    c.header["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    c.write()
    return read_json(out / RESULT_FILE)


# ----------------------------------------------------------------------------------------------
# Helpers, each run in its own process by the driver (``--helper NAME JSON``).
# ----------------------------------------------------------------------------------------------

def write_voc_fixture(root: Path, train: int, val: int, size) -> None:
    """A VOC folder in mmseg's layout, as the tests write it (``tests/real_layouts.py``)."""
    sys.path.insert(0, str(REPO / "tests"))
    from real_layouts import write_voc

    if not (root / "VOCdevkit").is_dir():
        write_voc(root, train=train, val=val, size=tuple(size))


def peak_memory(device: str) -> dict:
    """Peak GPU memory (allocated by tensors, reserved by the caching allocator) on ``device``, and the
    process's peak resident memory, in GiB."""
    import resource

    import torch

    out = {"host_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)}
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        out["gpu_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
        out["gpu_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2 ** 30, 3)
        out["gpu_total_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2 ** 30, 3)
    return out


def on_device_only(all_reduce, device):
    """``all_reduce`` refusing a tensor that is not on ``device``, as NCCL refuses CPU tensors (gloo takes any)."""
    import torch

    device = torch.device(device)

    def checked(tensor, *args, **kwargs):
        if tensor.device != device:
            raise RuntimeError(f"all_reduce of a tensor on {tensor.device} in a run on {device}: NCCL rejects it")
        return all_reduce(tensor, *args, **kwargs)
    return checked


def helper_ddp_gloo(payload: dict) -> int:
    """One rank of a torchrun job on one device: gloo, with ``dist.all_reduce`` refusing a tensor that is
    not on the run's device, as NCCL refuses CPU tensors. The harness's ``distributed.setup`` keeps a
    process group that already exists (and the device it is given)."""
    import torch
    import torch.distributed as dist

    device = torch.device(payload["device"])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("gloo")
    dist.all_reduce = on_device_only(dist.all_reduce, device)
    from zegbench.harness.worker import main as worker

    return worker([json.dumps(payload)])


def helper_coco_memory(payload: dict) -> int:
    """One training step of the COCO-Stuff recipe through ``engine.train.train``, on fixture images."""
    import torch

    from zegbench.datasets.catalog import build_dataset, load_dataset_info
    from zegbench.engine.config import TrainConfig
    from zegbench.engine.resolve import resolve
    from zegbench.engine.train import train
    from zegbench.methods import build_method

    sys.path.insert(0, str(REPO / "tests"))
    from real_layouts import write_coco_stuff

    device = payload["device"]
    resolved = resolve("zegclip", "coco_stuff164k", 0, payload["overrides"])
    cfg = TrainConfig(**resolved["train"])
    root = Path(payload["root"])
    write_coco_stuff(root, train=cfg.batch_size, val=1)  # the step's batch: every image once
    info = load_dataset_info("coco_stuff164k")
    dataset = build_dataset("coco_stuff164k", "train", data_root=root)
    torch.manual_seed(0)
    method_cfg = resolved["method_config"]
    method = build_method(method_cfg)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    start = time.time()
    summary = train(method, dataset, info, cfg, None, device)
    seconds = round(time.time() - start, 2)
    crop = info.train_transform.crop if info.train_transform else None
    record = {"batch_size": cfg.batch_size, "accumulate": cfg.accumulate, "crop": crop, "precision": cfg.precision,
              "seen_classes": len(info.seen), "clip": method_cfg.get("clip"),
              "num_tokens": method_cfg.get("num_tokens"), "templates": method_cfg.get("templates"),
              "loss": method_cfg.get("loss"), "seconds": seconds,
              "last_losses": summary.get("last_losses"), **peak_memory(device)}
    Path(payload["out"]).write_text(json.dumps(record, indent=1) + "\n")
    return 0


def helper_segment(payload: dict) -> int:
    """``zegbench segment`` (the command, in this process) of a synthetic photo into COCO-Stuff's classes."""
    import numpy as np
    import torch
    from PIL import Image

    from zegbench.cli import main as zegbench
    from zegbench.datasets.catalog import load_dataset_info

    folder = Path(payload["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    w, h = payload["size"]
    yy, xx = np.mgrid[0:h, 0:w]  # smooth colour fields and a few discs: a photo's compressibility, not noise
    pixels = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 255 // (w + h))], axis=-1).astype(np.uint8)
    for i in range(5):
        cy, cx, r = h * (i + 1) // 7, w * (5 - i) // 6, min(h, w) // 9
        pixels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (40 * i, 200 - 30 * i, 90)
    image = folder / f"photo_{w}x{h}.jpg"
    Image.fromarray(pixels).save(image, quality=90)
    names = list(load_dataset_info("coco_stuff164k").classes)
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    device = payload["device"]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    start = time.time()
    code = zegbench(["segment", str(image), "--run", payload["run"], "--classes-file", str(folder / "classes.txt"),
                     "--out", str(folder / "out"), "--device", device, "--json"])
    seconds = round(time.time() - start, 2)
    record = {"exit_code": code, "image": f"{w}x{h}", "megapixels": round(w * h / 1e6, 1), "classes": len(names),
              "seconds": seconds, "outputs": sorted(p.name for p in (folder / "out").glob("*")),
              **peak_memory(device)}
    Path(payload["out"]).write_text(json.dumps(record, indent=1) + "\n")
    return code


HELPERS = {"ddp_gloo": helper_ddp_gloo, "coco_memory": helper_coco_memory, "segment": helper_segment}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The prepared device check of issue 30: one JSON of results.")
    parser.add_argument("out", nargs="?", default=None,
                        help="folder for gpu_check.json and the steps' logs (default: gpu_check-<time>)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the same steps on the CPU at tiny sizes, to prove the script end to end")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated steps to run (default: all: {','.join(STEPS)})")
    parser.add_argument("--budget", type=int, default=None,
                        help="seconds for the whole check (default: 570 on a GPU, 1200 for --dry-run)")
    parser.add_argument("--work", default=None, help="scratch folder for data and runs (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (runs, checkpoints, images)")
    parser.add_argument("--helper", nargs=2, metavar=("NAME", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.helper:
        from zegbench.utils.logs import configure

        configure()
        return HELPERS[args.helper[0]](json.loads(args.helper[1]))
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}: choose from {','.join(STEPS)}")
    sizes = DRY if args.dry_run else GPU
    if args.budget is not None:
        sizes = replace(sizes, budget_s=args.budget)
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            parser.error("torch sees no CUDA GPU here: run with --dry-run to check the script on the CPU")
    out = Path(args.out or f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="zegbench-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        doc = check(out, work, sizes, args.dry_run, steps)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"ok": doc["ok"], "seconds": doc["seconds"], "summary": doc["summary"],
                      "json": str(out / RESULT_FILE)}))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
