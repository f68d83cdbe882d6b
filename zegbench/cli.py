"""The ``zegbench`` command: world, methods, data, evaluate, segment, run, suite, leaderboard, clip.

Every user error is a ``ZegbenchError``: printed as one ``error:`` line, exit 2 (a usage
error too). Commands with ``--json`` print one JSON object as their last line. The options
every command shares, and the checks of the numbers a user passes, are in ``cli_options``.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import NamedTuple

from zegbench.errors import ZegbenchError


def _shows_progress(args) -> bool:
    """Progress bars (stderr) unless the output is for a program (``--json``) or ``--quiet`` asked for less."""
    return not args.json and args.verbosity >= 0


def _emit(result: dict, as_json: bool, lines: list[str]) -> None:
    for line in lines:
        print(line)
    if as_json:
        print(json.dumps(result))


def cmd_world_generate(args) -> None:
    from zegbench.datasets.catalog import load_dataset_info, world_spec
    from zegbench.datasets.generate import ensure_world, generation_rate

    spec = world_spec(load_dataset_info(args.dataset), args.seed)
    root = ensure_world(spec, args.cache_dir, progress=_shows_progress(args))
    result = {"root": str(root), "seed": spec.seed, **spec.counts()}
    lines = [f"world ready at {root} ({spec.train_scenes} train, {spec.val_scenes} val scenes)"]
    if args.rate:
        result.update(generation_rate(spec))
        lines.append(f"generation on one core: {result['render_per_s']} scenes/s rendered, "
                     f"{result['render_and_write_per_s']} scenes/s rendered and written")
    _emit(result, args.json, lines)


def cmd_world_describe(args) -> None:
    from zegbench.datasets.catalog import load_dataset_info, world_spec

    world = world_spec(load_dataset_info(args.dataset)).generator
    result = {"version": world.WORLD_VERSION, "clip": world.CLIP_MODEL, "shapes": list(world.SHAPES),
              "patterns": list(world.PATTERNS), "colours": list(world.COLOURS), "classes": list(world.CLASS_NAMES),
              "unseen": list(world.UNSEEN_CLASSES)}
    lines = [f"world generator v{world.WORLD_VERSION}: {len(world.CLASS_NAMES)} classes "
             f"({len(world.SEEN_CLASSES)} seen, {len(world.UNSEEN_CLASSES)} unseen), in-house CLIP {world.CLIP_MODEL}"]
    for name in world.UNSEEN_CLASSES:
        lines.append(f"  unseen {name!r}: seen look-alikes {', '.join(world.look_alikes(name))}")
    _emit(result, args.json, lines)


def cmd_world_gates(args) -> int:
    from zegbench.lab.gates import measure_gates

    if args.budget:
        return _world_budget(args)
    if args.jobs != 1:  # the gates train one model after another
        raise ZegbenchError("--jobs measures budget runs at once: it goes with --budget")
    result = measure_gates(args.dataset, seed=args.seed, steps=args.steps, progress=_shows_progress(args))
    lines = [f"{args.dataset}: structural gates ({result.get('gate_set', 'v1-v2')}) at {result['steps']} steps "
             f"of {result['batch_size']} images ({result['seconds'] / 60:.1f} min)"]
    lines += _gate_lines(result)
    _emit(result, args.json, lines)
    return 0 if result["passed"] else 1


def _gate_lines(result: dict) -> list[str]:
    """Each gate's verdict and threshold, then the measures (v1-v2 and v3 gate sets)."""
    from zegbench.lab import gates, gates_v3

    v3 = result.get("gate_set") == "v3"
    thresholds = gates_v3.THRESHOLDS if v3 else gates.THRESHOLDS
    lines = [f"  {gate} {'pass' if ok else 'FAIL'}  {thresholds.get(gate, '')}" for gate, ok in result["gates"].items()]
    ratio = result["dense_training_free_ratio"]
    lines.append(f"  oracle mIoU {result['oracle_miou']:.1f}, zero-shot unseen {result['zero_shot_unseen']:.3f}, "
                 f"unseen -> seen {result['unseen_to_seen_share']:.2f}, training-free / oracle "
                 f"{'n/a' if ratio is None else f'{ratio:.2f}'}, median object "
                 f"{result['median_object_patches']:.1f} patches, background {result['background_share']:.2f}")
    if v3:
        lines.append(f"  {result['epochs']:.1f} passes over the training set at the budget")
    else:
        curve = ", ".join(f"{k}: {v:.1f}" for k, v in result["oracle_miou_at_steps"].items())
        lines.append(f"  oracle mIoU by steps ({curve}); budget rule (oracle >= {gates.BUDGET_ORACLE_MIOU:.0f}, "
                     f"fixed before any ladder run): {result['budget_by_rule']} steps")
    return lines


def _world_budget(args) -> int:
    """``world gates --budget``: the v3 budget rule (every ladder arm converged, training images only)."""
    from zegbench.lab.budget import measure_budget
    from zegbench.store import RunStore

    result = measure_budget(args.dataset, RunStore(args.results), progress=_shows_progress(args), jobs=args.jobs)
    lines = [f"{args.dataset}: budget rule from a base of {result['base_steps']} steps (training images only)"]
    for multiple, verdicts in result["verdicts"].items():
        steps = multiple * result["base_steps"]
        for arm, verdict in verdicts.items():
            run, half = result["runs"][arm][steps], result["runs"][arm][steps // 2]
            lines.append(f"  {multiple}x {arm}: {'converged' if verdict['converged'] else 'not converged'} "
                         f"(loss drop {run['loss_drop']:.1%}, train seen mIoU {half['seen_miou']:.1f} -> "
                         f"{run['seen_miou']:.1f})")
    budget = result["budget_steps"]
    lines.append(f"  budget: {budget} steps" if budget else "  budget: none of 1x-8x has every arm converged")
    _emit(result, args.json, lines)
    return 0 if budget else 1


def cmd_world_probe(args) -> None:
    from zegbench.lab.probe import run_probe

    rows = [run_probe(t, steps=args.steps, seed=args.seed, progress=_shows_progress(args))
            for t in ("frozen", "finetune")]
    lines = ["tuning    zs-unseen before -> after   mIoU(S)  mIoU(U)  hIoU   unseen px -> seen"]
    for r in rows:
        lines.append(f"{r['tuning']:<9} {r['zero_shot_unseen_before']:>8.3f} -> {r['zero_shot_unseen_after']:.3f}"
                     f"      {r['mIoU_seen']:>6.1f}   {r['mIoU_unseen']:>6.1f}  {r['hIoU']:>5.1f}   "
                     f"{r['unseen_pixels_to_seen']:.2f}")
    _emit({"runs": rows}, args.json, lines)


def cmd_clip_pretrain(args) -> None:
    from zegbench.clip.pretrain import pretrain

    record = pretrain(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      eval_every=args.eval_every, progress=_shows_progress(args), model_name=args.clip,
                      resume=args.resume, stop_after=args.stop_after)
    if record.get("partial"):
        _emit({"out": str(args.out), "step": record["step"], "partial": True}, args.json,
              [f"stopped at step {record['step']} of {args.steps}: weights so far in {args.out}; "
               f"continue with the same command and --resume"])
        return
    zs = record["zero_shot"]
    lines = [f"saved {args.out} after {record['steps']} steps in {record['wall_seconds'] / 60:.1f} min: "
             f"zero-shot acc_all {zs['acc_all']:.3f}, acc_unseen {zs['acc_unseen']:.3f}"]
    _emit({"out": str(args.out), "wall_seconds": record["wall_seconds"], **zs}, args.json, lines)


def cmd_clip_zero_shot(args) -> None:
    from zegbench.clip.loading import load_clip
    from zegbench.clip.zero_shot import zero_shot_accuracy

    bundle = load_clip(args.clip, args.checkpoint)
    acc = zero_shot_accuracy(bundle, per_class=args.per_class)
    lines = [f"{name:<18} {acc['per_class'][name]:.3f}" for name in acc["per_class"]]
    lines.append(f"top-1 over all {len(acc['per_class'])} classes: {acc['acc_all']:.3f}; "
                 f"seen {acc['acc_seen']:.3f}; unseen {acc['acc_unseen']:.3f}")
    _emit({k: acc[k] for k in ("acc_all", "acc_seen", "acc_unseen")}, args.json, lines)


def cmd_clip_breadth(args) -> int:
    from zegbench.clip.breadth import measure_breadth
    from zegbench.clip.loading import load_clip, resolve_weights
    from zegbench.lab.dense_proxy import dense_proxy

    bundle = load_clip(args.clip, args.checkpoint)
    result = measure_breadth(bundle, per_concept=args.per_concept)
    lines = [f"G6 breadth of {args.clip} ({bundle.pretrained}): "
             f"{result['content_words']} content words / {result['benchmark_content_words']} of the benchmark = "
             f"{result['vocabulary_ratio']:.1f}x; {result['concepts']} concepts / {result['benchmark_classes']} "
             f"classes = {result['concept_ratio']:.1f}x; benchmark share of caption mass {result['mass_share']:.3f} "
             f"({result['census']['captions']} captions)",
             f"  zero-shot top-1 over all {result['concepts']} concepts {result['concept_top1']:.3f}; "
             f"among the {result['benchmark_classes']} classes {result['benchmark_top1']:.3f}, unseen "
             f"{result['unseen_top1']:.3f}",
             "  gates: " + ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in result["gates"].items())]
    if args.dense_dataset:
        result["dense_proxy"] = dense_proxy(args.dense_dataset, resolve_weights(args.clip, args.checkpoint))
        d = result["dense_proxy"]
        lines.append(f"  dense proxy on {args.dense_dataset}: per-pixel top-1 {d['pixel_top1']:.3f} vs image-level "
                     f"{d['image_top1']:.3f} (ratio {d['pixel_to_image']:.2f})")
    _emit(result, args.json, lines)
    return 0 if result["passed"] else 1


def cmd_methods_list(args) -> None:
    from zegbench.methods import list_methods, method_config

    names = list_methods(args.pattern)
    lines = [f"{n:<24} {method_config(n).get('description', '')}" for n in names]
    _emit({"methods": names}, args.json, lines)


def cmd_methods_describe(args) -> None:
    from zegbench.engine.speed import speed_method_config
    from zegbench.methods import create_method

    # With --dataset: the method as that dataset's recipe configures it (its CLIP and sizes),
    # with random weights unless --clip-weights names some.
    overrides = speed_method_config(args.name, args.dataset, random_weights=True) if args.dataset else {}
    overrides["clip_weights"] = args.clip_weights or "none"
    if args.clip:
        overrides["clip"] = args.clip
    if args.image_size:
        overrides["image_size"] = args.image_size
    method = create_method(args.name, **overrides)
    counts = method.param_counts()
    by_part = {}
    for name, p in method.named_parameters():
        if p.requires_grad:
            part = name.split(".")[0] if not name.startswith("encoder.") else f"encoder.{name.split('.')[1]}"
            by_part[part] = by_part.get(part, 0) + p.numel()
    unused_names = method.unused_parameter_names()
    unused = sum(p.numel() for n, p in method.named_parameters() if n in unused_names)
    counts["params_trainable_unused"] = unused
    activation = method.clip_activation()
    lines = [f"{args.name}{f' as configured for {args.dataset}' if args.dataset else ''}: "
             f"{counts['params_total']:,} parameters, {counts['params_trainable']:,} trainable as built here"
             + (f" (of which {unused:,} never get a gradient by design, as in the official model)" if unused else "")]
    if "params_trainable_official" in counts:  # ZegCLIP: the official README's count (13.8 M VOC, 14.6 M COCO)
        official = counts["params_trainable_official"]
        lines.append(f"  trainable, official count {official:,}: {official - counts['params_trainable']:,} more, the "
                     f"layers the official model builds and never uses (not built here)")
    lines += [f"  trainable {part:<22} {n:>12,}" for part, n in by_part.items()]
    towers = method.clip_towers()
    lines.append(f"  CLIP activation {activation}")
    lines += [f"  CLIP {tower} tower: {t['activation']}, LayerNorm eps {t['layernorm_eps']}"
              for tower, t in towers.items()]
    _emit({"method": args.name, "dataset": args.dataset, **counts, "clip_activation": activation,
           "clip_towers": towers, "trainable_by_part": by_part}, args.json, lines)


def cmd_methods_memory(args) -> None:
    from zegbench.engine.memory import GIB, describe, training_step_memory
    from zegbench.harness.executors import ExecutorOptions
    from zegbench.harness.preflight import check_device

    check_device(args.device, ExecutorOptions())
    budget = args.gpu_memory * GIB if args.gpu_memory else None
    if budget is None and args.device.startswith("cuda"):
        import torch

        budget = torch.cuda.get_device_properties(torch.device(args.device)).total_memory
    estimate = training_step_memory(args.name, args.dataset, args.device, _parse_overrides(args.set))
    result = estimate.as_dict()
    if budget is not None:
        result.update(budget=int(budget), advice=estimate.advice(budget))
    _emit(result, args.json, describe(estimate, budget))


def _parse_overrides(pairs: list[str]) -> dict:
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ZegbenchError(f"override {pair!r} is not key=value (e.g. --set steps=200)")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-4" as a string; the user meant a number
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        overrides[key] = parsed
    return overrides


def cmd_run(args) -> None:
    from zegbench.datasets.loader import default_workers
    from zegbench.engine.run import resolve_and_run
    from zegbench.store import RunStore

    workers = default_workers() if args.workers is None else args.workers
    rows = []
    for seed in args.seeds:  # each seed resolved here, at the edge, and trained into its folder
        r = resolve_and_run(args.method, args.dataset, seed, _parse_overrides(args.set), RunStore(args.results),
                            args.suite, args.device, progress=_shows_progress(args), data_root=args.data_root,
                            workers=workers)
        rows.append({k: r[k] for k in ("method", "seed", "pAcc", "mIoU_seen", "mIoU_unseen", "hIoU", "train_seconds")})
    def num(v):  # a metric is None when its classes are absent from the split
        return "n/a" if v is None else f"{v:.1f}"

    lines = [f"{r['method']} seed {r['seed']}: pAcc {num(r['pAcc'])}  mIoU(S) {num(r['mIoU_seen'])}  "
             f"mIoU(U) {num(r['mIoU_unseen'])}  hIoU {num(r['hIoU'])}  ({r['train_seconds']:.0f} s training)"
             for r in rows]
    _emit({"runs": rows}, args.json, lines)


def cmd_evaluate(args) -> None:
    from zegbench.engine.evaluate import evaluate_checkpoint, score_prediction_folder

    if (args.pred is None) == (args.checkpoint is None):
        raise ZegbenchError("give exactly one of --pred FOLDER (label PNGs) or --checkpoint PATH (an official "
                            "ZegCLIP .pth)")
    if args.checkpoint is not None:
        m = evaluate_checkpoint(args.checkpoint, args.dataset, args.method, _parse_overrides(args.set), args.split,
                                args.data_root, args.device, args.limit)
    else:
        if args.method or args.set or args.limit:
            raise ZegbenchError("--method, --set and --limit go with --checkpoint; --pred scores the PNGs as they are")
        m = score_prediction_folder(args.pred, args.dataset, args.split, args.data_root)

    def num(v):
        return "n/a" if v is None else f"{v:.2f}"

    lines = [f"{name:<24} {num(v)}" for name, v in m["per_class"].items()]
    lines.append(f"mIoU(S) {num(m['mIoU_seen'])}  mIoU(U) {num(m['mIoU_unseen'])}  hIoU {num(m['hIoU'])}  "
                 f"pAcc {num(m['pAcc'])}  (percent)")
    _emit({"miou_seen": m["mIoU_seen"], "miou_unseen": m["mIoU_unseen"], "hiou": m["hIoU"], "pacc": m["pAcc"],
           "miou": m["mIoU"], "per_class": m["per_class"]}, args.json, lines)


def _class_names(classes: str | None, classes_file: str | None) -> list[str]:
    """``--classes`` split at commas, or ``--classes-file`` one name per line, taken as written
    (commas, quotes and any letters kept: a name like "person, human" needs the file)."""
    from pathlib import Path

    if (classes is None) == (classes_file is None):
        raise ZegbenchError("give exactly one of --classes 'a,b' or --classes-file FILE")
    if classes is not None:
        return [n.strip() for n in classes.split(",") if n.strip()]
    path = Path(classes_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZegbenchError(f"class file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ZegbenchError(f"class file {path} is not UTF-8 text: save it as UTF-8, one class name per line") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_segment(args) -> None:
    from pathlib import Path

    from zegbench.segment import load, write_outputs

    if bool(args.run) == bool(args.checkpoint):
        raise ZegbenchError("give exactly one of --run RUN_DIR or --checkpoint PATH")
    segmenter = load(args.run or args.checkpoint, args.device, dataset=args.dataset, method=args.method,
                     overrides=_parse_overrides(args.set))
    names = _class_names(args.classes, args.classes_file)
    images, lines = [], []
    for image in args.images:
        result = segmenter.segment(image, names, args.min_score)
        paths = write_outputs(image, result, args.out, Path(image).stem)
        shares = {k: round(v, 4) for k, v in result.shares().items()}
        images.append({"image": image, **paths, "shares": shares})
        lines.append(f"{image}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items() if v > 0)
                     + f" -> {paths['overlay']}")
    _emit({"images": images, "classes": names}, args.json, lines)


def cmd_data_verify(args) -> int:
    """Check a real dataset's copy; exit 1 when anything is wrong (every problem listed)."""
    from zegbench.datasets.verify import report, verify_dataset

    problems, counts = verify_dataset(args.dataset, args.data_root, args.limit, check_counts=not args.no_counts)
    lines = [f"{args.dataset}: " + ", ".join(f"{split} {n} images" for split, n in counts.items())]
    lines += [f"problem: {p.where}: {p.what}" for p in problems]
    lines.append(f"{len(problems)} problem(s) found" if problems
                 else "ok: layout, pairs, sizes and label values check out")
    _emit({**report(problems), "counts": counts}, args.json, lines)
    return 1 if problems else 0


def cmd_suite_list(args) -> int:
    """``suite list``: every suite and its description; ``suite list NAME``: that suite's runs and their status."""
    import textwrap

    from zegbench.harness.cli import suite_command
    from zegbench.harness.suite import available, load_suite

    if args.suite is not None:
        return suite_command(args)
    for name in available():
        print(textwrap.fill(load_suite(name).description, 110, initial_indent=f"{name:<16} ",
                            subsequent_indent=" " * 17))
    return 0


# reports.leaderboard.SORTS' keys, spelt out so that building the parser imports no pandas (a test keeps them equal)
LEADERBOARD_SORTS = ["hiou", "miou_unseen", "miou_seen", "pacc", "n", "variant"]


def shipped_recipe(method: str, dataset: str) -> dict | None:
    """The resolved config of ``method`` on ``dataset`` as the configs define it now (seed 0, no overrides), or
    None when either is no longer defined: what the leaderboard names each variant against."""
    from zegbench.engine.resolve import resolve

    try:
        return resolve(method, dataset, 0)
    except ZegbenchError:
        return None


def cmd_leaderboard(args) -> None:
    from zegbench.reports.leaderboard import leaderboard, leaderboard_table, write_leaderboard
    from zegbench.reports.tables import to_markdown
    from zegbench.store import RunStore

    frame = leaderboard(RunStore(args.results), shipped_recipe, args.dataset, args.method, args.sort)
    paths = write_leaderboard(frame, args.out)
    print(to_markdown(leaderboard_table(frame)), end="")
    print(f"{len(frame)} settings from {frame['n'].sum()} finished runs: " + ", ".join(map(str, paths)))


class _Shared(NamedTuple):
    """The option parents several command groups take (argparse copies a parent's options into each command)."""

    common: argparse.ArgumentParser  # --debug, --quiet/--verbose, --config-dir: on every command, after its name
    json_out: argparse.ArgumentParser
    data_root: argparse.ArgumentParser
    device: argparse.ArgumentParser
    real_dataset: argparse.ArgumentParser


def build_parser() -> argparse.ArgumentParser:
    """The ``zegbench`` command line: each command's own options and the shared ones (``cli_options``)."""
    from zegbench.cli_options import (
        ArgumentParser,
        common_options,
        data_root_option,
        dataset_option,
        device_option,
        json_option,
    )

    shared = _Shared(common_options(), json_option(), data_root_option(), device_option(),
                     dataset_option("dataset config name (datasets/NAME.yaml of a config folder, e.g. voc12)",
                                    required=True))
    parser = ArgumentParser(prog="zegbench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback behind an error line")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    # In the order `zegbench --help` lists them.
    _world_commands(groups, shared)
    _methods_commands(groups, shared)
    _data_commands(groups, shared)
    _run_commands(groups, shared)
    _suite_commands(groups, shared)
    _leaderboard_command(groups, shared)
    _clip_commands(groups, shared)
    return parser


def _command_group(groups, name: str, help: str):
    """``zegbench NAME COMMAND``: a group of commands under one name."""
    return groups.add_parser(name, help=help).add_subparsers(dest="cmd", metavar="COMMAND", required=True)


def _world_commands(groups, shared: _Shared) -> None:
    """``world generate|describe|gates|probe``: the embedded synthetic world."""
    from zegbench.cli_options import dataset_option, non_negative_int, positive_int, results_option

    common, json_out = shared.common, shared.json_out
    world_dataset = dataset_option("a generated world's dataset config name (default: world)", "world")
    world = _command_group(groups, "world", "the embedded synthetic world")
    p = world.add_parser("generate", parents=[common, world_dataset, json_out],
                         help="generate a world into the cache (reused when already there)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="world seed (default: the config's)")
    p.add_argument("--cache-dir", default=None, help="folder for generated worlds (default: $ZEGBENCH_CACHE/worlds)")
    p.add_argument("--rate", action="store_true", help="also measure scenes/s on one core")
    p.set_defaults(func=cmd_world_generate)
    p = world.add_parser("describe", parents=[common, world_dataset, json_out],
                         help="vocabulary, classes and the unseen split with seen look-alikes")
    p.set_defaults(func=cmd_world_describe)
    p = world.add_parser("gates", parents=[common, world_dataset, results_option(), json_out],
                         help="structural gates (G1-G5; G1-G7 from world v3): is the world a faithful miniature? "
                              "(exit 1 if any fails)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="training seed of the oracle and the seen-only model")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="training steps (default: the dataset recipe's budget)")
    p.add_argument("--budget", action="store_true",
                   help="world v3 on: find the budget by the convergence rule (every ladder arm, seed 0, training "
                        "images only; runs kept under <results>/world-budget/)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="with --budget: runs measured at once, one core each (the records do not depend on it)")
    p.set_defaults(func=cmd_world_gates)
    p = world.add_parser("probe", parents=[common, json_out],
                         help="faithfulness check: frozen vs fine-tuned CLIP under seen-class training")
    p.add_argument("--steps", type=positive_int, default=300, help="training steps per variant")
    p.add_argument("--seed", type=non_negative_int, default=0, help="training seed")
    p.set_defaults(func=cmd_world_probe)


def _methods_commands(groups, shared: _Shared) -> None:
    """``methods list|describe|memory``: the method registry."""
    from zegbench.cli_options import positive_float, positive_int

    common, json_out = shared.common, shared.json_out
    methods = _command_group(groups, "methods", "the method registry")
    p = methods.add_parser("list", parents=[common, json_out], help="registered methods (methods/*.yaml of the "
                           "config folders)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'zegclip_*'")
    p.set_defaults(func=cmd_methods_list)
    p = methods.add_parser("describe", parents=[common, json_out], help="build a method and count its parameters")
    p.add_argument("name", help="method name (see `zegbench methods list`)")
    p.add_argument("--dataset", default=None, metavar="NAME", help="build the method as this dataset's recipe "
                   "configures it (its CLIP, activation and sizes; weights stay random)")
    p.add_argument("--clip", default=None, help="open_clip model to build on (default: the method's or the recipe's)")
    p.add_argument("--clip-weights", default=None, help="weights for --clip (default: random, counts only)")
    p.add_argument("--image-size", type=positive_int, default=None, help="input size (e.g. 512 for the paper)")
    p.set_defaults(func=cmd_methods_describe)
    p = methods.add_parser("memory", parents=[common, shared.device, json_out],
                           help="the memory one training step of a dataset's recipe needs on a GPU, measured here "
                           "at 1 and 2 images and scaled (minutes on a CPU for the real recipes)")
    p.add_argument("name", help="method name (see `zegbench methods list`)")
    p.add_argument("--dataset", required=True, metavar="NAME", help="the dataset whose recipe to measure")
    p.add_argument("--gpu-memory", type=positive_float, default=None, metavar="GIB",
                   help="say whether it fits a GPU of this many GiB (default on --device cuda: that GPU's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method or training key (repeatable), e.g. --set batch_size=8")
    p.set_defaults(func=cmd_methods_memory)


def _data_commands(groups, shared: _Shared) -> None:
    """``data verify``: real datasets."""
    from zegbench.cli_options import positive_int

    data = _command_group(groups, "data", "real datasets")
    p = data.add_parser("verify", parents=[shared.common, shared.real_dataset, shared.data_root, shared.json_out],
                        help="check a dataset copy: folders, split lists, pairs, sizes, label values, counts")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="check only the first N pairs of each split list (quick look)")
    p.add_argument("--no-counts", action="store_true",
                   help="do not compare image counts with the benchmark's (a subset)")
    p.set_defaults(func=cmd_data_verify)


def _run_commands(groups, shared: _Shared) -> None:
    """``evaluate``, ``segment`` and ``run``: one method, one dataset, no suite."""
    from zegbench.cli_options import (
        dataset_option,
        non_negative_int,
        positive_int,
        results_option,
        workers_option,
    )

    common, json_out, data_root, device = shared.common, shared.json_out, shared.data_root, shared.device
    p = groups.add_parser("evaluate", parents=[common, shared.real_dataset, data_root, device, json_out],
                          help="score predicted label PNGs, or an official ZegCLIP checkpoint, with the harness's "
                               "protocol")
    p.add_argument("--pred", help="folder of <id>.png label maps (class indices, 255 = no prediction)")
    p.add_argument("--checkpoint", help="an official ZegCLIP checkpoint (mmseg .pth with state_dict and meta), "
                                        "evaluated as the dataset's recipe builds --method")
    p.add_argument("--method", default=None, help="with --checkpoint: zegclip or zegclip_transductive (default: "
                                                  "what the checkpoint's config says)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --checkpoint: override a method key, e.g. --set clip_weights=/path/ViT-B-16.pt")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="with --checkpoint: evaluate the first N images only (a quick look)")
    p.add_argument("--split", default="val", help="split to score (default: val)")
    p.set_defaults(func=cmd_evaluate)

    p = groups.add_parser("segment", parents=[common, device, json_out],
                          help="segment images into any class names with a trained run")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG)")
    p.add_argument("--classes", help='comma-separated class names, e.g. "dotted star,solid circle"')
    p.add_argument("--classes-file", metavar="FILE",
                   help="class names, one per line (UTF-8), taken as written: for names with commas")
    p.add_argument("--run", help="a finished run folder (results/<suite>/<run>)")
    p.add_argument("--checkpoint", help="a checkpoint.pt written by the harness, or an official ZegCLIP .pth")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="with an official checkpoint: the dataset it was trained on (voc12, coco_stuff164k)")
    p.add_argument("--method", default=None,
                   help="with an official checkpoint: zegclip or zegclip_transductive (default: its config's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with an official checkpoint: override a method key (e.g. clip_weights)")
    p.add_argument("--out", required=True, help="folder for <image>_labels.png and <image>_overlay.png")
    p.add_argument("--min-score", type=float, default=None,
                   help="pixels whose best calibrated score is lower get 255 (none); default: every pixel gets a class")
    p.set_defaults(func=cmd_segment)

    p = groups.add_parser("run", parents=[common, dataset_option("dataset config name (default: world)", "world"),
                                          data_root, results_option(), device, workers_option(), json_out],
                          help="train and evaluate one method on one dataset (finished runs are reused)")
    p.add_argument("--method", required=True, help="method name (see `zegbench methods list`)")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0], help="one run per seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method or training key (repeatable), e.g. --set steps=200")
    p.add_argument("--suite", default="adhoc", help="suite folder inside the run store")
    p.set_defaults(func=cmd_run)


def _suite_commands(groups, shared: _Shared) -> None:
    """``suite run|list|report NAME``: ``run_all.py --suite NAME [--list | --report-only]``, one implementation."""
    from zegbench.harness.cli import suite_command, suite_options

    suite = _command_group(groups, "suite", "a suite of runs: run it, list its runs, or rebuild its report "
                                            "(as run_all.py)")
    suite_opts = suite_options()
    p = suite.add_parser("run", parents=[shared.common, suite_opts],
                         help="run a suite's unfinished runs, then write its summary and report")
    p.add_argument("suite", metavar="NAME", help="suite name (`zegbench suite list`) or a path to a suite YAML")
    p.set_defaults(func=suite_command, list=False, report_only=False)
    p = suite.add_parser("list", parents=[shared.common, suite_opts],
                         help="without NAME: the suites and what they hold; with NAME: its runs and their status")
    p.add_argument("suite", metavar="NAME", nargs="?", help="suite name or a path to a suite YAML")
    p.set_defaults(func=cmd_suite_list, list=True, report_only=False)
    p = suite.add_parser("report", parents=[shared.common, suite_opts],
                         help="rebuild a suite's summary and report from its finished runs; run nothing")
    p.add_argument("suite", metavar="NAME", help="suite name or a path to a suite YAML")
    p.set_defaults(func=suite_command, list=False, report_only=True)


def _leaderboard_command(groups, shared: _Shared) -> None:
    """``leaderboard``: every finished setting of the run store, across suites."""
    from zegbench.cli_options import results_option

    p = groups.add_parser("leaderboard", parents=[shared.common, results_option()],
                          help="one table of every finished method x dataset x setting in the run store, across "
                               "suites (mean ± std over seeds, the paper's numbers beside): markdown, LaTeX, CSV")
    p.add_argument("--out", default="reports/leaderboard", metavar="DIR",
                   help="folder for leaderboard.md, .tex and .csv (default: reports/leaderboard)")
    p.add_argument("--dataset", action="append", default=None, metavar="NAME",
                   help="only this dataset's rows (repeatable)")
    p.add_argument("--method", default=None, metavar="PATTERN", help="only methods matching, e.g. 'zegclip*'")
    p.add_argument("--sort", choices=LEADERBOARD_SORTS, default="hiou",
                   help="order within each dataset: a metric's mean (best first), n (most seeds first) or variant "
                        "(default: hiou)")
    p.set_defaults(func=cmd_leaderboard)


def _clip_commands(groups, shared: _Shared) -> None:
    """``clip pretrain|zero-shot|breadth``: the in-house CLIP."""
    from zegbench.cli_options import non_negative_int, positive_float, positive_int
    from zegbench.clip.loading import IN_HOUSE
    from zegbench.clip.pretrain import DEFAULTS

    common, json_out = shared.common, shared.json_out
    clip = _command_group(groups, "clip", "the in-house CLIP")
    p = clip.add_parser("pretrain", parents=[common, json_out],
                        help="pretrain the in-house CLIP on world image-caption pairs")
    p.add_argument("--out", required=True, help="checkpoint path to write (a .json record is written beside it)")
    p.add_argument("--clip", default=IN_HOUSE, help="which in-house CLIP (each learns its own world's captions)")
    p.add_argument("--steps", type=positive_int, default=DEFAULTS["steps"], help="optimisation steps")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"],
                   help="image-caption pairs per step")
    p.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"], help="peak learning rate (AdamW, cosine)")
    p.add_argument("--seed", type=non_negative_int, default=DEFAULTS["seed"], help="seed of weights and data stream")
    p.add_argument("--eval-every", type=non_negative_int, default=500,
                   help="every N steps: zero-shot check, weights so far to --out and a resume state beside it "
                        "(<out stem>.state.pt; 0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose resume state is beside --out (same settings), exactly")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="end this session after step N of --steps (writes the resume state there)")
    p.set_defaults(func=cmd_clip_pretrain)
    p = clip.add_parser("zero-shot", parents=[common, json_out], help="top-1 accuracy on held-out single-object images")
    p.add_argument("--checkpoint", default=None, help="checkpoint path (default: the shipped in-house one)")
    p.add_argument("--clip", default=IN_HOUSE, help="open_clip model name of the checkpoint")
    p.add_argument("--per-class", type=positive_int, default=50, help="held-out images per class")
    p.set_defaults(func=cmd_clip_zero_shot)
    p = clip.add_parser("breadth", parents=[common, json_out],
                        help="G6: vocabulary, concepts, benchmark caption mass and full-concept zero-shot of a "
                             "broad world's CLIP; exit status 1 when it fails")
    p.add_argument("--checkpoint", default=None, help="checkpoint path (default: the shipped in-house one)")
    p.add_argument("--clip", default="zegbench-world3-vit", help="a broad world's in-house CLIP")
    p.add_argument("--per-concept", type=positive_int, default=10, help="held-out images per concept")
    p.add_argument("--dense-dataset", default=None,
                   help="also the dense proxy (frozen MaskCLIP per-pixel top-1) on this world dataset, e.g. world_v3")
    p.set_defaults(func=cmd_clip_breadth)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zegbench`` console script."""
    from zegbench.cli_options import run_command

    return run_command(build_parser(), argv, lambda args: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
