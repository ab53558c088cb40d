"""Process environment for flywheel: caches and state under one folder, quiet third-party defaults.

Must run before prefect or vllm is imported, since both read their settings at import time. Every value is
a default: a variable already set by the user wins.
"""

from __future__ import annotations

import logging
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
        # vLLM's logging setup runs dictConfig, which shuts down every existing handler: under a Prefect flow
        # it flushes Prefect's API log handler while Prefect's event loop waits for the logging lock, and
        # the engine start hangs. So vLLM leaves logging alone; its logger gets the level below instead.
        "VLLM_CONFIGURE_LOGGING": "0",
        "TORCHINDUCTOR_CACHE_DIR": home / "torchinductor",
        "TRITON_CACHE_DIR": home / "triton",
        # OpenMP threads spin while they wait, by default: with anything else running (the Prefect server, verifier
        # workers, another job), torch on CPU then loses most of its time spinning. 200 SFT steps of the tiny
        # model on 2 busy cores: 594 s spinning, 85 s passive. Read when torch loads: set before it is imported.
        "OMP_WAIT_POLICY": "PASSIVE",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "warning",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "DO_NOT_TRACK": "1",
        # Library deprecation chatter (torch, vLLM's engine process) buries the progress a user watches.
        "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, str(value))
    logging.getLogger("vllm").setLevel(os.environ["VLLM_LOGGING_LEVEL"].upper())
    home.mkdir(parents=True, exist_ok=True)
    return home
