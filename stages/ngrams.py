"""Word n-gram hashes of many texts at once, the shared ground of near-duplicate removal and decontamination.

A text is lowercased and split on whitespace (punctuation stays part of its word, so `x^2+1` and `x^2-1`
differ). Each distinct word gets a stable 64-bit hash (blake2b, the same in every process and every round);
the hash of an n-gram is a fixed random linear combination of its words' hashes passed through the
MurmurHash3 64-bit finaliser, computed for all texts in a few numpy passes rather than per n-gram in Python.
A text with fewer than n words has no n-grams. `skip_words` drops given words before n-grams are formed (the
n-grams then span the words around them). Nothing here decides what counts as a duplicate or a leak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Odd 64-bit multipliers, one per position in an n-gram (drawn once from a fixed seed; changing them changes
# every stored signature, so they are constants of the format).
_POSITION_MULTIPLIERS = np.random.default_rng(20240607).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(
    2
) + np.uint64(1)
MAX_NGRAM = len(_POSITION_MULTIPLIERS)


@dataclass(frozen=True)
class NgramHashes:
    """The n-gram hashes of texts: text i owns `hashes[offsets[i]:offsets[i + 1]]` (in text order)."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = number of texts + 1
    word_counts: np.ndarray  # int64, words per text

    def of(self, index: int) -> np.ndarray:
        return self.hashes[self.offsets[index] : self.offsets[index + 1]]


def word_hashes(texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The stable 64-bit hash of every word of every text, flattened, and each text's word count."""
    array = string_array(texts)
    if array.null_count:
        raise ValueError(f"ngrams: text {pc.index(array.is_null(), True).as_py()} is null")
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.utf8_lower(array)))
    flat = words.flatten()
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    nonempty = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    if not nonempty.all():  # an all-whitespace text splits into one empty word
        owner = np.repeat(np.arange(len(counts)), counts)
        counts = np.bincount(owner[nonempty], minlength=len(counts)).astype(np.int64)
        flat = flat.filter(pa.array(nonempty))
    encoded = flat.dictionary_encode()
    vocabulary = encoded.dictionary.to_pylist()
    vocabulary_hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") for word in vocabulary),
        dtype=np.uint64,
        count=len(vocabulary),
    )
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return vocabulary_hashes[indices], counts


def string_array(texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Texts as one Arrow string array (sliceable without copying)."""
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks() if texts.num_chunks else pa.array([], type=pa.string())
    return texts if isinstance(texts, pa.Array) else pa.array(list(texts), type=pa.string())


def ngram_hashes(
    texts: Sequence[str] | pa.Array | pa.ChunkedArray,
    n: int,
    skip_words: np.ndarray | None = None,
) -> NgramHashes:
    """All word n-grams of every text, hashed to uint64; words whose hash is in `skip_words` are left out first
    (`word_counts` then counts the words kept)."""
    if not 1 <= n <= MAX_NGRAM:
        raise ValueError(f"ngrams: n must be between 1 and {MAX_NGRAM}, got {n}")
    tokens, counts = word_hashes(texts)
    if skip_words is not None and len(skip_words):
        keep = ~np.isin(tokens, skip_words)
        owner = np.repeat(np.arange(len(counts)), counts)
        counts = np.bincount(owner[keep], minlength=len(counts)).astype(np.int64)
        tokens = tokens[keep]
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    per_text = np.maximum(counts - n + 1, 0)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(per_text, out=offsets[1:])
    # Position i of the flat token array starts an n-gram when the n-gram ends inside the same text.
    within_text = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], per_text)
    positions = np.repeat(starts[:-1], per_text) + within_text
    combined = np.zeros(len(positions), dtype=np.uint64)
    for j in range(n):
        combined += tokens[positions + j] * _POSITION_MULTIPLIERS[j]
    return NgramHashes(fmix64(combined), offsets, counts)


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, element-wise (wrapping uint64 arithmetic is the intended modulo)."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, element-wise, as datasketch's `affine32` MinHash scheme applies it."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))
