"""Segmentation methods behind one interface; importing this registers every class."""
from zegbench.methods import maskclip, two_stage, zegclip  # noqa: F401  (importing registers the classes)
from zegbench.methods.base import Method, create_method, list_methods, method_config

__all__ = ["Method", "create_method", "list_methods", "method_config"]
