"""The one resolver for file names that come from workflows and requests.

A name is always relative to a named root (input, output, temp, a model folder, a plugin's web
folder). It is refused when it
- is absolute (`/x`, `\\x`, `C:x`) or contains a NUL byte or a backslash (Windows separators),
- has a `..` component, also when hidden by percent-encoding (`%2e%2e%2f`, double-encoded `%252e`)
  or when encoding hides a separator (`%2f`, `%5c`),
- resolves (after following every symlink) outside the root.

Names that merely contain dots (`v1..final.png`, `.hidden.png`, `...`) are fine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote


class UnsafePathError(ValueError):
    """A requested path would leave its root folder, or is written in a form sdflow refuses."""


_DRIVE = re.compile(r"^[A-Za-z]:")
#: how many rounds of percent-decoding are undone when looking for hidden traversal
_DECODE_ROUNDS = 3


def check_name(name: str | os.PathLike[str]) -> str:
    """Return `name` as text if its form is acceptable (see the module docstring); raise otherwise."""
    text = os.fspath(name)
    forms = [text]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    for form in forms:
        encoded = form is not text
        if "\x00" in form:
            raise UnsafePathError(f"path {text!r} contains a NUL byte")
        if "\\" in form:
            raise UnsafePathError(f"path {text!r} uses a backslash; use '/' between folders")
        if form.startswith("/") or _DRIVE.match(form):
            raise UnsafePathError(f"path {text!r} must be relative to its folder")
        if ".." in form.split("/"):
            raise UnsafePathError(f"path {text!r} goes up a folder ('..')")
        if encoded and form.count("/") != text.count("/"):
            raise UnsafePathError(f"path {text!r} hides a folder separator in percent-encoding")
    return text


def resolve_inside(root: Path | str, name: str | os.PathLike[str]) -> Path:
    """Return the real path of `name` under `root`, or raise UnsafePathError."""
    text = check_name(name)
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
