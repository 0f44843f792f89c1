"""CLIP tokenization: the shipped vocabulary, each encoder's padding, prompts cut into 77-token windows.

A window is a list of 77 (token, weight) pairs: BOS, up to 75 prompt tokens, EOS, then padding. A
token is a vocabulary id or, for a textual-inversion embedding, one 1-D vector. Prompt tokens come
in groups (the ids of one piece of text, or the vectors of one embedding); a group shorter than 8
tokens that does not fit in the current window moves whole to the next one, a longer group is split
at the window boundary.

The tokenizer (transformers' tokenizers-backed CLIPTokenizer) normalises text to NFC, collapses
runs of whitespace, lower-cases, and byte-encodes whatever is not ASCII (accents are kept; a run of
CJK letters stays one word, as in OpenAI's reference tokenizer). Unlike that reference it applies
no ftfy fixes and no HTML unescaping: `&amp;` stays three tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from transformers import CLIPTokenizerFast

from diffusion.prompt_weights import EMBEDDING_PREFIX, split_embedding_references, weighted_segments

log = logging.getLogger(__name__)

TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "clip_tokenizer"
BOS = 49406
EOS = 49407
WINDOW = 77
LARGE_GROUP = 8
PAD_IDS = {"clip_l": EOS, "clip_h": 0, "clip_g": 0}

Token = tuple[int | torch.Tensor, float]
Window = list[Token]
EmbeddingLookup = Callable[[str], torch.Tensor | None]
"""Finds an embedding by name: its vectors as [n, dim], or None when there is none."""


@lru_cache(maxsize=None)
def load_hf_tokenizer(folder: Path = TOKENIZER_DIR) -> CLIPTokenizerFast:
    """transformers' CLIP tokenizer from a folder holding vocab.json and merges.txt, never online."""
    return CLIPTokenizerFast.from_pretrained(str(folder), local_files_only=True, model_max_length=WINDOW)


@dataclass(frozen=True)
class ClipTokenizer:
    """The CLIP tokenizer with one encoder's pad token."""

    pad_id: int

    @classmethod
    def for_encoder(cls, key: str) -> ClipTokenizer:
        """clip_l (OpenAI CLIP) pads with `<|endoftext|>`; clip_h and clip_g (OpenCLIP) with id 0."""
        return cls(PAD_IDS[key])

    def ids(self, text: str) -> list[int]:
        """Vocabulary ids of `text`, without BOS and EOS."""
        return load_hf_tokenizer()(text, add_special_tokens=False, verbose=False)["input_ids"]

    def empty_window(self) -> Window:
        """The window of an empty prompt: BOS, EOS, padding."""
        return self.windows([])[0]

    def tokenize(self, prompt: str, embeddings: EmbeddingLookup | None = None) -> list[Window]:
        """Cut a weighted prompt into windows; `embedding:name` is looked up when `embeddings` is given."""
        groups: list[list[Token]] = []
        for segment, weight in weighted_segments(prompt):
            for piece in split_embedding_references(segment):
                if embeddings is not None and piece.startswith(EMBEDDING_PREFIX):
                    vectors, piece = _embedding_reference(piece, embeddings)
                    if vectors is not None:
                        groups.append([(vector, weight) for vector in vectors])
                    if not piece:
                        continue
                groups.append([(token, weight) for token in self.ids(piece)])
        return self.windows(groups)

    def windows(self, groups: list[list[Token]]) -> list[Window]:
        """Lay token groups out in padded windows of WINDOW tokens."""
        windows: list[Window] = []
        window: Window = [(BOS, 1.0)]
        for group in groups:
            large = len(group) >= LARGE_GROUP
            while group:
                room = WINDOW - 1 - len(window)
                if len(group) <= room:
                    window.extend(group)
                    break
                if large:
                    window.extend(group[:room])
                    group = group[room:]
                    window.append((EOS, 1.0))
                else:
                    window.append((EOS, 1.0))
                    window.extend([(self.pad_id, 1.0)] * room)
                windows.append(window)
                window = [(BOS, 1.0)]
        window.append((EOS, 1.0))
        window.extend([(self.pad_id, 1.0)] * (WINDOW - len(window)))
        windows.append(window)
        return windows


def _embedding_reference(piece: str, embeddings: EmbeddingLookup) -> tuple[torch.Tensor | None, str]:
    """The vectors an `embedding:name ...` piece names, and the text left after the name."""
    words = piece[len(EMBEDDING_PREFIX) :].strip("\n").split()
    name = words[0] if words else ""
    leftover = " ".join(words[1:])
    vectors = embeddings(name) if name else None
    stripped = name.strip(",")
    if vectors is None and stripped != name:
        vectors = embeddings(stripped) if stripped else None
        leftover = "," * (len(name) - len(stripped)) + " " + leftover
    if vectors is None:
        log.warning("embedding:%s does not exist, ignoring it", name)
    return vectors, leftover
