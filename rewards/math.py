"""Math correctness checked by math_verify (Hugging Face's Math-Verify, the checker of open-r1).

math_verify extracts the final answer from free text, parses it (LaTeX or plain expressions) into
SymPy and compares it with the gold answer by value: `0.5`, `1/2` and `\\frac{1}{2}` are equal, so
are `7` and `7.0`, and `\\boxed{x=3}` matches a gold `3`. The answer of a completion is its last
\\boxed{...} (cut out here, see last_boxed), else the last answer math_verify finds in the text.

Timeouts. math_verify bounds parsing and comparison with signal.alarm, which only works in the main
thread of the main interpreter; elsewhere it raises. math_verify_reward therefore passes the
timeouts only when it runs in the main thread, and runs without them in any other thread. There a
pathological expression can take as long as SymPy needs; a caller that scores from worker threads
must bound the time itself (a process pool with a deadline, for example).
"""

from __future__ import annotations

import functools
import threading

from envs.base import Prompt


# math_verify is imported where it is used, not at module top: it takes about a second to import
# (SymPy, its LaTeX parser), and the recipe schema (rewards/config.py) reads this module's signature
# of math_verify_reward without scoring anything.
@functools.cache
def _completion_targets() -> tuple:
    """A completion's answer, when it has no usable \\boxed{}: "final answer is ...", "answer: ...", then
    the rightmost LaTeX or plain number/expression (a stray \\boxed is still tried first)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


@functools.cache
def _gold_targets() -> tuple:
    from math_verify import LatexExtractionConfig

    return (LatexExtractionConfig(),)


def last_boxed(text: str) -> str | None:
    """The last `\\boxed{...}` of `text` (braces balanced), or None if there is none or it is not closed.

    math_verify alone reads several boxed answers inconsistently (sometimes the last, sometimes the
    set of all of them, depending on the text between), so the reward cuts out the last one itself,
    as the MATH grader's last_boxed_only_string (Hendrycks et al. 2021) and verl do."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    for end in range(start + len("\\boxed"), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start : end + 1]
    return None


def _timeout(seconds: int) -> int | None:
    """math_verify's timeout argument: `seconds` in the main thread, None (off) in any other."""
    if seconds > 0 and threading.current_thread() is threading.main_thread():
        return seconds
    return None


def parse_gold(answer: str, timeout_seconds: int = 5) -> list:
    """The gold answer parsed by math_verify; raises ValueError if nothing can be read from it.

    A plain gold answer is read as the content of a \\boxed{}, so `x=3`, `\\sqrt{2}` and `(1, 2)`
    parse as the expressions they are (read as plain text, math_verify would keep only the last
    number). An answer that already has a \\boxed{} or $...$ is parsed as written.

    Text is not detected: math_verify reads `Tuesday` as a product of symbols, which no numeric
    completion matches; keep such answers out of math datasets."""
    from math_verify import parse

    text = answer if ("\\boxed" in answer or "$" in answer) else f"\\boxed{{{answer}}}"
    gold = parse(
        text,
        extraction_config=list(_gold_targets()),
        fallback_mode="no_fallback",
        parsing_timeout=_timeout(timeout_seconds),
    )
    if not gold:
        raise ValueError(f"math_verify cannot parse the gold answer {answer!r}")
    return gold


def math_verify_reward(
    completion: str, prompt: Prompt, *, timeout_seconds: int = 5, float_rounding: int = 6
) -> float:
    """1.0 if the completion's final answer equals `prompt.answer` by math_verify, else 0.0.

    The final answer is the content of the last \\boxed{} if there is one and it parses (earlier
    boxed answers do not count: hedging earns nothing), else what follows "final answer is" or
    "answer:", else the last number or expression in the text. No answer, or an answer that cannot
    be parsed or times out, scores 0.0. A gold answer that cannot be parsed raises ValueError (the
    scorer counts it as an error, not as a wrong completion).

    `timeout_seconds` bounds each parse and comparison, 0 disables it (it only applies in the main
    thread, see the module docstring); `float_rounding` is the number of decimals at which floats are compared (math_verify's
    default, 6)."""
    verdict = _cached_verdict if len(completion) <= _CACHED_LENGTH else _verdict
    return verdict(completion, prompt.answer, _timeout(timeout_seconds) is not None, timeout_seconds, float_rounding)


_CACHED_LENGTH = 256
"""Completions up to this many characters have their verdicts memoised (at most 65,536 of them, so
the cache stays under ~20 MB); longer ones rarely repeat."""


def _verdict(completion: str, gold_answer: str, timed: bool, timeout_seconds: int, float_rounding: int) -> float:
    """math_verify_reward's score: a function of these arguments only."""
    from math_verify import parse, verify

    gold = parse_gold(gold_answer, timeout_seconds)
    timeout = timeout_seconds if timed else None  # signal-based timeouts: main thread only
    answer = []
    boxed = last_boxed(completion)
    if boxed is not None:
        answer = parse(boxed, list(_gold_targets()), fallback_mode="no_fallback", parsing_timeout=timeout)
    if not answer:
        answer = parse(
            completion, list(_completion_targets()), fallback_mode="no_fallback", parsing_timeout=timeout
        )
    if not answer:
        return 0.0
    correct = verify(gold, answer, float_rounding=float_rounding, timeout_seconds=timeout)
    return 1.0 if correct else 0.0


# A batch repeats the same short completions ("12" eight times in a group of a tiny model): parsing
# took a quarter of a tiny-model iteration before. A raised error (an unparseable gold) is not cached.
_cached_verdict = functools.lru_cache(maxsize=1 << 16)(_verdict)
