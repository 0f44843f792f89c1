"""Named model folders (`checkpoints`, `loras`, `vae`, ...) in ComfyUI's layout.

Each key maps to `<models dir>/<key>` plus folders added by `extra_model_paths.yaml` files in
ComfyUI's format, so an existing ComfyUI or A1111 model collection is used where it lies:

    a111:
        base_path: ~/stable-diffusion-webui/
        checkpoints: models/Stable-diffusion
        loras: |
            models/Lora
            models/LyCORIS

`base_path` is relative to the yaml file (`~` and environment variables expand); `is_default:
true` puts a section's folders first. ComfyUI's legacy names (`clip`, `unet`, `t2i_adapter`)
map onto the current keys. Names inside a folder are resolved with `resolve_inside`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from engine.paths import UnsafePathError, resolve_inside

#: the folder keys every installation has (ComfyUI's names); extra_model_paths.yaml may add more
KNOWN_KEYS = (
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision", "style_models", "embeddings",
    "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders", "annotators",
)
MODEL_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".sft"})
#: keys whose files have other extensions than model weights
EXTENSIONS = {"configs": frozenset({".yaml"})}
#: ComfyUI's older folder names, still found in users' collections
LEGACY_KEYS = {"clip": "text_encoders", "unet": "diffusion_models", "t2i_adapter": "controlnet"}
#: the marker of a diffusers-format model folder
DIFFUSERS_MARKER = "model_index.json"


class ModelPathsError(ValueError):
    """An extra_model_paths.yaml file cannot be read."""


@dataclass
class ModelFolders:
    """Model folder keys → search paths, first match wins."""

    root: Path
    extra: dict[str, list[Path]] = field(default_factory=dict)
    #: folders that go before `root` (from `is_default: true` sections)
    preferred: dict[str, list[Path]] = field(default_factory=dict)

    def keys(self) -> list[str]:
        """Every folder key: the known ones, then those only extra_model_paths.yaml files name."""
        added = [k for k in [*self.preferred, *self.extra] if k not in KNOWN_KEYS]
        return [*KNOWN_KEYS, *dict.fromkeys(added)]

    def paths(self, key: str) -> list[Path]:
        """Where files of `key` are searched, in order."""
        own = [self.root / key, *(self.root / old for old, new in LEGACY_KEYS.items() if new == key)]
        return [*self.preferred.get(key, []), *own, *self.extra.get(key, [])]

    def add(self, key: str, path: Path, first: bool = False) -> None:
        """Search `path` for files of `key` as well."""
        key = LEGACY_KEYS.get(key, key)
        (self.preferred if first else self.extra).setdefault(key, []).append(path)

    def list(self, key: str) -> list[str]:
        """Relative names (with `/`) of the files of `key`, recursive, sorted, without duplicates.

        Diffusers-format folders (holding `model_index.json`) are listed by their folder name.
        """
        extensions = EXTENSIONS.get(key, MODEL_EXTENSIONS)
        names: set[str] = set()
        for root in self.paths(key):
            if not root.is_dir():
                continue
            for path in root.rglob("*"):
                if path.is_file() and path.suffix.lower() in extensions and not _inside_diffusers_folder(path, root):
                    names.add(path.relative_to(root).as_posix())
                elif path.name == DIFFUSERS_MARKER and path.parent != root:
                    names.add(path.parent.relative_to(root).as_posix())
        return sorted(names)

    def find(self, key: str, name: str) -> Path:
        """The first file (or diffusers folder) called `name` under `key`; FileNotFoundError if none."""
        for root in self.paths(key):
            if not root.is_dir():
                continue
            try:
                path = resolve_inside(root, name)
            except UnsafePathError:
                raise FileNotFoundError(f"{name!r} is not a name inside the {key} folders") from None
            if path.is_file() or (path / DIFFUSERS_MARKER).is_file():
                return path
        searched = ", ".join(str(p) for p in self.paths(key))
        raise FileNotFoundError(f"no {key} file named {name!r} (searched {searched})")

    def read_yaml(self, yaml_path: Path) -> list[Path]:
        """Add the folders of an extra_model_paths.yaml file; returns its `custom_nodes` folders."""
        try:
            sections = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ModelPathsError(f"cannot read {yaml_path}: {exc}") from None
        if not isinstance(sections, dict):
            raise ModelPathsError(f"{yaml_path}: expected sections of folder settings")
        plugin_dirs = []
        for name, section in sections.items():
            if not isinstance(section, dict):
                raise ModelPathsError(f"{yaml_path}: section {name!r} must map folder keys to paths")
            base = _expand(str(section.get("base_path", "")), yaml_path.parent)
            first = bool(section.get("is_default", False))
            for key, value in section.items():
                if key in ("base_path", "is_default") or value is None:
                    continue
                for line in str(value).splitlines():
                    if line.strip():
                        path = _expand(line.strip(), base)
                        if key == "custom_nodes":
                            plugin_dirs.append(path)
                        else:
                            self.add(key, path, first=first)
        return plugin_dirs


def _expand(text: str, relative_to: Path) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    return path if path.is_absolute() else relative_to / path


def _inside_diffusers_folder(path: Path, root: Path) -> bool:
    """Weights inside a diffusers folder belong to that folder, not listed on their own."""
    return any((parent / DIFFUSERS_MARKER).is_file() for parent in path.parents if parent != root and root in parent.parents)
