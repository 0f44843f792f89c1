"""Where sdflow reads and writes files: the input, output and temp folders, and the model folders.

Node inputs name files relative to one of these folders; every such name is resolved through
`engine.paths.resolve_inside`, so no workflow can reach outside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.model_folders import ModelFolders
from engine.paths import resolve_inside

IO_KINDS = ("input", "output", "temp")
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

_ANNOTATION = re.compile(r"^(?P<name>.*?) \[(?P<kind>input|output|temp)\]$")


def split_annotation(name: str, default_kind: str = "input") -> tuple[str, str]:
    """`"x.png [output]"` → `("x.png", "output")`; names without a suffix use `default_kind`."""
    match = _ANNOTATION.match(name)
    return (match["name"], match["kind"]) if match else (name, default_kind)


@dataclass
class Folders:
    """The folders of one sdflow installation (a base directory by default)."""

    base: Path
    input: Path | None = None
    output: Path | None = None
    temp: Path | None = None
    #: the models folder (default `base/models`) with its named subfolders
    models: ModelFolders | None = None

    def __post_init__(self) -> None:
        self.base = Path(self.base).resolve()
        for kind in IO_KINDS:
            setattr(self, kind, Path(getattr(self, kind) or self.base / kind).resolve())
        if self.models is None:
            self.models = ModelFolders(self.base / "models")

    def root(self, kind: str) -> Path:
        """The folder for `input`, `output` or `temp`, created on demand."""
        if kind not in IO_KINDS:
            raise ValueError(f"unknown folder type {kind!r}; expected one of {', '.join(IO_KINDS)}")
        path: Path = getattr(self, kind)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve(self, kind: str, name: str) -> Path:
        """Resolve a user-supplied relative name inside the `kind` folder (safe against escapes)."""
        return resolve_inside(self.root(kind), name)

    def resolve_annotated(self, name: str, default_kind: str = "input") -> Path:
        """Resolve names like `"x.png [output]"` as ComfyUI's LoadImage accepts them."""
        plain, kind = split_annotation(name, default_kind)
        return self.resolve(kind, plain)

    def list_images(self, kind: str = "input") -> list[str]:
        """Image files directly inside a folder, sorted (what LoadImage offers)."""
        root = getattr(self, kind)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
