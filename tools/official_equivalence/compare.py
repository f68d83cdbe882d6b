"""Compare zegbench's ZegCLIP with what the official code computed (make_fixture.py's folder).

    PYTHONPATH=. python tools/official_equivalence/compare.py DIR

Builds zegbench's ZegCLIP as ``DIR/config.json`` says, loads ``DIR/official.pth`` through
``zegbench.methods.official_checkpoint`` (the import users get), gives it the official class
embeddings (the fp16 ``.npy`` values, promoted to fp32 as the official code does), runs the
fixed inputs of ``DIR/outputs.pt`` and prints, for every quantity, the largest absolute
difference from the official value. ``tests/test_official_equivalence.py`` runs ``compare`` on
the committed small fixture; the ViT-B/16 numbers in docs/fidelity.md came from this script.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from zegbench.methods.official_checkpoint import convert_state_dict, load_official_checkpoint
from zegbench.methods.zegclip import ZegCLIP

# Quantities compared by largest absolute difference (fp32).
QUANTITIES = ("encoder_tokens", "patch_embeddings", "image_embedding", "relation_descriptor", "queries",
              "decoder_logits", "mask_logits", "scores", "slide_scores", "loss_focal", "loss_dice",
              "st_loss_focal", "st_loss_dice", "grads")


def register_clip(config: dict) -> None:
    """Make the fixture's small CLIP architecture known to open_clip (random weights, built offline)."""
    import open_clip

    if "open_clip_config" in config and config["clip"] not in open_clip.list_models():
        folder = Path(tempfile.mkdtemp())
        (folder / f"{config['clip']}.json").write_text(json.dumps(config["open_clip_config"]))
        open_clip.add_model_config(folder)


def build(fixture: Path, config: dict, text: torch.Tensor, **keys) -> ZegCLIP:
    """zegbench's ZegCLIP with the official weights and the official class embeddings."""
    register_clip(config)
    method = ZegCLIP(clip=config["clip"], clip_weights="none", **config["method"], **keys)
    # The transductive phase starts from the inductive weights, as the official recipe (--load-from).
    load_official_checkpoint(method, fixture / "official.pth", config["classes"], check_setting=False)
    rows = {name: i for i, name in enumerate(config["classes"])}
    method.text_embeddings = lambda names, templates=None: text[[rows[n] for n in names]]
    return method


def zegbench_outputs(fixture: Path) -> tuple[dict, dict]:
    """(what zegbench computes, what the official code computed) for the fixture's inputs."""
    config = json.loads((fixture / "config.json").read_text())
    ref = torch.load(fixture / "outputs.pt", map_location="cpu", weights_only=True)
    text = ref["text_embeddings"].float()  # the official code reads fp16 and promotes it
    names = config["classes"]
    seen_ids, unseen_ids = config["seen"], config["unseen"]
    seen = [i in seen_ids for i in range(len(names))]
    out: dict = {}

    # Test time: intermediate stages by hooks, then whole-image and sliding-window scores.
    method = build(fixture, config, text).eval()
    hooks = [method.encoder.prompt_norm.register_forward_hook(lambda m, i, o: out.__setitem__("encoder_tokens", o)),
             method.encoder.register_forward_hook(lambda m, i, o: out.update(image_embedding=o[0],
                                                                             patch_embeddings=o[1])),
             method.queries.proj.register_forward_hook(lambda m, i, o: out.update(relation_descriptor=i[0],
                                                                                  queries=o)),
             method.decoder.register_forward_hook(lambda m, i, o: out.__setitem__("decoder_logits", o))]
    with torch.no_grad():
        out["mask_logits"] = method(ref["images"], names)[0]
        for h in hooks:
            h.remove()
        out["scores"] = method.predict(ref["images"], names, seen)
        out["slide_scores"] = method.predict_any_size(ref["slide_images"], names, seen)

    # One training step, inductive, dropout off: labels index the seen classes, unseen -> 255.
    method = build(fixture, config, text, dropout=0.0).train()
    table = torch.full((256,), 255, dtype=torch.long)
    table[seen_ids] = torch.arange(len(seen_ids))
    logits, aux = method(ref["images"], [names[i] for i in seen_ids])
    losses = method.loss(logits, table[ref["labels"]], aux)
    (losses["loss_focal"] + losses["loss_dice"]).backward()
    out["loss_focal"], out["loss_dice"] = losses["loss_focal"].detach(), losses["loss_dice"].detach()
    out["grads"] = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}

    # The transductive phase: all classes, unseen ground truth replaced by pseudo-labels.
    method = build(fixture, config, text, dropout=0.0, setting="transductive").train()
    with torch.no_grad():
        logits, aux = method(ref["images"], names)
        out["pseudo_labels"] = method.training_targets(logits, ref["labels"], unseen_ids, self_training=True)
        st = method.loss(logits, out["pseudo_labels"], aux)
    out["st_loss_focal"], out["st_loss_dice"] = st["loss_focal"], st["loss_dice"]
    expected = dict(ref)
    expected["grads"] = convert_state_dict(ref["grads"], None, "official gradients")
    return out, expected


def compare(fixture: str | Path) -> dict:
    """Largest absolute difference per quantity, pseudo-label disagreements, gradient key sets."""
    ours, ref = zegbench_outputs(Path(fixture))
    diffs = {}
    for key in QUANTITIES:
        if key == "grads":
            common = ours[key].keys() & ref[key].keys()
            diffs[key] = max(float((ours[key][k] - ref[key][k]).abs().max()) for k in common)
            scale = max(float(ref[key][k].abs().max()) for k in common)
            diffs["grads_relative"] = diffs[key] / scale
        else:
            diffs[key] = float((ours[key].float() - ref[key].float()).abs().max())
    diffs["pseudo_label_disagreements"] = int((ours["pseudo_labels"] != ref["pseudo_labels"]).sum())
    diffs["grad_keys_only_zegbench"] = sorted(ours["grads"].keys() - ref["grads"].keys())
    diffs["grad_keys_only_official"] = sorted(ref["grads"].keys() - ours["grads"].keys())
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture", type=Path, help="a folder written by make_fixture.py")
    args = parser.parse_args()
    for key, value in compare(args.fixture).items():
        print(f"{key:<28} {value:.3g}" if isinstance(value, float) else f"{key:<28} {value}")


if __name__ == "__main__":
    main()
