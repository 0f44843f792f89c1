"""Build the CLIP tokenizer files (vocab.json, merges.txt) from open_clip's BPE vocabulary.

The CLIP vocabulary is derived from `bpe_simple_vocab_16e6.txt.gz` the way OpenAI's tokenizer
derives it: merges are lines 1..48894 of the file; the vocabulary is the 256 byte symbols, the
same symbols with `</w>`, every merge joined, then `<|startoftext|>` and `<|endoftext|>`
(49408 entries). Only the file is read: the open_clip package itself is never imported.

    python -m diffusion.assets.generate_tokenizer [OUTDIR]
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

DEFAULT_OUTDIR = Path(__file__).resolve().parent / "clip_tokenizer"
MERGE_COUNT = 49152 - 256 - 2
SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def bpe_source() -> Path:
    """Locate open_clip's BPE file without executing the package."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip_torch is not installed (pip install --no-deps open_clip_torch)")
    return Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"


def byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE uses for the bytes, in CLIP's vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]


def build(source: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Return the vocabulary (token -> id) and the merges read from the BPE file."""
    lines = gzip.decompress(source.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + list(SPECIAL_TOKENS)
    return {token: i for i, token in enumerate(tokens)}, merges


def write(outdir: Path, source: Path | None = None) -> None:
    """Write vocab.json and merges.txt into `outdir`."""
    vocab, merges = build(source or bpe_source())
    outdir.mkdir(parents=True, exist_ok=True)
    vocab_text = json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n"
    (outdir / "vocab.json").write_text(vocab_text, encoding="utf-8")
    text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (outdir / "merges.txt").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    write(Path(args[0]) if args else DEFAULT_OUTDIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
