"""Model folders in ComfyUI's layout and extra_model_paths.yaml, as ComfyUI and A1111 users have them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model_folders import ModelFolders, ModelPathsError
from engine.runtime import Runtime, Settings


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_lists_model_files_recursively_with_legacy_folder_names(tmp_path) -> None:
    models = ModelFolders(tmp_path / "models")
    touch(tmp_path / "models/checkpoints/a.safetensors")
    touch(tmp_path / "models/checkpoints/sub/b.ckpt")
    touch(tmp_path / "models/checkpoints/notes.txt")
    touch(tmp_path / "models/clip/old_clip.safetensors")  # ComfyUI's former name of text_encoders
    touch(tmp_path / "models/text_encoders/clip_l.safetensors")
    touch(tmp_path / "models/configs/v2-inference-v.yaml")
    assert models.list("checkpoints") == ["a.safetensors", "sub/b.ckpt"]
    assert models.list("text_encoders") == ["clip_l.safetensors", "old_clip.safetensors"]
    assert models.list("configs") == ["v2-inference-v.yaml"]
    assert models.find("text_encoders", "old_clip.safetensors") == (tmp_path / "models/clip/old_clip.safetensors").resolve()


def test_diffusers_folders_are_listed_by_folder_name(tmp_path) -> None:
    models = ModelFolders(tmp_path / "models")
    touch(tmp_path / "models/checkpoints/my-model/model_index.json")
    touch(tmp_path / "models/checkpoints/my-model/unet/diffusion_pytorch_model.safetensors")
    touch(tmp_path / "models/checkpoints/single.safetensors")
    assert models.list("checkpoints") == ["my-model", "single.safetensors"]
    assert models.find("checkpoints", "my-model").is_dir()


def test_find_refuses_names_outside_the_folders(tmp_path) -> None:
    models = ModelFolders(tmp_path / "models")
    touch(tmp_path / "models/vae/ok.safetensors")
    touch(tmp_path / "secret.safetensors")
    with pytest.raises(FileNotFoundError, match="is not a name inside the vae folders"):
        models.find("vae", "../../secret.safetensors")
    with pytest.raises(FileNotFoundError, match="no vae file named 'missing.safetensors'"):
        models.find("vae", "missing.safetensors")


def test_extra_model_paths_yaml_in_comfyuis_format(tmp_path) -> None:
    a1111 = tmp_path / "webui"
    touch(a1111 / "models/Stable-diffusion/dream.safetensors")
    touch(a1111 / "models/Lora/style.safetensors")
    touch(a1111 / "models/LyCORIS/loha.safetensors")
    touch(tmp_path / "preferred/checkpoints/dream.safetensors")
    touch(tmp_path / "models/checkpoints/dream.safetensors")
    yaml_file = tmp_path / "config" / "extra_model_paths.yaml"
    yaml_file.parent.mkdir()
    yaml_file.write_text(
        "a111:\n"
        "    base_path: ../webui\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    loras: |\n"
        "        models/Lora\n"
        "        models/LyCORIS\n"
        "    clip: models/clip\n"
        "first:\n"
        f"    base_path: {tmp_path / 'preferred'}\n"
        "    is_default: true\n"
        "    checkpoints: checkpoints\n"
        "plugins:\n"
        "    custom_nodes: ../my_nodes\n"
    )
    models = ModelFolders(tmp_path / "models")
    plugin_dirs = models.read_yaml(yaml_file)
    assert plugin_dirs == [yaml_file.parent / "../my_nodes"]
    assert models.list("loras") == ["loha.safetensors", "style.safetensors"]
    # an is_default section is searched before the models folder, the others after it
    assert models.find("checkpoints", "dream.safetensors") == (tmp_path / "preferred/checkpoints/dream.safetensors").resolve()
    assert (yaml_file.parent / "../webui/models/clip").resolve() in [p.resolve() for p in models.paths("text_encoders")]


def test_bad_yaml_is_reported(tmp_path) -> None:
    bad = tmp_path / "extra.yaml"
    bad.write_text("a111: [not, a, mapping]\n")
    with pytest.raises(ModelPathsError, match="section 'a111' must map folder keys to paths"):
        ModelFolders(tmp_path).read_yaml(bad)


def test_runtime_settings_choose_the_models_folder_and_yaml_plugins(tmp_path) -> None:
    touch(tmp_path / "elsewhere/checkpoints/x.safetensors")
    plugin = tmp_path / "more_nodes"
    plugin.mkdir()
    (plugin / "pack.py").write_text(
        "class Echo:\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {'value': ('INT', {})}}\n"
        "    RETURN_TYPES = ('INT',)\n"
        "    FUNCTION = 'run'\n"
        "    def run(self, value):\n"
        "        return (value,)\n"
        "NODE_CLASS_MAPPINGS = {'Echo': Echo}\n"
    )
    yaml_file = tmp_path / "extra.yaml"
    yaml_file.write_text(f"mine:\n    custom_nodes: {plugin}\n")
    runtime = Runtime(Settings(base_dir=tmp_path, models_dir=tmp_path / "elsewhere", extra_model_paths=[yaml_file], builtin_packages=()))
    assert runtime.folders.models.list("checkpoints") == ["x.safetensors"]
    assert "Echo" in runtime.registry
