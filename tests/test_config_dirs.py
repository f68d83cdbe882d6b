"""Config folders: a user's own methods, datasets, suites and claims beside the shipped ones; the command
line's shared options (--config-dir, --quiet/--verbose) and the logger they configure."""
from __future__ import annotations

import json
import logging
import os

import pytest

from zegbench import config_dirs
from zegbench.cli import main
from zegbench.errors import ZegbenchError
from zegbench.store import RunStore


def _user_folder(root):
    """A config folder with one method (ZegCLIP with other keys), one dataset (based on a shipped one) and one suite."""
    for kind in ("methods", "datasets", "suites"):
        (root / kind).mkdir(parents=True)
    (root / "methods" / "zegclip_shallow.yaml").write_text(
        "class: zegclip\ndescription: ZegCLIP with a 2-layer decoder\ndecoder_layers: 2\n")
    (root / "datasets" / "world_tiny.yaml").write_text(
        "base: world_smoke\nname: world_tiny\nworld: {train_scenes: 8, val_scenes: 4}\n")
    (root / "suites" / "mine.yaml").write_text(
        "description: my own ladder\ndataset: world_tiny\ngroups:\n"
        "  - methods: [zegclip, zegclip_shallow]\n    set: {steps: 2, batch_size: 2, warmup: 1}\n")
    return root


@pytest.fixture
def user_configs(tmp_path, monkeypatch):
    folder = _user_folder(tmp_path / "mine")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(folder))
    return folder


def test_a_config_folder_adds_methods_datasets_and_suites(user_configs, tmp_path):
    from zegbench.datasets.catalog import load_dataset_info
    from zegbench.engine.run import resolve
    from zegbench.harness.suite import available, expand
    from zegbench.methods import list_methods, method_config

    assert "zegclip_shallow" in list_methods("zegclip*") and "zegclip" in list_methods()
    assert method_config("zegclip_shallow")["decoder_layers"] == 2
    info = load_dataset_info("world_tiny")  # its base is a shipped dataset
    assert info.world["train_scenes"] == 8 and info.recipe.train["steps"] == 750
    assert info.path == user_configs / "datasets" / "world_tiny.yaml"
    assert resolve("zegclip_shallow", "world_tiny", 0)["method_config"]["decoder_layers"] == 2
    assert "mine" in available() and "ablations" in available()
    specs = expand("mine", store=RunStore(tmp_path / "r"))
    assert [s.method for s in specs] == ["zegclip", "zegclip_shallow"]
    assert {s.dataset for s in specs} == {"world_tiny"}


def test_the_command_line_lists_a_users_configs(user_configs, capsys):
    assert main(["methods", "list", "zegclip_shallow*", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("zegclip_shallow") and "2-layer decoder" in out[0]
    assert json.loads(out[-1]) == {"methods": ["zegclip_shallow"]}
    assert main(["suite", "list"]) == 0
    listed = capsys.readouterr().out
    assert "my own ladder" in listed and "ablations" in listed


def test_config_dir_flag_adds_a_folder_for_this_command_and_its_run_processes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZEGBENCH_CONFIGS", "")  # restored after the test, whatever --config-dir sets
    folder = _user_folder(tmp_path / "mine")
    assert main(["suite", "list", "mine", "--config-dir", str(folder), "--results", str(tmp_path / "r")]) == 0
    assert "zegclip_shallow [world_tiny] seed 0" in capsys.readouterr().out
    assert os.environ["ZEGBENCH_CONFIGS"] == str(folder.resolve())  # what worker subprocesses inherit


def test_a_name_defined_twice_is_an_error_naming_both_files(tmp_path, monkeypatch):
    from zegbench.methods import list_methods

    first, second = _user_folder(tmp_path / "a"), _user_folder(tmp_path / "b")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", os.pathsep.join([str(first), str(second)]))
    with pytest.raises(ZegbenchError) as err:
        list_methods()
    message = str(err.value)
    assert "method 'zegclip_shallow' is defined twice" in message and "\n" not in message
    assert str(first / "methods" / "zegclip_shallow.yaml") in message
    assert str(second / "methods" / "zegclip_shallow.yaml") in message
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(first))
    (first / "datasets" / "world_smoke.yaml").write_text("base: world\nname: world_smoke\n")  # a shipped name
    with pytest.raises(ZegbenchError, match="dataset 'world_smoke' is defined twice"):
        config_dirs.config_file("datasets", "world_tiny")


def test_the_same_folder_twice_is_one_folder(tmp_path, monkeypatch):
    folder = _user_folder(tmp_path / "mine")
    twice = [str(folder), str(folder), str(config_dirs.PACKAGE_CONFIGS)]
    monkeypatch.setenv("ZEGBENCH_CONFIGS", os.pathsep.join(twice))
    assert config_dirs.config_dirs() == [config_dirs.PACKAGE_CONFIGS, folder.resolve()]


def test_unknown_names_say_where_they_were_looked_for(monkeypatch):
    monkeypatch.setenv("ZEGBENCH_CONFIGS", "")
    with pytest.raises(ZegbenchError) as err:
        config_dirs.config_file("suites", "nope")
    message = str(err.value)
    assert message.startswith("unknown suite 'nope': no nope.yaml in ")
    assert str(config_dirs.PACKAGE_CONFIGS / "suites") in message and "known: ablations" in message


def test_the_package_ships_every_kind_of_config():
    for kind in config_dirs.KINDS:
        assert config_dirs.config_files(kind), kind
    assert all(p.is_relative_to(config_dirs.PACKAGE_CONFIGS) for p in config_dirs.config_files("methods").values())


def test_logging_goes_to_stdout_and_stderr_once_whatever_the_calls(capsys):
    from zegbench.utils.logs import configure

    logger = logging.getLogger("zegbench.test")
    configure(0)
    configure(0)  # a second call adds no second pair of handlers
    logger.debug("hidden")
    logger.info("shown")
    logger.warning("careful")
    out, err = capsys.readouterr()
    assert out == "shown\n" and err == "careful\n"
    configure(-1)
    logger.info("hidden")
    logger.error("bad")
    configure(1)
    logger.debug("detail")
    out, err = capsys.readouterr()
    assert out == "detail\n" and err == "bad\n"
    configure(0)


def test_quiet_and_verbose_set_the_level(capsys):
    assert main(["methods", "list", "zegclip", "--quiet"]) == 0
    assert logging.getLogger("zegbench").level == logging.WARNING
    assert main(["methods", "list", "zegclip", "-v"]) == 0
    assert logging.getLogger("zegbench").level == logging.DEBUG
    assert main(["methods", "list", "zegclip"]) == 0
    assert logging.getLogger("zegbench").level == logging.INFO
