"""The two-stage comparator's parts on hand-made cases, and MaskCLIP's value path."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zegbench.methods import create_method
from zegbench.methods.proposals import build_backbone
from zegbench.methods.region_clip import classify_regions, ensemble, region_crops, semantic_map
from zegbench.methods.set_loss import hungarian_match, semantic_targets, set_loss

TINY_TWO_STAGE = dict(clip_weights="none", backbone="world_cnn", queries=4, hidden=32, decoder_layers=2,
                      decoder_heads=4, decoder_ffn=64, mask_dim=16, templates="single", region_templates="single")


def test_matcher_pairs_each_target_with_the_query_whose_mask_fits():
    masks = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])  # target 0 left half, target 1 right half
    classes = torch.tensor([2, 0])
    logits = torch.tensor([[-9.0, -9, 9, 9], [9, 9, -9, -9], [-9, -9, -9, -9]])  # q0 right, q1 left, q2 nothing
    uniform = torch.full((3, 4), 0.25)
    rows, cols = hungarian_match(uniform, logits, classes, masks)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 1: 0}


def test_matcher_breaks_mask_ties_by_class_probability():
    masks = torch.tensor([[1.0, 1, 0, 0]])
    logits = torch.tensor([[9.0, 9, -9, -9], [9.0, 9, -9, -9]])  # identical masks
    prob = torch.tensor([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]])  # query 1 is sure it is class 0
    rows, cols = hungarian_match(prob, logits, torch.tensor([0]), masks)
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_semantic_targets_skip_ignore_and_set_loss_teaches_no_object_elsewhere():
    labels = torch.tensor([[[0, 0, 255, 1], [0, 0, 255, 1]]])  # [1, 2, 4]
    classes, masks = semantic_targets(labels[0])
    assert classes.tolist() == [0, 1] and masks.sum().item() == 6
    class_logits = torch.zeros(1, 3, 3)  # Q=3, C=2 + no object
    mask_logits = torch.tensor([[[[9.0, 9, -9, -9]] * 2, [[-9.0, -9, -9, 9]] * 2, [[-9.0] * 4] * 2]])
    out = set_loss({"class_logits": class_logits, "mask_logits": mask_logits}, labels)
    # q0 -> class 0, q1 -> class 1, q2 -> no object (weight 0.1): uniform logits give log 3 per query
    expected = (1 * torch.log(torch.tensor(3.0)) * 2 + 0.1 * torch.log(torch.tensor(3.0))) / 2.1
    assert out["loss_class"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss_mask"].item() < 1e-3 and out["loss_dice"].item() < 1e-3  # the masks are right
    wrong = set_loss({"class_logits": class_logits, "mask_logits": -mask_logits}, labels)
    assert wrong["loss_dice"] > 0.2 and wrong["loss_mask"] > 100 * out["loss_mask"]  # no query fits any more


def test_region_crop_takes_the_box_and_fills_outside_the_mask_with_the_mean():
    h, w = 8, 10
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    image = torch.stack([ys, xs, ys + xs])[None]  # linear in x and y: bilinear sampling is exact
    mask = torch.zeros(1, 2, h, w, dtype=torch.bool)
    mask[0, 0, 2:6, 3:7] = True
    mask[0, 0, 3, 4] = False  # a hole inside the box
    crops, valid = region_crops(image, mask, size=4)
    assert valid.tolist() == [[True, False]] and crops.shape == (1, 3, 4, 4)  # the empty proposal is skipped
    expected = image[0, :, 2:6, 3:7].clone()
    expected[:, 1, 1] = 0  # CLIP-normalised mean colour
    assert torch.allclose(crops[0], expected, atol=1e-5)
    bigger, _ = region_crops(image, mask, size=8)  # resized: same region, twice the samples
    full = image[0, :, 2:6, 3:7]
    assert bigger.shape == (1, 3, 8, 8)
    assert torch.allclose(bigger[0, :, 0, 0], torch.stack([full[0, 0, 0] - 0.25, full[1, 0, 0] - 0.25,
                                                           full[2, 0, 0] - 0.5]), atol=1e-5)


def test_ensemble_is_the_per_class_geometric_mean_of_both_rules():
    p_prop = torch.tensor([0.5, 0.2, 0.3])
    p_clip = torch.tensor([0.1, 0.6, 0.3])
    seen = torch.tensor([True, False, True])
    zsseg = ensemble(p_prop, p_clip, seen, 0.7)
    hand = torch.tensor([0.5 ** 0.7 * 0.1 ** 0.3, 0.2 ** 0.3 * 0.6 ** 0.7, 0.3 ** 0.7 * 0.3 ** 0.3])
    assert torch.allclose(zsseg, hand, atol=1e-6)
    zegformer = ensemble(p_prop, p_clip, seen, 2 / 3, style="zegformer")
    w = 2 / 3  # CLIP's seen probabilities become their mean, (0.1 + 0.3) / 2
    hand = torch.tensor([0.5 ** w * 0.2 ** (1 - w), 0.2 ** (1 - w) * 0.6 ** w, 0.3 ** w * 0.2 ** (1 - w)])
    assert torch.allclose(zegformer, hand, atol=1e-6)


def test_semantic_map_sums_class_probability_times_mask_over_queries():
    class_prob = torch.tensor([[[0.9, 0.1], [0.2, 0.8]]])  # [B=1, Q=2, C=2]
    masks = torch.tensor([[[[1.0, 0.0]], [[0.5, 1.0]]]])  # [1, 2, 1, 2]
    out = semantic_map(class_prob, masks)
    assert torch.allclose(out[0, :, 0], torch.tensor([[0.9 + 0.1, 0.2], [0.1 + 0.4, 0.8]]))


def _no_region_case(**switches):
    """A two-stage model whose proposals are all empty (no mask passes the threshold)."""
    torch.manual_seed(0)
    method = create_method("two_stage", mask_threshold=1.1, **{**TINY_TWO_STAGE, **switches}).eval()
    x = method.normalize(torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8))
    names = ["blue striped", "yellow hatched", "red dotted"]
    last = method.proposals(x, method.text_embeddings(names))[-1]
    masks = F.interpolate(last["mask_logits"], size=(64, 64), mode="bilinear", align_corners=False).sigmoid()
    return method, x, names, last["class_logits"].softmax(-1)[..., :-1], masks


def test_zsseg_gives_empty_proposals_clip_probability_one():
    method, x, names, p_prop, masks = _no_region_case()
    seen = [True, True, False]
    scores = method.predict(x, names, seen=seen)
    expected = semantic_map(ensemble(p_prop, torch.ones_like(p_prop), torch.tensor(seen), 0.7), masks)
    assert method.regions_per_image() == 0 and torch.allclose(scores, expected, atol=1e-5)


def test_two_stage_can_keep_the_proposal_distribution_for_empty_proposals():
    method, x, names, p_prop, masks = _no_region_case(empty_region="proposal")
    scores = method.predict(x, names, seen=[True, True, False])
    assert torch.allclose(scores, semantic_map(p_prop, masks), atol=1e-5)
    with_regions = create_method("two_stage", mask_threshold=0.0, **TINY_TWO_STAGE).eval()
    with_regions.load_state_dict(method.state_dict())
    assert not torch.allclose(with_regions.predict(x, names, seen=[True, True, False]), scores)


def test_zegformer_classifies_an_empty_proposal_on_the_whole_image_box():
    method, x, names, _, _ = _no_region_case(empty_region="whole_image")
    method.predict(x, names, seen=[True, True, False])
    assert method.regions_per_image() == 4  # every query got a CLIP forward
    empty = torch.zeros(1, 2, 8, 8, dtype=torch.bool)
    empty[0, 1, 2:4, 3:6] = True
    crops, has_crop = region_crops(torch.randn(1, 3, 8, 8), empty, 4, empty_as_whole_image=True)
    assert has_crop.all() and crops.shape == (2, 3, 4, 4)
    assert crops[0].abs().sum() == 0  # the masked image over the whole box: all CLIP mean colour


def test_zegformer_puts_the_no_object_logit_inside_clip_softmax():
    crops = torch.randn(3, 3, 4, 4)
    text = F.normalize(torch.randn(5, 6), dim=-1)

    def encode(c):  # a stand-in image encoder
        return c.flatten(1)[:, :6]
    plain = classify_regions(encode, crops, text)
    no_object = torch.tensor([-1e4, 0.0, 1e4])
    joint = classify_regions(encode, crops, text, no_object_logits=no_object)
    logits = 100 * F.normalize(encode(crops), dim=-1) @ text.T
    expected = torch.cat([logits, no_object[:, None]], 1).softmax(-1)[:, :-1]
    assert torch.allclose(joint, expected) and torch.allclose(joint[0], plain[0], atol=1e-6)
    assert joint[2].sum() < 1e-6 and torch.allclose(plain.sum(-1), torch.ones(3))


@pytest.mark.parametrize("norm,frozen", [("frozen", True), ("batch", False)])
def test_resnet_batchnorm_is_frozen_as_detectron2s_default(norm, frozen):
    from torchvision.ops import FrozenBatchNorm2d

    backbone = build_backbone("resnet50", None, norm)
    kinds = {type(m) for m in backbone.modules()}
    assert (FrozenBatchNorm2d in kinds, torch.nn.BatchNorm2d in kinds) == (frozen, not frozen)
    x = torch.randn(2, 3, 64, 64)
    backbone.train()
    backbone(x)  # a training-mode pass: frozen statistics never move
    stats = [b for n, b in backbone.named_buffers() if n.endswith("running_mean")]
    assert all(torch.equal(s, torch.zeros_like(s)) for s in stats) == frozen


@pytest.mark.parametrize("value_path", ["official", "no_residual_ffn"])
def test_maskclip_features_are_the_last_block_with_each_token_attending_only_to_itself(value_path):
    """Official: the whole last block (residual and MLP included) with attention to itself alone."""
    torch.manual_seed(0)
    method = create_method("maskclip", clip_weights="none", image_size=32, value_path=value_path,
                           templates="single").eval()
    x = method.normalize(torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8))
    feats, grid = method.dense_features(x)
    visual = method.encoder.visual
    tokens, _ = method.encoder.embed(x)
    for block in visual.transformer.resblocks[:-1]:
        tokens = block(tokens)
    last = visual.transformer.resblocks[-1]
    n = tokens.shape[1]
    self_only = torch.full((n, n), float("-inf")).fill_diagonal_(0)
    if value_path == "official":  # softmax over one key = its value, then the rest of the block
        out = last(tokens, attn_mask=self_only)
    else:
        out = last.attention(q_x=last.ln_1(tokens), attn_mask=self_only)
    expected = F.normalize(visual.ln_post(out) @ visual.proj, dim=-1)[:, 1:]
    assert grid == (4, 4) and torch.allclose(feats, expected, atol=1e-5)
    assert method.param_counts()["params_trainable"] == 0


def test_zegformer_spells_potted_plant_as_its_voc_names():
    from zegbench.engine.resolve import resolve

    assert resolve("two_stage_zegformer", "voc12", 0)["method_config"]["class_names"] == "zegformer"
    assert resolve("two_stage", "voc12", 0)["method_config"]["class_names"] == "dataset"  # zsseg: VOC's own names
    zegformer = create_method("two_stage_zegformer", class_names="zegformer", **TINY_TWO_STAGE)
    assert zegformer.name_map == {"pottedplant": "potted plant"}


def test_maskclip_reads_cleaned_class_names_and_can_keep_the_dataset_spelling():
    method = create_method("maskclip", clip_weights="none", image_size=32)
    assert method.name_map["diningtable"] == "dining table" and method.name_map["wall-concrete"] == "concrete wall"
    assert create_method("maskclip", clip_weights="none", image_size=32, class_names="dataset").name_map == {}


def test_maskclip_official_position_table_is_resized_bicubically_at_run_time():
    """The official ViT keeps CLIP's own table and resizes it per input (bicubic, no antialiasing)."""
    method = create_method("maskclip", clip_weights="none", image_size=96)
    table = method.encoder.visual.positional_embedding
    native = int((table.shape[0] - 1) ** 0.5)
    assert native == 8  # the in-house CLIP's own grid (64 px / 8), not the 12 x 12 of image_size 96
    spatial = table[1:].reshape(1, native, native, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(spatial, size=(12, 12), mode="bicubic", align_corners=False)
    resized = method.encoder._positional((12, 12))[1:].reshape(1, 12, 12, -1).permute(0, 3, 1, 2)
    assert torch.allclose(resized, expected)
