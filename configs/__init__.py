"""Run configuration: the pydantic schema and its YAML loader. Imports nothing else of the project."""

from configs.loader import ConfigError, config_hash, dump_config, load_config, parse_config
from configs.schema import (
    ArithmeticConfig,
    CountdownConfig,
    CurateConfig,
    DatasetSourceConfig,
    EngineConfig,
    EvaluateConfig,
    ModelConfig,
    ProblemsConfig,
    ReasoningGymConfig,
    RunConfig,
    SampleConfig,
    SelectConfig,
    TrainConfig,
    VerifyConfig,
)

__all__ = [
    "ArithmeticConfig",
    "ConfigError",
    "CountdownConfig",
    "CurateConfig",
    "DatasetSourceConfig",
    "EngineConfig",
    "EvaluateConfig",
    "ModelConfig",
    "ProblemsConfig",
    "ReasoningGymConfig",
    "RunConfig",
    "SampleConfig",
    "SelectConfig",
    "TrainConfig",
    "VerifyConfig",
    "config_hash",
    "dump_config",
    "load_config",
    "parse_config",
]
