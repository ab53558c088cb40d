"""Run configuration: the pydantic schema and its YAML loader. Imports nothing else of the project."""

from configs.loader import ConfigError, config_hash, dump_config, load_config, parse_config
from configs.schema import (
    ArithmeticConfig,
    CurateConfig,
    DatasetSourceConfig,
    EngineConfig,
    EvaluateConfig,
    ModelConfig,
    ProblemsConfig,
    RunConfig,
    SampleConfig,
    SelectConfig,
    TrainConfig,
)

__all__ = [
    "ArithmeticConfig",
    "ConfigError",
    "CurateConfig",
    "DatasetSourceConfig",
    "EngineConfig",
    "EvaluateConfig",
    "ModelConfig",
    "ProblemsConfig",
    "RunConfig",
    "SampleConfig",
    "SelectConfig",
    "TrainConfig",
    "config_hash",
    "dump_config",
    "load_config",
    "parse_config",
]
