"""Segmentation methods behind one interface; importing this registers every class."""
from zegbench.methods import zegclip  # noqa: F401  (registers "zegclip")
from zegbench.methods.base import Method, create_method, list_methods, method_config

__all__ = ["Method", "create_method", "list_methods", "method_config"]
