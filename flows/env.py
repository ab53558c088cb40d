"""Process environment for flywheel: caches and state under one folder, quiet third-party defaults.

Must run before prefect or vllm is imported, since both read their settings at import time. Every value is
a default: a variable already set by the user wins.
"""

from __future__ import annotations

import os
from pathlib import Path


def configure_environment() -> Path:
    home = Path(os.environ.get("FLYWHEEL_HOME", ".flywheel")).resolve()
    defaults = {
        "FLYWHEEL_HOME": home,
        "PREFECT_HOME": home / "prefect",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        # The temporary API server migrates a new database on its first start: 20 s is too short on a busy machine.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "VLLM_CACHE_ROOT": home / "vllm",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_LEVEL": "ERROR",
        "VLLM_CONFIGURE_LOGGING": "1",
        "TORCHINDUCTOR_CACHE_DIR": home / "torchinductor",
        "TRITON_CACHE_DIR": home / "triton",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "warning",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "DO_NOT_TRACK": "1",
        # Library deprecation chatter (torch, vLLM's engine process) buries the progress a user watches.
        "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, str(value))
    home.mkdir(parents=True, exist_ok=True)
    return home
