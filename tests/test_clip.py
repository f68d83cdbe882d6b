"""CLIP loading, tokenizer, text-embedding cache and pretraining."""
from __future__ import annotations

import json

import pytest
import torch

from zegbench.clip.loading import CONFIG_DIR, IN_HOUSE, SHIPPED_CHECKPOINT, load_clip, shipped_checkpoint
from zegbench.clip.pretrain import shippable_state
from zegbench.clip.text_embeddings import class_embeddings, encode_class_names
from zegbench.clip.tokenizer import WorldTokenizer, vocabulary_for
from zegbench.datasets import worlds
from zegbench.errors import ZegbenchError


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    bundle = load_clip(IN_HOUSE, pretrained="none")
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    torch.save(shippable_state(bundle.model), path)
    return path


@pytest.mark.parametrize("version", list(worlds.MODULES))
def test_tokenizer_fits_model_config_and_pools_at_eot(version):
    world = worlds.generator(version)
    vocabulary = vocabulary_for(world)
    cfg = json.loads((CONFIG_DIR / f"{world.CLIP_MODEL}.json").read_text())
    assert cfg["text_cfg"]["vocab_size"] == len(vocabulary)
    a, b = world.CLASS_NAMES[0], world.UNSEEN_CLASSES[-1]
    tokens = load_clip(world.CLIP_MODEL, "none").tokenizer([f"a photo of a {b}", f"a {a} and a {b}"])
    assert tokens.shape == (2, cfg["text_cfg"]["context_length"])
    # open_clip pools the text tower at argmax(token id): that must be the end token.
    eot = len(vocabulary) - 1
    assert (tokens.argmax(-1) == (tokens == eot).int().argmax(-1)).all()


def test_tokenizer_rejects_words_outside_the_world():
    with pytest.raises(ZegbenchError, match="cannot read 'sheep'"):
        WorldTokenizer()(["a photo of a sheep"])
    with pytest.raises(ZegbenchError, match="cannot read 'solid'"):  # a v1 word the v2 CLIP never read
        load_clip("zegbench-world2-vit", "none").tokenizer(["a photo of a solid circle"])


SHIPPED_VERSIONS = (1, 2, 3)


@pytest.mark.parametrize("version", SHIPPED_VERSIONS)
def test_shipped_checkpoint_loads_through_open_clip(version):
    name = worlds.generator(version).CLIP_MODEL
    shipped = shipped_checkpoint(name)
    assert shipped.is_file()
    state = torch.load(shipped, weights_only=True)
    assert all(v.dtype == torch.float16 for k, v in state.items() if v.is_floating_point() and "positional" not in k)
    assert shipped.stat().st_size < 10 * 2**20
    bundle = load_clip(name)
    assert bundle.image_size == 64
    key = "visual.conv1.weight"
    assert torch.equal(bundle.model.state_dict()[key], state[key].float())


def test_the_default_clip_is_the_default_worlds():
    assert IN_HOUSE == worlds.generator().CLIP_MODEL
    assert SHIPPED_CHECKPOINT == shipped_checkpoint(IN_HOUSE)
    assert shipped_checkpoint("ViT-B-16") is None
    # World v2's CLIP pools a class token, as real CLIP does (v1's mean-pools its patches).
    assert load_clip("zegbench-world2-vit", "none").model.visual.pool_type == "tok"


def test_world_v3s_clip_pools_the_mean_of_its_patches_as_its_record_says():
    # Amendment 2 (docs/world-v3-preregistration.md): v3's image embedding is the mean of the patch tokens. The
    # record says what the weights were trained as, and load_clip refuses them under any other config.
    name = worlds.generator(3).CLIP_MODEL
    record = json.loads(shipped_checkpoint(name).with_suffix(".json").read_text())
    config = json.loads((CONFIG_DIR / f"{name}.json").read_text())
    assert not record.get("partial") and record["steps"] == 15000
    assert record["architecture"] == config
    assert load_clip(name).model.visual.pool_type == "avg"


def test_larger_input_resizes_positional_embedding(random_checkpoint):
    bundle = load_clip(IN_HOUSE, str(random_checkpoint), image_size=96)
    assert bundle.model.visual.positional_embedding.shape[0] == (96 // 8) ** 2 + 1
    with torch.no_grad():
        out = bundle.model.encode_image(torch.zeros(1, 3, 96, 96))
    assert out.shape == (1, 128)


def test_wrong_architecture_checkpoint_is_one_clear_error(tmp_path, random_checkpoint):
    state = torch.load(random_checkpoint, weights_only=True)
    state["visual.conv1.weight"] = torch.zeros(7, 3, 8, 8)
    bad = tmp_path / "wrong.pt"
    torch.save(state, bad)
    with pytest.raises(ZegbenchError, match=f"does not load into '{IN_HOUSE}'.*size mismatch"):
        load_clip(IN_HOUSE, str(bad))


def test_corrupt_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ZegbenchError, match="corrupt.pt"):
        load_clip(IN_HOUSE, str(bad))


def test_missing_checkpoint_and_unknown_model_say_what_to_do(tmp_path):
    with pytest.raises(ZegbenchError, match="does not exist.*clip pretrain"):
        load_clip(IN_HOUSE, str(tmp_path / "absent.pt"))
    with pytest.raises(ZegbenchError, match="unknown CLIP model 'ViT-Z-99'"):
        load_clip("ViT-Z-99", "none")
    with pytest.raises(ZegbenchError, match="no weights given"):
        load_clip("ViT-B-16")


def test_hub_tag_offline_is_one_clear_error():
    with pytest.raises(ZegbenchError, match="local file path"):
        load_clip("RN50", "openai")


def test_vit_b16_builds_at_512_with_random_weights():
    bundle = load_clip("ViT-B-16", "none", image_size=512)
    assert bundle.model.visual.positional_embedding.shape == (32 * 32 + 1, 768)
    assert bundle.tokenizer(["a photo of a sheep"]).shape == (1, 77)


def test_text_embeddings_are_cached_per_model_names_and_templates(random_checkpoint, tmp_path):
    bundle = load_clip(IN_HOUSE, str(random_checkpoint))
    names = ["red dotted", "blue striped"]
    first = class_embeddings(bundle, names, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    assert torch.allclose(first, encode_class_names(bundle, names), atol=1e-6)
    assert torch.allclose(first.norm(dim=-1), torch.ones(2))
    again = class_embeddings(bundle, names, cache_dir=tmp_path)
    assert torch.equal(first, again)
    ensemble = class_embeddings(bundle, names, templates=("a photo of a {}", "a {} in the scene"), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 2 and not torch.equal(first, ensemble)
    original = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    with torch.no_grad():  # other weights, other key: never served the old embeddings
        bundle.model.token_embedding.weight.add_(1.0)
    changed = class_embeddings(bundle, names, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 3 and not torch.equal(first, changed)
    bundle.model.load_state_dict(original)  # weights loaded in place: the first key again
    assert torch.equal(class_embeddings(bundle, names, cache_dir=tmp_path), first)


def test_pretraining_lowers_the_contrastive_loss(tmp_path):
    from zegbench.clip.pretrain import pretrain

    out = tmp_path / "clip.pt"
    record = pretrain(out, steps=40, batch_size=32, lr=1e-3, warmup=5, eval_every=0, workers=0, progress=False)
    curve = record["loss_every_10_steps"]
    assert curve[-1] < curve[0] - 0.2, curve
    assert out.is_file() and out.with_suffix(".json").is_file()
    import open_clip

    assert record["architecture"] == open_clip.get_model_config(IN_HOUSE)  # the loader checks a checkpoint by it
    load_clip(IN_HOUSE, str(out))  # what pretraining writes, the loader reads


def test_a_checkpoint_recorded_as_another_architecture_is_refused(tmp_path):
    import open_clip

    out = tmp_path / "clip.pt"
    torch.save(shippable_state(load_clip(IN_HOUSE, "none").model), out)
    architecture = open_clip.get_model_config(IN_HOUSE)
    out.with_suffix(".json").write_text(json.dumps({"architecture": architecture}))
    load_clip(IN_HOUSE, str(out))  # recorded as what it is: loads
    pooled = "avg" if architecture["vision_cfg"]["pool_type"] == "tok" else "tok"
    architecture["vision_cfg"]["pool_type"] = pooled  # every weight keeps its shape: only the record tells
    out.with_suffix(".json").write_text(json.dumps({"architecture": architecture}))
    with pytest.raises(ZegbenchError, match=f"vision_cfg.pool_type '{pooled}'"):
        load_clip(IN_HOUSE, str(out))
    out.with_suffix(".json").write_text(json.dumps({"steps": 3}))  # a record without it (shipped v1, v2): loads
    load_clip(IN_HOUSE, str(out))


def test_truncated_checkpoint_is_unreadable_not_a_shape_error(tmp_path, random_checkpoint):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(random_checkpoint.read_bytes()[:5000])
    with pytest.raises(ZegbenchError, match="cut.pt is unreadable"):
        load_clip(IN_HOUSE, str(cut))


def _tiny_pretrain(out, **kwargs):
    from zegbench.clip.pretrain import pretrain

    settings = dict(steps=4, batch_size=4, lr=1e-3, warmup=1, eval_every=0, workers=0, progress=False,
                    model_name="zegbench-world3-vit")
    return pretrain(out, **{**settings, **kwargs})


def test_resumed_pretraining_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    from zegbench.clip import pretrain as pretrain_module
    from zegbench.clip.pretrain import resume_state_path

    monkeypatch.setattr(pretrain_module, "zero_shot_accuracy", lambda bundle, **kw: {
        "acc_all": 0.0, "acc_unseen": 0.0, "acc_seen": 0.0})  # the final check is not what this test is about
    monkeypatch.setattr("zegbench.clip.breadth.measure_breadth", lambda bundle, **kw: {})
    whole, cut = tmp_path / "whole.pt", tmp_path / "cut.pt"
    _tiny_pretrain(whole, stop_after=3)
    stopped = _tiny_pretrain(cut, stop_after=1)
    assert stopped["partial"] and stopped["step"] == 1 and resume_state_path(cut).is_file()
    with pytest.raises(ZegbenchError, match="in progress: pass --resume"):
        _tiny_pretrain(cut)  # never restarts over a run in progress
    with pytest.raises(ZegbenchError, match=r"steps=4 \(asked 5\)"):
        _tiny_pretrain(cut, steps=5, resume=True)
    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "stream_digest", lambda world, seed: "another")
        with pytest.raises(ZegbenchError, match="caption stream .* is not the one"):
            _tiny_pretrain(cut, resume=True)
    _tiny_pretrain(cut, resume=True, stop_after=3)  # 1 step, then 2 more in a second session
    a, b = (torch.load(resume_state_path(p), weights_only=True) for p in (whole, cut))
    assert a["step"] == b["step"] == 3 and a["curve"] == b["curve"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    moments = [(x["state"][i][m], y["state"][i][m]) for x, y in [(a["optimizer"], b["optimizer"])]
               for i in x["state"] for m in ("exp_avg", "exp_avg_sq")]
    assert moments and all(torch.equal(x, y) for x, y in moments)
    record = _tiny_pretrain(cut, resume=True)
    assert record["steps"] == 4 and not record.get("partial")
    assert not resume_state_path(cut).exists()  # a finished run leaves nothing to resume
    with pytest.raises(ZegbenchError, match="no resume state"):
        _tiny_pretrain(tmp_path / "never.pt", resume=True)


def test_pretraining_saves_weights_record_and_state_at_each_evaluation(tmp_path, monkeypatch):
    from zegbench.clip import pretrain as pretrain_module

    monkeypatch.setattr(pretrain_module, "zero_shot_accuracy", lambda bundle, **kw: {
        "acc_all": 0.5, "acc_unseen": 0.25, "acc_seen": 0.5})
    monkeypatch.setattr("zegbench.clip.breadth.concept_zero_shot",
                        lambda bundle, world, per_concept: {"concept_top1": 0.125})
    monkeypatch.setattr("zegbench.clip.breadth.measure_breadth", lambda bundle, **kw: {"concept_top1": 0.125})
    saved, save_state = [], pretrain_module._save_state
    monkeypatch.setattr(pretrain_module, "_save_state", lambda path, *args: saved.append(args[3]) or
                        save_state(path, *args))
    out = tmp_path / "clip.pt"
    _tiny_pretrain(out, eval_every=2, stop_after=3)
    assert saved == [2, 3]  # at the evaluation, then where the session stopped
    partial = json.loads(out.with_suffix(".json").read_text())
    assert partial["partial"] and partial["evals"][0]["step"] == 2
    assert partial["evals"][0]["concept_top1"] == 0.125 and partial["evals"][0]["acc_unseen"] == 0.25
    record = _tiny_pretrain(out, eval_every=2, resume=True)
    assert [e["step"] for e in record["evals"]] == [2]  # the first session's check is kept
    assert record["breadth"] == {"concept_top1": 0.125} and record["zero_shot"]["acc_all"] == 0.5
