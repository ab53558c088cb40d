"""Decontamination: find texts that share a word n-gram with a held-out (eval) text, and name that eval item.

The eval side is a table of (eval_id, text) built once per round. Its template words are found first: words
that occur in a large share of the eval items (`DecontaminateConfig.template_share`), such as an answer
instruction, a prompt template or a system prompt repeated in every item. They are left out of every text, eval
and checked alike, before n-grams are formed, so an n-gram is made of content words only: a templated source whose
every prompt ends in "Answer with the number after ####." shares that instruction with every held-out prompt, and
that is no evidence of a leak, while a copied question still shares its content words. Every n-gram hash of every
eval text goes into a sorted numpy array, and a text is contaminated by the eval item owning its first n-gram (in
text order) found there (the smallest eval_id when several own it). Texts of fewer than `ngram_words` content words
have no n-grams and are never flagged: short answers such as "46" are shared by many problems by nature.

Not here: what is dropped and how it is reported (curate, select).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from configs.schema import DecontaminateConfig
from stages.ngrams import ngram_hashes, word_hashes

EVAL_TEXTS_SCHEMA = pa.schema(
    [
        pa.field("eval_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string()),  # template words are counted per source; null: one group
    ]
)


def eval_texts_from_problems(problems: pa.Table) -> pa.Table:
    """The eval texts of held-out problems (PROBLEMS_SCHEMA rows): prompt, answer and solution, by problem_id."""
    ids, texts, sources = [], [], []
    for name in ("prompt", "answer", "solution"):
        column = problems.column(name)
        present = pc.is_valid(column)
        ids.append(problems.column("problem_id").filter(present))
        texts.append(column.filter(present))
        sources.append(problems.column("source").filter(present))
    return pa.Table.from_arrays(
        [pa.chunked_array(chunks, type=pa.string()) for chunks in (ids, texts, sources)], schema=EVAL_TEXTS_SCHEMA
    )


@dataclass(frozen=True)
class EvalIndex:
    """Distinct n-gram hashes of the eval texts, sorted, with the (smallest) eval_id owning each."""

    ngram_words: int
    hashes: np.ndarray  # uint64, sorted, distinct
    eval_ids: np.ndarray  # object (str), aligned with hashes
    template_words: np.ndarray  # uint64 word hashes left out of every text before n-grams are formed


def eval_index(
    eval_texts: pa.Table, config: DecontaminateConfig, template_texts: pa.Table | None = None
) -> EvalIndex:
    """The index of `eval_texts`. Template words are counted over `template_texts` (EVAL_TEXTS_SCHEMA; default:
    the eval texts themselves): the texts of every split of the same sources, so that a source whose held-out
    split is too small to show its template (fewer than `template_min_items` items) still has it found in its
    train pool, instead of every prompt being flagged for sharing the instruction."""
    for name, table in (("eval texts", eval_texts), ("template texts", template_texts)):
        if table is not None and table.schema != EVAL_TEXTS_SCHEMA:
            raise ValueError(f"decontaminate: {name} do not match EVAL_TEXTS_SCHEMA:\n{table.schema}")
    ids = np.array(eval_texts.column("eval_id").to_pylist(), dtype=object)
    template = template_words(eval_texts if template_texts is None else template_texts, config)
    ngrams = ngram_hashes(eval_texts.column("text"), config.ngram_words, template)
    owners = np.repeat(np.arange(eval_texts.num_rows), np.diff(ngrams.offsets))
    id_rank = np.argsort(np.argsort(ids, kind="stable"), kind="stable")  # rank of each row's eval_id
    order = np.lexsort((id_rank[owners], ngrams.hashes))
    hashes, owners = ngrams.hashes[order], owners[order]
    first = np.ones(len(hashes), dtype=bool)
    first[1:] = hashes[1:] != hashes[:-1]
    return EvalIndex(config.ngram_words, hashes[first], ids[owners[first]], template)


def template_words(eval_texts: pa.Table, config: DecontaminateConfig) -> np.ndarray:
    """Hashes of the words found in at least `template_share` (and `template_min_items`) of the eval items of one
    source, for any source. An eval item is an eval_id with all its texts (prompt, answer, solution), so a word
    counts once per item; counting per source finds each task's template in a mix of tasks."""
    if config.template_share is None or eval_texts.num_rows == 0:
        return np.zeros(0, dtype=np.uint64)
    words, counts = word_hashes(eval_texts.column("text"))
    _, item_of_row = np.unique(np.array(eval_texts.column("eval_id").to_pylist(), dtype=object), return_inverse=True)
    sources = np.array([source or "" for source in eval_texts.column("source").to_pylist()], dtype=object)
    found: list[np.ndarray] = []
    for source in np.unique(sources).tolist():
        rows = sources == source
        items = len(np.unique(item_of_row[rows]))
        needed = max(config.template_min_items, int(np.ceil(config.template_share * items)))
        if items < needed:
            continue
        row_of_word = np.repeat(np.arange(len(counts)), counts)
        in_source = rows[row_of_word]
        # Distinct (word, item) pairs, then the number of items per word.
        pairs = np.unique(np.stack([words[in_source], item_of_row[row_of_word[in_source]].astype(np.uint64)]), axis=1)
        vocabulary, items_per_word = np.unique(pairs[0], return_counts=True)
        found.append(vocabulary[items_per_word >= needed])
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


def contaminated_by(texts: Sequence[str] | pa.Array | pa.ChunkedArray, index: EvalIndex) -> list[str | None]:
    """Per text, the eval_id it shares an n-gram of content words with, or None."""
    ngrams = ngram_hashes(texts, index.ngram_words, index.template_words)
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
