"""G6 breadth: does the in-house CLIP know far more than the benchmark asks of it?

Real CLIP knows thousands of concepts and VOC's 20 classes are a sliver of them;
fine-tuning on the seen ones can only damage what it knew about the others if
there was much more to know (issue 25, cause a). A broad world's CLIP passes G6
when, measured on the actual caption stream and the trained model:

- its caption vocabulary has at least ``VOCABULARY_RATIO_MIN`` times the
  benchmark's content words (the distinct words of the class names);
- its concept set (the nameable surfaces the zero-shot test scores over) holds
  at least ``CONCEPT_RATIO_MIN`` times the benchmark's classes;
- the benchmark's classes are at most ``MASS_SHARE_MAX`` of the caption mass:
  the share of surface mentions ("<colour> <pattern>" in a caption) that name a
  benchmark class, counted over a sample of the stream itself;
- zero-shot top-1 over the *full* concept set is at least ``CONCEPT_TOP1_MIN``.
"""
from __future__ import annotations

import torch

from zegbench.clip.captions import caption_plans, to_model_input, zero_shot_images
from zegbench.clip.loading import ClipBundle
from zegbench.clip.templates import SINGLE
from zegbench.clip.text_embeddings import encode_class_names
from zegbench.clip.zero_shot import EVAL_SEED
from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError

# Thresholds of issue 25 (world v3), fixed before any measurement of a v3 CLIP:
VOCABULARY_RATIO_MIN = 10.0  # caption content words / the benchmark's content words
CONCEPT_RATIO_MIN = 10.0  # concepts / benchmark classes
MASS_SHARE_MAX = 0.10  # benchmark surface mentions / all surface mentions in the caption stream
CONCEPT_TOP1_MIN = 0.6  # zero-shot top-1 over every concept (chance: 1 / 234 on world v3)


def caption_census(world, seed: int = 0, batches: int = 400, batch_size: int = 128) -> dict:
    """Count the first ``batches`` batches of ``world``'s pretraining stream (the captions pretraining reads).

    Returns the content words that occur, the surface mentions (a colour word followed by a pattern
    word) and how many of them name a benchmark class, and the share of captions naming one.
    """
    colours, patterns = set(world.COLOURS), {c.split()[1] for c in world.CONCEPTS}
    benchmark, content = set(world.CLASS_NAMES), set(world.CONTENT_WORDS)
    used, mentions, in_benchmark, captions_naming, captions = set(), 0, 0, 0, 0
    for index in range(batches):
        for plan, _ in caption_plans(world, seed, index, batch_size):
            words = plan.caption.split()
            used |= content.intersection(words)
            named = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if a in colours and b in patterns]
            mentions += len(named)
            in_benchmark += sum(n in benchmark for n in named)
            captions_naming += any(n in benchmark for n in named)
            captions += 1
    return {"captions": captions, "content_words_used": len(used),
            "content_words_unused": sorted(content - used), "surface_mentions": mentions,
            "benchmark_mentions": in_benchmark, "mass_share": round(in_benchmark / max(mentions, 1), 4),
            "captions_naming_benchmark": round(captions_naming / max(captions, 1), 4)}


@torch.no_grad()
def concept_zero_shot(bundle: ClipBundle, world, per_concept: int = 10, seed: int = EVAL_SEED,
                      batch_size: int = 250) -> dict:
    """Zero-shot top-1 on held-out single objects of every concept, against every concept's prompt.

    Also the top-1 among the benchmark's classes alone on its classes' images (``benchmark_top1``,
    G2's kind of number), on its unseen classes' images (``unseen_top1``), and the full-set top-1
    on the benchmark's images (``benchmark_full_top1``).
    """
    concepts = list(world.CONCEPTS)
    device = next(bundle.model.parameters()).device
    text = encode_class_names(bundle, concepts, SINGLE).to(device)
    images, labels = zero_shot_images(world, seed, per_concept, bundle.image_size, names=tuple(concepts))
    logits = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start:start + batch_size], bundle.mean, bundle.std).to(device)
        feats = torch.nn.functional.normalize(bundle.model.encode_image(x).float(), dim=-1)
        logits.append((feats @ text.T).cpu())
    logits, labels = torch.cat(logits), torch.as_tensor(labels)
    bench = torch.tensor([concepts.index(c) for c in world.CLASS_NAMES])
    unseen = torch.tensor([concepts.index(c) for c in world.UNSEEN_CLASSES])
    on_bench, on_unseen = torch.isin(labels, bench), torch.isin(labels, unseen)
    bench_pred = bench[logits[:, bench].argmax(dim=1)]  # the argmax among the benchmark's classes only
    full_correct = logits.argmax(dim=1) == labels
    return {"concept_top1": round(full_correct.float().mean().item(), 4),
            "benchmark_full_top1": round(full_correct[on_bench].float().mean().item(), 4),
            "benchmark_top1": round((bench_pred == labels)[on_bench].float().mean().item(), 4),
            "unseen_top1": round((bench_pred == labels)[on_unseen].float().mean().item(), 4),
            "images": len(labels)}


def measure_breadth(bundle: ClipBundle, per_concept: int = 10, census_batches: int = 400,
                    stream_seed: int = 0) -> dict:
    """G6 for in-house CLIP ``bundle`` of a broad world: the census of its caption stream (seed
    ``stream_seed``, the pretraining seed), the zero-shot numbers and each criterion's verdict."""
    world = worlds.for_clip(bundle.name)
    if world is None or not hasattr(world, "CONCEPTS"):
        raise ZegbenchError(f"G6 measures a broad world's in-house CLIP; {bundle.name!r} is not one "
                            f"(use --clip zegbench-world3-vit)")
    census = caption_census(world, stream_seed, census_batches)
    benchmark_words = {w for c in world.CLASS_NAMES for w in c.split()}
    out = {
        "content_words": census["content_words_used"], "benchmark_content_words": len(benchmark_words),
        "vocabulary_ratio": round(census["content_words_used"] / len(benchmark_words), 2),
        "concepts": len(world.CONCEPTS), "benchmark_classes": len(world.CLASS_NAMES),
        "concept_ratio": round(len(world.CONCEPTS) / len(world.CLASS_NAMES), 2),
        "census": census, **concept_zero_shot(bundle, world, per_concept),
    }
    out["mass_share"] = census["mass_share"]
    out["gates"] = {"vocabulary": out["vocabulary_ratio"] >= VOCABULARY_RATIO_MIN,
                    "concepts": out["concept_ratio"] >= CONCEPT_RATIO_MIN,
                    "mass_share": out["mass_share"] <= MASS_SHARE_MAX,
                    "concept_top1": out["concept_top1"] >= CONCEPT_TOP1_MIN}
    out["passed"] = all(out["gates"].values())
    return out
