"""The method registry: from a ``class:`` name to a ``Method`` class, and from a config to a built method.

A method config (``methods/<name>.yaml`` in a config folder, ``config_dirs``) names the implementing
class under ``class:`` and holds its hyperparameters. ``class:`` is a name registered with
``@register_class`` in this package (``zegclip``) or an importable ``module:ClassName`` (a method kept
outside zegbench: its module and its YAML are all it needs). ``zegbench methods list`` shows the
configs; tests are parametrised over them, so a new config is tested the day it is added.

Two ways to build a method:
  ``create_method(name, **overrides)``  from the YAML called ``name`` (what a user asks for by name);
  ``build_method(method_config)``       from a resolved config alone (``resolve``'s ``method_config``,
                                        as a run folder and its checkpoint record it): the class
                                        recorded in it, never a YAML read by name, so a trained run
                                        still builds after its method YAML was renamed or removed.
"""
from __future__ import annotations

import importlib

from zegbench.config_dirs import config_file, config_names
from zegbench.errors import ZegbenchError
from zegbench.methods.base import Method
from zegbench.utils.io import read_yaml_mapping

_CLASSES: dict[str, type[Method]] = {}


def register_class(name: str):
    """Decorator: make a Method class available to configs as ``class: name``.

    A name already taken is an error naming both classes: a second class would otherwise
    silently replace the first for every config (and every run) that names it.
    """
    def wrap(cls):
        if name in _CLASSES:
            taken = _CLASSES[name]
            raise ZegbenchError(f"method class name {name!r} is registered twice: by "
                                f"{taken.__module__}.{taken.__qualname__} and by {cls.__module__}.{cls.__qualname__}; "
                                f"give one of them another name")
        _CLASSES[name] = cls
        return cls
    return wrap


def list_methods(pattern: str = "*") -> list[str]:
    """Method config names (config file stems) matching a shell-style ``pattern``."""
    return config_names("methods", pattern)


def method_config(name: str) -> dict:
    """The YAML config of method ``name`` (safely loaded); its ``class`` must resolve (``method_class``)."""
    path = config_file("methods", name)
    cfg = read_yaml_mapping(path)
    try:
        method_class(cfg.get("class"))
    except ZegbenchError as err:
        raise ZegbenchError(f"{path}: {err}") from None
    return cfg


def method_class(class_name: str) -> type[Method]:
    """The class ``class:`` of a method config names: a registered name, or ``module:ClassName``.

    The module form imports ``module`` (from ``sys.path``; add a user's folder
    with ``PYTHONPATH``) and requires a ``Method`` subclass.
    """
    if not isinstance(class_name, str) or not class_name:
        raise ZegbenchError(f"'class' must be a registered name ({', '.join(sorted(_CLASSES))}) "
                            f"or module:ClassName, not {class_name!r}")
    if ":" not in class_name:
        if class_name not in _CLASSES:
            raise ZegbenchError(f"unknown method class {class_name!r}; known: {', '.join(sorted(_CLASSES))} "
                                f"(or module:ClassName)")
        return _CLASSES[class_name]
    module_name, _, attr = class_name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as err:  # the module (or one it imports) is missing or unparsable
        raise ZegbenchError(f"method class {class_name!r}: cannot import {module_name!r} "
                            f"({type(err).__name__}: {err}); is its folder on PYTHONPATH?") from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ZegbenchError(f"method class {class_name!r}: module {module_name!r} has no {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ZegbenchError(f"method class {class_name!r}: {attr!r} is not a subclass of zegbench.methods.Method")
    return cls


def build_method(method_config: dict, where: str | None = None) -> Method:
    """The method a config describes: its ``class`` key names the class, the other keys are its keyword arguments.

    ``method_config`` is a resolved config (``resolve(...)["method_config"]``, a run's ``config.yaml``
    or its checkpoint's embedded config): nothing else is read, no YAML by name. ``where`` names the
    config's origin in the one-line error a bad class or a rejected key gives (a file, a checkpoint).
    """
    cfg = dict(method_config)
    class_name = cfg.pop("class", None)
    cfg.pop("description", None)  # a YAML's one-line summary, not an argument
    try:
        cls = method_class(class_name)
    except ZegbenchError as err:
        raise ZegbenchError(f"{where}: {err}" if where else str(err)) from None
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as err:  # unknown keys, bad switch values
        raise ZegbenchError(f"{where or f'method class {class_name!r}'}: {err}") from None


def create_method(name: str, **overrides) -> Method:
    """Build method ``name`` from its YAML config; ``overrides`` replace config keys (unknown keys are errors)."""
    where = f"{config_file('methods', name)} (or its overrides)"
    return build_method({**method_config(name), **overrides}, where=where)
