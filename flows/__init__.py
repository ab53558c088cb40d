"""Prefect flows (round, campaign), the process environment and the `flywheel` CLI."""
