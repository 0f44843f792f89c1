"""The one resolver for file names that come from workflows and requests.

A name is always relative to a named root. It is refused when it is absolute, contains a NUL
byte, or resolves (after following every symlink) outside the root.
"""

from __future__ import annotations

import os
from pathlib import Path


class UnsafePathError(ValueError):
    """A requested path would leave its root folder."""


def resolve_inside(root: Path | str, name: str | os.PathLike[str]) -> Path:
    """Return the real path of `name` under `root`, or raise UnsafePathError."""
    text = os.fspath(name)
    if "\x00" in text:
        raise UnsafePathError(f"path {text!r} contains a NUL byte")
    if os.path.isabs(text) or text.startswith(("\\", "/")) or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(f"path {text!r} must be relative to its folder")
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root / text))
    if candidate != real_root and real_root not in candidate.parents:
        raise UnsafePathError(f"path {text!r} leaves its folder")
    return candidate


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either nothing or the whole file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
