"""Loading upscale model files and upscaling with them: sizes, tiles, out-of-memory retries, progress."""

from __future__ import annotations

import os
import pickle
import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from spandrel import ImageModelDescriptor

from diffusion.demo_upscale import SCALE, tiny_upscaler_state
from diffusion.families import ModelFormatError
from diffusion.upscale import MIN_TILE, load_upscale_model, upscale

#: ESRGAN's original names → Real-ESRGAN's (RRDBNet "new arch") names, for a 2× model with one block
REAL_ESRGAN_NAMES = (
    (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
    (r"^model\.1\.sub\.1\.", "conv_body."),
    (r"^model\.0\.", "conv_first."),
    (r"^model\.3\.", "conv_up1."),
    (r"^model\.5\.", "conv_hr."),
    (r"^model\.7\.", "conv_last."),
)


def image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def run(model, pixels: torch.Tensor) -> torch.Tensor:
    """The model applied to a whole IMAGE batch at once, as spandrel runs it."""
    return model(pixels.movedim(-1, 1)).movedim(1, -1)


def test_safetensors_file_is_a_2x_esrgan_loaded_once(upscaler_file, manager) -> None:
    model = load_upscale_model(upscaler_file, manager)
    assert isinstance(model, ImageModelDescriptor)
    assert (model.architecture.name, model.scale, model.input_channels) == ("ESRGAN", SCALE, 3)
    assert load_upscale_model(upscaler_file, manager) is model and manager.loads == 1


def test_pth_state_dict_loads_through_weights_only(tmp_path, upscaler_file, manager) -> None:
    pth = tmp_path / "tiny.pth"
    torch.save(tiny_upscaler_state(), pth)
    pixels = image(1, 12, 10, 3)
    expected = run(load_upscale_model(upscaler_file, manager), pixels)
    assert torch.equal(run(load_upscale_model(pth, manager), pixels), expected)


def test_real_esrgan_pth_with_params_ema_wrapper_loads(tmp_path, manager) -> None:
    pth = tmp_path / "RealESRGAN_x2.pth"
    torch.save({"params_ema": tiny_upscaler_state()}, pth)
    assert load_upscale_model(pth, manager).scale == SCALE


def test_real_esrgan_key_names_give_the_same_model(tmp_path, upscaler_file, manager) -> None:
    renamed = {}
    for key, tensor in tiny_upscaler_state().items():
        for pattern, replacement in REAL_ESRGAN_NAMES:
            key = re.sub(pattern, replacement, key)
        renamed[key] = tensor
    assert "body.0.rdb1.conv1.weight" in renamed and "conv_up1.weight" in renamed
    save_file(renamed, tmp_path / "real.safetensors")
    pixels = image(1, 9, 11, 3)
    expected = run(load_upscale_model(upscaler_file, manager), pixels)
    assert torch.equal(run(load_upscale_model(tmp_path / "real.safetensors", manager), pixels), expected)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_that_run_code_are_refused(tmp_path, monkeypatch, manager) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"model.0.weight": _Payload()}))
    with pytest.raises(ModelFormatError, match=r"^evil\.pth: refused: this file needs to run code"):
        load_upscale_model(evil, manager)
    assert not (tmp_path / "pwned.txt").exists()


def test_unrecognised_and_garbage_files_name_the_file(tmp_path, manager) -> None:
    save_file({"foo.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(ModelFormatError, match=r"^other\.safetensors: not an upscale model of a known architecture \(1 tensors, e\.g\. foo\.weight\)"):
        load_upscale_model(tmp_path / "other.safetensors", manager)
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(300))
    with pytest.raises(ModelFormatError, match=r"^garbage\.safetensors: "):
        load_upscale_model(tmp_path / "garbage.safetensors", manager)
    torch.save({"step": 3}, tmp_path / "empty.pth")
    with pytest.raises(ModelFormatError, match=r"^empty\.pth: holds no tensors"):
        load_upscale_model(tmp_path / "empty.pth", manager)


def test_incomplete_esrgan_file_is_refused(tmp_path, manager) -> None:
    state = tiny_upscaler_state()
    del state["model.1.sub.0.RDB2.conv3.0.weight"]
    save_file(state, tmp_path / "broken.safetensors")
    with pytest.raises(ModelFormatError, match=r"^broken\.safetensors: its tensors do not fit"):
        load_upscale_model(tmp_path / "broken.safetensors", manager)


def test_upscaled_size_is_scale_times_the_input(upscaler_file, manager) -> None:
    model = load_upscale_model(upscaler_file, manager)
    out = upscale(model, image(2, 10, 14, 4), manager)  # an alpha channel is dropped
    assert out.shape == (2, 20, 28, 3) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert torch.allclose(out[1:], upscale(model, image(2, 10, 14, 4)[1:], manager))  # images are upscaled independently


def test_tiled_result_matches_the_whole_image(upscaler_file, manager) -> None:
    model = load_upscale_model(upscaler_file, manager)
    pixels = image(1, 72, 88, 3, seed=1)
    calls = []
    tiled = upscale(model, pixels, manager, tile=48, overlap=24, progress=lambda done, total: calls.append(total))
    assert calls[-1] == 6  # really tiled: 2 × 3 tiles
    whole = upscale(model, pixels, manager)
    assert tiled.shape == whole.shape == (1, 144, 176, 3)
    difference = (tiled - whole).abs()
    assert difference.max() < 0.02 and difference.mean() < 1e-3


class PickyUpscaler:
    """A 2× nearest-neighbour "model" that runs out of GPU memory on tiles wider than `limit`."""

    scale, input_channels, dtype = 2, 3, torch.float32

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.model = torch.nn.Conv2d(1, 1, 1)
        self.tiles: list[int] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.tiles.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_out_of_memory_halves_the_tile(manager) -> None:
    model = PickyUpscaler(limit=200)
    pixels = image(1, 300, 280, 3)
    out = upscale(model, pixels, manager)
    assert sorted(set(model.tiles), reverse=True) == [300, 256, 128]  # 512 (the whole image), then 256, then 128
    expected = F.interpolate(pixels.movedim(-1, 1), scale_factor=2, mode="nearest").movedim(1, -1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_out_of_memory_below_the_smallest_tile_is_a_clear_error(manager) -> None:
    model = PickyUpscaler(limit=MIN_TILE - 1)
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"upscaling a 280x300 image, even in tiles of 128 pixels \(started at 512\)"):
        upscale(model, image(1, 300, 280, 3), manager)


def test_progress_counts_every_tile_of_the_batch(upscaler_file, manager) -> None:
    calls: list[tuple[int, int]] = []
    upscale(load_upscale_model(upscaler_file, manager), image(2, 40, 24, 3), manager, tile=24, overlap=8,
            progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 4) for done in range(1, 5)]  # 2 images × (2 × 1 tiles)
