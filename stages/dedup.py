"""Near-duplicate removal of completions with MinHash LSH, within a round and against earlier rounds.

Documents are completions, shingled into word n-grams (`ngrams.py`). Signatures use datasketch's `affine32`
MinHash scheme and permutations, computed for all documents at once in numpy: a document's signature equals
the one `datasketch.MinHash(hashfunc=identity, scheme="affine32")` gets from `update_batch` of its shingle
hashes (a test checks this). Banding is the MinHashLSH construction (b bands of r rows; documents sharing a
band's values are candidates), done in numpy over all signatures instead of one `MinHashLSH.insert`/`query`
per document, whose per-document Python cost dominated a round's dedup. Bands are chosen so that a pair at
exactly the threshold is a candidate with probability >= 0.99. A candidate is confirmed by Jaccard similarity
>= threshold: exact (on the shingle sets) for documents of this round, estimated from the stored signatures
for earlier rounds' kept traces, which are never re-hashed.

Greedy leader clustering: documents are visited in the caller's order of preference (curate passes the
shortest correct first); each is either a duplicate of an earlier representative (the most similar one, ties
to the earliest) or becomes a representative itself.

Short completions: a completion of fewer than `min_words` words is never MinHashed. Its shingle set has one
or two members, so any two short answers are either identical or disjoint, and equal short answers to
different problems ("46") are expected, not duplicates. Short completions are compared only exactly (after
trimming whitespace) with other completions of the same problem in the same round. With `scope: problem`
(the default) long completions are compared only with completions of the same problem; with `scope: global`,
with every completion.

Not here: which traces are candidates (curate), per-problem caps, file I/O.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash

from configs.schema import DedupConfig
from stages.ngrams import NgramHashes, fmix32, fmix64, ngram_hashes, string_array

SCHEME = "affine32"
SIGNATURES_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int32(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("sample_idx", pa.int32()),
        pa.field("sketch", pa.string(), nullable=False),
        pa.field("signature", pa.list_(pa.uint32()), nullable=False),
    ]
)
# Shingles permuted per numpy pass: a (shingles x num_perm) uint32 scratch matrix that stays in cache (1 MiB at 128).
_SHINGLES_PER_CHUNK = 1 << 11
_CANDIDATE_RECALL_AT_THRESHOLD = 0.99
_DOCUMENTS_PER_SLICE = 8192


def sketch_name(config: DedupConfig) -> str:
    """Names everything a signature depends on; signatures with another name cannot be compared."""
    return f"words{config.shingle_words}-perm{config.num_perm}-seed{config.seed}-{SCHEME}"


@dataclass(frozen=True)
class Sketches:
    """Shingles and MinHash signatures of documents; `eligible[i]` says whether document i was MinHashed."""

    eligible: np.ndarray  # bool per document
    signatures: np.ndarray  # (documents, num_perm) uint32; rows of ineligible documents are all 0
    shingles: NgramHashes  # every document's shingle hashes, in text order (repeats included)


def sketch(texts: Sequence[str] | pa.Array | pa.ChunkedArray, config: DedupConfig) -> Sketches:
    """Shingle every document and MinHash those with at least `min_words` words, in bulk.

    Documents are processed in slices of `_DOCUMENTS_PER_SLICE`, which bounds the tokenising scratch memory."""
    array = string_array(texts)
    signatures = np.zeros((len(array), config.num_perm), dtype=np.uint32)
    hashes, counts, per_document = [], [], []
    for start in range(0, len(array), _DOCUMENTS_PER_SLICE):
        shingles = ngram_hashes(array.slice(start, _DOCUMENTS_PER_SLICE), config.shingle_words)
        eligible = shingles.word_counts >= config.min_words
        sizes = np.diff(shingles.offsets)
        bounds = np.zeros(int(eligible.sum()) + 1, dtype=np.int64)
        np.cumsum(sizes[eligible], out=bounds[1:])
        if len(bounds) > 1:
            rows = start + np.flatnonzero(eligible)
            signatures[rows] = _minhash(shingles.hashes[np.repeat(eligible, sizes)], bounds, config)
        hashes.append(shingles.hashes)
        counts.append(shingles.word_counts)
        per_document.append(sizes)
    offsets = np.zeros(len(array) + 1, dtype=np.int64)
    word_counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    if per_document:
        np.cumsum(np.concatenate(per_document), out=offsets[1:])
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    return Sketches(word_counts >= config.min_words, signatures, NgramHashes(all_hashes, offsets, word_counts))


def _minhash(hashes: np.ndarray, bounds: np.ndarray, config: DedupConfig) -> np.ndarray:
    """Signatures of consecutive non-empty documents `hashes[bounds[i]:bounds[i + 1]]`, chunk by chunk."""
    a, b = MinHash(num_perm=config.num_perm, seed=config.seed, scheme=SCHEME).permutations
    # datasketch's affine32 scheme: a 32-bit input hash, pre-mixed with fmix32, then a * h + b mod 2^32.
    mixed = fmix32((hashes >> np.uint64(32)).astype(np.uint32))
    out = np.empty((len(bounds) - 1, config.num_perm), dtype=np.uint32)
    first = 0
    while first < len(bounds) - 1:
        last = int(np.searchsorted(bounds, bounds[first] + _SHINGLES_PER_CHUNK, side="right")) - 1
        last = min(max(last, first + 1), len(bounds) - 1)
        chunk = mixed[bounds[first] : bounds[last]]
        permuted = np.multiply.outer(chunk, a)  # wraps mod 2^32, as the scheme intends
        permuted += b
        out[first:last] = np.minimum.reduceat(permuted, bounds[first:last] - bounds[first], axis=0)
        first = last
    return out


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows): the most rows per band such that a pair at `threshold` is a candidate with p >= 0.99."""
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= _CANDIDATE_RECALL_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


@dataclass(frozen=True)
class DedupResult:
    """Per document (in the order given): `duplicate_of:...` or None for a representative; their signatures."""

    duplicate_of: list[str | None]
    signatures: pa.Table  # SIGNATURES_SCHEMA: every MinHashed representative of this round


def near_duplicates(
    documents: pa.Table,
    config: DedupConfig,
    round_id: int,
    previous_signatures: pa.Table | None = None,
) -> DedupResult:
    """Cluster `documents` (columns problem_id, sample_idx, completion; best first) into representatives.

    The reason names the representative: `duplicate_of:<problem_id>/<sample_idx>` for one of this round,
    `duplicate_of:<problem_id>/<sample_idx>@r<round>` for an earlier round's kept trace.
    """
    for name in ("problem_id", "sample_idx", "completion"):
        if name not in documents.column_names:
            raise ValueError(f"near_duplicates: documents have no column {name!r}")
    problem_ids = documents.column("problem_id").to_pylist()
    sample_idxs = documents.column("sample_idx").to_pylist()
    texts = documents.column("completion").to_pylist()
    sketches = sketch(documents.column("completion"), config) if config.enabled else None
    eligible = sketches.eligible if sketches is not None else np.zeros(len(texts), dtype=bool)
    previous = _previous(previous_signatures, config, set(problem_ids)) if config.enabled else None
    n_previous = len(previous.problem_ids) if previous is not None else 0

    reasons: list[str | None] = [None] * len(texts)
    first_with_text: dict[tuple[str, str], int] = {}
    shared = np.zeros(n_previous + len(texts), dtype=bool)
    if sketches is not None and (eligible.any() or n_previous):
        # Rows: earlier rounds' representatives first, then this round's documents.
        all_signatures = np.concatenate([previous.signatures, sketches.signatures]) if previous else sketches.signatures
        all_problems = (previous.problem_ids if previous else []) + problem_ids
        buckets, shared = _band_buckets(all_signatures, all_problems, config)
        members: dict[int, list[int]] = defaultdict(list)  # bucket -> representatives in it so far
        for row in np.flatnonzero(shared[:n_previous]).tolist():
            for bucket in buckets[row].tolist():
                members[bucket].append(row)
    for i, text in enumerate(texts):
        scope = problem_ids[i] if config.scope == "problem" or not eligible[i] else ""
        key = (scope, text.strip())
        if key in first_with_text:
            first = first_with_text[key]  # a repeat of a duplicate names that duplicate's representative
            reasons[i] = reasons[first] or f"duplicate_of:{problem_ids[first]}/{sample_idxs[first]}"
            continue
        first_with_text[key] = i
        row = n_previous + i
        if not eligible[i] or not shared[row]:
            continue  # too short to MinHash, or alone in every band: a representative nobody can match
        assert sketches is not None
        candidates = {member for bucket in buckets[row].tolist() for member in members.get(bucket, ())}
        best: tuple[float, int] | None = None
        for candidate in sorted(candidates):
            if config.scope == "problem" and all_problems[candidate] != problem_ids[i]:
                continue
            if candidate >= n_previous:
                other = candidate - n_previous
                similarity = _jaccard(sketches.shingles.of(i), sketches.shingles.of(other))
            else:
                similarity = float(np.mean(all_signatures[candidate] == sketches.signatures[i]))
            if similarity >= config.threshold and (best is None or similarity > best[0]):
                best = (similarity, candidate)
        if best is None:
            for bucket in buckets[row].tolist():
                members[bucket].append(row)
        elif best[1] >= n_previous:
            other = best[1] - n_previous
            reasons[i] = f"duplicate_of:{problem_ids[other]}/{sample_idxs[other]}"
        else:
            assert previous is not None
            j = best[1]
            reasons[i] = f"duplicate_of:{previous.problem_ids[j]}/{previous.sample_idxs[j]}@r{previous.rounds[j]}"

    representatives = [i for i, reason in enumerate(reasons) if reason is None and eligible[i]]
    signatures = signature_table(
        round_id,
        [problem_ids[i] for i in representatives],
        [sample_idxs[i] for i in representatives],
        sketches.signatures[representatives] if sketches is not None else np.zeros((0, config.num_perm), np.uint32),
        config,
    )
    return DedupResult(reasons, signatures)


def _band_buckets(signatures: np.ndarray, problem_ids: list[str], config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """LSH banding: per row its bucket id in every band, and whether it shares any bucket with another row.

    A bucket is (band, hash of the band's values[, problem]); with `scope: problem` the problem is part of the
    key, so rows of different problems never meet. A 64-bit hash collision only adds a candidate to confirm.
    """
    bands, rows_per_band = lsh_bands(config.threshold, config.num_perm)
    n = len(signatures)
    salt = np.zeros(n, dtype=np.uint64)
    if config.scope == "problem":
        salt = _problem_salts(problem_ids)
    buckets = np.empty((n, bands), dtype=np.int64)
    shared = np.zeros(n, dtype=bool)
    next_id = 0
    for band in range(bands):
        key = salt.copy()
        for column in range(band * rows_per_band, (band + 1) * rows_per_band):
            key = fmix64(key ^ signatures[:, column].astype(np.uint64))
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        buckets[:, band] = inverse + next_id
        shared |= counts[inverse] > 1
        next_id += len(counts)
    return buckets, shared


def signature_table(
    round_id: int, problem_ids: list[str], sample_idxs: list[int | None], signatures: np.ndarray, config: DedupConfig
) -> pa.Table:
    """A SIGNATURES_SCHEMA table from a (rows, num_perm) uint32 matrix."""
    flat = pa.array(np.ascontiguousarray(signatures, dtype=np.uint32).reshape(-1), type=pa.uint32())
    offsets = pa.array(np.arange(0, (len(problem_ids) + 1) * config.num_perm, config.num_perm, dtype=np.int32))
    return pa.Table.from_arrays(
        [
            pa.array([round_id] * len(problem_ids), type=pa.int32()),
            pa.array(problem_ids, type=pa.string()),
            pa.array(sample_idxs, type=pa.int32()),
            pa.array([sketch_name(config)] * len(problem_ids), type=pa.string()),
            pa.ListArray.from_arrays(offsets, flat),
        ],
        schema=SIGNATURES_SCHEMA,
    )


def signatures_of(dataset: pa.Table, config: DedupConfig) -> pa.Table:
    """Signatures of a dataset table's MinHash-eligible completions, e.g. to re-hash earlier rounds after the
    dedup settings changed. Uses the table's `round`, `problem_id`, `sample_idx` and `completion` columns."""
    sketches = sketch(dataset.column("completion"), config)
    rows = np.flatnonzero(sketches.eligible)
    picked = dataset.take(pa.array(rows, type=pa.int64()))
    table = signature_table(
        0,
        picked.column("problem_id").to_pylist(),
        picked.column("sample_idx").to_pylist(),
        sketches.signatures[rows],
        config,
    )
    return table.set_column(0, SIGNATURES_SCHEMA.field("round"), picked.column("round").cast(pa.int32()))


@dataclass(frozen=True)
class _Previous:
    rounds: list[int]
    problem_ids: list[str]
    sample_idxs: list[int | None]
    signatures: np.ndarray


def _previous(table: pa.Table | None, config: DedupConfig, problem_ids: set[str]) -> _Previous | None:
    if table is None or table.num_rows == 0:
        return None
    if table.schema != SIGNATURES_SCHEMA:
        raise ValueError(f"near_duplicates: previous signatures do not match SIGNATURES_SCHEMA:\n{table.schema}")
    wanted = sketch_name(config)
    sketches = table.column("sketch")
    mismatched = pc.not_equal(sketches, wanted)
    if pc.any(mismatched).as_py():
        row = int(pc.index(mismatched, True).as_py())
        raise ValueError(
            f"previous signatures row {row} (round {table.column('round')[row].as_py()}) was made with sketch "
            f"{sketches[row].as_py()!r} but the dedup config asks for {wanted!r}: re-hash the earlier rounds' "
            "datasets with stages.dedup.signatures_of, or restore the earlier dedup settings"
        )
    if config.scope == "problem":
        table = table.filter(pc.is_in(table.column("problem_id"), pa.array(sorted(problem_ids), type=pa.string())))
    if table.num_rows == 0:
        return None
    column = table.column("signature").combine_chunks()
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if (lengths != config.num_perm).any():
        row = int(np.flatnonzero(lengths != config.num_perm)[0])
        raise ValueError(f"previous signatures row {row}: {lengths[row]} values, expected {config.num_perm}")
    signatures = column.flatten().to_numpy(zero_copy_only=False).astype(np.uint32).reshape(-1, config.num_perm)
    return _Previous(
        table.column("round").to_pylist(),
        table.column("problem_id").to_pylist(),
        table.column("sample_idx").to_pylist(),
        signatures,
    )


def _problem_salts(problem_ids: list[str]) -> np.ndarray:
    salts = {
        problem_id: int.from_bytes(hashlib.blake2b(problem_id.encode(), digest_size=8).digest(), "little")
        for problem_id in set(problem_ids)
    }
    return np.fromiter((salts[problem_id] for problem_id in problem_ids), dtype=np.uint64, count=len(problem_ids))


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.unique(a), np.unique(b)
    shared = np.intersect1d(a, b, assume_unique=True).size
    return shared / (a.size + b.size - shared)
