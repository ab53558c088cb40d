"""Near-duplicate removal: flywheel's bulk MinHash + LSH dedup against the common datasketch recipe.

Data: synthetic reasoning traces (templated sentences with random numbers and words), of which `--pairs` are
planted near-duplicates made from another trace by replacing random words; the exact Jaccard similarity of
every planted pair's word 5-gram sets is computed with Python sets, so the planted similarities spread over
about 0.3 .. 1.0 and are known exactly.

Baseline (the common recipe): per trace a `datasketch.MinHash` filled by `update()` once per shingle, queried
against a `MinHashLSH(threshold)`; a trace with any candidate is a duplicate (of its most similar candidate
by estimated Jaccard), otherwise it is inserted. Flywheel: `stages.dedup.near_duplicates` in `global` scope
(bulk numpy signatures, LSH bands tuned for recall at the threshold, candidates confirmed by exact Jaccard).
For reference, datasketch's own bulk path (`MinHash.generator`, one `update_batch` per trace) feeds the same
LSH loop as `ds-bulk`. All see the same traces in the same order, each in a fresh process so that its peak
memory (growth of the process's peak RSS over the loaded traces) is its own.

Reported per method: docs/s, recall on planted pairs with exact Jaccard >= threshold, the share of planted
pairs just below the threshold that were removed anyway, and precision (flagged pairs whose exact Jaccard is
>= threshold), then the docs/s ratio flywheel / baseline.

    .venv/bin/python -m bench.dedup [--docs 50000] [--pairs 10000] [--threshold 0.8] [--num-perm 128]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

WORDS = (
    "first then next so therefore because we need to find compute the sum product difference of and is "
    "equals gives check answer total each number value step result left right side both add subtract "
    "multiply divide by remaining half twice more less than per cost price apples boxes hours km"
).split()
TEMPLATES = (
    "we need {w} the {w} of {a} and {b} .",
    "{a} {op} {b} = {c} so the {w} is {c} .",
    "next {w} {w} {a} {w} {b} gives {c} .",
    "therefore each {w} has {a} {w} and {b} {w} .",
    "check : {c} {op} {a} = {b} which {w} .",
)
SHINGLE_WORDS = 5


def make_traces(n_docs: int, n_pairs: int, seed: int) -> tuple[list[str], list[tuple[int, int]]]:
    """`n_docs` traces; the last `n_pairs` are near-duplicates of earlier ones: (original, copy) pairs."""
    rng = random.Random(seed)
    originals = n_docs - n_pairs
    docs = []
    for _ in range(originals):
        sentences = []
        for _ in range(rng.randint(5, 9)):
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            sentences.append(
                rng.choice(TEMPLATES)
                .format(a=a, b=b, c=a + b, op=rng.choice("+-*/"), w=rng.choice(WORDS))
                .replace("{w}", rng.choice(WORDS))
            )
        docs.append(" ".join(sentences))
    pairs = []
    for k in range(n_pairs):
        original = rng.randrange(originals)
        words = docs[original].split()
        for position in rng.sample(range(len(words)), min(len(words), rng.randint(0, 5))):
            words[position] = f"{rng.choice(WORDS)}{rng.randint(0, 99)}"
        docs.append(" ".join(words))
        pairs.append((original, originals + k))
    return docs, pairs


def shingle_set(doc: str) -> set[str]:
    words = doc.lower().split()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def exact_jaccard(a: str, b: str) -> float:
    x, y = shingle_set(a), shingle_set(b)
    return len(x & y) / len(x | y)


def run_flywheel(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow as pa

    from configs.schema import DedupConfig
    from stages.dedup import near_duplicates

    docs, _ = make_traces(args.docs, args.pairs, args.seed)
    table = pa.table(
        {
            "problem_id": pa.array([f"d{i}" for i in range(len(docs))]),
            "sample_idx": pa.array([0] * len(docs), type=pa.int32()),
            "completion": pa.array(docs),
        }
    )
    config = DedupConfig(scope="global", threshold=args.threshold, num_perm=args.num_perm, min_words=SHINGLE_WORDS)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = near_duplicates(table, config, round_id=1)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    flagged = {}
    for i, reason in enumerate(result.duplicate_of):
        if reason is not None:
            flagged[i] = int(reason.removeprefix("duplicate_of:d").split("/")[0])
    return {"seconds": seconds, "peak_kib": peak, "flagged": flagged}


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """The common recipe: one MinHash per trace, `update()` once per shingle."""
    from datasketch import MinHash

    def minhashes(docs: list[str]) -> Iterator[MinHash]:
        for doc in docs:
            minhash = MinHash(num_perm=args.num_perm)
            for shingle in shingle_set(doc):
                minhash.update(shingle.encode("utf8"))
            yield minhash

    return _greedy_lsh(args, minhashes)


def run_bulk(args: argparse.Namespace) -> dict[str, Any]:
    """datasketch's own bulk path: `MinHash.generator` (one `update_batch` per trace), same LSH loop."""
    from datasketch import MinHash

    def minhashes(docs: list[str]) -> Iterator[MinHash]:
        shingles = ([shingle.encode("utf8") for shingle in shingle_set(doc)] for doc in docs)
        return MinHash.generator(shingles, num_perm=args.num_perm)

    return _greedy_lsh(args, minhashes)


def _greedy_lsh(args: argparse.Namespace, minhashes: Callable[[list[str]], Iterator[Any]]) -> dict[str, Any]:
    from datasketch import MinHashLSH

    docs, _ = make_traces(args.docs, args.pairs, args.seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    sketches: dict[int, Any] = {}
    flagged = {}
    for i, minhash in enumerate(minhashes(docs)):
        candidates = lsh.query(minhash)
        if candidates:
            flagged[i] = max(candidates, key=lambda key: (minhash.jaccard(sketches[key]), -key))
        else:
            lsh.insert(i, minhash)
            sketches[i] = minhash
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"seconds": seconds, "peak_kib": peak, "flagged": flagged}


def score(
    name: str, outcome: dict[str, Any], docs: list[str], truth: dict[int, tuple[int, float]], threshold: float
) -> float:
    flagged: dict[int, int] = outcome["flagged"]
    above = [copy for copy, (_, similarity) in truth.items() if similarity >= threshold]
    near_below = [copy for copy, (_, similarity) in truth.items() if threshold - 0.15 <= similarity < threshold]
    found = sum(1 for copy in above if copy in flagged and exact_jaccard(docs[copy], docs[flagged[copy]]) >= threshold)
    true_flags = sum(1 for copy, rep in flagged.items() if exact_jaccard(docs[copy], docs[rep]) >= threshold)
    rate = len(docs) / outcome["seconds"]
    removed_below = sum(copy in flagged for copy in near_below) / max(len(near_below), 1)
    print(
        f"{name:9s} {rate:9.0f} docs/s  {outcome['seconds']:7.2f} s  peak +{outcome['peak_kib'] / 1024:7.1f} MiB  "
        f"recall(J>={threshold}) {found / max(len(above), 1):.3f}  "
        f"removed(J in [{threshold - 0.15:.2f},{threshold})) {removed_below:.3f}  "
        f"precision {true_flags / max(len(flagged), 1):.3f}  flagged {len(flagged)}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=10_000, help="planted near-duplicate pairs among the docs")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    docs, pairs = make_traces(args.docs, args.pairs, args.seed)
    truth = {copy: (original, exact_jaccard(docs[original], docs[copy])) for original, copy in pairs}
    similarities = sorted(similarity for _, similarity in truth.values())
    words = sum(len(doc.split()) for doc in docs) / len(docs)
    print(
        f"{len(docs)} traces, {words:.0f} words on average, {len(pairs)} planted pairs with exact Jaccard "
        f"min {similarities[0]:.2f} median {similarities[len(similarities) // 2]:.2f} max {similarities[-1]:.2f}; "
        f"{sum(s >= args.threshold for s in similarities)} at or above the threshold {args.threshold}"
    )
    context = multiprocessing.get_context("spawn")
    rates = {}
    methods = (("flywheel", run_flywheel), ("baseline", run_baseline), ("ds-bulk", run_bulk))
    for name, method in methods:
        with context.Pool(1) as pool:
            outcome = pool.apply(method, (args,))
        rates[name] = score(name, outcome, docs, truth, args.threshold)
    print(
        f"ratio flywheel / baseline (datasketch MinHash.update per shingle + MinHashLSH): "
        f"{rates['flywheel'] / rates['baseline']:.1f}x docs/s"
    )
    print(
        "ratio flywheel / ds-bulk (datasketch MinHash.generator + MinHashLSH): "
        f"{rates['flywheel'] / rates['ds-bulk']:.1f}x docs/s"
    )


if __name__ == "__main__":
    main()
