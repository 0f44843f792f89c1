"""LoRA files of every layout and kind change exactly the weights they should, by exactly as much."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffusion.clip_encoding import ClipEncoder
from diffusion.demo_lora import save_layers, write_lora
from diffusion.demo_models import TinyModel
from diffusion.families import FAMILIES, ModelFormatError
from diffusion.handles import ClipHandle, ModelHandle
from diffusion.lora import Applied, apply_lora
from diffusion.lora.files import read_lora
from diffusion.patching import applied, patched
from tests.diffusion.lora.conftest import fused_by_diffusers


def handles(tiny: TinyModel) -> tuple[ModelHandle, ClipHandle]:
    family = FAMILIES[tiny.family]
    encoders = tuple(ClipEncoder.from_slot(slot, tiny.text_encoders[slot.key]) for slot in family.encoders)
    return ModelHandle(tiny.unet, family, "eps"), ClipHandle(encoders)


def states_with(tiny: TinyModel, result: Applied) -> dict[str, dict[str, torch.Tensor]]:
    """Every component's weights while the handles' patches are applied (base weights restored after)."""
    parts = {"unet": (tiny.unet, result.model.patches if result.model else ())}
    for key, model in tiny.text_encoders.items():
        parts[key] = (model, [p for p in (result.clip.patches if result.clip else ()) if p.component == key])
    states = {}
    for name, (module, patches) in parts.items():
        with patched(module, patches):
            states[name] = {k: v.clone() for k, v in module.state_dict().items()}
        with patched(module, ()):
            pass
    return states


def base_states(tiny: TinyModel) -> dict[str, dict[str, torch.Tensor]]:
    return states_with(tiny, Applied(None, None))


def assert_close(ours: dict, reference: dict, tolerance: float = 1e-6) -> int:
    """Compare state dicts; returns how many tensors the comparison covered."""
    for key, expected in reference.items():
        assert (ours[key] - expected).abs().max().item() <= tolerance, key
    return len(reference)


@pytest.mark.parametrize("layout", ["kohya", "peft"])
def test_sd15_lora_equals_diffusers_fusing(tiny_sd15, tmp_path: Path, layout: str) -> None:
    path = tmp_path / "lora.safetensors"
    layers = write_lora(tiny_sd15, path, layout=layout)
    model, clip = handles(tiny_sd15)
    result = apply_lora(read_lora(path), model, clip, 0.7, 0.7)
    assert result.notes == []
    ours, reference = states_with(tiny_sd15, result), fused_by_diffusers(tiny_sd15, path, 0.7)
    for part in ("unet", "clip_l"):
        assert_close(ours[part], reference[part])
    base = base_states(tiny_sd15)
    changed = [k for k in base["unet"] if not torch.equal(base["unet"][k], ours["unet"][k])]
    assert len(changed) == len([name for name in layers if name.startswith(("lora_unet_", "unet."))])  # every layer it has


def test_sdxl_kohya_with_original_unet_names_equals_diffusers_fusing(tiny_sdxl, tmp_path: Path) -> None:
    path = tmp_path / "sdxl.safetensors"
    layers = write_lora(tiny_sdxl, path, original_unet_names=True)
    assert any(name.startswith("lora_unet_input_blocks_") for name in layers)
    assert any(name.startswith("lora_te2_") for name in layers) and any(name.startswith("lora_te1_") for name in layers)
    model, clip = handles(tiny_sdxl)
    result = apply_lora(read_lora(path), model, clip, 1.3, 0.4)
    assert result.notes == []
    ours = states_with(tiny_sdxl, result)
    assert_close(ours["unet"], fused_by_diffusers(tiny_sdxl, path, 1.3)["unet"], 1e-5)
    reference = fused_by_diffusers(tiny_sdxl, path, 0.4)
    for key in ("clip_l", "clip_g"):
        assert_close(ours[key], reference[key], 1e-5)


def expected_delta(kind: str, roles: dict[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """The change a layer makes, written out directly from the formats' definitions."""
    if kind in ("lora", "locon"):
        rank = roles["down"].shape[0]
        delta = roles["up"].reshape(shape[0], rank) @ roles["down"].reshape(rank, -1)
    elif kind == "loha":
        rank = roles["w1_b"].shape[0]
        delta = (roles["w1_a"] @ roles["w1_b"].reshape(rank, -1)) * (roles["w2_a"] @ roles["w2_b"].reshape(rank, -1))
    else:
        rank = roles["k2_b"].shape[0]
        delta = torch.kron(roles["k1"], roles["k2_a"] @ roles["k2_b"].reshape(rank, -1))
    return delta.reshape(shape) * roles["alpha"] / rank


@pytest.mark.parametrize("kind", ["locon", "loha", "lokr"])
def test_lycoris_kinds_follow_their_formulas(tiny_sd15, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.safetensors"
    layers = write_lora(tiny_sd15, path, kind=kind, text=False)
    model, _ = handles(tiny_sd15)
    result = apply_lora(read_lora(path), model, None, -0.8, 0.0)
    assert result.notes == [] and result.clip is None
    ours, base = states_with(tiny_sd15, result)["unet"], base_states(tiny_sd15)["unet"]
    modules = {f"lora_unet_{name.replace('.', '_')}": name for name, _ in tiny_sd15.unet.named_modules()}
    if kind == "locon":
        assert any("resnets" in modules[layer] for layer in layers)  # convolutions of the resnets too
    for layer, roles in layers.items():
        key = modules[layer] + ".weight"
        expected = base[key] - 0.8 * expected_delta(kind, roles, base[key].shape)
        assert (ours[key] - expected).abs().max().item() < 1e-5, key


def test_stacked_loras_add_up_with_their_own_strengths(tiny_sd15, tmp_path: Path) -> None:
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    write_lora(tiny_sd15, first, seed=1)
    write_lora(tiny_sd15, second, seed=2, layout="peft")
    model, clip = handles(tiny_sd15)
    once = apply_lora(read_lora(first), model, clip, 0.5, 1.0)
    twice = apply_lora(read_lora(second), once.model, once.clip, -1.5, 0.25)
    base = base_states(tiny_sd15)
    alone = [states_with(tiny_sd15, apply_lora(read_lora(f), model, clip, 1.0, 1.0)) for f in (first, second)]
    both = states_with(tiny_sd15, twice)
    for part, (s1, s2) in {"unet": (0.5, -1.5), "clip_l": (1.0, 0.25)}.items():
        for key, value in base[part].items():
            expected = value + s1 * (alone[0][part][key] - value) + s2 * (alone[1][part][key] - value)
            assert (both[part][key] - expected).abs().max().item() < 1e-5, key


def test_strength_zero_and_base_handles_see_the_exact_base_weights(tiny_sd15, tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    write_lora(tiny_sd15, path)
    model, clip = handles(tiny_sd15)
    before = base_states(tiny_sd15)
    result = apply_lora(read_lora(path), model, clip, 0.0, 2.0)
    assert result.model is model and result.clip is not clip
    with patched(tiny_sd15.unet, result.model.patches):
        assert all(torch.equal(v, before["unet"][k]) for k, v in tiny_sd15.unet.state_dict().items())
    states_with(tiny_sd15, apply_lora(read_lora(path), model, clip, 3.0, 3.0))  # patch, then restore
    after = base_states(tiny_sd15)
    assert all(torch.equal(after[p][k], before[p][k]) for p in before for k in before[p])
    assert applied(tiny_sd15.unet) == ()


def test_layers_that_fit_nothing_are_reported(tiny_sd15, tmp_path: Path) -> None:
    path = tmp_path / "partial.safetensors"
    layers = write_lora(tiny_sd15, path, text=False)
    layers["lora_unet_no_such_layer"] = next(iter(layers.values()))
    layers["lora_unet_down_blocks_0_attentions_0_proj_in"] = {"up": torch.zeros(3, 2), "down": torch.zeros(2, 5), "alpha": torch.tensor(1.0)}
    save_layers(layers, path)
    result = apply_lora(read_lora(path), handles(tiny_sd15)[0], None, 1.0, 0.0)
    assert len(result.notes) == 2
    assert "1 layers match nothing in this model (e.g. lora_unet_no_such_layer)" in result.notes[0]
    assert "1 layers cannot be applied" in result.notes[1] and "does not fit a weight of shape" in result.notes[1]


def test_dora_layers_are_refused_not_half_applied(tiny_sd15, tmp_path: Path) -> None:
    path = tmp_path / "dora.safetensors"
    layers = write_lora(tiny_sd15, path, text=False)
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    layers[name]["dora"] = torch.ones(32)
    save_layers(layers, path, names={"dora": "dora_scale"})
    result = apply_lora(read_lora(path), handles(tiny_sd15)[0], None, 1.0, 0.0)
    assert result.notes == [f"1 layers cannot be applied to their model layer ({name}: DoRA layers (dora_scale) are not supported)"]
    assert "down_blocks.0.attentions.0.proj_in" not in result.model.patches[0].modules


def test_text_layers_are_left_out_of_a_model_only_load(tiny_sd15, tmp_path: Path) -> None:
    path = tmp_path / "text.safetensors"
    write_lora(tiny_sd15, path)
    result = apply_lora(read_lora(path), handles(tiny_sd15)[0], None, 1.0, 0.0)
    assert result.notes == [] and result.model.patches


def test_a_lora_for_another_family_is_refused(tiny_sd15, tiny_sdxl, tmp_path: Path) -> None:
    path = tmp_path / "sdxl.safetensors"
    write_lora(tiny_sdxl, path, original_unet_names=True)
    with pytest.raises(ModelFormatError, match="sdxl.safetensors: none of its layers fit this model"):
        apply_lora(read_lora(path), *handles(tiny_sd15), 1.0, 1.0)


def test_files_that_are_not_loras_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"model.diffusion_model.conv_in.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ModelFormatError, match="weights.safetensors: not a LoRA file"):
        read_lora(path)
