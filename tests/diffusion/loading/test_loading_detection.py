"""Family detection, prediction-type signals and clear errors for files that are not checkpoints."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffusion.families import ModelFormatError, detect
from diffusion.loading import Dtypes, load_checkpoint, read_state_dict


@pytest.mark.parametrize(
    ("family", "expected"),
    [("sd15", "sd15"), ("sd15-inpaint", "sd15-inpaint"), ("sd2", "sd2"), ("sd2-inpaint", "sd2-inpaint"),
     ("sdxl", "sdxl"), ("sdxl-refiner", "sdxl-refiner")],
)
def test_families_are_told_apart(written, family: str, expected: str) -> None:
    detection = detect(load_file(written[family].file), written[family].file)
    assert (detection.family.id, detection.prediction) == (expected, "eps")


def test_sd2_v_is_recognised_by_its_norm_statistics_without_a_sidecar(tmp_path, written) -> None:
    copy = tmp_path / "sd2v-no-yaml.safetensors"
    copy.write_bytes(written["sd2-v"].file.read_bytes())
    assert not copy.with_suffix(".yaml").exists()
    detection = detect(load_file(copy), copy)
    assert (detection.family.id, detection.prediction) == ("sd2-v", "v")


def test_sidecar_yaml_and_explicit_override_decide_the_prediction(tmp_path, written) -> None:
    copy = tmp_path / "model.safetensors"
    copy.write_bytes(written["sd2"].file.read_bytes())
    state = load_file(copy)
    assert detect(state, copy).prediction == "eps"
    copy.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert (detect(state, copy).family.id, detect(state, copy).prediction) == ("sd2-v", "v")
    assert detect(state, copy, prediction="eps").prediction == "eps"


def test_sdxl_v_prediction_marker_key(written) -> None:
    state = load_file(written["sdxl"].file)
    state["v_pred"] = torch.tensor([])
    state["ztsnr"] = torch.tensor([])
    detection = detect(state, written["sdxl"].file)
    assert (detection.family.id, detection.prediction, detection.zero_terminal_snr) == ("sdxl", "v", True)


def test_garbage_file_gets_an_error_naming_the_file(tmp_path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFormatError, match=r"^garbage\.safetensors: not a readable safetensors file"):
        load_checkpoint(garbage, Dtypes())


def test_truncated_file_gets_an_error_naming_the_file(tmp_path, written) -> None:
    data = written["sd15"].file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"^cut\.safetensors: .*truncated"):
        load_checkpoint(cut, Dtypes())


def test_unknown_tensors_are_described(tmp_path) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"backbone.layer1.weight": torch.zeros(2, 2), "head.bias": torch.zeros(2)}, other)
    with pytest.raises(ModelFormatError, match=r"other\.safetensors: no Stable Diffusion UNet .*backbone, head"):
        load_checkpoint(other, Dtypes())


def test_a_checkpoint_missing_weights_is_refused_not_half_loaded(tmp_path, written) -> None:
    state = load_file(written["sd15"].file)
    del state["model.diffusion_model.out.2.bias"]
    partial = tmp_path / "partial.safetensors"
    save_file(state, partial)
    with pytest.raises(ModelFormatError, match=r"partial\.safetensors: UNet: 1 weights are missing \(e\.g\. conv_out\.bias\)"):
        load_checkpoint(partial, Dtypes())


def test_unsupported_unet_shapes_are_explained(tmp_path, written) -> None:
    state = load_file(written["sd15"].file)
    weight = state["model.diffusion_model.input_blocks.0.0.weight"]
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(weight.shape[0], 8, *weight.shape[2:])
    ip2p = tmp_path / "ip2p.safetensors"
    save_file(state, ip2p)
    with pytest.raises(ModelFormatError, match="8 input channels is not a supported family"):
        load_checkpoint(ip2p, Dtypes())


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_that_run_code_are_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": {"x": _Payload()}}))
    with pytest.raises(ModelFormatError, match=r"^evil\.ckpt: refused: this file needs to run code"):
        read_state_dict(evil)
    assert not (tmp_path / "pwned.txt").exists()


def test_plain_tensor_ckpt_loads_through_weights_only(tmp_path, written) -> None:
    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": load_file(written["sd15"].file), "global_step": 3}, ckpt)
    checkpoint = load_checkpoint(ckpt, Dtypes())
    assert checkpoint.detection.family.id == "sd15"
    assert torch.equal(checkpoint.unet.conv_in.weight, written["sd15"].tiny.unet.conv_in.weight)


def test_other_file_types_are_refused(tmp_path) -> None:
    with pytest.raises(ModelFormatError, match=r"notes\.txt: unsupported model file type '\.txt'"):
        read_state_dict(Path(tmp_path / "notes.txt"))
