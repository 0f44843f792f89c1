"""Textual-inversion embeddings: find `embedding:name` in the embeddings folders and read its vectors.

A name is tried as given, then with `.safetensors`, `.pt` and `.bin` appended, folder by folder;
the first file found wins. As in ComfyUI, a name not found there is then looked for in every
subfolder (in sorted order), so `embedding:style` finds `embeddings/styles/style.pt`.

Files are read with safetensors, or with torch's weights-only loader: a file that would need code
unpickled is refused, never loaded another way. Read files are cached by (path, mtime, size).
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import safetensors.torch
import torch

from engine.paths import UnsafePathError, resolve_inside

log = logging.getLogger(__name__)

EXTENSIONS = (".safetensors", ".pt", ".bin")


def find_embedding(name: str, folders: Iterable[Path]) -> Path | None:
    """The file `name` refers to, or None; a name that would leave its folder is never found."""
    if not name:
        return None
    try:
        for folder, relative in _places(name, list(folders)):
            path = _find_in(folder, relative)
            if path is not None:
                return path
    except UnsafePathError as exc:
        log.warning("embedding %r refused: %s", name, exc)
    return None


def _places(name: str, folders: list[Path]) -> Iterator[tuple[Path, str]]:
    """(folder, relative name) pairs to try: the folders themselves, then their subfolders."""
    yield from ((folder, name) for folder in folders)
    for folder in folders:
        for sub in _subfolders(folder):
            yield folder, os.path.join(sub, name)


def _find_in(folder: Path, name: str) -> Path | None:
    for candidate in (name, *(name + ext for ext in EXTENSIONS)):
        path = resolve_inside(folder, candidate)
        if path.is_file():
            return path
    return None


def _subfolders(folder: Path) -> list[str]:
    """Every folder under `folder` (symlinked ones not followed), relative to it, sorted."""
    return sorted(os.path.relpath(path, folder) for path, _, _ in os.walk(folder) if path != os.fspath(folder))


def read_embedding_file(path: Path) -> Any:
    """The content of an embedding file (tensors in dicts or lists), or None when it cannot be read."""
    stat = path.stat()
    return _read(os.fspath(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> Any:
    try:
        if path.lower().endswith(".safetensors"):
            return safetensors.torch.load_file(path, device="cpu")
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        log.warning(
            "embedding file %s refused: weights-only loading failed, it would need code unpickled "
            "(never done; convert it to .safetensors)",
            path,
        )
    except Exception as exc:  # a damaged or foreign file must not stop the prompt
        log.warning("embedding file %s could not be read: %s", path, exc)
    return None


def select_vectors(content: Any, key: str, hidden_size: int) -> torch.Tensor | None:
    """The vectors [n, dim] meant for the encoder `key` in a file's content, as ComfyUI picks them.

    A1111 files hold `string_to_param`; lists hold per-encoder dicts (every tensor of the encoder's
    hidden size is taken); SDXL files hold `clip_l`/`clip_g`; anything else gives its first value.
    """
    if isinstance(content, list):
        parts = [
            t.reshape(-1, hidden_size)
            for item in content
            if isinstance(item, dict)
            for t in item.values()
            if torch.is_tensor(t) and t.shape[-1] == hidden_size
        ]
        tensor = torch.cat(parts) if parts else None
    elif isinstance(content, dict) and content:
        if isinstance(content.get("string_to_param"), dict) and content["string_to_param"]:
            tensor = next(iter(content["string_to_param"].values()))
        else:
            tensor = content.get(key, next(iter(content.values())))
    else:
        tensor = None
    if not torch.is_tensor(tensor) or tensor.dim() == 0:
        return None
    return tensor.detach().reshape(-1, tensor.shape[-1])


@dataclass(frozen=True)
class EmbeddingFolders:
    """Looks embeddings up by name for one encoder (callable as a tokenizer's EmbeddingLookup)."""

    folders: tuple[Path, ...]
    key: str
    hidden_size: int

    def __call__(self, name: str) -> torch.Tensor | None:
        path = find_embedding(name, self.folders)
        if path is None:
            return None
        content = read_embedding_file(path)
        if content is None:
            return None
        vectors = select_vectors(content, self.key, self.hidden_size)
        if vectors is None:
            log.warning("embedding file %s holds no vectors sdflow can use", path)
        return vectors
