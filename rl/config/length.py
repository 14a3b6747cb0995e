"""The length control config (`algorithm.length`). The reward shaping and the forced interruption
are in rl/length.py."""

from __future__ import annotations

from pydantic import Field, model_validator

from envs.schema import Config


# ScaleRL's end-of-thinking phrase (Khatri et al. 2025, §3.2, after Qwen3's thinking budget).
INTERRUPTION = "\n\nOkay, time is up. Let me stop thinking and formulate a final answer now.\n</think>\n\n"


class LengthConfig(Config):
    """Length control. All off by default."""

    overlong_buffer: int | None = Field(None, ge=1)
    """L_cache of DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): completions longer than
    L_max − L_cache lose reward linearly, down to −1 at L_max = engine.max_new_tokens. DAPO uses
    L_cache = 4096 with L_max = 20480. None disables it."""
    overlong_penalty: float = Field(1.0, gt=0.0)
    """Scale of that penalty (verl's overlong_penalty_factor; 1.0 in DAPO)."""
    mask_truncated: bool = False
    """Leave completions that hit the token budget (finish reason 'length') out of the loss: DAPO's
    overlong filtering (§3.4), TRL's mask_truncated_completions. They still count in their group's
    reward statistics."""
    thinking_budget: int | None = Field(None, ge=1)
    """ScaleRL's forced interruption: a completion still going after this many tokens gets the
    interruption text appended and continues for at most answer_budget tokens to give its answer.
    The appended tokens are not the policy's and leave the loss. None disables it."""
    answer_budget: int = Field(64, ge=1)
    """Tokens allowed after the interruption."""
    interruption: str = INTERRUPTION
    """The text appended at the thinking budget."""

    @model_validator(mode="after")
    def _nonempty_interruption(self) -> "LengthConfig":
        if self.thinking_budget is not None and not self.interruption:
            raise ValueError("interruption must not be empty when thinking_budget is set")
        return self
