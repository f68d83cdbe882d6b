"""zegbench: a reproducibility benchmark harness for zero-shot semantic segmentation with CLIP."""

__version__ = "0.1.0"
