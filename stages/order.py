"""The stages of a round, in the order a round runs them (a round runs a subset: round 0 has no `select`,
an improvement round no `seed_data`). A round's journal stores finished stages by name, not in order."""

from __future__ import annotations

STAGE_ORDER = ("seed_data", "select", "sample", "curate", "train", "evaluate")


def in_stage_order(stages: list[str]) -> list[str]:
    """`stages` in the order a round runs them; names of no known stage last, sorted."""
    known = [stage for stage in STAGE_ORDER if stage in stages]
    return known + sorted(stage for stage in stages if stage not in STAGE_ORDER)
