"""rewards/math.py: math_verify_reward on hand-written completions."""

import threading

import pytest
from math_verify import parse

from envs.base import Prompt
from rewards.math import last_boxed, math_verify_reward, parse_gold


def prompt(answer: str) -> Prompt:
    return Prompt(id="test/0", messages=({"role": "user", "content": "q"},), answer=answer)


@pytest.mark.parametrize(
    "gold, completion",
    [
        ("-4", "\\boxed{-4}"),
        ("-4", "The sum is -4"),
        ("\\boxed{-4}", "so the answer is -4."),
        ("0.5", "\\boxed{\\frac{1}{2}}"),
        ("0.5", "half of it, so 1/2"),
        ("1/2", "\\boxed{0.5}"),
        ("\\frac{1}{2}", "\\boxed{1/2}"),
        ("593/1368", "\\boxed{\\frac{593}{1368}}"),
        ("7", "7.0"),
        ("7.0", "\\boxed{7}"),
        ("3", "\\boxed{x=3}"),
        ("x=3", "\\boxed{3}"),
        ("1000", "\\boxed{1,000}"),
        ("\\sqrt{2}", "$\\boxed{\\sqrt 2}$"),
        ("10", "Final answer: 10"),
        ("10", "The final answer is $10$."),
    ],
)
def test_equivalent_forms_are_correct(gold, completion):
    assert math_verify_reward(completion, prompt(gold)) == 1.0


@pytest.mark.parametrize(
    "gold, completion",
    [
        ("-4", "\\boxed{4}"),
        ("5", "\\boxed{6}"),
        ("0.5", "\\boxed{0.6}"),
        ("0.5", "\\boxed{\\frac{1}{3}}"),
        ("3", "\\boxed{x=4}"),
    ],
)
def test_wrong_answers_score_zero(gold, completion):
    assert math_verify_reward(completion, prompt(gold)) == 0.0


@pytest.mark.parametrize("completion", ["", "I do not know.", "\\boxed{}", "\\boxed{5", "the answer is five"])
def test_no_answer_scores_zero(completion):
    assert math_verify_reward(completion, prompt("5")) == 0.0


@pytest.mark.parametrize(
    "completion",
    [
        "First try: \\boxed{5}. No wait, it is \\boxed{6}.",
        "I think \\boxed{5} but then \\boxed{6}",
        "\\boxed{5}, \\boxed{6}",  # math_verify alone reads this as the set {5, 6}
        "\\boxed{1} \\boxed{2} \\boxed{3} \\boxed{4} \\boxed{5} \\boxed{6}",  # hedging earns nothing
    ],
)
def test_last_boxed_answer_counts(completion):
    assert math_verify_reward(completion, prompt("6")) == 1.0
    assert math_verify_reward(completion, prompt("5")) == 0.0


def test_last_boxed_is_cut_out_with_nested_braces():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\boxed{\\frac{1}{2}}"
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}") is None
    assert last_boxed("no box") is None


def test_boxed_answer_takes_precedence_over_later_numbers():
    completion = "\\boxed{5} because I counted 6 sheep minus 1"
    assert math_verify_reward(completion, prompt("5")) == 1.0
    assert math_verify_reward(completion, prompt("1")) == 0.0


def test_without_boxed_the_last_number_counts():
    assert math_verify_reward("5 apples and later 6", prompt("6")) == 1.0
    assert math_verify_reward("5 apples and later 6", prompt("5")) == 0.0


def test_empty_box_falls_back_to_plain_answer():
    assert math_verify_reward("The answer is 5. \\boxed{}", prompt("5")) == 1.0


@pytest.mark.parametrize("gold", ["", "\\frac{", "}{", "???"])
def test_unparseable_gold_raises(gold):
    with pytest.raises(ValueError, match="cannot parse the gold answer"):
        math_verify_reward("\\boxed{5}", prompt(gold))


def test_gold_is_read_as_an_expression_not_its_last_number():
    assert str(parse_gold("x=3")[0]) == "Eq(x, 3)"
    assert str(parse_gold("\\sqrt{2}")[0]) == "sqrt(2)"


def run_in_thread(fn):
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except Exception as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    return out


def test_math_verify_alone_fails_outside_the_main_thread():
    # The hazard the reward guards against: math_verify's signal-based timeout raises in a thread.
    out = run_in_thread(lambda: parse("\\boxed{5}", parsing_timeout=5))
    assert isinstance(out.get("error"), ValueError)


def test_reward_works_outside_the_main_thread():
    out = run_in_thread(
        lambda: (math_verify_reward("\\boxed{1/2}", prompt("0.5")), math_verify_reward("7", prompt("8")))
    )
    assert out == {"value": (1.0, 0.0)}


def test_short_verdicts_are_memoised_and_long_ones_are_not():
    from rewards import math as rm

    rm._cached_verdict.cache_clear()
    assert math_verify_reward("12", prompt("12")) == 1.0 and math_verify_reward("13", prompt("12")) == 0.0
    assert math_verify_reward("12", prompt("12")) == 1.0  # the same completion again: from the cache
    assert rm._cached_verdict.cache_info().hits == 1 and rm._cached_verdict.cache_info().currsize == 2
    long = "x " * 200 + "so the answer is 12"
    assert math_verify_reward(long, prompt("12")) == 1.0
    assert rm._cached_verdict.cache_info().currsize == 2  # over _CACHED_LENGTH: scored, not kept
    with pytest.raises(ValueError, match="cannot parse the gold"):
        math_verify_reward("12", prompt("Tuesday?!{"))
