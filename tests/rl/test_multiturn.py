"""Multi-turn rollouts with the real tiny model, the hf engine and SWEEnv in real bubblewrap
sandboxes: the model's tokens are trained on, the environment's are not (mask 0, log-prob 0), the
trainer's batch keeps that mask, the trainer scores exactly the tokens the engine sampled, the
token budget ends episodes, and each episode's report (with the hidden tests' output) reaches
samples.jsonl."""

import json

import pytest
import torch

from envs import make_env
from rl.batch import make_batch, sequence_logprobs
from rl.checkpoint import TrainerState
from rl.config import load_recipe
from rl.logger import RunLogger
from rl.models import load_model, load_tokenizer, render_prompt
from rl.rollout.base import SamplingParams
from rl.rollout.hf import HFEngine
from rl.rollout.multiturn import ObservationTokenizer, multiturn_rollout
from rl.sampling import Sampler, rollout_metrics, sample_records
from tests.conftest import SWE_TASKS


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_model_dir, swe_tasks, swe_cache_dir):
    """The tiny SWE recipe over the session's generated tasks (train_size + val_size of them)."""
    tmp = tmp_path_factory.mktemp("multiturn")
    return load_recipe("recipes/tiny/swe_pocketlib.yaml", [
        f"model.path={tiny_model_dir}", f"logging.runs_dir={tmp / 'runs'}", f"env.cache_dir={swe_cache_dir}",
        f"env.sandbox.root={tmp / 'sandboxes'}", f"env.train_size={SWE_TASKS['count'] - 1}", "env.val_size=1",
        f"env.seed={SWE_TASKS['seed']}", "env.statement_detail=failures", "env.max_turns=3",
        "env.max_observation_chars=100", "engine.max_new_tokens=40", "algorithm.group_size=4",
    ])


@pytest.fixture(scope="module")
def env(recipe):
    with make_env(recipe.env, recipe.seed) as e:
        yield e


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    return HFEngine(load_model(tiny_model_dir), tok, batch_size=8)


@pytest.fixture(scope="module")
def rollouts(recipe, env, engine):
    """One iteration's rollouts through the trainer's Sampler: episodes, rewards."""
    torch.manual_seed(0)  # module fixtures run before the per-test seed
    sampler = Sampler(recipe, env, engine, engine.tokenizer)
    return sampler.sample(TrainerState(), {})


def runs(mask):
    """[(value, start, end)] of the runs of equal values in `mask`."""
    out, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            out.append((mask[start], start, i))
            start = i
    return out


def test_env_tokens_are_masked_and_model_tokens_are_not(rollouts, engine, recipe):
    tok = engine.tokenizer
    eos = tok.eos_token_id
    flat = [c for g in rollouts.groups for c in g]
    assert len(flat) == recipe.train.prompts_per_iteration * recipe.algorithm.group_size
    observed = 0
    for c in flat:
        assert c.loss_mask is not None
        assert len(c.token_ids) == len(c.logprobs) == len(c.loss_mask) == len(c.policy_versions)
        assert len(c.prompt_ids) + len(c.token_ids) <= recipe.env.max_episode_tokens
        assert c.token_ids and c.loss_mask[0] == 1  # the model speaks first
        pieces = runs(c.loss_mask)
        for k, (value, a, b) in enumerate(pieces):
            if value == 0:  # an observation: log-prob 0, the template's tool turn, then the next assistant header
                observed += 1
                assert all(lp == 0.0 for lp in c.logprobs[a:b])
                text = tok.decode(c.token_ids[a:b])
                assert "<|im_start|>tool\n" in text and "Error:" in text and text.endswith("<|im_start|>assistant\n")
                assert c.token_ids[a - 1] == eos  # it follows a turn the model ended itself
            else:  # the model's own tokens, with the engine's log-probs
                assert all(lp < 0.0 for lp in c.logprobs[a:b])
                last = k == len(pieces) - 1
                assert last or c.token_ids[b - 1] == eos
        info = c.env_info
        assert info["turns"] <= recipe.env.max_turns
        assert info["end_reason"] in ("max_turns", "max_tokens", "submit")
        assert (info["end_reason"] == "max_tokens") == (c.finish_reason == "length")
    # the tiny model ended some turns itself (each of its tokens is <|im_end|> with probability ~1/100;
    # 8 episodes of up to 3 turns of 40 tokens) and got error observations back
    assert observed > 0
    # the observation tokens are the chat template's rendering of the env's messages
    observe = ObservationTokenizer(tok)
    msg = {"role": "tool", "content": "Error: no tool call found"}
    assert tok.decode(observe([msg])) == "\n<|im_start|>tool\nError: no tool call found<|im_end|>\n<|im_start|>assistant\n"


def test_the_batch_keeps_the_mask_and_the_trainer_scores_the_sampled_tokens(rollouts, engine):
    groups, rewards, forced = rollouts.training_groups()
    batch = make_batch(groups, rewards, forced)
    flat = [c for g in groups for c in g]
    for i, c in enumerate(flat):
        n = len(c.token_ids)
        assert batch.mask[i, :n].tolist() == [float(m) for m in c.loss_mask]
        assert batch.mask[i, n:].sum() == 0
        assert batch.engine_logp[i, :n].tolist() == pytest.approx(c.logprobs)
        assert batch.completion_ids[i] == c.token_ids
    # token in, token out: the trainer's log-probs of the whole episode (observations as context)
    # agree with the engine's on every model token
    with torch.no_grad():
        logp, _ = sequence_logprobs(engine.model, batch.prompt_ids, batch.completion_ids,
                                    engine.tokenizer.pad_token_id, 1.0)
    width = batch.mask.shape[1]
    assert torch.allclose(logp[:, :width] * batch.mask, batch.engine_logp * batch.mask, atol=1e-4)


def test_rewards_come_from_the_hidden_tests(rollouts):
    flat = [c for g in rollouts.groups for c in g]
    scores = rollouts.rewards.per_function["swe_tests"]
    assert len(scores) == len(flat) and rollouts.rewards.errors == 0
    for c, s in zip(flat, scores):
        v = c.env_info["verdict"]
        assert v is not None and s == (1.0 if v["resolved"] else 0.0)
        assert v["FAIL_TO_PASS"]["failure"] and s == 0.0  # the untrained model fixes nothing
    m = rollouts.episode_metrics
    assert m["rollout/env_errors"] == 0 and m["rollout/turns"] >= 1 and m["rollout/observation_tokens"] >= 0


def test_compute_counts_only_the_sampled_tokens_as_generated(rollouts, recipe):
    flat = [c for g in rollouts.groups for c in g]
    m = rollout_metrics(rollouts, 0, "swe_tests", recipe.algorithm.group_size)
    assert m["train/response_length/sum"] == sum(len(c.token_ids) for c in flat)  # all through the engine
    assert m["train/generated_tokens/sum"] == sum(sum(c.loss_mask) for c in flat)  # compute/tokens
    assert m["train/generated_tokens/sum"] < m["train/response_length/sum"]


def test_the_episode_report_reaches_samples_jsonl(rollouts, recipe, tmp_path):
    logger = RunLogger(tmp_path, recipe, resume=False)
    logger.log_samples(sample_records(rollouts, iteration=1, step=1, n=2))
    logger.close()
    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r, p, g in zip(records, rollouts.prompts, rollouts.groups):
        assert r["prompt_id"] == p.id and len(r["env_info"]) == len(r["completions"]) == len(g)
        for info in r["env_info"]:
            v = info["verdict"]
            assert info["instance_id"] == p.id and "end_reason" in info and "model_patch" in info
            assert v["test_output"] and ("FAILED " + v["FAIL_TO_PASS"]["failure"][0]) in v["test_output"]
            assert len(v["test_output"]) <= recipe.env.max_test_output_chars + 100


def test_the_token_budget_ends_episodes(env, engine):
    prompts = env.val_prompts()
    ids = [render_prompt(engine.tokenizer, p.messages) for p in prompts]
    budget = len(ids[0]) + 30
    saved = env.max_episode_tokens
    env.max_episode_tokens = budget  # what the rollout reads (the recipe's env.max_episode_tokens)
    try:
        groups, metrics = multiturn_rollout(engine, env, engine.tokenizer, prompts, ids,
                                            SamplingParams(n=3, max_new_tokens=24))
    finally:
        env.max_episode_tokens = saved
    for c in groups[0]:
        assert len(c.prompt_ids) + len(c.token_ids) <= budget
        assert c.finish_reason == "length" and c.env_info["end_reason"] == "max_tokens"
        assert c.env_info["verdict"] is not None  # graded on what the workspace holds
    assert metrics["rollout/end/max_tokens"] == 1.0


def test_a_failing_engine_leaves_no_sandbox_behind(env, engine):
    """An exception in the middle of the rollout (here the engine's, on a token id outside its
    vocabulary) propagates, and every episode it had started is finished and its sandbox gone."""
    prompts = env.val_prompts() * 2
    good = render_prompt(engine.tokenizer, prompts[0].messages)
    with pytest.raises(IndexError):
        multiturn_rollout(engine, env, engine.tokenizer, prompts, [good, good + [10**6]],
                          SamplingParams(n=2, max_new_tokens=8))
    assert env._episodes == set()
    assert [p for p in env.backend.home.iterdir()] == []  # no workspace left
