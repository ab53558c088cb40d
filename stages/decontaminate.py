"""Decontamination: find texts that share a word n-gram with a held-out (eval) text, and name that eval item.

The eval side is a table of (eval_id, text) built once per round; every n-gram hash of every eval text goes
into a sorted numpy array, and a text is contaminated by the eval item owning its first n-gram (in text order)
found there (the smallest eval_id when several own it). Texts of fewer than `ngram_words` words have no
n-grams and are never flagged: short answers such as "46" are shared by many problems by nature.

Not here: what is dropped and how it is reported (curate, select).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from configs.schema import DecontaminateConfig
from stages.ngrams import ngram_hashes

EVAL_TEXTS_SCHEMA = pa.schema(
    [
        pa.field("eval_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)


def eval_texts_from_problems(problems: pa.Table) -> pa.Table:
    """The eval texts of held-out problems (PROBLEMS_SCHEMA rows): prompt, answer and solution, by problem_id."""
    ids, texts = [], []
    for name in ("prompt", "answer", "solution"):
        column = problems.column(name)
        present = pc.is_valid(column)
        ids.append(problems.column("problem_id").filter(present))
        texts.append(column.filter(present))
    return pa.Table.from_arrays(
        [pa.chunked_array(ids, type=pa.string()), pa.chunked_array(texts, type=pa.string())], schema=EVAL_TEXTS_SCHEMA
    )


@dataclass(frozen=True)
class EvalIndex:
    """Distinct n-gram hashes of the eval texts, sorted, with the (smallest) eval_id owning each."""

    ngram_words: int
    hashes: np.ndarray  # uint64, sorted, distinct
    eval_ids: np.ndarray  # object (str), aligned with hashes


def eval_index(eval_texts: pa.Table, config: DecontaminateConfig) -> EvalIndex:
    if eval_texts.schema != EVAL_TEXTS_SCHEMA:
        raise ValueError(f"decontaminate: eval texts do not match EVAL_TEXTS_SCHEMA:\n{eval_texts.schema}")
    ngrams = ngram_hashes(eval_texts.column("text"), config.ngram_words)
    owners = np.repeat(np.arange(eval_texts.num_rows), np.diff(ngrams.offsets))
    ids = np.array(eval_texts.column("eval_id").to_pylist(), dtype=object)
    id_rank = np.argsort(np.argsort(ids, kind="stable"), kind="stable")  # rank of each row's eval_id
    order = np.lexsort((id_rank[owners], ngrams.hashes))
    hashes, owners = ngrams.hashes[order], owners[order]
    first = np.ones(len(hashes), dtype=bool)
    first[1:] = hashes[1:] != hashes[:-1]
    return EvalIndex(config.ngram_words, hashes[first], ids[owners[first]])


def contaminated_by(texts: Sequence[str] | pa.Array | pa.ChunkedArray, index: EvalIndex) -> list[str | None]:
    """Per text, the eval_id it shares an n-gram with, or None."""
    ngrams = ngram_hashes(texts, index.ngram_words)
    result: list[str | None] = [None] * len(ngrams.word_counts)
    if len(index.hashes) == 0 or len(ngrams.hashes) == 0:
        return result
    positions = np.minimum(np.searchsorted(index.hashes, ngrams.hashes), len(index.hashes) - 1)
    hits = np.flatnonzero(index.hashes[positions] == ngrams.hashes)
    owners = np.repeat(np.arange(len(ngrams.word_counts)), np.diff(ngrams.offsets))[hits]
    texts_hit, first_hit = np.unique(owners, return_index=True)
    for text_index, hit in zip(texts_hit.tolist(), hits[first_hit].tolist(), strict=True):
        result[text_index] = index.eval_ids[positions[hit]]
    return result
