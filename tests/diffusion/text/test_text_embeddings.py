"""Embedding files: lookup in folders, the formats ComfyUI reads, and refusal of unsafe files."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from diffusion.embeddings import EmbeddingFolders, find_embedding, read_embedding_file, select_vectors


class CodePayload:
    """Pickles as a call to os.system: loading it must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


@pytest.fixture
def folders(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    return first, second


def test_a1111_pt_file(folders):
    vectors = torch.randn(3, 64)
    a1111 = {"string_to_param": {"*": torch.nn.Parameter(vectors.clone())}, "name": "style", "step": 100}
    torch.save(a1111, folders[0] / "style.pt")
    found = EmbeddingFolders(folders, "clip_l", 64)("style")
    assert found.shape == (3, 64) and torch.equal(found, vectors) and not found.requires_grad


def test_sdxl_safetensors_picks_the_encoder_key(folders):
    l, g = torch.randn(2, 64), torch.randn(2, 96)
    save_file({"clip_g": g, "clip_l": l}, folders[0] / "xl.safetensors")
    assert torch.equal(EmbeddingFolders(folders, "clip_l", 64)("xl"), l)
    assert torch.equal(EmbeddingFolders(folders, "clip_g", 96)("xl"), g)


def test_other_dicts_give_their_first_value(folders):
    params = torch.randn(4, 64)
    save_file({"emb_params": params}, folders[0] / "plain.safetensors")
    assert torch.equal(EmbeddingFolders(folders, "clip_l", 64)("plain"), params)
    # an SD1 file used with an SDXL clip_g: first value, whatever its size (the encoder drops it)
    assert EmbeddingFolders(folders, "clip_g", 96)("plain").shape == (4, 64)


def test_list_format_takes_tensors_of_the_hidden_size():
    a, b, c = torch.randn(1, 2, 64), torch.randn(5, 96), torch.randn(3, 64)
    content = [{"x": a, "y": b}, {"z": c}]
    assert torch.equal(select_vectors(content, "clip_l", 64), torch.cat([a.reshape(-1, 64), c]))
    assert torch.equal(select_vectors(content, "clip_g", 96), b)
    assert select_vectors([{"x": a}], "clip_g", 96) is None


def test_vectors_are_two_dimensional():
    assert select_vectors({"emb_params": torch.randn(64)}, "clip_l", 64).shape == (1, 64)
    assert select_vectors({"emb_params": torch.randn(1, 2, 64)}, "clip_l", 64).shape == (2, 64)
    assert select_vectors({}, "clip_l", 64) is None and select_vectors("text", "clip_l", 64) is None


def test_lookup_order(folders):
    first, second = folders
    torch.save({"emb_params": torch.zeros(1, 4)}, second / "a.pt")
    assert find_embedding("a", folders) == (second / "a.pt").resolve()
    save_file({"emb_params": torch.zeros(1, 4)}, second / "a.safetensors")
    assert find_embedding("a", folders) == (second / "a.safetensors").resolve()  # .safetensors before .pt
    torch.save({"emb_params": torch.zeros(1, 4)}, first / "a.bin")
    assert find_embedding("a", folders) == (first / "a.bin").resolve()  # folders in order
    torch.save({"emb_params": torch.zeros(1, 4)}, second / "a")
    assert find_embedding("a", [second]) == (second / "a").resolve()  # the name as given first
    assert find_embedding("a.pt", folders) == (second / "a.pt").resolve()
    assert find_embedding("missing", folders) is None and find_embedding("", folders) is None


def test_subfolders_are_searched_after_the_folders(folders):
    first, second = folders
    (first / "z" / "deep").mkdir(parents=True)
    (first / "y").mkdir()
    torch.save({"emb_params": torch.zeros(1, 4)}, first / "z" / "deep" / "b.pt")
    assert find_embedding("sub/b", folders) is None
    assert find_embedding("z/deep/b", folders) == (first / "z" / "deep" / "b.pt").resolve()
    assert find_embedding("b", folders) == (first / "z" / "deep" / "b.pt").resolve()
    torch.save({"emb_params": torch.zeros(1, 4)}, first / "y" / "b.pt")
    assert find_embedding("b", folders) == (first / "y" / "b.pt").resolve()  # sorted order
    torch.save({"emb_params": torch.zeros(1, 4)}, second / "b.safetensors")
    assert find_embedding("b", folders) == (second / "b.safetensors").resolve()  # any folder itself first


def test_names_leaving_the_folder_are_not_found(folders, tmp_path, caplog):
    torch.save({"emb_params": torch.zeros(1, 64)}, tmp_path / "outside.pt")
    (folders[0] / "link.pt").symlink_to(tmp_path / "outside.pt")
    (folders[0] / "escape").symlink_to(tmp_path, target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        assert find_embedding("../outside", folders) is None
        assert find_embedding("outside", folders) is None  # symlinked folders are not searched
        assert find_embedding(str(tmp_path / "outside"), folders) is None
        assert EmbeddingFolders(folders, "clip_l", 64)("link") is None
    assert caplog.text.count("refused") == 3


def test_code_in_a_pickle_is_refused_and_never_run(folders, tmp_path, caplog):
    marker = tmp_path / "pwned"
    torch.save({"emb_params": CodePayload(marker)}, folders[0] / "evil.pt")
    with open(folders[0] / "evil2.bin", "wb") as f:
        pickle.dump({"emb_params": CodePayload(marker)}, f, protocol=2)
    with caplog.at_level(logging.WARNING):
        assert EmbeddingFolders(folders, "clip_l", 64)("evil") is None
        assert EmbeddingFolders(folders, "clip_l", 64)("evil2") is None
    assert not marker.exists()
    assert caplog.text.count("refused") == 2 and "unpickled" in caplog.text


def test_damaged_file_warns(folders, caplog):
    (folders[0] / "broken.safetensors").write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING):
        assert EmbeddingFolders(folders, "clip_l", 64)("broken") is None
    assert "could not be read" in caplog.text


def test_files_are_cached_until_they_change(folders):
    path = folders[0] / "c.safetensors"
    save_file({"emb_params": torch.ones(1, 64)}, path)
    first = read_embedding_file(path)
    assert read_embedding_file(path) is first
    save_file({"emb_params": torch.ones(2, 64)}, path)
    assert read_embedding_file(path)["emb_params"].shape == (2, 64)
