from __future__ import annotations

from pathlib import Path

import pytest

from configs import ConfigError, RunConfig, load_config, parse_config
from tests.conftest import REPO


def test_demo_config_loads_with_its_values() -> None:
    config = load_config(REPO / "configs" / "demo.yaml")
    assert isinstance(config, RunConfig)
    assert config.model.init == "tiny-arithmetic"
    assert config.sample.k == 4
    assert config.warm_start is not None and config.warm_start.max_steps == 800


def test_config_is_frozen() -> None:
    config = parse_config({"run_name": "x", "model": {"path": "org/model"}})
    with pytest.raises(Exception, match="frozen"):
        config.rounds = 5  # type: ignore[misc]


def test_every_error_is_reported_with_path_value_and_what_is_allowed() -> None:
    bad = {
        "run_name": "ok",
        "model": {"path": "org/model"},
        "sample": {"k": 0, "temperature": "hot"},
        "train": {"method": "ppo"},
        "curate": {"max_per_problem": 1, "colour": "red"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, source="bad.yaml")
    errors = caught.value.errors
    assert len(errors) == 4
    text = str(caught.value)
    assert "bad.yaml" in text
    assert "sample.k: Input should be greater than or equal to 1 (got 0)" in text
    assert "sample.temperature" in text and "'hot'" in text
    assert "train.method" in text and "'sft'" in text and "'ppo'" in text
    assert "curate.colour" in text and "allowed fields here:" in text and "max_per_problem" in text


def test_missing_required_fields_and_model_source_rules() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"model": {"path": "a/b", "init": "tiny-arithmetic"}})
    text = str(caught.value)
    assert "run_name: required field is missing" in text
    assert "exactly one of `path`" in text


def test_overrides_use_dotted_paths() -> None:
    config = parse_config({"run_name": "x", "model": {"path": "a/b"}}, overrides={"sample.k": 8, "rounds": 1})
    assert config.sample.k == 8 and config.rounds == 1


def test_missing_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("run_name: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml.*\n.*not valid YAML"):
        load_config(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(scalar)


def test_greedy_evaluation_with_several_samples_is_rejected() -> None:
    with pytest.raises(ConfigError, match="k > 1 needs temperature > 0"):
        parse_config({"run_name": "x", "model": {"path": "a/b"}, "evaluate": {"k": 4, "temperature": 0.0}})


@pytest.mark.parametrize("name", sorted(path.name for path in (REPO / "configs").glob("*.yaml")))
def test_every_shipped_config_loads(name: str) -> None:
    assert isinstance(load_config(REPO / "configs" / name), RunConfig)


def test_training_phases_per_round() -> None:
    config = load_config(REPO / "configs" / "gsm8k-qwen.yaml")
    phases = [config.train.phases_for(round_id) for round_id in (1, 2, 3, 4)]
    assert phases == [("sft",), ("sft",), ("grpo",), ("grpo",)]
    both = parse_config({"run_name": "x", "model": {"path": "org/m"}, "train": {"method": "sft_then_grpo"}})
    assert both.train.phases_for(1) == ("sft", "grpo")


def test_grpo_batch_must_hold_whole_groups() -> None:
    bad = {"run_name": "x", "model": {"path": "org/m"}, "train": {"grpo": {"per_device_train_batch_size": 12}}}
    with pytest.raises(ConfigError, match=r"multiple of num_generations \(8\)"):
        parse_config(bad)


def test_warm_start_must_be_sft() -> None:
    bad = {"run_name": "x", "model": {"path": "org/m"}, "warm_start": {"method": "grpo"}}
    with pytest.raises(ConfigError, match="warm_start trains on labelled data"):
        parse_config(bad)


@pytest.mark.parametrize("name", sorted(path.name for path in (REPO / "configs" / "accelerate").glob("*.yaml")))
def test_shipped_accelerate_configs_parse_as_accelerate_configs(name: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    cluster = ClusterConfig.from_yaml_file(str(REPO / "configs" / "accelerate" / name))
    assert cluster.num_processes >= 2 and cluster.mixed_precision == "bf16"


def test_config_differences_name_every_changed_field_but_the_runtime_ones() -> None:
    from configs import config_differences, config_hash

    created = parse_config({"run_name": "r", "model": {"path": "org/model"}, "sample": {"k": 4}})
    changed = parse_config(
        {
            "run_name": "r",
            "model": {"path": "org/model"},
            "sample": {"k": 8, "temperature": 0.7},
            "engine": {"kv_cache_space_gib": 4},
            "rounds": 9,
        }
    )
    assert config_differences(created, changed) == ["sample.k: 4 -> 8", "sample.temperature: 1.0 -> 0.7"]
    runtime_only = parse_config(
        {
            "run_name": "r",
            "model": {"path": "org/model"},
            "sample": {"k": 4},
            "store": "s3://elsewhere",
            "verify": {"workers": 3},
            "rounds": 5,
        }
    )
    assert config_differences(created, runtime_only) == []
    assert config_hash(created) == config_hash(runtime_only) != config_hash(changed)
