"""Resolve once (issue 27): a suite resolves each run when it lists it, and its worker trains that config into
that folder. A method YAML edited while runs are queued (a Slurm array waiting, a long -j 1 suite) cannot
move a queued run into another folder or train it with the edited keys."""
from __future__ import annotations

import pytest
import yaml

from zegbench.engine.identity import config_hash
from zegbench.engine.resolve import resolve
from zegbench.harness import suite as suite_mod
from zegbench.store import RunStore, read_result


def test_a_method_yaml_edited_after_the_suite_listed_its_runs_changes_no_queued_run(tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    (configs / "methods").mkdir(parents=True)
    (configs / "suites").mkdir()
    method_yaml = configs / "methods" / "frozen_mine.yaml"
    method_yaml.write_text("class: zegclip\ndescription: a frozen baseline of my own\ntuning: frozen\nloss: ce\n"
                           "relation: none\ndecoder_layers: 1\n")
    (configs / "suites" / "queued.yaml").write_text(
        "dataset: world_smoke\ngroups:\n  - methods: [frozen_mine]\n    set: {steps: 2, batch_size: 2, warmup: 1}\n")
    monkeypatch.setenv("ZEGBENCH_CONFIGS", str(configs))  # the run processes inherit it
    store = RunStore(tmp_path / "results")

    (spec,) = suite_mod.expand("queued", store=store)  # listed and resolved: the run is queued
    listed = spec.resolved
    method_yaml.write_text(method_yaml.read_text().replace("decoder_layers: 1", "decoder_layers: 2"))
    edited = resolve("frozen_mine", "world_smoke", 0, {"steps": 2, "batch_size": 2, "warmup": 1})
    assert config_hash(edited) != config_hash(listed)  # the edit matters: resolving again would move the run

    counts = suite_mod.execute([spec], "queued", store, jobs=1)

    assert counts == {"done": 1}
    assert read_result(spec.run_dir) is not None  # trained into the folder the suite listed
    assert yaml.safe_load((spec.run_dir / "config.yaml").read_text()) == listed  # with the listed config
    folders = [p.name for p in store.suite_folder("queued").iterdir() if not p.name.startswith(".")]
    assert folders == [spec.run_dir.name]  # and nowhere else

    # The report's bookkeeping sees the run as it was listed and trained, not as the edited YAML would make it
    covered, unmatched = suite_mod.with_finished_runs("queued", [spec], store)
    assert [s.run_dir for s in covered] == [spec.run_dir] and unmatched == []
    assert covered[0].resolved == listed


def test_a_folder_that_is_not_its_configs_is_refused(tmp_path):
    from zegbench.engine.run import run_experiment
    from zegbench.errors import ZegbenchError

    resolved = resolve("zegclip_baseline_fix", "world_smoke", 0, {"steps": 2, "batch_size": 2, "warmup": 1})
    other = resolve("zegclip_baseline_fix", "world_smoke", 1, {"steps": 2, "batch_size": 2, "warmup": 1})
    wrong = RunStore(tmp_path).run_folder("s", "zegclip_baseline_fix", "world_smoke", 0, config_hash(other))
    with pytest.raises(ZegbenchError, match="is not the folder of this config"):
        run_experiment(resolved, wrong)
    assert not wrong.path.exists()  # refused before anything was written
