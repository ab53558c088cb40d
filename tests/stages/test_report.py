from __future__ import annotations

from configs import CurateConfig
from stages.curate import curate
from stages.report import curation_report, report_metrics
from tests.stages.helpers import difficulty, verified_traces


def test_curation_report_counts_buckets_reasons_and_moves() -> None:
    traces = verified_traces(
        [
            {"problem_id": "p1", "sample_idx": 0, "completion": "46", "correct": True},
            {"problem_id": "p1", "sample_idx": 1, "completion": "46", "correct": True},
            {"problem_id": "p2", "sample_idx": 0, "completion": "1", "correct": False},
        ]
    )
    curated = curate(traces, CurateConfig(), round_id=2)
    report = curation_report(curated, difficulty(1, {"p1": "hard", "p2": "unsolved"}))
    assert report["kept"] == 1 and report["dropped"] == 2
    assert report["dropped_by_reason"] == {"duplicate_of": 1, "incorrect": 1}
    assert report["buckets"]["solved"] == 1 and report["buckets"]["unsolved"] == 1 and report["buckets"]["hard"] == 0
    assert report["bucket_moves"] == {"hard->solved": 1}
    assert report["problems_seen_before"] == 2
    metrics = report_metrics(report)
    assert metrics["dropped_duplicate_of"] == 1.0 and metrics["moved_hard_to_solved"] == 1.0
    assert all(isinstance(value, float) for value in metrics.values())
