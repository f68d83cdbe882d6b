"""Word-level tokenizer for the in-house CLIP.

The world's language is small, so the in-house CLIP uses a closed vocabulary of
whole words instead of open_clip's 49,408 BPE tokens: that keeps the shipped
checkpoint tiny. A word outside the vocabulary is an error, not a silent
"unknown" token, so a class name the model cannot read is caught at once.
"""
from __future__ import annotations

import re

import torch

from zegbench.datasets.worlds import v1 as world_v1
from zegbench.errors import ZegbenchError

# Words of the caption templates and of the prompt templates that methods use
# (ZegCLIP's single template and its 15-template COCO ensemble).
TEMPLATE_WORDS = (
    "a", "an", "the", "photo", "of", "and", "with", "in", "this", "is", "there",
    "scene", "small", "medium", "large", "one", "picture",
)
PAD, SOT, EOT = "<pad>", "<sot>", "<eot>"
CONTEXT_LENGTH = 16


def vocabulary_for(world) -> tuple[str, ...]:
    """The closed vocabulary of the in-house CLIP of ``world`` (a generator module).

    EOT must be the largest id: open_clip pools the text tower at argmax(token id).
    """
    return (PAD, SOT, *TEMPLATE_WORDS, *(w for w in world.WORDS if w not in TEMPLATE_WORDS), EOT)


VOCABULARY = vocabulary_for(world_v1)  # world v1's, kept as it shipped


class WorldTokenizer:
    """Callable like open_clip's tokenizers: list of strings -> LongTensor [N, context_length]."""

    def __init__(self, vocabulary: tuple[str, ...] = VOCABULARY, context_length: int = CONTEXT_LENGTH):
        self.context_length = context_length
        self.vocabulary = vocabulary
        self.ids = {w: i for i, w in enumerate(vocabulary)}

    def encode(self, text: str) -> list[int]:
        words = re.findall(r"[^\W\d_]+", text.lower())  # letters of any script: "dötted" is one unknown word
        unknown = [w for w in words if w not in self.ids]
        if unknown:
            raise ZegbenchError(
                f"the in-house CLIP cannot read {unknown[0]!r} in {text!r}: it knows only the "
                f"world's words ({', '.join(self.vocabulary[2:-1])}); use the world's class names, or "
                f"choose an open_clip model with --clip")
        ids = [self.ids[SOT], *(self.ids[w] for w in words), self.ids[EOT]]
        if len(ids) > self.context_length:
            raise ZegbenchError(f"text {text!r} is longer than the in-house CLIP's "
                                f"{self.context_length - 2}-word context")
        return ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        out = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = self.encode(text)
            out[row, : len(ids)] = torch.tensor(ids)
        return out
