"""The shipped CLIP tokenizer files and the tokenizer loaded from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from diffusion.assets.generate_tokenizer import DEFAULT_OUTDIR, MERGE_COUNT
from diffusion.tokenizer import TOKENIZER_DIR, ClipTokenizer, load_hf_tokenizer

REPO = Path(__file__).resolve().parents[3]


def test_generator_reproduces_the_shipped_files(tmp_path):
    subprocess.run([sys.executable, "-m", "diffusion.assets.generate_tokenizer", str(tmp_path)], cwd=REPO, check=True)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (TOKENIZER_DIR / name).read_bytes(), name
    assert DEFAULT_OUTDIR == TOKENIZER_DIR


def test_shipped_vocabulary_layout():
    vocab = json.loads((TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))
    merges = (TOKENIZER_DIR / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == 49408 and sorted(vocab.values()) == list(range(49408))
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert merges[0] == "#version: 0.2" and len(merges) == MERGE_COUNT + 1 == 48895
    assert vocab["".join(merges[1].split())] == 512


def test_a_photo_of_a_cat():
    tokenizer = load_hf_tokenizer()
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.model_max_length == 77
    assert ClipTokenizer.for_encoder("clip_l").ids("a photo of a cat") == [320, 1125, 539, 320, 2368]


def test_tokenizer_is_loaded_once():
    assert load_hf_tokenizer() is load_hf_tokenizer()


def test_text_is_lowercased_and_whitespace_cleaned_like_clip():
    ids = ClipTokenizer.for_encoder("clip_l").ids
    assert ids("  A\tPHOTO\n\nof   a CAT ") == ids("a photo of a cat")
    assert ids("it'S") == ids("it's") == [585, 568]
    assert ids("") == ids(" \n ") == []


def test_non_ascii_text():
    tokenizer = load_hf_tokenizer()
    ids = ClipTokenizer.for_encoder("clip_l").ids
    # accents are kept (NFC), byte-encoded; composed and decomposed forms agree
    assert tokenizer.convert_ids_to_tokens(ids("Café")) == ["cafÃ©</w>"]
    assert ids("Cafe\u0301") == ids("café")
    # a run of CJK letters is one word, split into byte-level pieces
    assert tokenizer.decode(ids("日本語")) == "日本語"
    # no HTML unescaping
    assert ids("&amp;") == ids("&") + ids("amp") + ids(";")
