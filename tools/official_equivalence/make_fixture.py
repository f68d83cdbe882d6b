"""Run the official ZegCLIP code on seeded random weights and write what it computes (not run in CI).

Runs in a scratch environment that can import the official code (see README.md here):

    python tools/official_equivalence/make_fixture.py --official /path/to/ZegCLIP --config small --out DIR

It builds the official model (``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py`` with the
overrides of ``--config``), re-draws every weight from a seed (no two LayerNorms or decoder layers
alike, so a swapped key cannot go unnoticed), and writes into ``DIR``:

- ``official.pth``: the model as mmcv's ``save_checkpoint`` writes it (``meta`` + ``state_dict``),
  the layout of the released checkpoints;
- ``outputs.pt``: the fixed inputs and, in fp32, what the official code computes from them
  (see ``QUANTITIES`` in compare.py): encoder tokens with deep prompts, image and patch
  embeddings, relation descriptor, decoder logits, calibrated test scores (whole image and
  sliding window), the training step's focal and dice losses and gradients (dropout off), the
  transductive phase's pseudo-labels and losses;
- ``config.json``: how zegbench builds the matching model (read by compare.py).

Nothing of the official code is copied: it is imported from ``--official``.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

SMALL = {  # a handful of classes, three blocks of width 64: a fixture of a few hundred kB
    "classes": ["cat", "dog", "car", "tree", "sheep", "sofa"], "seen": [0, 1, 2, 3], "unseen": [4, 5],
    "width": 64, "layers": 3, "heads": 4, "patch": 16, "table_size": 48, "output_dim": 32, "num_tokens": 4,
    "decoder_heads": 4, "image_size": 64, "stride": 48, "slide_width": 96, "batch": 2, "qk_scale": 8.0,
    "text": {"context_length": 8, "vocab_size": 64, "transformer_width": 32, "transformer_heads": 2,
             "transformer_layers": 1, "embed_dim": 32},
}
VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
VIT_B16 = {  # the released VOC model's configuration (the config file's values)
    "classes": VOC_CLASSES, "seen": list(range(15)), "unseen": list(range(15, 20)),
    "width": 768, "layers": 12, "heads": 12, "patch": 16, "table_size": 512, "output_dim": 512, "num_tokens": 10,
    "decoder_heads": 8, "image_size": 512, "stride": 426, "slide_width": 683, "batch": 2, "text": None,
    "qk_scale": 16.0,
}
CONFIG = "configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py"


def stub_mmcv_ops() -> None:
    """mmseg's focal loss imports ``mmcv.ops`` (compiled ops) at import time; ZegCLIP never calls it."""
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


def build_config(official: Path, spec: dict, text_path: Path, self_training: bool):
    from mmcv import Config, ConfigDict

    cfg = Config.fromfile(str(official / CONFIG))
    m = cfg.model
    m.pretrained = m.pretrained_text = None
    m.class_names = spec["classes"]
    m.base_class, m.novel_class = spec["seen"], spec["unseen"]
    m.both_class = sorted(spec["seen"] + spec["unseen"])
    m.load_text_embedding = str(text_path)
    m.self_training = self_training
    b = m.backbone
    b.update(width=spec["width"], layers=spec["layers"], heads=spec["heads"], patch_size=spec["patch"],
             input_resolution=spec["table_size"], output_dim=spec["output_dim"], num_tokens=spec["num_tokens"],
             prompt_dim=spec["width"], total_d_layer=spec["layers"] - 1, out_indices=[spec["layers"] - 1])
    if spec["text"]:
        m.text_encoder.update(spec["text"])
    head = m.decode_head
    trained = m.both_class if self_training else spec["seen"]
    head.update(img_size=spec["image_size"], in_channels=spec["output_dim"], channels=spec["output_dim"],
                embed_dims=spec["output_dim"], num_heads=spec["decoder_heads"], seen_idx=spec["seen"],
                all_idx=m.both_class, num_classes=len(trained))
    head.loss_decode.num_classes = len(trained)
    size = spec["image_size"]
    m.test_cfg = ConfigDict(mode="slide", crop_size=(size, size), stride=(spec["stride"], spec["stride"]))
    return cfg


def redraw(model: torch.nn.Module, seed: int, spec: dict) -> None:
    """Seeded weights with no two tensors alike (PyTorch's init leaves LayerNorms at 1/0, decoder layers copies)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name in ("text_encoder.positional_embedding", "text_encoder.text_projection"):
                p.copy_(0.02 * noise)  # left uninitialised (torch.empty) by the official text encoder; unused
            elif p.dim() == 1:  # LayerNorm weights and biases, Linear biases, the class embedding
                p.add_(0.1 * noise)
            else:
                p.add_(0.2 * p.std().clamp(min=1e-3) * noise)
        # Scale the decoder's queries and keys so the mask logits span a few units (sigmoids not all 0.5).
        for name, p in model.decode_head.named_parameters():
            if ".multihead_attn.q." in name or ".multihead_attn.k." in name:
                p.mul_(spec["qk_scale"])


def text_embeddings(official: Path, spec: dict, seed: int) -> np.ndarray:
    """fp16 unit-norm class embeddings, as the official .npy files hold them."""
    if spec is VIT_B16:
        return np.load(official / "configs/_base_/datasets/text_embedding/voc12_single.npy")
    g = torch.Generator().manual_seed(seed + 1)
    t = torch.randn(len(spec["classes"]), spec["output_dim"], generator=g)
    return torch.nn.functional.normalize(t, dim=-1).half().numpy()


def inputs(spec: dict, seed: int) -> dict:
    """Normalised images, a wider image for the sliding window, labels with 255 bands and every class."""
    g = torch.Generator().manual_seed(seed + 2)
    b, s, c = spec["batch"], spec["image_size"], len(spec["classes"])
    images = torch.randn(b, 3, s, s, generator=g)
    slide = torch.randn(1, 3, s, spec["slide_width"], generator=g)
    cell = s // 8  # 8 x 8 blocks of random classes, then 255 bands
    blocks = torch.randint(0, c, (b, 8, 8), generator=g)
    labels = blocks.repeat_interleave(cell, 1).repeat_interleave(cell, 2)
    labels[:, :, : cell // 2] = 255
    labels[:, s // 2: s // 2 + cell // 3] = 255
    labels[0, :cell, :cell] = spec["seen"][0]
    labels[1, :cell, :cell] = spec["unseen"][0]
    return {"images": images, "slide_images": slide, "labels": labels.long()}


class Recorder:
    """Forward hooks that keep what chosen official modules compute."""

    def __init__(self, model):
        self.out, self.handles = {}, []
        head, backbone = model.decode_head, model.backbone
        self._hook(backbone.prompt_norm, "encoder_tokens", lambda i, o: o.permute(1, 0, 2))  # LND -> NLD
        self._hook(backbone, "patch_embeddings", lambda i, o: o[0][0].flatten(2).transpose(1, 2))
        self._hook(backbone, "image_embedding", lambda i, o: o[1])
        self._hook(head.q_proj, "relation_descriptor", lambda i, o: i[0])
        self._hook(head.q_proj, "queries", lambda i, o: o)
        self._hook(head.decoder_1, "decoder_logits", lambda i, o: o[1][-1])
        original = head.semantic_inference

        def semantic_inference(mask_pred, seen_idx, weight=0.0):
            self.out["mask_logits"] = mask_pred.detach().clone()
            return original(mask_pred, seen_idx, weight)

        head.semantic_inference = semantic_inference

    def _hook(self, module, key, pick):
        self.handles.append(module.register_forward_hook(
            lambda mod, i, o: self.out.__setitem__(key, pick(i, o).detach().clone())))


def no_dropout(model) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def build(official: Path, spec: dict, text_path: Path, self_training: bool):
    from mmseg.models import build_segmentor

    cfg = build_config(official, spec, text_path, self_training)
    return cfg, build_segmentor(cfg.model)


def run(official: Path, config: str, out: Path, seed: int) -> None:
    sys.path.insert(0, str(official))
    stub_mmcv_ops()
    import models  # noqa: F401  (the official repository's modules register themselves with mmseg)
    from mmcv.runner import save_checkpoint

    spec = SMALL if config == "small" else VIT_B16
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    text = text_embeddings(official, spec, seed)
    text_path = out / "text_embedding.npy"
    np.save(text_path, text)
    cfg, model = build(official, spec, text_path, self_training=False)
    redraw(model, seed, spec)
    data = inputs(spec, seed)
    metas = [{"ori_shape": tuple(data["images"].shape[-2:]) + (3,), "flip": False}] * spec["batch"]
    res = {"text_embeddings": torch.from_numpy(text), **data}

    # Test time (eval mode): whole image and sliding window, with the intermediate stages.
    model.eval()
    rec = Recorder(model)
    with torch.no_grad():
        res["scores"] = model.encode_decode(data["images"], metas)
        res.update({k: v for k, v in rec.out.items()})
        res["slide_scores"] = model.slide_inference(data["slide_images"], metas[:1], rescale=False)
    for h in rec.handles:
        h.remove()

    # One training step, inductive: labels of unseen classes become 255 inside the official model.
    model.train()
    no_dropout(model)
    model.zero_grad()
    losses = model.forward_train(data["images"], metas, data["labels"].unsqueeze(1).clone())
    (losses["decode.loss_mask"] + losses["decode.loss_dice"]).backward()
    res["loss_focal"], res["loss_dice"] = losses["decode.loss_mask"].detach(), losses["decode.loss_dice"].detach()
    res["grads"] = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    res["trainable"] = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    state = {k: v for k, v in model.state_dict().items()}

    # The transductive phase: same weights, all classes' text, pseudo-labels for unseen ground truth.
    _, st_model = build(official, spec, text_path, self_training=True)
    st_model.load_state_dict({k: v for k, v in state.items() if "empty_weight" not in k}, strict=False)
    st_model.train()
    no_dropout(st_model)
    seen_labels = {}
    original = st_model.decode_head.losses

    def losses_hook(seg_logit, seg_label, num_classes=None):
        seen_labels["pseudo"] = seg_label.detach().clone().squeeze(1)
        return original(seg_logit, seg_label, num_classes)

    st_model.decode_head.losses = losses_hook
    with torch.no_grad():
        st = st_model.forward_train(data["images"], metas, data["labels"].unsqueeze(1).clone())
    res["pseudo_labels"] = seen_labels["pseudo"]
    res["st_loss_focal"], res["st_loss_dice"] = st["decode.loss_mask"], st["decode.loss_dice"]

    meta = {"CLASSES": tuple(spec["classes"]), "PALETTE": [[i, i, i] for i in range(len(spec["classes"]))],
            "config": cfg.pretty_text, "iter": 0}
    save_checkpoint(model, str(out / "official.pth"), meta=meta)
    torch.save({k: (v.float() if torch.is_tensor(v) and v.is_floating_point() and k != "text_embeddings" else v)
                for k, v in res.items()}, out / "outputs.pt")
    zeg = {"clip": "zegclip-official-small" if spec is SMALL else "ViT-B-16-quickgelu",
           "method": {"image_size": spec["image_size"], "num_tokens": spec["num_tokens"], "decoder_layers": 3,
                      "decoder_heads": spec["decoder_heads"], "crop": spec["image_size"], "stride": spec["stride"]},
           "classes": spec["classes"], "seen": spec["seen"], "unseen": spec["unseen"]}
    if spec is SMALL:  # the open_clip architecture of the small model (its text tower is zegbench's own)
        zeg["open_clip_config"] = {
            "embed_dim": spec["output_dim"], "quick_gelu": True,
            "vision_cfg": {"image_size": spec["table_size"], "layers": spec["layers"], "width": spec["width"],
                           "head_width": spec["width"] // spec["heads"], "patch_size": spec["patch"]},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (out / "config.json").write_text(json.dumps(zeg, indent=1) + "\n")
    print(f"wrote {out}: {len(state)} state-dict keys, {len(res['grads'])} gradients, "
          f"focal {res['loss_focal']:.6f}, dice {res['loss_dice']:.6f}, "
          f"decoder logits in [{res['decoder_logits'].min():.2f}, {res['decoder_logits'].max():.2f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of ZiqinZhou66/ZegCLIP")
    parser.add_argument("--config", choices=("small", "vit-b16"), default="small",
                        help="small: the CI fixture; vit-b16: the released VOC model's size (not committed)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write official.pth, outputs.pt, config.json")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    run(args.official.resolve(), args.config, args.out, args.seed)


if __name__ == "__main__":
    main()
