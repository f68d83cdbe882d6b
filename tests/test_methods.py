"""Every registered method on CPU, and ZegCLIP's switches, losses and inference."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from zegbench.datasets import worlds
from zegbench.methods import Method, create_method, list_methods, method_class, method_config
from zegbench.methods.losses import ce_loss, nel_loss, one_hot_masks
from zegbench.methods.zegclip import ZegCLIP, pseudo_label

world = worlds.generator()  # the default world's classes: the default in-house CLIP reads them

SEEN = list(world.SEEN_CLASSES)
TINY = ZegCLIP.tiny_config  # each class declares its smallest instance (Method.tiny_config)


def _images(n=2, size=32):
    torch.manual_seed(0)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8)


@pytest.mark.parametrize("name", list_methods())
def test_registered_method_trains_and_predicts_on_cpu(name):
    method = create_method(name, **method_class(method_config(name)["class"]).tiny_config)
    x = method.normalize(_images())
    logits, aux = method(x, SEEN[:4])
    assert logits.shape == (2, 4, 32, 32)
    trainable = {n: p for n, p in method.named_parameters() if p.requires_grad}
    assert method.training_free == (not trainable)  # what `run_all.py --list` says without building a model
    if trainable:
        labels = torch.randint(0, 4, (2, 32, 32))
        labels[:, :4] = 255
        loss = sum(method.loss(logits, labels, aux).values())
        loss.backward()
        unused = method.unused_parameter_names()
        assert all(p.grad is not None for n, p in trainable.items() if n not in unused)
        assert all(trainable[n].grad is None for n in unused)
        assert all(p.grad is None for p in method.parameters() if not p.requires_grad)
    else:  # training-free: nothing may be handed to an optimiser
        assert method.param_groups(1e-4) == [] and method_config(name)["class"] == "maskclip"
    scores = method.predict(x, SEEN[:4], seen=[True, True, False, False])
    assert scores.shape == (2, 4, 32, 32) and torch.isfinite(scores).all()


@pytest.mark.parametrize("tuning,encoder_trainable",
                         [("frozen", 0), ("finetune", None), ("vpt_shallow", 1), ("dpt", 6)])
def test_tuning_modes_train_the_right_encoder_parameters(tuning, encoder_trainable):
    method = create_method("zegclip", tuning=tuning, **TINY)
    visual_trainable = any(p.requires_grad for p in method.encoder.visual.parameters())
    assert visual_trainable == (tuning == "finetune")
    if encoder_trainable is not None and encoder_trainable > 0:
        assert method.encoder.prompts.shape[:2] == (encoder_trainable, 10)
    if tuning == "frozen":
        assert not any(p.requires_grad for p in method.encoder.parameters())


def test_deep_prompts_reach_every_block_and_are_replaced():
    method = create_method("zegclip", tuning="dpt", num_tokens=3, **TINY)
    method.eval()
    g, patches, grid = method.encoder(method.normalize(_images()))
    assert grid == (4, 4) and patches.shape[1] == 16  # prompt outputs are dropped from H
    (g.sum() + patches.sum()).backward()
    per_set = method.encoder.prompts.grad.abs().sum(dim=(1, 2))
    assert (per_set > 0).all(), "every block's prompt set must influence the output"
    shallow = create_method("zegclip", tuning="vpt_shallow", num_tokens=3, prompt_depth=6, **TINY)
    assert shallow.encoder.prompts.shape[0] == 1


@pytest.mark.parametrize("after,later_length", [("drop", 1 + 16), ("keep", 1 + 3 + 16)])
def test_prompts_leave_the_sequence_after_prompt_depth_as_in_the_official_encoder(after, later_length):
    method = create_method("zegclip", tuning="dpt", num_tokens=3, prompt_depth=2, prompts_after_depth=after, **TINY)
    lengths = []
    for block in method.encoder.visual.transformer.resblocks:
        block.register_forward_pre_hook(lambda _, args: lengths.append(args[0].shape[1]))
    _, patches, _ = method.encoder(method.normalize(_images()))
    assert lengths[:2] == [1 + 3 + 16] * 2 and set(lengths[2:]) == {later_length} and patches.shape[1] == 16


@pytest.mark.parametrize("norm", [False, True])
def test_shallow_vpt_has_no_prompt_norm_unless_asked(norm):
    shallow = create_method("zegclip", tuning="vpt_shallow", num_tokens=3, shallow_prompt_norm=norm, **TINY)
    assert (shallow.encoder.prompt_norm is not None) == norm
    assert create_method("zegclip", tuning="dpt", num_tokens=3, **TINY).encoder.prompt_norm is not None


def test_deep_prompts_at_depth_one_are_the_official_shallow_path():
    """Official total_d_layer 0: prompts at the input only, flowing through every block, no prompt norm."""
    one = create_method("zegclip", tuning="dpt", num_tokens=3, prompt_depth=1, **TINY)
    shallow = create_method("zegclip", tuning="vpt_shallow", num_tokens=3, **TINY)
    shallow.load_state_dict(one.state_dict())
    x = one.normalize(_images())
    one.eval(), shallow.eval()
    assert one.encoder.prompt_norm is None
    assert all(torch.equal(a, b) for a, b in zip(one.encoder(x)[:2], shallow.encoder(x)[:2], strict=True))


@pytest.mark.parametrize("cls_embedding,times", [("twice", 2), ("once", 1)])
def test_official_encoder_adds_the_class_embedding_twice(cls_embedding, times):
    method = create_method("zegclip", cls_embedding=cls_embedding, **TINY)
    visual = method.encoder.visual
    visual.ln_pre = torch.nn.Identity()  # look at the tokens before CLIP's first LayerNorm
    tokens, grid = method.encoder.embed(method.normalize(_images()))
    pos = method.encoder._positional(grid)
    assert torch.allclose(tokens[:, 0], times * visual.class_embedding + pos[0], atol=1e-6)


@pytest.mark.parametrize("pos_resize,rows", [("bilinear", 8 * 8 + 1), ("open_clip", 4 * 4 + 1)])
def test_position_table_is_resized_bilinearly_from_clips_own_grid(pos_resize, rows):
    """Official: CLIP's 14 x 14 table bilinearly resized; open_clip resizes at load (antialiased bicubic)."""
    method = create_method("zegclip", pos_resize=pos_resize, **TINY)  # the in-house CLIP's own grid is 8 x 8
    table = method.encoder.visual.positional_embedding
    assert table.shape[0] == rows
    resized = method.encoder._positional((4, 4))
    if pos_resize == "bilinear":
        spatial = table[1:].reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
        expected = F.interpolate(spatial, size=(4, 4), mode="bilinear", align_corners=False)
        assert torch.allclose(resized[1:], expected.permute(0, 2, 3, 1).reshape(16, -1))
    else:
        assert resized is table


@pytest.mark.parametrize("init,identical", [("copies", True), ("independent", False)])
def test_decoder_layers_start_as_copies_of_one_layer(init, identical):
    method = create_method("zegclip", decoder_init=init, **TINY)
    first, *others = (layer.state_dict() for layer in method.decoder.layers)
    same = [all(torch.equal(first[k], other[k]) for k in first) for other in others]
    assert same == [identical] * len(others)


@pytest.mark.parametrize("relation,uses_image", [("none", False), ("rd", True), ("product", True), ("concat", True)])
def test_relation_descriptor_variants(relation, uses_image):
    method = create_method("zegclip", relation=relation, **TINY)
    text = torch.nn.functional.normalize(torch.randn(5, 128), dim=-1)
    g1, g2 = (torch.nn.functional.normalize(torch.randn(1, 128), dim=-1) for _ in range(2))
    q1, q2 = method.queries(text, g1), method.queries(text, g2)
    assert q1.shape == (1, 5, 128)
    assert (not torch.allclose(q1, q2)) == uses_image
    if relation == "rd":  # [g*t ; t], relation term first
        expected = method.queries.proj(torch.cat([g1 * text, text], dim=-1))
        assert torch.allclose(q1[0], expected, atol=1e-6)


def test_nel_matches_a_hand_computed_case():
    logits = torch.tensor([[[[0.0, 2.0]], [[-1.0, 0.0]]]])  # B=1, C=2, H=1, W=2
    labels = torch.tensor([[[0, 255]]])
    out = nel_loss(logits, labels)
    p = torch.sigmoid(logits)
    t = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="none")
    pt = p * t + (1 - p) * (1 - t)
    focal = (bce * (1 - pt) ** 2 * (0.25 * t + 0.75 * (1 - t))).mean(dim=(2, 3)).sum()  # one present mask
    assert out["loss_focal"].item() == pytest.approx(100 * focal.item(), rel=1e-5)
    dice = 1 - (2 * p[0, 0, 0, 0] + 1) / (p[0, 0].sum() + 1 + 1)
    assert out["loss_dice"].item() == pytest.approx(dice.item(), rel=1e-5)
    ignoring = nel_loss(logits, labels, ignore_negatives=True)
    assert ignoring["loss_focal"].item() != pytest.approx(out["loss_focal"].item())


def _nel_loss_as_recorded(logits, labels, ignore_negatives, alpha=0.25, gamma=2.0):
    """NEL as the recorded world runs computed it (before 2026-12-06): an int64 one-hot with classes
    innermost in memory, the textbook p_t and alpha sums, every term weighted."""
    c = logits.shape[1]
    valid = labels != 255
    target = F.one_hot(labels.clamp(max=c - 1) * valid, c).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    weight = valid.unsqueeze(1).float() if ignore_negatives else torch.ones_like(target[:, :1])
    present = target.flatten(2).amax(-1) > 0
    num_masks = present.sum().float().clamp(min=1)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    focal = ce * (1 - p_t) ** gamma * (alpha * target + (1 - alpha) * (1 - target)) * weight
    focal = focal.flatten(2).sum(-1) / weight.flatten(2).sum(-1).clamp(min=1)
    p, y = (prob * weight).flatten(2), (target * weight).flatten(2)
    dice = 1 - (2 * (p * y).sum(-1) + 1) / (p.sum(-1) + y.sum(-1) + 1)
    return {"loss_focal": 100 * focal.sum() / num_masks, "loss_dice": (dice * present).sum() / num_masks}


@pytest.mark.parametrize("ignore_negatives", [False, True])
def test_nel_loss_and_its_gradient_keep_every_bit_of_the_recorded_runs(ignore_negatives):
    """The streamlined loss must train the same weights: equal losses and equal logit gradients, bit for bit
    (through the bilinear upsampling of the patch logits, as in ZegCLIP). Summing the focal term in
    another order changes the last bit in some of these cases."""
    generator = torch.Generator().manual_seed(0)
    for classes, ignored in [(15, 0.3), (20, 0.0), (15, 0.97), (15, 0.5), (20, 0.3), (15, 0.0)]:
        labels = torch.randint(0, classes, (4, 96, 96), generator=generator)
        labels[torch.rand(4, 96, 96, generator=generator) < ignored] = 255
        patch_logits = (4 * torch.randn(4, classes, 12, 12, generator=generator)).requires_grad_()
        results = []
        for loss in (nel_loss, _nel_loss_as_recorded):
            logits = F.interpolate(patch_logits, size=(96, 96), mode="bilinear", align_corners=False)
            parts = loss(logits, labels, ignore_negatives=ignore_negatives)
            results.append((parts, torch.autograd.grad(sum(parts.values()), patch_logits)[0]))
        (ours, our_grad), (recorded, recorded_grad) = results
        assert all(torch.equal(ours[k], recorded[k]) for k in recorded), (classes, ignored)
        assert torch.equal(our_grad, recorded_grad) and our_grad.abs().sum() > 0, (classes, ignored)


def test_ce_ignores_255_and_one_hot_leaves_it_empty():
    logits = torch.randn(1, 3, 2, 2)
    labels = torch.tensor([[[0, 255], [2, 255]]])
    full = torch.nn.functional.cross_entropy(logits[..., :1], labels[..., :1])
    assert ce_loss(logits, labels)["loss_ce"].item() == pytest.approx(full.item(), rel=1e-5)
    assert not one_hot_masks(labels, 3)[0, :, 0, 1].any()


def test_inductive_calibration_subtracts_from_seen_classes_only():
    torch.manual_seed(1)  # same random CLIP (text tower included) for both settings
    inductive = create_method("zegclip", **TINY).eval()
    x = inductive.normalize(_images(1))
    raw = inductive.scores(inductive(x, SEEN[:3])[0])
    calibrated = inductive.predict(x, SEEN[:3], seen=[True, False, True])
    assert torch.allclose(raw - calibrated, torch.tensor([0.1, 0.0, 0.1]).view(1, 3, 1, 1).expand_as(raw), atol=1e-6)
    torch.manual_seed(1)
    transductive = create_method("zegclip", setting="transductive", **TINY).eval()
    assert torch.allclose(transductive.predict(x, SEEN[:3], seen=[True, False, True]), raw, atol=1e-6)


def test_sliding_window_covers_the_image_and_equals_whole_for_one_window():
    method = create_method("zegclip", inference="slide", crop=32, stride=24, **TINY).eval()
    x = method.normalize(_images(1, 48))
    scores = method.predict(x, SEEN[:2], seen=[False, False])
    assert scores.shape == (1, 2, 48, 48) and torch.isfinite(scores).all()
    small = method.normalize(_images(1, 32))
    whole = method.scores(method(small, SEEN[:2])[0])
    assert torch.allclose(method.predict(small, SEEN[:2], seen=[False, False]), whole, atol=1e-6)


def test_pseudo_labels_only_replace_unseen_ground_truth():
    logits = torch.zeros(1, 4, 1, 3)
    logits[0, 3, 0, :] = 5.0  # class 3 wins among unseen {2, 3}
    labels = torch.tensor([[[0, 2, 255]]])
    out = pseudo_label(logits, labels, unseen_ids=[2, 3])
    assert out.tolist() == [[[0, 3, 255]]]
    method = create_method("zegclip_transductive", **TINY)  # the training loop asks the method for its targets
    assert torch.equal(method.training_targets(logits, labels, [2, 3], self_training=True), out)
    assert method.training_targets(logits, labels, [2, 3], self_training=False) is labels


def test_default_training_targets_never_show_unseen_ground_truth():
    labels = torch.tensor([[[0, 2, 3, 255]]])
    targets = Method.training_targets(None, torch.zeros(1, 4, 1, 4), labels, [2, 3], self_training=True)
    assert targets.tolist() == [[[0, 255, 255, 255]]]
    assert Method.training_targets(None, torch.zeros(1, 4, 1, 4), labels, [2, 3], self_training=False) is labels


def test_any_size_prediction_slides_windows_of_a_fixed_input_size():
    torch.manual_seed(0)  # the same random CLIP (text tower included) for both
    method = create_method("zegclip", crop=32, stride=24, **TINY).eval()
    torch.manual_seed(0)
    sliding = create_method("zegclip", inference="slide", crop=32, stride=24, **TINY).eval()
    x = method.normalize(_images(1, 48))
    names, seen = SEEN[:2], [True, False]
    assert torch.equal(method.predict_any_size(x, names, seen), sliding.predict(x, names, seen))
    assert method.inference == "whole"  # evaluation's own mode is left alone
    maskclip = create_method("maskclip", **method_class("maskclip").tiny_config).eval()
    assert torch.equal(maskclip.predict_any_size(x, names, seen), maskclip.predict(x, names, seen))


def test_generic_code_reads_declared_defaults():
    maskclip = create_method("maskclip", **method_class("maskclip").tiny_config)
    assert (maskclip.setting, maskclip.inference, maskclip.regions_per_image()) == ("inductive", "whole", None)
    assert method_class("two_stage").speed_baseline is None and ZegCLIP.speed_baseline == "clip_image_encoder"


def test_real_scale_parameter_counts_match_the_reference(capsys):
    from zegbench.cli import main

    assert main(["methods", "describe", "zegclip", "--clip", "ViT-B-16", "--image-size", "512", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Reference 1.4: 10.67 M trainable for VOC (M=10) without the unused self-attention.
    assert out["params_trainable"] == 10_666_240


def test_unknown_method_and_bad_switch_are_clear_errors():
    from zegbench.errors import ZegbenchError

    with pytest.raises(ZegbenchError, match="unknown method 'nope'"):
        create_method("nope")
    with pytest.raises(ZegbenchError, match="zegclip.yaml.*colour"):
        create_method("zegclip", colour="red", **TINY)
    with pytest.raises(ZegbenchError, match="zegclip.yaml.*tuning must be one of"):
        create_method("zegclip", tuning="lora", **TINY)


@pytest.mark.slow
def test_real_scale_forward_backward_at_512():
    torch.manual_seed(0)
    method = create_method("zegclip", clip="ViT-B-16", clip_weights="none", image_size=512)
    method.text_embeddings = lambda names: torch.nn.functional.normalize(torch.randn(len(names), 512), dim=-1)
    x = torch.randn(1, 3, 512, 512)
    logits, _ = method(x, [f"class {i}" for i in range(15)])
    assert logits.shape == (1, 15, 512, 512)
    loss = sum(method.loss(logits, torch.randint(0, 15, (1, 512, 512))).values())
    loss.backward()
    assert method.encoder.prompts.grad is not None and method.encoder.prompts.grad.abs().sum() > 0


@pytest.mark.parametrize("masks", ["per_image", "shared"])
def test_prompt_dropout_masks_per_image_as_the_official_encoder_or_shared(masks):
    """Officially a prompt set is expanded to the batch and then dropped out: each image its own mask."""
    method = create_method("zegclip", **TINY, dropout=0.5, prompt_masks=masks).train()
    torch.manual_seed(0)
    prompts = method.encoder._prompt_set(0, batch=4)
    assert prompts.shape[0] == 4 and (prompts == 0).any()
    same_for_all = all(torch.equal(prompts[0], prompts[i]) for i in range(1, 4))
    assert same_for_all == (masks == "shared")
    method.eval()  # no dropout at test time: both give the projected prompts for every image
    assert torch.equal(method.encoder._prompt_set(0, 2)[0], method.encoder.prompt_proj(method.encoder.prompts[0]))
