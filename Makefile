.PHONY: setup demo test lint

.venv/.flywheel-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: .venv/.flywheel-installed

demo: setup
	.venv/bin/flywheel demo --control

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
