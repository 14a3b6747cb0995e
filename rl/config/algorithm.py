"""The `algorithm` section: what is optimised, assembled from the components' configs (rl/config/
losses.py, advantages.py, regularizers.py, filters.py, length.py, critic.py, numerics.py) with the
checks that span them."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, model_validator

from envs.schema import Config, KeyedValueError
from rl.config.advantages import AdvantageConfig, GRPOConfig, needs_groups
from rl.config.critic import CriticConfig
from rl.config.filters import DynamicSamplingConfig, NPRConfig
from rl.config.length import LengthConfig
from rl.config.losses import AggregationConfig, LossConfig, PPOClipConfig
from rl.config.numerics import TISConfig
from rl.config.regularizers import EntropyConfig, KLConfig


class AlgorithmConfig(Config):
    """What is optimised: group size, advantage estimator, policy loss, aggregation, regularisers,
    filters and curricula, length control, the critic (PPO) and importance-sampling corrections."""

    group_size: int = Field(8, ge=1)
    """Completions sampled per prompt (G in GRPO)."""
    advantage: Annotated[Union[AdvantageConfig], Field(discriminator="name")] = GRPOConfig()
    loss: Annotated[Union[LossConfig], Field(discriminator="name")] = PPOClipConfig()
    aggregation: AggregationConfig = AggregationConfig()
    kl: KLConfig = KLConfig()
    entropy: EntropyConfig = EntropyConfig()
    zero_variance_filter: bool = False
    """Drop groups whose completions all got the same reward from the loss (their GRPO advantage is
    0 anyway; dropping them changes the token-mean denominator). DAPO, ScaleRL."""
    dynamic_sampling: DynamicSamplingConfig | None = None
    """DAPO's dynamic sampling: resample until the batch holds prompts_per_iteration informative
    groups. None disables it."""
    no_positive_resampling: NPRConfig | None = None
    """ScaleRL's No-Positive-Resampling curriculum. None disables it."""
    length: LengthConfig = LengthConfig()
    critic: CriticConfig | None = None
    """PPO's learned critic; required by (and only used with) `advantage: {name: gae}`."""
    tis: TISConfig | None = None
    """Truncated importance sampling of the engine/trainer mismatch (rl/numerics.py). None disables it."""

    @model_validator(mode="after")
    def _consistent(self) -> "AlgorithmConfig":
        if needs_groups(self.advantage) and self.group_size < 2:
            which = f"'{self.advantage.name}' advantage"
            hint = ""
            if self.advantage.name == "reinforce_pp":
                which += " with baseline 'group_mean'"
                hint = ("; a group of one is its own mean, so every advantage would be 0 (use "
                        "algorithm.advantage.baseline: none for one sample per prompt)")
            raise KeyedValueError(("group_size", "advantage"), (
                f"group_size must be at least 2 with the {which}, which compares the completions of a prompt "
                f"with each other (got group_size={self.group_size}){hint}"
            ))
        if (self.advantage.name == "gae") != (self.critic is not None):
            raise KeyedValueError(("critic", "advantage"), (
                "the 'gae' advantage needs a critic (algorithm.critic: {model: separate} or {model: value_head}), "
                f"and a critic is only used by it (advantage is '{self.advantage.name}', "
                f"critic is {'set' if self.critic else 'missing'})"
            ))
        if (self.dynamic_sampling or self.zero_variance_filter) and self.group_size < 2:
            raise KeyedValueError(("group_size", "dynamic_sampling", "zero_variance_filter"), (
                "dynamic_sampling and zero_variance_filter compare the completions of a prompt: "
                f"group_size must be at least 2 (got {self.group_size})"))
        return self
