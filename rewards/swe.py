"""The SWE reward: the hidden tests' verdict on a multi-turn episode (envs/swe)."""

from __future__ import annotations

from envs.base import Prompt
from envs.swe.grading import Verdict


def swe_tests(completion: str, prompt: Prompt, *, partial_credit: bool = False) -> float:
    """1 if the episode resolved its task (every FAIL_TO_PASS test passes and every PASS_TO_PASS
    test still passes, SWE-bench's criterion), else 0. With partial_credit: the fraction of
    FAIL_TO_PASS tests fixed times the fraction of PASS_TO_PASS tests kept (a no-op scores 0).

    Reads the verdict the environment put in the episode's info (prompt.meta["env_info"], attached
    by the multi-turn rollout); an episode that was not graded scores 0, one whose grading failed
    raises (a logged zero)."""
    info = prompt.meta.get("env_info")
    if info is None:
        raise ValueError("swe_tests scores multi-turn SWE episodes; this completion has no episode info")
    if info.get("error"):
        raise RuntimeError(f"grading failed: {info['error']}")
    if info.get("verdict") is None:
        return 0.0
    return Verdict.from_dict(info["verdict"]).score(partial_credit)
