from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from configs.schema import DedupConfig
from stages.dedup import SIGNATURES_SCHEMA, lsh_bands, near_duplicates, signatures_of, sketch, sketch_name
from stages.ngrams import ngram_hashes

BASE = "first we add 23 and 45 to get 68 then we subtract 8 from 68 which leaves 60 so the answer is 60"
# The last word changed: 1 of 19 five-word shingles differs, exact Jaccard 18/20 = 0.9.
NEAR = BASE.removesuffix("60") + "sixty"
OTHER = "the train covers 120 km in 2 hours so its speed is 60 km per hour and the answer is 60"


def _documents(rows: list[tuple[str, int, str]]) -> pa.Table:
    return pa.table(
        {
            "problem_id": pa.array([r[0] for r in rows], type=pa.string()),
            "sample_idx": pa.array([r[1] for r in rows], type=pa.int32()),
            "completion": pa.array([r[2] for r in rows], type=pa.string()),
        }
    )


def _exact_jaccard(a: str, b: str, n: int = 5) -> float:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def test_bulk_signatures_equal_datasketch_minhash_of_the_same_shingles() -> None:
    config = DedupConfig(num_perm=64, seed=7)
    texts = [BASE, OTHER, "too short"]
    sketches = sketch(texts, config)
    assert sketches.eligible.tolist() == [True, True, False]
    shingles = ngram_hashes(texts, config.shingle_words)
    for i in (0, 1):
        reference = MinHash(num_perm=64, seed=7, hashfunc=lambda value: value, scheme="affine32")
        reference.update_batch([int(h) >> 32 for h in shingles.of(i)])
        assert np.array_equal(reference.hashvalues, sketches.signatures[i])
    assert not sketches.signatures[2].any()


def test_bands_make_a_pair_at_the_threshold_a_candidate_almost_surely() -> None:
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128
        assert 1 - (1 - threshold**rows) ** bands >= 0.99
        assert 1 - (1 - threshold ** (rows + 1)) ** (128 // (rows + 1)) < 0.99  # the most selective such bands


def test_near_duplicate_of_the_same_problem_is_dropped_with_its_representative() -> None:
    assert _exact_jaccard(BASE, NEAR) == 0.9
    documents = _documents([("p1", 0, BASE), ("p1", 1, NEAR), ("p1", 2, OTHER), ("p1", 3, NEAR)])
    result = near_duplicates(documents, DedupConfig(), round_id=3)
    assert result.duplicate_of == [None, "duplicate_of:p1/0", None, "duplicate_of:p1/0"]
    assert result.signatures.schema == SIGNATURES_SCHEMA
    assert [(r["round"], r["sample_idx"]) for r in result.signatures.to_pylist()] == [(3, 0), (3, 2)]


def test_threshold_is_applied_to_exact_jaccard() -> None:
    documents = _documents([("p1", 0, BASE), ("p1", 1, NEAR)])
    similarity = _exact_jaccard(BASE, NEAR)
    above = near_duplicates(documents, DedupConfig(threshold=similarity - 0.01), round_id=1)
    below = near_duplicates(documents, DedupConfig(threshold=similarity + 0.01), round_id=1)
    assert above.duplicate_of[1] == "duplicate_of:p1/0"
    assert below.duplicate_of[1] is None


def test_scope_problem_never_matches_across_problems_but_global_does() -> None:
    documents = _documents([("p1", 0, BASE), ("p2", 0, NEAR), ("p3", 0, BASE)])
    assert near_duplicates(documents, DedupConfig(), round_id=1).duplicate_of == [None, None, None]
    global_scope = near_duplicates(documents, DedupConfig(scope="global"), round_id=1)
    assert global_scope.duplicate_of == [None, "duplicate_of:p1/0", "duplicate_of:p1/0"]


def test_short_completions_are_only_compared_exactly_within_their_problem() -> None:
    documents = _documents(
        [("p1", 0, "46"), ("p2", 0, "46"), ("p1", 1, " 46 "), ("p1", 2, "the answer is 46"), ("p2", 1, "47")]
    )
    for scope in ("problem", "global"):
        result = near_duplicates(documents, DedupConfig(scope=scope), round_id=1)
        assert result.duplicate_of == [None, None, "duplicate_of:p1/0", None, None]
        assert result.signatures.num_rows == 0


def test_earlier_rounds_are_matched_through_their_stored_signatures() -> None:
    round1 = near_duplicates(_documents([("p1", 4, BASE), ("p2", 0, OTHER)]), DedupConfig(), round_id=1)
    round2 = near_duplicates(
        _documents([("p1", 0, BASE), ("p1", 1, OTHER), ("p2", 3, OTHER.upper())]),
        DedupConfig(),
        round_id=2,
        previous_signatures=round1.signatures,
    )
    assert round2.duplicate_of == [
        "duplicate_of:p1/4@r1",
        None,  # same text as p2's, but another problem
        "duplicate_of:p2/0@r1",  # shingles are lowercased
    ]
    assert [r["sample_idx"] for r in round2.signatures.to_pylist()] == [1]


def test_signatures_of_another_sketch_are_refused_with_the_fix() -> None:
    stored = near_duplicates(_documents([("p1", 0, BASE)]), DedupConfig(num_perm=64), round_id=1).signatures
    assert stored.column("sketch").to_pylist() == [sketch_name(DedupConfig(num_perm=64))]
    with pytest.raises(ValueError, match="row 0 .*signatures_of"):
        near_duplicates(_documents([("p1", 1, BASE)]), DedupConfig(), round_id=2, previous_signatures=stored)


def test_signatures_of_a_dataset_rehash_earlier_rounds() -> None:
    dataset = pa.table(
        {
            "round": pa.array([1, 2], type=pa.int32()),
            "problem_id": ["p1", "p2"],
            "sample_idx": pa.array([0, 5], type=pa.int32()),
            "completion": [BASE, "7"],
        }
    )
    table = signatures_of(dataset, DedupConfig())
    assert table.schema == SIGNATURES_SCHEMA
    assert [(r["round"], r["problem_id"]) for r in table.to_pylist()] == [(1, "p1")]
    later = near_duplicates(_documents([("p1", 3, NEAR)]), DedupConfig(), round_id=3, previous_signatures=table)
    assert later.duplicate_of == ["duplicate_of:p1/0@r1"]


def test_disabled_dedup_keeps_the_exact_check_only() -> None:
    documents = _documents([("p1", 0, BASE), ("p1", 1, NEAR), ("p1", 2, BASE)])
    result = near_duplicates(documents, DedupConfig(enabled=False), round_id=1)
    assert result.duplicate_of == [None, None, "duplicate_of:p1/0"]
    assert result.signatures.num_rows == 0


def test_min_words_must_cover_a_shingle() -> None:
    with pytest.raises(ValueError, match="min_words"):
        DedupConfig(shingle_words=8, min_words=5)


def test_sketching_in_slices_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [BASE, "46", OTHER, "", NEAR, "too short", BASE.upper()]
    whole = sketch(texts, DedupConfig())
    monkeypatch.setattr("stages.dedup._DOCUMENTS_PER_SLICE", 2)
    sliced = sketch(texts, DedupConfig())
    assert np.array_equal(whole.eligible, sliced.eligible)
    assert np.array_equal(whole.signatures, sliced.signatures)
    assert np.array_equal(whole.shingles.offsets, sliced.shingles.offsets)
    assert np.array_equal(whole.shingles.hashes, sliced.shingles.hashes)
    assert np.array_equal(sliced.signatures[0], sliced.signatures[6])
