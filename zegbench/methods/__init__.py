"""Segmentation methods behind one interface (``base.Method``) and their registry (``registry``);
importing this registers every class."""
from zegbench.methods import maskclip, two_stage, zegclip  # noqa: F401  (importing registers the classes)
from zegbench.methods.base import Method
from zegbench.methods.registry import (
    build_method,
    create_method,
    list_methods,
    method_class,
    method_config,
    register_class,
)

__all__ = ["Method", "build_method", "create_method", "list_methods", "method_class", "method_config",
           "register_class"]
