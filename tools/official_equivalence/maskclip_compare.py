"""zegbench's MaskCLIP on the weights and inputs of a maskclip_fixture.py folder: the largest difference per quantity.

    PYTHONPATH=. python tools/official_equivalence/maskclip_compare.py DIR [--set key=value ...]

Builds ``MaskCLIP`` with the fixture's open_clip architecture, ``image_tower: mmseg`` and
``logit_scale: 1`` (the official head softmaxes bare cosines), loads the official state dict through
``zegbench.methods.maskclip_checkpoint`` and uses the head's class embeddings in place of the text
tower. ``odd_`` quantities are of an input whose sides are not multiples of the patch.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from zegbench.methods.maskclip import MaskCLIP
from zegbench.methods.maskclip_checkpoint import load_official_maskclip

QUANTITIES = ("values", "features", "feature_logits", "logits", "scores")


def build(fixture: Path, **keys) -> tuple[MaskCLIP, torch.Tensor, dict]:
    import open_clip

    config = json.loads((fixture / "config.json").read_text())
    if config["clip"] not in open_clip.list_models():
        folder = Path(tempfile.mkdtemp())
        (folder / f"{config['clip']}.json").write_text(json.dumps(config["open_clip_config"]))
        open_clip.add_model_config(folder)
    keys = {"image_tower": "mmseg", "logit_scale": 1.0, **keys}
    method = MaskCLIP(clip=config["clip"], clip_weights="none", **keys).eval()
    text = load_official_maskclip(method, fixture / "official.pth")
    method.text_embeddings = lambda class_names, templates=None: text
    return method, text, config


def zegbench_outputs(method: MaskCLIP, text: torch.Tensor, names: list[str], images: torch.Tensor) -> dict:
    """The fixture's quantities as zegbench computes them, in the official layouts ([B, C, h, w])."""
    kept = {}
    hook = method.encoder.visual.ln_post.register_forward_hook(lambda m, i, o: kept.__setitem__("values", o))
    try:
        with torch.no_grad():
            features, grid = method.dense_features(images)
            logits, _ = method(images, names)
            scores = method.predict(images, names, [True] * len(names))
    finally:
        hook.remove()

    def maps(tokens):  # [B, N, C] -> [B, C, h, w]
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)

    feature_logits = method.logit_scale * torch.einsum("bnd,cd->bcn", features, text)
    return {"values": maps(kept["values"][:, 1:]), "features": maps(features),
            "feature_logits": feature_logits.reshape(*feature_logits.shape[:2], *grid), "logits": logits,
            "scores": scores, "labels": scores.argmax(dim=1)}


def differences(fixture: Path, **keys) -> dict[str, float | str]:
    method, text, config = build(fixture, **keys)
    ref = torch.load(fixture / "outputs.pt", map_location="cpu", weights_only=True)
    out: dict[str, float | str] = {}
    for prefix in ("", "odd_"):
        ours = zegbench_outputs(method, text, config["classes"], ref[prefix + "images"])
        for q in QUANTITIES:
            a, b = ours[q], ref[prefix + q]
            out[prefix + q] = (float((a - b).abs().max()) if a.shape == b.shape
                               else f"shapes differ: ours {list(a.shape)}, official {list(b.shape)}")
        a, b = ours["labels"], ref[prefix + "labels"]
        out[prefix + "labels_differing"] = int((a != b).sum()) if a.shape == b.shape else "shapes differ"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture", type=Path, help="a folder written by maskclip_fixture.py")
    parser.add_argument("--set", action="append", default=[], help="a MaskCLIP key=value (e.g. patch_padding=corner)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    keys = dict(s.split("=", 1) for s in args.set)
    for name, diff in differences(args.fixture, **keys).items():
        print(f"{name:24s} {diff if isinstance(diff, str) else f'{diff:.3g}'}")


if __name__ == "__main__":
    main()
