"""The curation part of a round report as plain data: kept count, dropped counts by reason, bucket sizes, and
bucket moves since the earlier rounds (each problem's latest earlier bucket, `unseen` if never sampled).

Drop reasons are counted by kind, the part before `:` (`duplicate_of:p1/0` counts as `duplicate_of`).
Rendering (HTML, plots) and writing are not done here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from stages.bucket import bucket_moves, move_counts
from stages.curate import BUCKETS, Curated


def curation_report(curated: Curated, history: pa.Table | None = None) -> dict[str, Any]:
    """`history`: earlier rounds' difficulty tables concatenated (rows of this round or later are ignored)."""
    reasons = Counter(reason.split(":", 1)[0] for reason in curated.dropped.column("drop_reason").to_pylist())
    buckets = Counter(curated.difficulty.column("bucket").to_pylist())
    moves = bucket_moves(curated.difficulty, history)
    return {
        "kept": curated.dataset.num_rows,
        "dropped": curated.dropped.num_rows,
        "dropped_by_reason": dict(sorted(reasons.items())),
        "buckets": {bucket: buckets.get(bucket, 0) for bucket in BUCKETS},
        "bucket_moves": move_counts(moves),
        "problems_seen_before": sum(1 for bucket in moves.column("from_bucket").to_pylist() if bucket != "unseen"),
    }


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report flattened to `name -> float` for a round manifest's metrics."""
    metrics = {"kept": float(report["kept"]), "dropped": float(report["dropped"])}
    metrics |= {f"dropped_{reason}": float(n) for reason, n in report["dropped_by_reason"].items()}
    metrics |= {f"bucket_{bucket}": float(n) for bucket, n in report["buckets"].items()}
    metrics |= {f"moved_{move.replace('->', '_to_')}": float(n) for move, n in report["bucket_moves"].items()}
    metrics["problems_seen_before"] = float(report["problems_seen_before"])
    return metrics
