"""The LLM judge against a real HTTP server on 127.0.0.1 (OpenAI format) and the real tiny model."""

from __future__ import annotations

import json
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from envs.base import Prompt
from rewards import RewardConfig, RewardFunctionConfig, compute_rewards
from rewards.judge import JUDGE_STATS, HTTPJudge, JudgeError, JudgeOutput, LocalJudgeMissing, judge_client, llm_judge

PROMPT = Prompt("j/1", ({"role": "user", "content": "What is 2+2?"},), "4")


class FakeOpenAI:
    """A real HTTP server speaking the chat completions format; replies are queued per test."""

    def __init__(self):
        self.replies: list[tuple[int, dict]] = []  # (status, body) served in order; the last one repeats
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **body})
                status, reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, *contents: str, logprobs: list[dict] | None = None, status: int = 200) -> None:
        choices = []
        for c in contents:
            choice = {"index": len(choices), "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
            if logprobs is not None:
                choice["logprobs"] = {"content": [{"token": c[:3], "logprob": -0.1, "top_logprobs": logprobs}]}
            choices.append(choice)
        self.replies.append((status, {"choices": choices} if status == 200 else {"error": {"message": "boom"}}))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = FakeOpenAI()
    yield s
    s.close()


def test_verdict_from_token_probabilities(server):
    server.reply("yes", logprobs=[{"token": "yes", "logprob": math.log(0.6)}, {"token": " Yes", "logprob": math.log(0.2)},
                                  {"token": "No", "logprob": math.log(0.1)}, {"token": "maybe", "logprob": math.log(0.05)}])
    score = llm_judge("\\boxed{4}", PROMPT, url=server.url, model="m1")
    assert score == pytest.approx(0.8 / 0.9)  # (0.6 + 0.2) / (0.6 + 0.2 + 0.1)
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["model"] == "m1" and req["logprobs"] is True
    assert "What is 2+2?" in req["messages"][0]["content"] and "Reference answer:\n4" in req["messages"][0]["content"]


def test_text_verdicts_mean_vote_unparseable_and_cache(server):
    server.reply("Yes, it is right.", "No.", "I cannot tell")
    before = dict(JUDGE_STATS)
    assert llm_judge("5", PROMPT, url=server.url, model="m2", samples=3, temperature=1.0) == pytest.approx(0.5)  # (1 + 0) / 2
    assert JUDGE_STATS["unparseable"] - before.get("unparseable", 0) == 1
    assert JUDGE_STATS["samples"] - before.get("samples", 0) == 3
    assert llm_judge("5", PROMPT, url=server.url, model="m2", samples=3, aggregate="vote", temperature=1.0) == 0.5  # 1 yes, 1 no
    assert len(server.requests) == 1  # the second call was answered from the cache
    assert JUDGE_STATS["cache_hits"] > before.get("cache_hits", 0)


def test_score_template(server):
    server.reply("Score: 7/10", "8", "11 out of ten")
    assert llm_judge("4", PROMPT, url=server.url, model="m3", template="score", samples=3, temperature=1.0) == pytest.approx((6 / 9 + 7 / 9) / 2)


def test_pairwise_shows_both_orders(server):
    server.reply("A")  # a judge that always prefers the first position
    assert llm_judge("four", PROMPT, url=server.url, model="m4", template="pairwise", samples=2) == 0.5
    first, second = (r["messages"][0]["content"] for r in server.requests)
    assert first.index("four") < first.index("Response B") and second.index("Response B") < second.index("four")


def test_all_unparseable_is_a_counted_zero(server):
    server.reply("hmm")
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args={"url": server.url, "model": "m5"})],
                       verifiable="llm_judge")
    with pytest.raises(JudgeError, match="none of the judge's 1 outputs parses as a verdict answer; first: 'hmm'"):
        llm_judge("x", PROMPT, url=server.url, model="m5")
    result = compute_rewards(["x"], [PROMPT], cfg)
    assert result.total == [0.0] and result.errors == 1
    assert result.metrics["reward/llm_judge/unparseable"] == 1.0  # the request was cached: no new request
    assert result.metrics["reward/llm_judge/cache_hits"] == 1.0


def test_retries_server_errors_then_succeeds(server):
    server.reply("", status=503)
    server.reply("yes")
    judge = HTTPJudge(server.url, "m6", retries=2, backoff=0.01)
    assert [o.text for o in judge.complete("q", 1)] == ["yes"]
    assert len(server.requests) == 2


def test_client_errors_are_not_retried(server):
    server.reply("", status=400)
    judge = HTTPJudge(server.url, "m7", retries=3, backoff=0.01)
    with pytest.raises(JudgeError, match=r"judge endpoint .*/v1/chat/completions refused the request \(HTTP 400"):
        judge.complete("q", 1)
    assert len(server.requests) == 1


def test_unreachable_endpoint_names_the_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    judge = HTTPJudge(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(JudgeError, match=rf"judge endpoint http://127.0.0.1:{port}/v1/chat/completions unreachable after 2 attempts"):
        judge.complete("q", 1)
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        HTTPJudge("127.0.0.1:8000", "m")


def test_arguments_are_validated_at_load():
    with pytest.raises(ValueError, match="argument 'template'='likert'"):
        RewardFunctionConfig(name="llm_judge", args={"template": "likert"})
    with pytest.raises(ValueError, match="argument 'samples'=0"):
        RewardFunctionConfig(name="llm_judge", args={"samples": 0})


def test_tiny_hf_judge_scores_or_counts_unparseable(tiny_model_dir):
    from rl.rollout.judge import EngineJudge

    # verdict: the yes/no first-token probabilities of the real tiny model give a score in (0, 1)
    [score] = llm_judge.batch(["4"], [PROMPT], backend="hf", url=str(tiny_model_dir), samples=2, max_tokens=4,
                              local_judge=EngineJudge)
    assert 0.0 < score < 1.0
    # score: its random text rarely holds a number 1-10; whatever it says is parsed or counted, never a crash
    cfg = RewardConfig(functions=[RewardFunctionConfig(
        name="llm_judge", args={"backend": "hf", "url": str(tiny_model_dir), "template": "score", "samples": 2,
                                "max_tokens": 4, "temperature": 1.0})], verifiable="llm_judge")
    before = JUDGE_STATS["unparseable"]
    result = compute_rewards(["4", "5"], [PROMPT, PROMPT], cfg, local_judge=EngineJudge)
    assert all(0.0 <= t <= 1.0 for t in result.total)
    parsed = 4 - (JUDGE_STATS["unparseable"] - before)
    assert result.errors <= 2 and (result.errors == 0 or parsed < 4)


def test_greedy_samples_are_one_request_repeated(server):
    """vLLM refuses n > 1 at temperature 0: k greedy samples are one choice asked for, counted k times."""
    server.reply("yes")
    before = dict(JUDGE_STATS)
    assert llm_judge("4", PROMPT, url=server.url, model="m9", samples=3, use_logprobs=False) == 1.0
    assert server.requests[-1]["n"] == 1 and "logprobs" not in server.requests[-1]
    assert JUDGE_STATS["samples"] - before.get("samples", 0) == 3


class FixedJudge:
    """A JudgeBackend written here, built as a local judge factory is, (path, engine): whatever the
    prompt, the response "4" gets two verdicts with yes/no first-token log-probs, "5" two "No"
    texts without log-probs, anything else an answer that does not parse."""

    built: list[tuple[str, str]] = []

    def __init__(self, path: str, engine: str):
        FixedJudge.built.append((path, engine))
        self.calls: list[tuple[list[tuple[str, int]], tuple[str, ...]]] = []

    def complete_batch(self, requests, *, labels=(), temperature=0.0, max_tokens=16, workers=1):
        self.calls.append((list(requests), labels))
        out = []
        for text, n in requests:
            response = text.split("Response:\n")[1].split("\n")[0]
            if response == "4":
                out.append([JudgeOutput("yes", {"yes": math.log(0.6), "no": math.log(0.2)}),
                            JudgeOutput("no", {"yes": math.log(0.3), "no": math.log(0.6)})][:n])
            elif response == "5":
                out.append([JudgeOutput("No, it is wrong."), JudgeOutput("No.")][:n])
            else:
                out.append([JudgeOutput("hmm")] * n)
        return out


def test_a_local_judge_is_the_backend_its_factory_builds():
    """compute_rewards hands its local_judge factory to llm_judge: the recipe's local model path and
    engine go to it once, and the scores are those of the backend's outputs."""
    args = {"backend": "vllm", "url": "/models/fixed-judge", "samples": 2, "temperature": 1.0}
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args=args)], verifiable="llm_judge")
    FixedJudge.built.clear()
    result = compute_rewards(["4", "5", "x"], [PROMPT] * 3, cfg, local_judge=FixedJudge)
    # "4": P(yes) = yes / (yes + no) per sample, 0.6 / 0.8 and 0.3 / 0.9, averaged; "5": two text
    # verdicts "no"; "x": nothing parses, a counted zero
    assert result.per_function["llm_judge"] == [pytest.approx((0.75 + 1 / 3) / 2), 0.0, 0.0]
    assert result.errors == 1
    assert result.metrics["reward/llm_judge/samples"] == 6 and result.metrics["reward/llm_judge/unparseable"] == 2
    assert FixedJudge.built == [("/models/fixed-judge", "vllm")]
    backend = judge_client("vllm", "/models/fixed-judge", local_judge=FixedJudge)
    [(requests, labels)] = backend.calls  # the whole batch in one call, k samples each, P(yes) asked for
    assert [n for _, n in requests] == [2, 2, 2] and labels == ("yes", "no")
    compute_rewards(["4"], [PROMPT], cfg, local_judge=FixedJudge)  # the backend is kept: built once
    assert FixedJudge.built == [("/models/fixed-judge", "vllm")] and len(backend.calls) == 2


def test_a_local_judge_without_a_factory_is_an_error_not_zeros():
    args = {"backend": "hf", "url": "/models/judge"}
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="llm_judge", args=args)], verifiable="llm_judge")
    with pytest.raises(LocalJudgeMissing, match=r"reward llm_judge: backend 'hf' judges with the local model at "
                                                r"url='/models/judge' \(reward.functions\[\].args backend/url\).*"
                                                r"pass local_judge=EngineJudge \(rl/rollout/judge.py\) to compute_rewards"):
        compute_rewards(["4"], [PROMPT], cfg)
    with pytest.raises(LocalJudgeMissing, match="set backend: http"):
        llm_judge("4", PROMPT, **args)
