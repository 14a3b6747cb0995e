"""Verifier quality: rates, exact intervals, best-of-n under an imperfect verifier, the CLI."""

from __future__ import annotations

import json
from fractions import Fraction as F

import numpy as np
import pytest
from scipy.stats import beta as beta_dist

from analysis.verifier import (
    Sample,
    best_of_n,
    exact_interval,
    expected_reward,
    precision,
    read_scored,
    score_run_samples,
    verifier_report,
)
from launch.cli import main


def test_best_of_n_hand_computed():
    # p = 0.5, α = 0.2, β = 0.8: a = 0.5, precision 0.8, P(right | rejected) = 0.2;
    # n = 2: P(some accepted) = 0.75 -> 0.75 * 0.8 + 0.25 * 0.2 = 0.65
    assert best_of_n(0.5, 0.2, 0.8, 1) == pytest.approx(0.5)
    assert best_of_n(0.5, 0.2, 0.8, 2) == pytest.approx(0.65)
    assert best_of_n(0.5, 0.2, 0.8, 3) == pytest.approx(0.875 * 0.8 + 0.125 * 0.2)
    assert best_of_n(0.5, 0.2, 0.8, 10_000) == pytest.approx(0.8)  # the ceiling is the precision
    assert precision(0.5, 0.2, 0.8) == pytest.approx(0.8)
    assert expected_reward(0.3, 0.1, 0.9) == pytest.approx(0.9 * 0.3 + 0.1 * 0.7)


def test_perfect_verifier_is_pass_at_n_and_coin_flip_verifier_is_useless():
    ns = np.array([1, 2, 4, 8, 64])
    assert np.allclose(best_of_n(0.3, 0.0, 1.0, ns), 1 - 0.7 ** ns)
    assert np.allclose(best_of_n(0.3, 0.6, 0.6, ns), 0.3)  # accepts regardless of correctness


def test_exact_interval_is_clopper_pearson():
    iv = exact_interval(3, 13)
    assert iv.value == pytest.approx(3 / 13)
    assert iv.low == pytest.approx(beta_dist.ppf(0.025, 3, 11))
    assert iv.high == pytest.approx(beta_dist.ppf(0.975, 4, 10))
    assert exact_interval(0, 10).low == 0.0


def _data() -> list[Sample]:
    # prompt A: 5 right (4 accepted), 5 wrong (1 accepted); prompt B: 2 right (both accepted), 8 wrong (2 accepted)
    a = [Sample("A", True, True)] * 4 + [Sample("A", False, True)] + [Sample("A", True, False)] + [Sample("A", False, False)] * 4
    b = [Sample("B", True, True)] * 2 + [Sample("B", True, False)] * 2 + [Sample("B", False, False)] * 6
    return a + b


def test_report_hand_computed():
    r = verifier_report(_data(), draws=200)
    assert r.counts == {"tp": 6, "fp": 3, "tn": 10, "fn": 1}
    assert (r.samples, r.prompts) == (20, 2)
    assert r.accuracy.value == pytest.approx(7 / 20)
    assert r.fpr.value == pytest.approx(3 / 13)
    assert r.fnr.value == pytest.approx(1 / 7)
    assert r.precision.value == pytest.approx(6 / 9)
    assert r.expected_reward.value == pytest.approx(9 / 20)
    assert r.reward_bias.value == pytest.approx(9 / 20 - 7 / 20)
    # per-prompt ceilings: precision(1/2) = 26/33, precision(1/5) = 13/27 with α = 3/13, β = 6/7
    assert r.ceiling.value == pytest.approx(float((F(26, 33) + F(13, 27)) / 2))
    assert r.best_of_n[1].value == pytest.approx(0.5 * (0.5 + 0.2))
    a, b = 3 / 13, 6 / 7
    assert r.best_of_n[4].value == pytest.approx((best_of_n(0.5, a, b, 4) + best_of_n(0.2, a, b, 4)) / 2)
    assert r.oracle[2] == pytest.approx((0.75 + 0.36) / 2)
    for iv in [r.precision, r.ceiling, *r.best_of_n.values()]:
        assert iv.low <= iv.value <= iv.high and iv.width > 0


def test_empty_and_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="no scored samples"):
        verifier_report([])
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"prompt_id": 1, "judge": 1, "reference": 0}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: missing field\(s\) verifier; present: prompt_id, judge, reference"):
        read_scored(path)
    path.write_text(json.dumps({"prompt_id": 1, "verifier": "maybe", "reference": 0}) + "\n")
    with pytest.raises(ValueError, match="field 'verifier' is 'maybe'; allowed"):
        read_scored(path)


def test_cli_prints_table_and_writes_json_and_png(tmp_path, capsys):
    path = tmp_path / "scored.jsonl"
    with open(path, "w") as f:
        for s in _data():
            f.write(json.dumps({"prompt_id": s.prompt_id, "verifier": "yes" if s.verifier else "no",
                                "reference": float(s.reference)}) + "\n")
    assert main(["verifier-report", str(path), "--draws", "100", "--n", "1,2,64", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "false-positive rate α         23.1%" in out
    assert "ceiling" in out and "  64  " in out
    data = json.loads((tmp_path / "out" / "verifier.json").read_text())
    assert data["counts"]["fp"] == 3 and set(data["best_of_n"]) == {"1", "2", "64"}
    assert (tmp_path / "out" / "best_of_n.png").stat().st_size > 1000
    assert main(["verifier-report", str(path), "--n", "1,x"]) == 2
    assert "--n must be comma-separated integers" in capsys.readouterr().err


def test_run_samples_with_reference_reward(tmp_path):
    path = tmp_path / "samples.jsonl"
    rec = {"prompt_id": "p0", "prompt": "2+2?", "answer": "4",
           "completions": ["\\boxed{4}", "\\boxed{5}", "\\boxed{4}"], "rewards": [1.0, 1.0, 0.0]}
    path.write_text(json.dumps(rec) + "\n")
    samples = score_run_samples(path, "math_verify")
    assert samples == [Sample("p0", True, True), Sample("p0", True, False), Sample("p0", False, True)]
    with pytest.raises(ValueError, match="unknown reward 'nope'; allowed: math_verify"):
        score_run_samples(path, "nope")
    # the verifier recomputed: a format check (ends with one \\boxed{}) accepts all three
    assert [s.verifier for s in score_run_samples(path, "math_verify", verifier_reward="format")] == [True] * 3
    with pytest.raises(ValueError, match="reward 'format' has no argument 'regex'"):
        score_run_samples(path, "math_verify", verifier_reward="format", verifier_args={"regex": "x"})


class BoxedFourJudge:
    """A local judge backend written here (rewards.judge.JudgeBackend, built from (path, engine)):
    it says yes to a response holding \\boxed{4}, no to any other, one batch per call."""

    batches: list[int] = []

    def __init__(self, path: str, engine: str):
        assert (path, engine) == ("/models/verifier-judge", "hf")

    def complete_batch(self, requests, *, labels=(), temperature=0.0, max_tokens=16, workers=1):
        from rewards.judge import JudgeOutput

        BoxedFourJudge.batches.append(len(requests))
        return [[JudgeOutput("yes" if "\\boxed{4}" in text.split("Response:")[1] else "no")] * n for text, n in requests]


def test_run_samples_with_a_local_judge_as_the_verifier(tmp_path):
    path = tmp_path / "samples.jsonl"
    rec = {"prompt_id": "p0", "prompt": "2+2?", "answer": "4",
           "completions": ["\\boxed{4}", "\\boxed{5}", "4, so \\boxed{4}"], "rewards": [0.0, 1.0, 0.0]}
    path.write_text(json.dumps(rec) + "\n")
    judge = {"backend": "hf", "url": "/models/verifier-judge", "use_logprobs": False}
    BoxedFourJudge.batches.clear()
    samples = score_run_samples(path, "math_verify", verifier_reward="llm_judge", verifier_args=judge,
                                local_judge=BoxedFourJudge)
    assert samples == [Sample("p0", True, True), Sample("p0", False, False), Sample("p0", True, True)]
    assert BoxedFourJudge.batches == [3]  # a record's completions are judged as one batch
    with pytest.raises(ValueError, match="backend 'hf' judges with the local model"):  # no factory: no zeros
        score_run_samples(path, "math_verify", verifier_reward="llm_judge", verifier_args=judge)


def test_cli_verifier_reward_needs_a_reference(tmp_path, capsys):
    path = tmp_path / "samples.jsonl"
    path.write_text("")
    assert main(["verifier-report", str(path), "--verifier-reward", "format"]) == 2
    assert "give both" in capsys.readouterr().err
    assert main(["verifier-report", str(path), "--reference-reward", "math_verify", "--verifier-args", "{bad"]) == 2
    assert "asymptote:" in capsys.readouterr().err
