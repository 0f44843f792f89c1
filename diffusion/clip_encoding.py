"""Text encoding: prompts to conditioning tensors with transformers' CLIP text models, as ComfyUI does.

Each 77-token window is encoded separately and the results are concatenated along the token axis
([1, 77k, dim]); the pooled output is the first window's, taken at its first end-of-text token
(projected for clip_g). Weighted tokens are pushed away from the encoding of an empty prompt:
z = (z - z_empty) * w + z_empty, position by position. SDXL concatenates clip_l's and clip_g's
encodings on the feature axis and keeps clip_g's pooled output.

Layer selection: None is the final-layer-normed last layer; k < 0 is hidden_states[k] (-1 the last
layer, -2 the penultimate), normed or not as the encoder's flag says; an index beyond the model's
depth means the last layer, as None does. A CLIP-skip override replaces every encoder's default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch.func import functional_call
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from diffusion.embeddings import EmbeddingFolders
from diffusion.families import EncoderSlot
from diffusion.tokenizer import EOS, WINDOW, ClipTokenizer, Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipEncoder:
    """One text encoder of a CLIP: its model, its tokenizer and how its output layer is chosen."""

    key: str  # "clip_l", "clip_h" or "clip_g"; names the encoder in embeddings and SDXL prompts
    model: CLIPTextModel | CLIPTextModelWithProjection
    tokenizer: ClipTokenizer
    default_layer: int | None
    norm_hidden_layer: bool

    @classmethod
    def from_slot(cls, slot: EncoderSlot, model: CLIPTextModel | CLIPTextModelWithProjection) -> ClipEncoder:
        """The encoder of a family's slot, with the tokenizer (pad policy) its key calls for."""
        return cls(slot.key, model, ClipTokenizer.for_encoder(slot.key), slot.default_layer, slot.norm_hidden_layer)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size


def tokenize(
    encoders: Sequence[ClipEncoder],
    text: str | Mapping[str, str],
    embedding_dirs: Sequence[Path] = (),
) -> list[list[Window]]:
    """Each encoder's windows for `text`.

    A mapping gives each encoder its own prompt by key (CLIPTextEncodeSDXL's text_l/text_g); then
    the shorter window lists are lengthened with empty-prompt windows to the longest one.
    """
    per_encoder = []
    for encoder in encoders:
        prompt = text if isinstance(text, str) else text[encoder.key]
        lookup = EmbeddingFolders(tuple(embedding_dirs), encoder.key, encoder.hidden_size)
        per_encoder.append(encoder.tokenizer.tokenize(prompt, lookup))
    if not isinstance(text, str):
        count = max(len(windows) for windows in per_encoder)
        for encoder, windows in zip(encoders, per_encoder):
            windows.extend(encoder.tokenizer.empty_window() for _ in range(count - len(windows)))
    return per_encoder


@torch.no_grad()
def encode(
    encoders: Sequence[ClipEncoder],
    text: str | Mapping[str, str],
    layer: int | None = None,
    embedding_dirs: Sequence[Path] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditioning [1, 77k, dim] and pooled output [1, dim] (float32, CPU) for a prompt.

    `layer` is a CLIP-skip override (CLIPSetLastLayer: -1..-24) or None for each encoder's default.
    Several encoders are concatenated on the feature axis, cut to the shortest token length; the
    pooled output is the last encoder's (SDXL: clip_l then clip_g, pooled from clip_g).
    """
    results = [encode_windows(e, w, layer) for e, w in zip(encoders, tokenize(encoders, text, embedding_dirs))]
    length = min(cond.shape[1] for cond, _ in results)
    cond = torch.cat([cond[:, :length] for cond, _ in results], dim=-1)
    return cond, results[-1][1]


@torch.no_grad()
def encode_windows(
    encoder: ClipEncoder,
    windows: Sequence[Window],
    layer: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode windows with one encoder: ([1, 77k, dim], pooled [1, dim]), float32 on the CPU."""
    weights = torch.tensor([[w for _, w in window] for window in windows], dtype=torch.float32)
    weighted = bool((weights != 1.0).any())
    batch = [*windows, encoder.tokenizer.empty_window()] if weighted else list(windows)
    input_ids, vectors = _input_ids(encoder, batch)
    output = _forward(encoder.model, input_ids, vectors)
    z = _select_layer(encoder, output, layer if layer is not None else encoder.default_layer).float()
    if weighted:
        z_empty = z[-1]
        z = z[:-1]
        weights = weights.to(z.device)[..., None]
        z = torch.where(weights != 1.0, (z - z_empty) * weights + z_empty, z)
    cond = z.reshape(1, -1, z.shape[-1])
    return cond.cpu(), _pooled(encoder.model, output, input_ids[:1]).float().cpu()


def _input_ids(encoder: ClipEncoder, windows: Sequence[Window]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids for the windows; embedding vectors get ids after the vocabulary, in order.

    A vector of the wrong size is dropped (with a warning) and the window is padded at its end.
    """
    embedding = encoder.model.get_input_embeddings().weight
    vocab_size = embedding.shape[0]
    rows: list[list[int]] = []
    vectors: list[torch.Tensor] = []
    dropped: set[int] = set()
    for window in windows:
        row = []
        for token, _ in window:
            if isinstance(token, int):
                row.append(token)
            elif token.shape[-1] == encoder.hidden_size:
                row.append(vocab_size + len(vectors))
                vectors.append(token)
            else:
                dropped.add(token.shape[-1])
        rows.append(row + [encoder.tokenizer.pad_id] * (WINDOW - len(row)))
    for size in sorted(dropped):
        log.warning("embedding vectors of size %d ignored by %s (size %d)", size, encoder.key, encoder.hidden_size)
    ids = torch.tensor(rows, dtype=torch.long, device=embedding.device)
    stacked = torch.stack(vectors).to(embedding) if vectors else None
    return ids, stacked


def _forward(model: torch.nn.Module, input_ids: torch.Tensor, vectors: torch.Tensor | None):
    """Run the model with its token table extended by `vectors`, without touching the model's weights."""
    if vectors is None:
        return model(input_ids=input_ids, output_hidden_states=True)
    table = model.get_input_embeddings().weight
    name = next(n for n, p in model.named_parameters() if p is table)
    extended = {name: torch.cat([table, vectors])}
    return functional_call(model, extended, args=(), kwargs={"input_ids": input_ids, "output_hidden_states": True})


def _text_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module holding the final layer norm (the model itself, or its `text_model`)."""
    return getattr(model, "text_model", model)


def _select_layer(encoder: ClipEncoder, output, index: int | None) -> torch.Tensor:
    if index is not None and index >= 0:
        raise ValueError(f"CLIP layer index must be negative or None, not {index}")
    if index is None or -index > encoder.model.config.num_hidden_layers:
        return output.last_hidden_state
    hidden = output.hidden_states[index]
    return _text_model(encoder.model).final_layer_norm(hidden) if encoder.norm_hidden_layer else hidden


def _pooled(model: torch.nn.Module, output, input_ids: torch.Tensor) -> torch.Tensor:
    """Normed last layer at the first end-of-text token of each row; projected when the model has a projection."""
    positions = (input_ids == EOS).int().argmax(dim=-1)
    pooled = output.last_hidden_state[torch.arange(input_ids.shape[0], device=input_ids.device), positions]
    projection = getattr(model, "text_projection", None)
    return projection(pooled) if projection is not None else pooled
