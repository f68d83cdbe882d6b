"""Run the official MaskCLIP code on seeded random weights and write what it computes (not run in CI).

Runs in a scratch environment that can import the official code (README.md here, "MaskCLIP"):

    python tools/official_equivalence/maskclip_fixture.py --official /path/to/MaskCLIP --config small --out DIR

It builds the official model as ``configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py`` does (the
mmseg ``VisionTransformer`` with ``return_qkv`` + ``MaskClipHead``, ``test_cfg`` mode ``whole``), with
the overrides of ``--config``, re-draws every weight from a seed (no two LayerNorms alike, so a swapped
key cannot pass), writes the two files the head loads at construction (the class embeddings,
``text_embeddings_path``, and the projection, ``visual_projs_path``), runs the official inference on
fixed normalised images and writes into ``DIR``:

- ``official.pth``: the model's state dict as mmcv's ``save_checkpoint`` writes it (``meta`` +
  ``state_dict``), the layout of a converted MaskCLIP checkpoint plus the head's ``proj`` and
  ``text_embeddings``;
- ``outputs.pt``: inputs and official outputs (fp32), see ``QUANTITIES`` below;
- ``config.json``: how zegbench builds the matching model (an open_clip architecture).

The official head loads its two files with ``map_location='cuda'``; on this CPU-only machine
``torch.load`` is wrapped to map to the CPU (nothing else changes). Nothing of the official code is
copied: it is imported from ``--official``.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

CONFIG = "configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py"
SMALL = {  # six classes, three blocks of width 64, a 3 x 3 position table: a fixture of a few tens of kB
    "classes": 6, "width": 64, "layers": 3, "heads": 4, "patch": 16, "table": 48, "text_channels": 32,
    "batch": 2, "size": (64, 96), "odd_size": (56, 88),
}
VIT_B16 = {  # the released configuration (ViT-B/16 at the VOC config's 512 short side), 20 classes
    "classes": 20, "width": 768, "layers": 12, "heads": 12, "patch": 16, "table": 224, "text_channels": 512,
    "batch": 1, "size": (512, 512), "odd_size": (512, 683),
}
# What outputs.pt holds beside the inputs (images [B,3,H,W], odd_images [1,3,H',W'], text_embeddings [K,D]):
QUANTITIES = {
    "values": "the backbone's value-path output after its final LayerNorm, [B, width, h, w] (before proj)",
    "features": "MaskClipHead.proj of it, L2-normalised over channels, [B, D, h, w]",
    "feature_logits": "MaskClipHead's output: cosine with each class embedding, [B, K, h, w]",
    "logits": "encode_decode: feature_logits bilinearly resized to the input, [B, K, H, W]",
    "scores": "inference (whole mode, rescale to ori_shape): softmax of logits over classes",
    "labels": "simple_test: argmax of scores, [B, H, W]",
}


def stub_mmcv_ops() -> None:
    """mmseg's focal loss (and a few heads) import ``mmcv.ops`` (compiled ops); MaskCLIP never calls them."""
    ops = types.ModuleType("mmcv.ops")

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("mmcv.ops is a stub: mmcv was installed without its compiled ops")

    def getattr_(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Unavailable

    ops.__getattr__ = getattr_
    sys.modules["mmcv.ops"] = ops


def cpu_torch_load() -> None:
    """MaskClipHead loads its files with map_location='cuda'; map them to the CPU instead."""
    original = torch.load

    def load(f, map_location=None, **kwargs):
        kwargs.setdefault("weights_only", False)
        return original(f, map_location="cpu", **kwargs)

    torch.load = load


def build(official: Path, spec: dict, text_path: Path, proj_path: Path):
    from mmcv import Config
    from mmseg.models import build_segmentor

    cfg = Config.fromfile(str(official / CONFIG))
    m = cfg.model
    m.backbone.update(img_size=(spec["table"], spec["table"]), patch_size=spec["patch"], embed_dims=spec["width"],
                      num_layers=spec["layers"], num_heads=spec["heads"])
    m.decode_head.update(in_channels=spec["width"], num_classes=spec["classes"], text_categories=spec["classes"],
                         text_channels=spec["text_channels"], text_embeddings_path=str(text_path),
                         visual_projs_path=str(proj_path))
    model = build_segmentor(m, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    return cfg, model


def redraw(model: torch.nn.Module, seed: int) -> None:
    """Seeded weights with no two tensors alike (mmseg's init leaves LayerNorms at 1/0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.startswith("decode_head."):
                continue  # proj comes from the visual_projs_path file
            if name in ("backbone.cls_token", "backbone.pos_embed"):
                p.copy_(0.5 * noise)
            elif p.dim() == 1:  # LayerNorm weights and biases, Linear biases
                p.add_(0.1 * noise)
            else:
                p.add_(0.2 * p.std().clamp(min=1e-3) * noise)


def inputs(spec: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed + 2)
    images = torch.randn(spec["batch"], 3, *spec["size"], generator=g)
    odd = torch.randn(1, 3, *spec["odd_size"], generator=g)  # not a multiple of the patch: corner padding
    return {"images": images, "odd_images": odd}


def official_outputs(model, images: torch.Tensor, values: dict) -> dict:
    size = tuple(images.shape[-2:])
    metas = [{"ori_shape": size + (3,), "img_shape": size + (3,), "pad_shape": size + (3,), "flip": False}]
    metas = metas * images.shape[0]
    with torch.no_grad():
        logits = model.encode_decode(images, metas)
        backbone_v = values.pop("v")
        features = values.pop("features")
        feature_logits = values.pop("feature_logits")
        scores = model.inference(images, metas, rescale=True)
        labels = torch.as_tensor(np.stack(model.simple_test(images, metas, rescale=True)))
    return {"values": backbone_v, "features": features, "feature_logits": feature_logits, "logits": logits,
            "scores": scores, "labels": labels}


def run(official: Path, config: str, out: Path, seed: int) -> None:
    sys.path.insert(0, str(official))
    stub_mmcv_ops()
    cpu_torch_load()
    import mmseg  # the official repository's own mmseg fork
    from mmcv.runner import save_checkpoint

    assert Path(mmseg.__file__).resolve().is_relative_to(official.resolve()), mmseg.__file__
    spec = SMALL if config == "small" else VIT_B16
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed + 1)
    text = torch.nn.functional.normalize(torch.randn(spec["classes"], spec["text_channels"], generator=g), dim=-1)
    text_path, proj_path = out / "text_embeddings.pth", out / "visual_projs.pth"
    torch.save(text, text_path)  # as tools/maskclip_utils/prompt_engineering.py writes it: [K, D], unit rows
    proj = torch.randn(spec["text_channels"], spec["width"], generator=g) * spec["width"] ** -0.5
    torch.save({"proj": {"weight": proj}}, proj_path)  # convert_clip_weights.py's layout: CLIP's proj.T
    torch.manual_seed(seed)
    cfg, model = build(official, spec, text_path, proj_path)
    redraw(model, seed)
    model.eval()
    assert torch.equal(model.decode_head.text_embeddings, text)
    assert torch.equal(model.decode_head.proj.weight[:, :, 0, 0], proj)

    values: dict = {}
    head = model.decode_head

    def keep_v(module, args, result):  # the backbone's outputs: [(x, q, k, v)] with v after the final norm
        values["v"] = result[0][3].detach().clone()

    def keep_proj(module, args, result):
        values["features"] = (result / result.norm(dim=1, keepdim=True)).detach().clone()

    original_cls_seg = head.cls_seg

    def cls_seg(feat):
        output = original_cls_seg(feat)
        values["feature_logits"] = output.detach().clone()
        return output

    hooks = [model.backbone.register_forward_hook(keep_v), head.proj.register_forward_hook(keep_proj)]
    head.cls_seg = cls_seg
    data = inputs(spec, seed)
    res = {"text_embeddings": text, **data}
    for prefix, images in (("", data["images"]), ("odd_", data["odd_images"])):
        for key, value in official_outputs(model, images, values).items():
            res[prefix + key] = value
    for h in hooks:
        h.remove()

    meta = {"config": cfg.pretty_text, "test_cfg": dict(cfg.model.test_cfg), "official": CONFIG}
    save_checkpoint(model, str(out / "official.pth"), meta=meta)
    torch.save(res, out / "outputs.pt")
    zeg = {"clip": "maskclip-official-small" if spec is SMALL else "ViT-B-16",
           "classes": [f"class{i}" for i in range(spec["classes"])], "test_cfg": dict(cfg.model.test_cfg),
           "open_clip_config": {
               "embed_dim": spec["text_channels"],
               "vision_cfg": {"image_size": spec["table"], "layers": spec["layers"], "width": spec["width"],
                              "head_width": spec["width"] // spec["heads"], "patch_size": spec["patch"]},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}}
    (out / "config.json").write_text(json.dumps(zeg, indent=1) + "\n")
    print(f"wrote {out}: {len(model.state_dict())} state-dict keys, test_cfg {dict(cfg.model.test_cfg)}, "
          f"feature logits in [{res['feature_logits'].min():.3f}, {res['feature_logits'].max():.3f}], "
          f"label counts {torch.bincount(res['labels'].flatten()).tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of chongzhou96/MaskCLIP")
    parser.add_argument("--config", choices=("small", "vit-b16"), default="small",
                        help="small: the CI fixture; vit-b16: the released size (not committed)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write official.pth, outputs.pt, config.json")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    run(args.official.resolve(), args.config, args.out, args.seed)


if __name__ == "__main__":
    main()
