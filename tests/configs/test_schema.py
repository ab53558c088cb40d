"""The schema documents itself: every model and field is described, and configs/REFERENCE.md is generated from it."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel, ValidationError

from configs import CURATION_FILTERS, CurateConfig, RunConfig, schema
from tests.conftest import REPO, load_script

MODELS = [
    model
    for model in vars(schema).values()
    if inspect.isclass(model)
    and issubclass(model, BaseModel)
    and model.__module__ == schema.__name__
    and model is not schema.Strict
]


def test_the_schema_has_the_models_a_run_config_nests() -> None:
    assert RunConfig in MODELS and CurateConfig in MODELS and len(MODELS) >= 20


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_model_and_field_is_described(model: type[BaseModel]) -> None:
    assert (model.__doc__ or "").strip(), f"{model.__name__} has no docstring"
    undescribed = [name for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == [], f"{model.__name__}: fields without a description: {undescribed}"


def test_the_committed_reference_is_what_the_schema_generates() -> None:
    script = load_script("config_reference")
    committed = (REPO / "configs" / "REFERENCE.md").read_text()
    assert committed == script.render_reference(), "configs/REFERENCE.md is stale: python scripts/config_reference.py"


def test_the_reference_covers_every_model_reachable_from_run_config() -> None:
    text = load_script("config_reference").render_reference()
    for model in MODELS:
        assert f"## {model.__name__}\n" in text
    assert '| `filters` | list of `"cannot_judge"`' in text
    assert "At `select.decontaminate`, `curate.decontaminate`." in text


def test_default_curation_order_is_every_filter() -> None:
    assert CurateConfig().filters == list(CURATION_FILTERS)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["cannot_judge", "incorrect", "shiny", "per_problem_cap"], "Input should be 'cannot_judge'"),
        (["cannot_judge", "incorrect", "incorrect", "per_problem_cap"], "listed more than once: incorrect"),
        (["incorrect", "too_long", "per_problem_cap"], "must include cannot_judge"),
        (["cannot_judge", "incorrect"], "must include per_problem_cap"),
        (["cannot_judge", "incorrect", "per_problem_cap", "too_long"], "per_problem_cap must be the last"),
        (["cannot_judge", "duplicate", "incorrect", "per_problem_cap"], "duplicate must come right before"),
    ],
)
def test_curation_orders_that_cannot_work_are_refused(filters: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CurateConfig(filters=filters)


def test_any_order_of_the_row_and_batch_filters_is_accepted() -> None:
    order = ["contaminated", "too_long", "incorrect", "cannot_judge", "duplicate", "per_problem_cap"]
    assert CurateConfig(filters=order).filters == order


def test_the_cli_store_default_is_the_config_default() -> None:
    from flows.cli import DEFAULT_STORE

    assert RunConfig.model_fields["store"].default == DEFAULT_STORE
