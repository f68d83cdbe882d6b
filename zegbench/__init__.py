"""zegbench: a reproducibility benchmark harness for zero-shot semantic segmentation with CLIP."""

__version__ = "0.1.0"
__all__ = ["SuiteOutcome", "load", "run_suite"]


def load(path, device: str = "cpu", dataset: str | None = None, method: str | None = None,
         overrides: dict | None = None):
    """A trained model from a run folder or checkpoint: ``zegbench.load(run).segment(image, names)``.

    An official ZegCLIP checkpoint needs ``dataset`` (the one it was trained on): ``zegbench.load(
    "zegclip_voc.pth", dataset="voc12")``; see ``zegbench.segment.load``.
    """
    from zegbench.segment import load as _load

    return _load(path, device, dataset, method, overrides)


def __getattr__(name: str):
    """``zegbench.run_suite`` (run, list or report a suite: ``zegbench.harness.session``) and its
    ``SuiteOutcome``, imported on first use: every ``zegbench.*`` import runs this file (each run
    process's, each store reader's), which must stay light."""
    if name in ("run_suite", "SuiteOutcome"):
        from zegbench.harness import session

        return getattr(session, name)
    raise AttributeError(f"module 'zegbench' has no attribute {name!r}")
