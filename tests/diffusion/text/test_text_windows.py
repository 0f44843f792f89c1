"""Prompts cut into 77-token windows, with weights and embedding references."""

from __future__ import annotations

import logging

import pytest
import torch

from diffusion.tokenizer import BOS, EOS, ClipTokenizer

A, B = 320, 321  # "a", "b"
L = ClipTokenizer.for_encoder("clip_l")
G = ClipTokenizer.for_encoder("clip_g")


def ids(window):
    return [token for token, _ in window]


def test_pad_policy():
    assert L.pad_id == EOS
    assert G.pad_id == 0 and ClipTokenizer.for_encoder("clip_h").pad_id == 0


@pytest.mark.parametrize("tokenizer", [L, G])
def test_empty_prompt(tokenizer):
    windows = tokenizer.tokenize("")
    assert windows == [tokenizer.empty_window()]
    assert windows[0] == [(BOS, 1.0), (EOS, 1.0)] + [(tokenizer.pad_id, 1.0)] * 75


def test_window_layout():
    (window,) = G.tokenize("a photo of a cat")
    assert ids(window) == [BOS, 320, 1125, 539, 320, 2368, EOS] + [0] * 70
    assert all(weight == 1.0 for _, weight in window)
    (window,) = L.tokenize("a photo of a cat")
    assert ids(window) == [BOS, 320, 1125, 539, 320, 2368, EOS] + [EOS] * 70


def test_75_tokens_fit_one_window():
    (window,) = L.tokenize("a " * 75)
    assert ids(window) == [BOS] + [A] * 75 + [EOS]


def test_76_tokens_need_two_windows():
    first, second = L.tokenize("a " * 76)
    assert ids(first) == [BOS] + [A] * 75 + [EOS]
    assert ids(second) == [BOS, A, EOS] + [EOS] * 74


def test_small_group_moves_whole_to_the_next_window():
    first, second = G.tokenize("a " * 73 + "(b b b b:1)")
    assert ids(first) == [BOS] + [A] * 73 + [EOS, 0, 0]
    assert ids(second) == [BOS] + [B] * 4 + [EOS] + [0] * 71


def test_large_group_splits_at_the_boundary():
    first, second = G.tokenize("a " * 70 + "(b b b b b b b b b b:1)")
    assert ids(first) == [BOS] + [A] * 70 + [B] * 5 + [EOS]
    assert ids(second) == [BOS] + [B] * 5 + [EOS] + [0] * 70


def test_group_ending_exactly_at_the_boundary_stays():
    (window,) = G.tokenize("a " * 71 + "(b b b b:1)")
    assert ids(window) == [BOS] + [A] * 71 + [B] * 4 + [EOS]


def test_weights_follow_the_tokens():
    first, second = L.tokenize("a " * 74 + "(b b:1.5)")
    assert first[1:75] == [(A, 1.0)] * 74
    assert first[75:] == [(EOS, 1.0), (EOS, 1.0)]
    assert second[:4] == [(BOS, 1.0), (B, 1.5), (B, 1.5), (EOS, 1.0)]


def test_a_piece_is_one_group_not_one_group_per_word():
    word = L.ids("sdflow")
    assert len(word) == 2
    first, second = L.tokenize("a " * 74 + "sdflow")
    # one large group of 76 tokens splits inside the word; per-word groups would move the word whole
    assert ids(first) == [BOS] + [A] * 74 + word[:1] + [EOS]
    assert ids(second)[:3] == [BOS] + word[1:] + [EOS]


class Lookup:
    def __init__(self, **known):
        self.known = known
        self.asked = []

    def __call__(self, name):
        self.asked.append(name)
        return self.known.get(name)


def test_embedding_vectors_are_tokens():
    vectors = torch.randn(2, 8)
    lookup = Lookup(style=vectors)
    (window,) = L.tokenize("a (embedding:style b:1.2)", lookup)
    assert window[0] == (BOS, 1.0) and window[1] == (A, 1.0)
    assert torch.equal(window[2][0], vectors[0]) and torch.equal(window[3][0], vectors[1])
    assert window[2][1] == window[3][1] == 1.2
    assert window[4:6] == [(B, 1.2), (EOS, 1.0)]


def test_embedding_with_trailing_commas():
    lookup = Lookup(style=torch.randn(1, 8))
    (window,) = L.tokenize("a embedding:style,, b", lookup)
    assert lookup.asked == ["style,,", "style"]
    assert torch.is_tensor(ids(window)[2])
    assert ids(window)[3:6] == L.ids(",, b") + [EOS]


def test_missing_embedding_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        windows = L.tokenize("a embedding:nothere b", Lookup())
    assert windows == L.tokenize("a b")
    assert "nothere" in caplog.text


def test_embedding_text_without_lookup_is_plain_text():
    text = L.ids("embedding:x")
    (window,) = L.tokenize("embedding:x")
    assert ids(window) == [BOS] + text + [EOS] * (76 - len(text))


def test_large_embedding_splits_like_words():
    lookup = Lookup(big=torch.randn(10, 8))
    first, second = L.tokenize("a " * 70 + "embedding:big", lookup)
    assert ids(first)[:71] == [BOS] + [A] * 70 and ids(first)[76] == EOS
    assert all(torch.is_tensor(t) for t in ids(first)[71:76])
    assert all(torch.is_tensor(t) for t in ids(second)[1:6]) and ids(second)[6] == EOS
