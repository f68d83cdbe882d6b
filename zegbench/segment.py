"""Use a trained model on any image with any class names: ``zegbench.load(...).segment(image, names)``.

A model is a run folder (``config.yaml`` + ``checkpoint.pt``) or a checkpoint
file written by the harness (which embeds its config). Images of any size are
resized so their short side is the model's input size (the long side at most
``MAX_ASPECT`` times that, as VOC's 2048 x 512 test scale), segmented with a
sliding window, and the scores resized back to the original size: a 1 x 1 image
and a 20,000-pixel panorama alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from zegbench.datasets.transforms import fit_scale
from zegbench.errors import ZegbenchError
from zegbench.store import read_config
from zegbench.store.layout import CHECKPOINT_FILE, CONFIG_FILE, RESULT_FILE

MAX_ASPECT = 4  # the model sees at most (size, 4 x size): a panorama costs a few windows, not thousands
# Classes brought to the photo's full size at a time: all 171 of COCO-Stuff at once on a 12 MP photo
# would be 8 GB of scores on the GPU, and 8 GB more copied to the host.
CLASSES_AT_FULL_SIZE = 8


@dataclass
class Segmentation:
    """The result for one image: ``labels`` [H, W] indexes ``class_names`` (255 = below ``min_score``)."""

    labels: np.ndarray
    model_scores: np.ndarray  # [C, h, w] at the size the model saw the image, calibrated as in evaluation
    class_names: list[str]

    @cached_property
    def scores(self) -> np.ndarray:
        """[C, H, W] scores at the image's size, made on the CPU when asked (C x H x W floats: 8 GB for
        171 classes on a 12 MP photo); ``labels`` is their argmax."""
        scores = torch.from_numpy(self.model_scores)[None]
        return F.interpolate(scores, size=self.labels.shape, mode="bilinear", align_corners=False)[0].numpy()

    def shares(self) -> dict[str, float]:
        """Fraction of the image's pixels given to each class."""
        total = self.labels.size
        return {name: float((self.labels == i).sum() / total) for i, name in enumerate(self.class_names)}


class Segmenter:
    """A trained method ready for inference; build it with ``zegbench.load``."""

    def __init__(self, method, config: dict, device: str = "cpu"):
        from zegbench.datasets.catalog import load_dataset_info

        self.method, self.config, self.device = method.to(device).eval(), config, device
        info = load_dataset_info(config["dataset"]) if config.get("dataset") else None
        # Names the model was trained on keep the inductive seen-class calibration, as in evaluation.
        self.trained_on = set(info.seen) if info else set()
        # The input size: the method's own (ZegCLIP's CLIP grid), else the images it trained on
        # (a two-stage network takes any size; the world's images are 96), else 512.
        world = (info.world or {}) if info else {}
        self.size = int(config["method_config"].get("image_size") or world.get("image_size") or 512)

    @torch.no_grad()
    def segment(self, image, class_names: list[str], min_score: float | None = None) -> Segmentation:
        """Segment ``image`` (a path, a PIL image or a uint8 HxWx3 array) into ``class_names``."""
        names = [n.strip() for n in class_names if n.strip()]
        if not names:
            raise ZegbenchError("the class list is empty: give at least one class name")
        pixels = read_image(image)
        h, w = pixels.shape[:2]
        fit_h, fit_w = fit_scale(h, w, (MAX_ASPECT * self.size, self.size))
        size = (max(self.size, fit_h), max(self.size, fit_w))  # a thin strip is stretched to one window
        x = torch.from_numpy(np.ascontiguousarray(pixels).copy()).unsqueeze(0).to(self.device)
        x = self.method.normalize(x)
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        seen = [n in self.trained_on for n in names]
        scores = self.method.predict_any_size(x, names, seen)  # a fixed-input-size method slides windows
        best, labels = full_size_argmax(scores, (h, w))
        if min_score is not None:
            labels[best < min_score] = 255
        return Segmentation(labels.cpu().numpy().astype(np.uint8), scores[0].float().cpu().numpy(), names)


def full_size_argmax(scores: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Best score and its class [H, W] of scores [1, C, h, w] resized bilinearly to ``size``.

    ``CLASSES_AT_FULL_SIZE`` classes are resized at a time, so memory is bounded by that many
    full-size maps whatever the number of classes; the result equals resizing all at once
    (resizing is per class, and a tie keeps the lower class index, as ``max`` does).
    """
    best = labels = None
    for start in range(0, scores.shape[1], CLASSES_AT_FULL_SIZE):
        chunk = scores[:, start:start + CLASSES_AT_FULL_SIZE]
        chunk_best, chunk_labels = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False)[0].max(dim=0)
        if best is None:
            best, labels = chunk_best, chunk_labels
        else:
            better = chunk_best > best
            best, labels = torch.where(better, chunk_best, best), torch.where(better, chunk_labels + start, labels)
    return best, labels


def read_image(image) -> np.ndarray:
    """A path, PIL image or array -> uint8 RGB array [H, W, 3] (one clear error if unreadable)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ZegbenchError(f"an image array must be uint8 of shape [H, W, 3], not {image.dtype} {image.shape}")
        return image
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    path = Path(image)
    if not path.is_file():
        raise ZegbenchError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as err:  # PIL refuses images over ~179 megapixels
        raise ZegbenchError(f"image {path} is too large to open safely ({str(err).split(',')[0]}): "
                            f"downscale it first") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ZegbenchError(f"image {path} is unreadable ({type(err).__name__}): is it a PNG or JPEG?") from None


def load(path: str | Path, device: str = "cpu", dataset: str | None = None, method: str | None = None,
         overrides: dict | None = None) -> Segmenter:
    """A run folder, a harness checkpoint or an official ZegCLIP checkpoint -> ``Segmenter``.

    An official checkpoint (an mmseg ``.pth``) carries no zegbench config: ``dataset`` names the
    dataset it was trained on, and the model is built as that dataset's recipe builds ``method``
    (default: ``zegclip``, or ``zegclip_transductive`` for a self-trained checkpoint), with
    ``overrides`` of its keys. ``dataset``, ``method`` and ``overrides`` are ignored otherwise.

    A harness checkpoint's model is built from the resolved config it embeds (or its run's
    ``config.yaml``) alone, its class included: no method YAML is read, so a run still loads
    after its method's YAML was renamed or removed.
    """
    from zegbench.methods import build_method
    from zegbench.methods.official_checkpoint import is_official_checkpoint

    path = Path(path)
    checkpoint = path / CHECKPOINT_FILE if path.is_dir() else path
    if path.is_dir() and not checkpoint.is_file():
        config = read_config(path)
        if (path / RESULT_FILE).is_file() and config is not None:
            method = build_method(config["method_config"], where=str(path / CONFIG_FILE))
            if not any(p.requires_grad for p in method.parameters()):  # training-free: nothing was saved
                return Segmenter(method, config, device)
        raise ZegbenchError(f"run folder {path} has no checkpoint.pt: the run did not finish training "
                            f"(see `run_all.py --list`)")
    if not checkpoint.is_file():
        raise ZegbenchError(f"{path} is neither a run folder nor a checkpoint file")
    try:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
    except Exception as err:  # truncated or foreign files fail in many ways inside torch
        raise ZegbenchError(f"{checkpoint} is unreadable as a zegbench checkpoint ({type(err).__name__})") from None
    if is_official_checkpoint(state):
        from zegbench.engine.evaluate import official_method

        if dataset is None:
            raise ZegbenchError(f"{checkpoint} is an official ZegCLIP checkpoint: name the dataset it was trained on "
                                f"(--dataset voc12 or coco_stuff164k), so the model is built as that recipe says")
        model, config = official_method(state, dataset, method, overrides, source=str(checkpoint))
        return Segmenter(model, config, device)
    if not isinstance(state, dict) or "method" not in state:
        raise ZegbenchError(f"{checkpoint} is not a zegbench training checkpoint (no 'method' weights)")
    config, config_source = state.get("config"), f"{checkpoint} (its embedded config)"
    if config is None:  # checkpoints from before configs were embedded
        config, config_source = read_config(checkpoint.parent), str(checkpoint.parent / CONFIG_FILE)
    if config is None:
        raise ZegbenchError(f"{checkpoint} carries no config and has no config.yaml beside it")
    method = build_method(config["method_config"], where=config_source)
    try:
        method.load_state_dict(state["method"])
    except RuntimeError as err:
        raise ZegbenchError(f"{checkpoint} does not fit method {config['method']!r}: "
                            f"{str(err).splitlines()[0]}") from None
    return Segmenter(method, config, device)


def write_outputs(image, result: Segmentation, out_dir: str | Path, stem: str) -> dict:
    """``<stem>_labels.png`` (class indices), ``<stem>_overlay.png`` (colours + legend); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path, overlay_path = out_dir / f"{stem}_labels.png", out_dir / f"{stem}_overlay.png"
    Image.fromarray(result.labels).save(labels_path)
    pixels = read_image(image)
    cmap = "tab10" if len(result.class_names) <= 10 else "tab20"  # tab20 pairs near-identical colours
    palette = (np.array(plt.get_cmap(cmap).colors) * 255).astype(np.uint8)
    colours = palette[np.arange(len(result.class_names)) % len(palette)]
    painted = pixels.copy()
    for i in range(len(result.class_names)):
        mask = result.labels == i
        painted[mask] = (0.45 * pixels[mask] + 0.55 * colours[i]).astype(np.uint8)
    shares = result.shares()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, shown, title in ((axes[0], pixels, "image"), (axes[1], painted, "segmentation")):
        ax.imshow(shown, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    handles = [Patch(color=colours[i] / 255, label=f"{name} ({100 * shares[name]:.0f}%)")
               for i, name in enumerate(result.class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(overlay_path, dpi=120)
    plt.close(fig)
    return {"labels": str(labels_path), "overlay": str(overlay_path)}
