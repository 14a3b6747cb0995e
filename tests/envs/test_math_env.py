"""envs/math/env.py: the position-addressed training stream, val set, prompts and gold answers."""

import json
from collections import Counter

import pytest

from envs import ENVS, Env, MathEnv, MathEnvConfig, Prompt, is_multi_turn, make_env
from envs.math.config import MATH_FAMILIES
from rewards.math import math_verify_reward


def chain_sum(**kwargs) -> MathEnvConfig:
    return MathEnvConfig(**{"tasks": [{"name": "chain_sum"}], "train_size": 50, "val_size": 10, **kwargs})


def ids(prompts: list[Prompt]) -> list[str]:
    return [p.id for p in prompts]


def test_is_an_env_and_make_env_picks_it():
    env = make_env(chain_sum(), seed=0)
    assert isinstance(env, MathEnv) and isinstance(env, Env)
    assert env.name == "math" and ENVS["math"] is MathEnv
    assert not is_multi_turn(env)  # single-turn: the trainer samples it with engine.generate alone


def test_same_position_same_prompt_across_instances():
    a, b = MathEnv(chain_sum(), seed=0), MathEnv(chain_sum(), seed=0)
    assert a.train_prompts(0, 120) == b.train_prompts(0, 120)
    assert a.val_prompts() == b.val_prompts()
    # Any slice is the same as the corresponding part of a longer read (this is what resume relies on).
    assert a.train_prompts(37, 30) == b.train_prompts(0, 120)[37:67]


def test_epoch_wraps_at_epoch_size():
    env = MathEnv(chain_sum(), seed=0)
    n = env.epoch_size
    assert n == 50
    across = env.train_prompts(n - 1, 3)
    assert across == [env.train_prompts(p, 1)[0] for p in (n - 1, n, n + 1)]
    epoch0, epoch1 = env.train_prompts(0, n), env.train_prompts(n, n)
    assert sorted(ids(epoch0)) == sorted(ids(epoch1))  # each epoch is every problem once
    assert len(set(ids(epoch0))) == n
    assert ids(epoch0) != ids(epoch1)  # in its own order
    assert ids(env.train_prompts(2 * n, n)) not in (ids(epoch0), ids(epoch1))


def test_seed_changes_the_problems_and_cfg_seed_overrides_the_recipe_seed():
    assert MathEnv(chain_sum(), seed=0).val_prompts() != MathEnv(chain_sum(), seed=1).val_prompts()
    pinned = chain_sum(seed=7)
    assert MathEnv(pinned, seed=0).train_prompts(0, 60) == MathEnv(pinned, seed=1).train_prompts(0, 60)


def test_val_and_train_are_disjoint_by_question():
    cfg = MathEnvConfig(
        tasks=[{"name": "chain_sum", "config": {"min_terms": 2, "max_terms": 2, "max_digits": 1}}],
        train_size=300,
        val_size=40,
    )
    env = MathEnv(cfg, seed=0)
    val = {p.messages[-1]["content"] for p in env.val_prompts()}
    train = {p.messages[-1]["content"] for p in env.train_prompts(0, env.epoch_size)}
    assert len(val) == 40 and not val & train
    assert env.epoch_size == 160  # the 200 questions of this space, less the 40 held out


def test_mixture_follows_the_weights():
    cfg = MathEnvConfig(
        tasks=[{"name": "chain_sum", "weight": 3.0}, {"name": "gcd", "weight": 1.0}], train_size=1000, val_size=40
    )
    env = MathEnv(cfg, seed=0)
    epoch = Counter(p.meta["family"] for p in env.train_prompts(0, env.epoch_size))
    assert epoch == {"chain_sum": 750, "gcd": 250}
    assert Counter(p.meta["family"] for p in env.val_prompts()) == {"chain_sum": 30, "gcd": 10}
    window = Counter(p.meta["family"] for p in env.train_prompts(1100, 200))  # inside epoch 1
    assert 120 <= window["chain_sum"] <= 180
    # The val order mixes families, so any prefix (eval.num_prompts) has both.
    assert {p.meta["family"] for p in env.val_prompts()[:10]} == {"chain_sum", "gcd"}


def test_messages_with_and_without_system_prompt():
    template = "Solve.\n{question}\nPut the final answer in \\boxed{}."
    env = MathEnv(chain_sum(system_prompt="You are careful.", prompt_template=template), seed=0)
    prompt = env.train_prompts(0, 1)[0]
    system, user = prompt.messages
    assert system == {"role": "system", "content": "You are careful."}
    assert user["role"] == "user"
    assert user["content"].startswith("Solve.\nState the final answer") and user["content"].endswith("\\boxed{}.")
    (only,) = MathEnv(chain_sum(), seed=0).train_prompts(0, 1)[0].messages
    assert only["role"] == "user" and only["content"] == user["content"].split("\n")[1]


def test_prompt_ids_answers_and_meta():
    env = MathEnv(chain_sum(), seed=0)
    prompts = env.train_prompts(0, env.epoch_size) + env.val_prompts()
    assert len({p.id for p in prompts}) == len(prompts)
    train, val = prompts[0], env.val_prompts()[0]
    assert train.id.startswith("chain_sum/train/") and val.id.startswith("chain_sum/val/")
    assert train.meta["family"] == "chain_sum" and train.meta["split"] == "train"
    assert train.meta["difficulty"] == {"num_terms": [2, 6], "num_digits": [1, 4]}
    expression = train.messages[-1]["content"].split(":")[1].strip(" =")
    assert int(train.answer) == eval(expression)  # noqa: S307  (digits, + and - only)
    json.dumps([p.meta for p in prompts])


def test_gold_completion_formats():
    prompt = MathEnv(chain_sum(), seed=0).val_prompts()[0]
    assert MathEnv(chain_sum(), seed=0).gold_completion(prompt) == "\\boxed{" + prompt.answer + "}"
    assert MathEnv(chain_sum(answer_format="plain"), seed=0).gold_completion(prompt) == prompt.answer


@pytest.mark.parametrize("family", MATH_FAMILIES)
def test_every_family_gold_completion_passes_math_verify(family):
    cfg = MathEnvConfig(tasks=[{"name": family}], train_size=8, val_size=8)
    with MathEnv(cfg, seed=0) as env:
        for prompt in env.val_prompts() + env.train_prompts(0, 8):
            assert math_verify_reward(env.gold_completion(prompt), prompt) == 1.0, (prompt.id, prompt.answer)


def test_dataset_source(tmp_path):
    path = tmp_path / "toy.jsonl"
    rows = [{"question": f"What is {i} + {i}?", "answer": 2 * i} for i in range(30)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    env = make_env(MathEnvConfig(dataset=str(path), val_size=6, system_prompt="sys"), seed=0)
    assert env.epoch_size == 24 and len(env.val_prompts()) == 6
    prompt = env.train_prompts(5, 1)[0]
    assert prompt.messages[0]["role"] == "system" and prompt.messages[1]["content"].startswith("What is")
    assert prompt.id.startswith("toy/train/") and prompt.meta["source"] == str(path)
    assert env.gold_completion(prompt) == "\\boxed{" + prompt.answer + "}"


def test_dataset_with_val_file(tmp_path):
    for name, prefix, n in (("train", "t", 12), ("val", "v", 3)):
        rows = [{"question": f"{prefix}{i}", "answer": i} for i in range(n)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    cfg = MathEnvConfig(dataset=str(tmp_path / "train.jsonl"), val_dataset=str(tmp_path / "val.jsonl"))
    env = make_env(cfg, seed=0)
    assert env.epoch_size == 12
    assert sorted(p.messages[-1]["content"] for p in env.val_prompts()) == ["v0", "v1", "v2"]


def test_bad_positions():
    env = MathEnv(chain_sum(), seed=0)
    assert env.train_prompts(10**9, 0) == []
    with pytest.raises(ValueError, match="non-negative"):
        env.train_prompts(-1, 2)
