"""zegbench: a reproducibility benchmark harness for zero-shot semantic segmentation with CLIP."""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """A trained model from a run folder or checkpoint: ``zegbench.load(run).segment(image, names)``."""
    from zegbench.segment import load as _load

    return _load(path, device)
