"""llm_judge through our in-process engines (hf, and the colocated vllm engine) with the real tiny
model as the judge: a batch of completions is one engine.generate call, k samples as the engine's n;
whatever the tiny judge says is parsed or counted as unparseable; verdicts are P(yes) either way."""

import pytest

from envs.base import Prompt
from rewards import RewardConfig, RewardFunctionConfig, compute_rewards
from rewards.judge import judge_client
from rl.rollout.judge import EngineJudge

PROMPTS = [Prompt(f"e/{i}", ({"role": "user", "content": f"What is {i}+1?"},), str(i + 1)) for i in range(4)]
COMPLETIONS = ["1", "The answer is 2", "3", "seven"]


def _engines():
    out = ["hf"]
    try:
        import vllm  # noqa: F401

        out.append("vllm")
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("engine", _engines())
def test_a_batch_is_one_generate_call(tiny_model_dir, engine):
    url = str(tiny_model_dir)
    args = {"backend": engine, "url": url, "template": "score", "samples": 3, "temperature": 1.0, "max_tokens": 4}
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args=args)], verifiable="llm_judge")
    client = judge_client(engine, url, local_judge=EngineJudge)
    calls = client.generate_calls
    result = compute_rewards(COMPLETIONS, PROMPTS, cfg, local_judge=EngineJudge)
    assert client.generate_calls - calls == 1
    m = result.metrics
    assert m["reward/llm_judge/requests"] == 1 and m["reward/llm_judge/samples"] == 12
    assert 0 <= m["reward/llm_judge/unparseable"] <= 12
    # a completion with no parsed sample is an error scored 0; at most 3 unparseable samples each
    assert result.errors * 3 <= m["reward/llm_judge/unparseable"]
    assert all(0.0 <= v <= 1.0 for v in result.per_function["llm_judge"])

    # verdict: P(yes) from the first-token probabilities (hf: a forward pass; vllm: a next-token
    # request restricted to the labels' tokens), in (0, 1) for every completion of a random judge
    verdict = dict(args, template="verdict", samples=2)
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args=verdict)], verifiable="llm_judge")
    result = compute_rewards(COMPLETIONS, PROMPTS, cfg, local_judge=EngineJudge)
    assert client.generate_calls - calls == 2
    assert result.errors == 0 and result.metrics["reward/llm_judge/unparseable"] == 0
    values = result.per_function["llm_judge"]
    assert all(0.0 < v < 1.0 for v in values) and len(set(values)) > 1, values


def test_vllm_and_hf_judges_agree_on_p_yes(tiny_model_dir):
    """The same model's P(yes) through the colocated vllm engine and through hf."""
    pytest.importorskip("vllm")
    url = str(tiny_model_dir)
    scores = {}
    for engine in ("hf", "vllm"):
        args = {"backend": engine, "url": url, "template": "verdict", "samples": 1, "temperature": 1.0, "max_tokens": 2}
        cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args=args)], verifiable="llm_judge")
        scores[engine] = compute_rewards(COMPLETIONS, PROMPTS, cfg, local_judge=EngineJudge).per_function["llm_judge"]
    assert scores["vllm"] == pytest.approx(scores["hf"], abs=1e-3), scores
