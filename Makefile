.PHONY: setup demo test lint lock

.venv/.flywheel-installed: pyproject.toml scripts/setup.sh requirements/lock-cpu.txt
	bash scripts/setup.sh

setup: .venv/.flywheel-installed

demo: setup
	.venv/bin/flywheel demo --control

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .

# Re-pin every dependency from pyproject.toml (needs the network); commit the changed requirements/lock-*.txt.
lock: setup
	.venv/bin/python scripts/lock.py
