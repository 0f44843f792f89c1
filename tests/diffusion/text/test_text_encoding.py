"""Encoding prompts with tiny CLIP models, checked against transformers' own outputs."""

from __future__ import annotations

import copy
import dataclasses
import logging

import pytest
import torch
from safetensors.torch import save_file

from diffusion.clip_encoding import ClipEncoder, encode, encode_windows, tokenize
from diffusion.families import CLIP_G_REFINER
from diffusion.tokenizer import BOS, EOS, ClipTokenizer

from .conftest import HIDDEN_G, HIDDEN_L, PROJECTION

TOL = dict(atol=1e-6, rtol=0)


def window_ids(tokenizer: ClipTokenizer, prompt: str) -> torch.Tensor:
    return torch.tensor([[token for token, _ in window] for window in tokenizer.tokenize(prompt)])


def run(model, ids: torch.Tensor):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


def test_sd1_default_is_the_last_normed_layer(sd1, clip_l):
    cond, pooled = encode(sd1, "a photo of a cat")
    expected = run(clip_l, window_ids(sd1[0].tokenizer, "a photo of a cat"))
    assert cond.shape == (1, 77, HIDDEN_L) and pooled.shape == (1, HIDDEN_L)
    assert cond.dtype == pooled.dtype == torch.float32 and cond.device.type == "cpu"
    torch.testing.assert_close(cond, expected.last_hidden_state, **TOL)
    torch.testing.assert_close(pooled, expected.pooler_output, **TOL)


def test_sd2_default_is_the_penultimate_layer_normed(sd2, clip_h):
    cond, pooled = encode(sd2, "a photo of a cat")
    ids = window_ids(sd2[0].tokenizer, "a photo of a cat")
    assert ids[0, -1] == 0  # OpenCLIP pads with "!"
    expected = run(clip_h, ids)
    torch.testing.assert_close(cond, clip_h.final_layer_norm(expected.hidden_states[-2]), **TOL)
    torch.testing.assert_close(pooled, expected.pooler_output, **TOL)


def test_sdxl_uses_penultimate_layers_without_norm(sdxl, clip_l, clip_g):
    cond, pooled = encode(sdxl, "a photo of a cat")
    out_l = run(clip_l, window_ids(sdxl[0].tokenizer, "a photo of a cat"))
    out_g = run(clip_g, window_ids(sdxl[1].tokenizer, "a photo of a cat"))
    assert cond.shape == (1, 77, HIDDEN_L + HIDDEN_G) and pooled.shape == (1, PROJECTION)
    torch.testing.assert_close(cond[..., :HIDDEN_L], out_l.hidden_states[-2], **TOL)
    torch.testing.assert_close(cond[..., HIDDEN_L:], out_g.hidden_states[-2], **TOL)
    torch.testing.assert_close(pooled, out_g.text_embeds, **TOL)


def test_refiner_is_clip_g_alone(clip_g):
    cond, pooled = encode((ClipEncoder.from_slot(CLIP_G_REFINER, clip_g),), "a photo of a cat")
    expected = run(clip_g, window_ids(ClipTokenizer.for_encoder("clip_g"), "a photo of a cat"))
    torch.testing.assert_close(cond, expected.hidden_states[-2], **TOL)
    torch.testing.assert_close(pooled, expected.text_embeds, **TOL)


def test_clip_skip(sd1, sdxl, clip_l):
    out = run(clip_l, window_ids(sd1[0].tokenizer, "a cat"))
    norm = clip_l.final_layer_norm
    torch.testing.assert_close(encode(sd1, "a cat", layer=-1)[0], out.last_hidden_state, **TOL)
    torch.testing.assert_close(encode(sd1, "a cat", layer=-2)[0], norm(out.hidden_states[-2]), **TOL)
    torch.testing.assert_close(encode(sd1, "a cat", layer=-3)[0], norm(out.hidden_states[-3]), **TOL)
    torch.testing.assert_close(encode(sd1, "a cat", layer=-4)[0], out.last_hidden_state, **TOL)  # beyond depth
    sdxl_cond = encode(sdxl, "a cat", layer=-1)[0]
    torch.testing.assert_close(sdxl_cond[..., :HIDDEN_L], out.hidden_states[-1], **TOL)  # not normed
    with pytest.raises(ValueError):
        encode(sd1, "a cat", layer=1)


def test_weights_move_away_from_the_empty_prompt(sd1, clip_l):
    tokenizer = sd1[0].tokenizer
    (window,) = tokenizer.tokenize("a (cat:1.5) ((dog))")
    ids = torch.tensor([[t for t, _ in window], [t for t, _ in tokenizer.empty_window()]])
    out = run(clip_l, ids).last_hidden_state
    z, z_empty = out[0].clone(), out[1]
    for j, (_, weight) in enumerate(window):
        if weight != 1.0:
            z[j] = (z[j] - z_empty[j]) * weight + z_empty[j]
    cond, pooled = encode(sd1, "a (cat:1.5) ((dog))")
    assert [w for _, w in window[1:5]] == [1.0, 1.5, 1.1 * 1.1, 1.0]
    torch.testing.assert_close(cond[0], z, **TOL)
    torch.testing.assert_close(pooled[0], out[0, 4], **TOL)  # the pooled output is never weighted
    assert not torch.allclose(cond, encode(sd1, "a cat dog")[0])


def test_two_windows_concatenate_and_pool_the_first(sd1, sdxl, clip_l):
    prompt = "a " * 74 + "cat " * 10
    ids = window_ids(sd1[0].tokenizer, prompt)
    assert ids.shape == (2, 77)
    out = run(clip_l, ids)
    cond, pooled = encode(sd1, prompt)
    assert cond.shape == (1, 154, HIDDEN_L)
    torch.testing.assert_close(cond[0, :77], out.last_hidden_state[0], **TOL)
    torch.testing.assert_close(cond[0, 77:], out.last_hidden_state[1], **TOL)
    torch.testing.assert_close(pooled[0], out.pooler_output[0], **TOL)
    assert encode(sdxl, prompt)[0].shape == (1, 154, HIDDEN_L + HIDDEN_G)


def test_sdxl_text_l_and_text_g_are_balanced(sdxl):
    long, short = "a " * 80, "a cat"
    l_windows, g_windows = tokenize(sdxl, {"clip_l": long, "clip_g": short})
    assert len(l_windows) == len(g_windows) == 2
    assert g_windows[1] == ClipTokenizer.for_encoder("clip_g").empty_window()
    l_windows, g_windows = tokenize(sdxl, {"clip_l": short, "clip_g": long})
    assert len(l_windows) == 2 and l_windows[1] == ClipTokenizer.for_encoder("clip_l").empty_window()
    cond, pooled = encode(sdxl, {"clip_l": short, "clip_g": long})
    assert cond.shape == (1, 154, HIDDEN_L + HIDDEN_G)
    empty_l, _ = encode_windows(sdxl[0], [ClipTokenizer.for_encoder("clip_l").empty_window()])
    torch.testing.assert_close(cond[:, 77:, :HIDDEN_L], empty_l, **TOL)
    torch.testing.assert_close(pooled, encode(sdxl[1:], long)[1], **TOL)


def embedded_reference(model, ids: torch.Tensor, vectors: torch.Tensor):
    """The model's outputs with `vectors` as extra vocabulary entries, computed on a copy."""
    extended = copy.deepcopy(model)
    table = extended.get_input_embeddings().weight
    extended.set_input_embeddings(torch.nn.Embedding.from_pretrained(torch.cat([table, vectors])))
    return run(extended, ids)


def test_embedding_vectors_encode_as_given(sd1, clip_l, tmp_path):
    vectors = torch.randn(2, HIDDEN_L)
    torch.save({"string_to_param": {"*": vectors}}, tmp_path / "style.pt")
    before = {k: v.clone() for k, v in clip_l.state_dict().items()}
    cond, pooled = encode(sd1, "a embedding:style cat", embedding_dirs=[tmp_path])
    ids = torch.tensor([[BOS, 320, 49408, 49409, 2368, EOS] + [EOS] * 71])
    expected = embedded_reference(clip_l, ids, vectors)
    torch.testing.assert_close(cond[0], expected.last_hidden_state[0], **TOL)
    torch.testing.assert_close(pooled[0], expected.last_hidden_state[0, 5], **TOL)
    with torch.inference_mode():
        assert torch.equal(encode(sd1, "a embedding:style cat", embedding_dirs=[tmp_path])[0], cond)
    assert clip_l.get_input_embeddings().weight.shape[0] == 49408
    assert all(torch.equal(v, before[k]) for k, v in clip_l.state_dict().items())


def test_sdxl_embeddings_per_encoder(sdxl, clip_g, tmp_path):
    g = torch.randn(3, HIDDEN_G)
    save_file({"clip_l": torch.randn(3, HIDDEN_L), "clip_g": g}, tmp_path / "xl.safetensors")
    cond, pooled = encode(sdxl, "embedding:xl, a cat", embedding_dirs=[tmp_path])
    ids = torch.tensor([[BOS, 49408, 49409, 49410, 267, 320, 2368, EOS] + [0] * 69])
    expected = embedded_reference(clip_g, ids, g)
    torch.testing.assert_close(cond[0, :, HIDDEN_L:], expected.hidden_states[-2][0], **TOL)
    torch.testing.assert_close(pooled, clip_g.text_projection(expected.last_hidden_state[:, 7]), **TOL)


def test_missing_embedding_is_skipped(sd1, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        cond, _ = encode(sd1, "a embedding:nothere cat", embedding_dirs=[tmp_path])
    assert "nothere" in caplog.text
    torch.testing.assert_close(cond, encode(sd1, "a cat")[0], **TOL)


def test_embedding_of_another_size_is_dropped(sd1, tmp_path, caplog):
    save_file({"clip_g": torch.randn(2, HIDDEN_G)}, tmp_path / "g_only.safetensors")
    with caplog.at_level(logging.WARNING):
        cond, _ = encode(sd1, "a embedding:g_only cat", embedding_dirs=[tmp_path])
    assert "size 96" in caplog.text
    torch.testing.assert_close(cond, encode(sd1, "a cat")[0], **TOL)


def test_bad_pickle_is_refused_while_encoding(sd1, tmp_path, caplog):
    (tmp_path / "evil.pt").write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with caplog.at_level(logging.WARNING):
        cond, _ = encode(sd1, "a embedding:evil cat", embedding_dirs=[tmp_path])
    assert "refused" in caplog.text
    torch.testing.assert_close(cond, encode(sd1, "a cat")[0], **TOL)


def test_inference_mode_and_other_dtypes(sd1, clip_l):
    cond, pooled = encode(sd1, "a (cat:1.2)")
    with torch.inference_mode():
        inferred, _ = encode(sd1, "a (cat:1.2)")
    assert inferred.is_inference() and torch.equal(inferred, cond)
    double = dataclasses.replace(sd1[0], model=copy.deepcopy(clip_l).double())
    cond64, pooled64 = encode([double], "a (cat:1.2)")
    assert cond64.dtype == pooled64.dtype == torch.float32
    torch.testing.assert_close(cond64, cond, atol=1e-4, rtol=0)
