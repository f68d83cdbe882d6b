"""The method registry: one class per name, and a method built from its resolved config alone."""
from __future__ import annotations

import pytest
import torch

from zegbench.datasets import worlds
from zegbench.engine.resolve import resolve
from zegbench.errors import ZegbenchError
from zegbench.methods import Method, build_method, create_method, list_methods, method_class, method_config, registry
from zegbench.methods.zegclip import ZegCLIP

SEEN = list(worlds.generator().SEEN_CLASSES)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as imported, restored after the test whatever it registers."""
    monkeypatch.setattr(registry, "_CLASSES", dict(registry._CLASSES))


def test_a_class_name_registered_twice_is_an_error_naming_both_classes(scratch_registry):
    class Impostor(Method):
        pass

    with pytest.raises(ZegbenchError, match=r"'zegclip' is registered twice: by zegbench\.methods\.zegclip\.ZegCLIP "
                                            r"and by .*Impostor") as err:
        registry.register_class("zegclip")(Impostor)
    assert "\n" not in str(err.value)
    assert method_class("zegclip") is ZegCLIP  # the first class keeps its name
    # The very same class again is refused too: no import path registers a class twice (module
    # caching), so a second registration is always a mistake worth hearing about.
    with pytest.raises(ZegbenchError, match="registered twice"):
        registry.register_class("zegclip")(ZegCLIP)
    registry.register_class("impostor")(Impostor)  # a free name is taken as before
    assert method_class("impostor") is Impostor


def _tiny_resolved(name: str) -> dict:
    """``name``'s resolved method config on the smoke world, at its class's smallest size."""
    return resolve(name, "world_smoke", 0, method_class(method_config(name)["class"]).tiny_config)["method_config"]


@pytest.mark.parametrize("name", list_methods())
def test_build_method_builds_what_create_method_builds_from_a_resolved_config(name):
    resolved = _tiny_resolved(name)
    torch.manual_seed(0)
    built = build_method(resolved).eval()
    torch.manual_seed(0)
    by_name = create_method(name, **{k: v for k, v in resolved.items() if k != "class"}).eval()
    assert type(built) is type(by_name)
    ours, theirs = built.state_dict(), by_name.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # Same switches too (setting, inference, calibration): the same scores, seen and unseen classes alike.
    torch.manual_seed(1)
    x = built.normalize(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8))
    seen = [True, True, False]
    assert torch.equal(built.predict(x, SEEN[:3], seen), by_name.predict(x, SEEN[:3], seen))


def test_build_method_errors_are_one_line_naming_the_config():
    tiny = _tiny_resolved("zegclip")
    cases = [({**tiny, "colour": "red"}, None, "method class 'zegclip': .*colour"),
             ({**tiny, "tuning": "lora"}, "run/config.yaml", "run/config.yaml: tuning must be one of"),
             ({k: v for k, v in tiny.items() if k != "class"}, None, "'class' must be a registered name"),
             ({**tiny, "class": "nope"}, "ckpt.pt (its embedded config)",
              "ckpt.pt \\(its embedded config\\): unknown method class 'nope'")]
    for config, where, message in cases:
        with pytest.raises(ZegbenchError, match=message) as err:
            build_method(config, where=where)
        assert "\n" not in str(err.value)
