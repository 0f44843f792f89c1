"""Latent and VAE nodes run by the engine on the demo models: specs, an empty latent decoded and
saved, and inpainting inputs from a loaded image."""

from __future__ import annotations

import shutil
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from diffusion import vae as service
from engine import Node, NodeContext, node
from engine.models import ModelManager
from engine.runtime import Runtime, Settings
from nodes import conditioning_edit, latent, vae

PACKS = (latent, vae, conditioning_edit)
CAPTURED: dict[str, Any] = {}
CHECKPOINT = "sdflow-tiny-sd15.safetensors"


@node(output_node=True, outputs=[], category="test")
class CaptureVae(Node):
    """Keeps whatever it receives, for the test to look at."""

    value: Any

    def execute(self, ctx: NodeContext) -> None:
        CAPTURED[ctx.node_id] = self.value


def node_classes() -> list[type]:
    return [value for pack in PACKS for value in vars(pack).values()
            if isinstance(value, type) and issubclass(value, Node) and value.__module__ == pack.__name__ and hasattr(value, "definition")]


@pytest.fixture
def runtime(tmp_path: Path, models_dir: Path) -> Runtime:
    """A runtime on a copy of the demo models, with these packs' nodes registered (if the built-in
    list does not hold them yet)."""
    shutil.copytree(models_dir, tmp_path / "models")
    runtime = Runtime(Settings(base_dir=tmp_path, load_plugins=False))
    pack = types.ModuleType("vae_nodes")
    pack.NODES = [cls for cls in [*node_classes(), CaptureVae] if cls.definition.class_type not in runtime.registry]
    runtime.registry.add_module(pack, source="test")
    CAPTURED.clear()
    return runtime


def run(runtime: Runtime, prompt: dict) -> Any:
    result = runtime.executor.execute(prompt)
    assert result.ok, {k: f.message for k, f in result.failures.items()}
    return result


def test_node_specs_follow_comfyui(runtime) -> None:
    info = runtime.registry.object_info(runtime.folders)
    expected_inputs = {
        "EmptyLatentImage": ["width", "height", "batch_size"],
        "LatentUpscale": ["samples", "upscale_method", "width", "height", "crop"],
        "LatentUpscaleBy": ["samples", "upscale_method", "scale_by"],
        "LatentFromBatch": ["samples", "batch_index", "length"],
        "RepeatLatentBatch": ["samples", "amount"],
        "LatentComposite": ["samples_to", "samples_from", "x", "y", "feather"],
        "LatentBlend": ["samples1", "samples2", "blend_factor"],
        "SetLatentNoiseMask": ["samples", "mask"],
        "VAEDecode": ["samples", "vae"],
        "VAEEncode": ["pixels", "vae"],
        "VAEDecodeTiled": ["samples", "vae", "tile_size", "overlap", "temporal_size", "temporal_overlap"],
        "VAEEncodeTiled": ["pixels", "vae", "tile_size", "overlap", "temporal_size", "temporal_overlap"],
        "VAEEncodeForInpaint": ["pixels", "vae", "mask", "grow_mask_by"],
        "InpaintModelConditioning": ["positive", "negative", "vae", "pixels", "mask", "noise_mask"],
        "ConditioningCombine": ["conditioning_1", "conditioning_2"],
        "ConditioningAverage": ["conditioning_to", "conditioning_from", "conditioning_to_strength"],
        "ConditioningConcat": ["conditioning_to", "conditioning_from"],
        "ConditioningSetArea": ["conditioning", "width", "height", "x", "y", "strength"],
        "ConditioningSetAreaPercentage": ["conditioning", "width", "height", "x", "y", "strength"],
        "ConditioningSetAreaStrength": ["conditioning", "strength"],
        "ConditioningSetMask": ["conditioning", "mask", "strength", "set_cond_area"],
        "ConditioningSetTimestepRange": ["conditioning", "start", "end"],
    }
    for class_type, inputs in expected_inputs.items():
        assert info[class_type]["input_order"]["required"] == inputs, class_type
    required = lambda class_type, name: info[class_type]["input"]["required"][name]
    assert required("EmptyLatentImage", "width") == ["INT", {"default": 512, "min": 16, "max": 16384, "step": 8,
                                                             "tooltip": "The width of the latent images in pixels."}]
    assert required("LatentUpscale", "upscale_method")[0] == ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
    tile_size = {"default": 512, "min": 64, "max": 4096, "step": 64, "tooltip": "Tile size in pixels."}
    assert required("VAEEncodeTiled", "tile_size")[1] == tile_size
    assert required("ConditioningSetTimestepRange", "start")[1] == {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}
    assert info["InpaintModelConditioning"]["output_name"] == ["positive", "negative", "latent"]
    assert info["VAEDecode"]["output"] == ["IMAGE"] and info["VAEEncode"]["output"] == ["LATENT"]
    assert info["ConditioningSetTimestepRange"]["category"] == "advanced/conditioning"
    assert info["SetLatentNoiseMask"]["category"] == "latent/inpaint"


def test_empty_latent_decoded_and_saved(runtime) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 2}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "empty"}},
        "5": {"class_type": "CaptureVae", "inputs": {"value": ["3", 0]}},
    }
    run(runtime, prompt)
    files = sorted((runtime.folders.output).glob("empty_*.png"))
    assert [f.name for f in files] == ["empty_00001_.png", "empty_00002_.png"]
    image = CAPTURED["5"]
    assert image.shape == (2, 48, 64, 3)
    with PILImage.open(files[0]) as saved:
        assert saved.size == (64, 48)
        assert np.array_equal(np.asarray(saved), (image[0].numpy() * 255).astype(np.uint8))


def test_vae_encode_for_inpaint_on_a_loaded_image(runtime) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(52, 70, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[20:30, 30:40, 3] = 0  # transparent = to be inpainted
    runtime.folders.root("input")
    PILImage.fromarray(rgba, "RGBA").save(runtime.folders.input / "photo.png")
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "3": {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": ["2", 0], "vae": ["1", 2], "mask": ["2", 1], "grow_mask_by": 6}},
        "4": {"class_type": "CaptureVae", "inputs": {"value": ["3", 0]}},
        "5": {"class_type": "CaptureVae", "inputs": {"value": ["1", 2]}},
    }
    run(runtime, prompt)
    result = CAPTURED["4"]
    # 52 × 70 is cropped to 48 × 64, from row 2 and column 3
    assert result["samples"].shape == (1, 4, 6, 8)
    mask = result["noise_mask"]
    assert mask.shape == (1, 1, 48, 64)
    # the hole (rows 18..28, columns 27..37 after the crop): a 6×6 box padded by 3 covers rows
    # i-3..i+2, so the hole grows by 2 up and left and by 3 down and right
    expected = torch.zeros(48, 64)
    expected[18 - 2 : 28 + 3, 27 - 2 : 37 + 3] = 1
    assert torch.equal(mask[0, 0], expected)
    pixels = torch.from_numpy(rgba[..., :3].astype(np.float32) / 255)[None]
    hole = torch.from_numpy(rgba[..., 3] == 0)
    grey = torch.where(hole[None, ..., None], 0.5, pixels)[:, 2:50, 3:67]
    encoded = service.encode(CAPTURED["5"], grey, runtime.services.get(ModelManager))
    assert (result["samples"] - encoded).abs().max() <= 1e-5
