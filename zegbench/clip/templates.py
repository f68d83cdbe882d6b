"""Prompt template sets and class-name spellings for class text embeddings.

Each method's official text side (reference 1.2, 6.1, 6.2 and the MaskCLIP
repository) as a named set, chosen by a method's ``templates`` key. The world's
in-house CLIP reads only its own 37-word vocabulary, so world recipes use
``single``; the real-data recipes pick each method's own set.
"""

SINGLE = ("a photo of a {}",)  # ZegCLIP's VOC embeddings (no final period)
COCO_15 = (
    "a photo of a {}.", "a photo of a small {}.", "a photo of a medium {}.", "a photo of a large {}.",
    "This is a photo of a {}.", "This is a photo of a small {}.", "This is a photo of a medium {}.",
    "This is a photo of a large {}.", "a {} in the scene.", "a photo of a {} in the scene.",
    "There is a {} in the scene.", "There is the {} in the scene.", "This is a {} in the scene.",
    "This is the {} in the scene.", "This is one {} in the scene.",
)
# MaskCLIP tools/maskclip_utils/prompt_engineering.py: `prompt_templates` (85 templates).
MASKCLIP_85 = (
    'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.', 'a photo of the hard to see {}.',
    'a low resolution photo of the {}.', 'a rendering of a {}.', 'graffiti of a {}.',
    'a bad photo of the {}.', 'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.',
    'a photo of a hard to see {}.', 'a bright photo of a {}.', 'a photo of a clean {}.',
    'a photo of a dirty {}.', 'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.',
    'the plastic {}.', 'a photo of the cool {}.', 'a close-up photo of a {}.',
    'a black and white photo of the {}.', 'a painting of the {}.', 'a painting of a {}.',
    'a pixelated photo of the {}.', 'a sculpture of the {}.', 'a bright photo of the {}.',
    'a cropped photo of a {}.', 'a plastic {}.', 'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.', 'a photo of the {}.',
    'a good photo of the {}.', 'a rendering of the {}.', 'a {} in a video game.', 'a photo of one {}.',
    'a doodle of a {}.', 'a close-up photo of the {}.', 'a photo of a {}.', 'the origami {}.',
    'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.', 'a origami {}.',
    'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.', 'a photo of the clean {}.',
    'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.', 'a photo of a weird {}.',
    'a blurry photo of a {}.', 'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.',
    'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.', 'a photo of the small {}.',
    'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.', 'a drawing of the {}.',
    'a photo of the large {}.', 'a black and white photo of a {}.', 'the plushie {}.',
    'a dark photo of a {}.', 'itap of a {}.', 'graffiti of the {}.', 'a toy {}.', 'itap of my {}.',
    'a photo of a cool {}.', 'a photo of a small {}.', 'a tattoo of the {}.', 'there is a {} in the scene.',
    'there is the {} in the scene.', 'this is a {} in the scene.', 'this is the {} in the scene.',
    'this is one {} in the scene.',
)
# zsseg's released predefined-prompt configs (VOC and COCO "single_prompt"): query classifier
# and region CLIP both use this one template. (Its main COCO model uses learned prompts,
# trained by a separate job that zegbench does not reproduce.)
ZSSEG_SCULPTURE = ("a sculpture of a {}.",)
# ZegFormer's segment classifier: PROMPT_ENSEMBLE_TYPE "single" (VOC) or "imagenet_select" (COCO).
ZEGFORMER_SINGLE = ("A photo of a {} in the scene",)
ZEGFORMER_SELECT_8 = (
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "A photo of a {} in the scene",
)
# ZegFormer's CLIP branch on cropped, masked regions: IMAGENET_TEMPLATES_SELECT_CLIP (32 templates).
ZEGFORMER_CLIP_32 = (
    "a bad photo of the {}.", "a photo of the large {}.", "a photo of the small {}.", "a cropped photo of a {}.",
    "This is a photo of a {}", "This is a photo of a small {}", "This is a photo of a medium {}",
    "This is a photo of a large {}",
    "This is a masked photo of a {}", "This is a masked photo of a small {}",
    "This is a masked photo of a medium {}", "This is a masked photo of a large {}",
    "This is a cropped photo of a {}", "This is a cropped photo of a small {}",
    "This is a cropped photo of a medium {}", "This is a cropped photo of a large {}",
    "A photo of a {} in the scene", "a bad photo of the {} in the scene", "a photo of the large {} in the scene",
    "a photo of the small {} in the scene", "a cropped photo of a {} in the scene",
    "a photo of a masked {} in the scene", "There is a {} in the scene", "There is the {} in the scene",
    "This is a {} in the scene", "This is the {} in the scene", "This is one {} in the scene",
    "There is a masked {} in the scene", "There is the masked {} in the scene",
    "This is a masked {} in the scene", "This is the masked {} in the scene", "This is one masked {} in the scene",
)
TEMPLATE_SETS = {"single": SINGLE, "coco15": COCO_15, "maskclip85": MASKCLIP_85, "zsseg": ZSSEG_SCULPTURE,
                 "zegformer_single": ZEGFORMER_SINGLE, "zegformer_select8": ZEGFORMER_SELECT_8,
                 "zegformer_clip32": ZEGFORMER_CLIP_32}

# MaskCLIP's cleaned class names (prompt_engineering.py: voc_classes, pascal_context_classes,
# coco_stuff_classes), keyed by the dataset spelling; names not listed are used as they are.
MASKCLIP_NAMES = {
    "aeroplane": "airplane", "diningtable": "dining table", "pottedplant": "potted plant",
    "tvmonitor": "tv monitor", "building-other": "building", "ceiling-other": "ceiling",
    "ceiling-tile": "tile ceiling", "desk-stuff": "desk", "door-stuff": "door", "floor-marble": "marble floor",
    "floor-other": "floor", "floor-stone": "stone floor", "floor-tile": "tile floor", "floor-wood": "wood floor",
    "food-other": "food", "furniture-other": "furniture", "ground-other": "ground", "mirror-stuff": "mirror",
    "plant-other": "plant", "sky-other": "sky", "solid-other": "solid", "structural-other": "structural",
    "textile-other": "textile", "wall-brick": "brick wall", "wall-concrete": "concrete wall",
    "wall-other": "wall", "wall-panel": "panel wall", "wall-stone": "stone wall", "wall-tile": "tile wall",
    "wall-wood": "wood wall", "water-other": "water", "window-blind": "blind window", "window-other": "window",
}
# ZegFormer's VOC names (datasets/pascal/create_voc_class_names_json.py) differ from VOC's in one;
# its COCO-Stuff names are the dataset's.
ZEGFORMER_NAMES = {"pottedplant": "potted plant"}
# A method's ``class_names`` key: the dataset's spelling, or a method's own.
NAME_STYLES = {"dataset": {}, "maskclip": MASKCLIP_NAMES, "zegformer": ZEGFORMER_NAMES}
