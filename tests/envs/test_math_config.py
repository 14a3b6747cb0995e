"""envs/math/config.py: what a recipe's env section may say."""

import pytest
from pydantic import ValidationError

from envs.math import MathEnvConfig, TaskConfig
from envs.math.config import MATH_FAMILIES, allowed_families


def test_tasks_or_dataset_neither():
    with pytest.raises(ValidationError, match="exactly one source of problems.*got neither"):
        MathEnvConfig()


def test_tasks_or_dataset_both():
    with pytest.raises(ValidationError, match="exactly one source of problems.*got both"):
        MathEnvConfig(tasks=[{"name": "chain_sum"}], dataset="train.jsonl")


def test_val_dataset_needs_dataset():
    with pytest.raises(ValidationError, match="val_dataset needs `dataset`"):
        MathEnvConfig(tasks=[{"name": "chain_sum"}], val_dataset="val.jsonl")


def test_template_must_contain_question():
    with pytest.raises(ValidationError, match=r"prompt_template must contain '\{question\}'"):
        MathEnvConfig(tasks=[{"name": "chain_sum"}], prompt_template="Solve: {problem}")


def test_unknown_task_lists_the_allowed_families():
    with pytest.raises(ValidationError) as e:
        TaskConfig(name="chain_summ")
    message = str(e.value)
    assert "unknown reasoning-gym task 'chain_summ'" in message
    assert "chain_sum" in message and "basic_arithmetic" in message and "gsm_symbolic" in message


def test_non_math_family_is_refused_with_the_reason():
    match = "'sudoku' has answers that math_verify cannot check.*allowed math families: basic_arithmetic"
    with pytest.raises(ValidationError, match=match):
        TaskConfig(name="sudoku")


def test_math_families_are_all_registered():
    # If reasoning-gym drops or renames a family, this says so (the env would refuse it otherwise).
    assert allowed_families() == list(MATH_FAMILIES)
    assert {"chain_sum", "basic_arithmetic"} <= set(MATH_FAMILIES)


def test_unknown_difficulty_key_lists_the_allowed_keys():
    with pytest.raises(ValidationError) as e:
        TaskConfig(name="chain_sum", config={"max_term": 3})
    message = str(e.value)
    assert "task 'chain_sum': unknown config key 'max_term'" in message
    assert "min_terms, max_terms, min_digits, max_digits, allow_negation" in message


def test_invalid_difficulty_value_uses_the_family_check():
    with pytest.raises(ValidationError, match="max_terms must be >= min_terms"):
        TaskConfig(name="chain_sum", config={"min_terms": 5, "max_terms": 2})


@pytest.mark.parametrize("key", ["seed", "size"])
def test_seed_and_size_belong_to_the_env(key):
    with pytest.raises(ValidationError, match=f"config key '{key}' is set by the environment"):
        TaskConfig(name="chain_sum", config={key: 3})


def test_weight_must_be_positive():
    with pytest.raises(ValidationError, match="greater than 0"):
        TaskConfig(name="chain_sum", weight=0)


def test_unknown_key_is_refused():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MathEnvConfig(tasks=[{"name": "chain_sum"}], train_sise=10)


def test_dump_and_reload_is_the_same_config():
    # The trainer writes the resolved recipe and reloads it on resume.
    cfg = MathEnvConfig(tasks=[{"name": "chain_sum", "weight": 2, "config": {"max_terms": 3}}], seed=3)
    assert MathEnvConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_every_field_is_documented():
    for model in (MathEnvConfig, TaskConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"
