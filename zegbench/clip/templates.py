"""Prompt template sets for class text embeddings (ZegCLIP reference section 1.2)."""

SINGLE = ("a photo of a {}",)  # ZegCLIP's VOC embeddings (no final period)
COCO_15 = (
    "a photo of a {}.", "a photo of a small {}.", "a photo of a medium {}.", "a photo of a large {}.",
    "This is a photo of a {}.", "This is a photo of a small {}.", "This is a photo of a medium {}.",
    "This is a photo of a large {}.", "a {} in the scene.", "a photo of a {} in the scene.",
    "There is a {} in the scene.", "There is the {} in the scene.", "This is a {} in the scene.",
    "This is the {} in the scene.", "This is one {} in the scene.",
)
TEMPLATE_SETS = {"single": SINGLE, "coco15": COCO_15}
