from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from stages.ngrams import ngram_hashes, word_hashes


def test_words_are_case_folded_whitespace_split_and_hashed_stably() -> None:
    hashes, counts = word_hashes(["  Hello\tworld ", "", "hello"])
    assert counts.tolist() == [2, 0, 1]
    expected = int.from_bytes(hashlib.blake2b(b"hello", digest_size=8).digest(), "little")
    assert int(hashes[0]) == expected == int(hashes[2])  # the same in every process, so signatures can be stored


def test_ngrams_stay_inside_their_text() -> None:
    ngrams = ngram_hashes(["a b c", "d", "", "A  B"], 2)
    assert ngrams.offsets.tolist() == [0, 2, 2, 2, 3]
    assert ngrams.of(3).tolist() == ngrams.of(0)[:1].tolist()  # "a b" in both
    assert ngrams.of(0)[0] != ngrams.of(0)[1]
    reordered = ngram_hashes(["b a"], 2)
    assert reordered.hashes[0] != ngrams.of(3)[0]  # word order matters


def test_null_text_and_bad_n_are_refused() -> None:
    with pytest.raises(ValueError, match="text 1 is null"):
        ngram_hashes(pa.array(["a", None]), 1)
    with pytest.raises(ValueError, match="n must be"):
        ngram_hashes(["a"], 0)
