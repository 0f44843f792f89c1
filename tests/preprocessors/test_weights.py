"""Annotator weight files: read without running pickle code, unwrapped, found under stand-in names,
and checked against the network they fill; the plain-torch NMS SAM falls back on."""

from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import save_file

from diffusion.families import ModelFormatError
from diffusion.preprocessors import networks
from diffusion.preprocessors.weights import read_weights
from tests.preprocessors.conftest import CONTENTS, run_node, write_annotator


def test_nested_and_prefixed_state_dicts_are_unwrapped(tmp_path) -> None:
    [path] = write_annotator("pidinet", tmp_path)
    weights = read_weights(path)
    assert weights.name == "table5_pidinet.pth"
    published = CONTENTS["pidinet"]()["table5_pidinet.pth"]["state_dict"]
    assert weights.tensors.keys() == {key.removeprefix("module.") for key in published}
    torch.save({"model": {"layer.weight": torch.ones(2)}, "optimizer": {"step": 3}}, tmp_path / "nested.pt")
    assert read_weights(tmp_path / "nested.pt").tensors.keys() == {"layer.weight"}


def test_pickles_that_run_code_are_refused(tmp_path) -> None:
    torch.save({"weight": torch.zeros(1), "args": argparse.Namespace(lr=0.1)}, tmp_path / "ControlNetHED.pth")
    with pytest.raises(ModelFormatError, match=r"ControlNetHED.pth: refused: unpickling it would run code \(argparse.Namespace\)"):
        read_weights(tmp_path / "ControlNetHED.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(ModelFormatError, match="empty.pth: holds no tensors"):
        read_weights(tmp_path / "empty.pth")


def test_missing_tensors_name_the_file(tmp_path) -> None:
    state = CONTENTS["hed"]()["ControlNetHED.pth"]
    del state["block5.projection.weight"]
    torch.save(state, tmp_path / "ControlNetHED.pth")
    with pytest.raises(ModelFormatError, match=r"ControlNetHED.pth: ControlNetHED_Apache2: 1 weights are missing \(e.g. block5.projection.weight\)"):
        networks.hed(read_weights(tmp_path / "ControlNetHED.pth"))


def test_a_safetensors_file_stands_in(runtime, annotators) -> None:
    annotators.mkdir(parents=True)
    save_file(CONTENTS["hed"]()["ControlNetHED.pth"], annotators / "ControlNetHED.safetensors")
    assert run_node(runtime, "HEDPreprocessor", resolution=64).shape == (1, 64, 64, 3)


def test_plain_batched_nms_keeps_the_best_box_of_each_overlap() -> None:
    from diffusion.preprocessors.nms import batched_nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [1, 1, 11, 11], [0, 0, 10, 10], [21, 21, 31, 31]])
    scores = torch.tensor([0.9, 0.7, 0.8, 0.6, 0.95])
    categories = torch.tensor([0, 0, 0, 1, 0])
    assert batched_nms(boxes, scores, categories, 0.5).tolist() == [4, 0, 3]
    assert batched_nms(boxes, scores, categories, 0.99).tolist() == [4, 0, 2, 1, 3]
    assert batched_nms(boxes[:0], scores[:0], categories[:0], 0.5).tolist() == []
