"""The Recipe: a whole run, assembled from the sections' configs (rl/config/, envs/*/config.py,
rewards/config.py), with the checks that span sections and the warnings about valid but probably
unintended combinations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union

from pydantic import Field, model_validator

from envs.code.config import CodeEnvConfig
from envs.math.config import MathEnvConfig
from envs.schema import Config, KeyedValueError
from envs.swe.config import SWEEnvConfig
from rewards.config import RewardConfig
from rl.config.algorithm import AlgorithmConfig
from rl.config.model import ModelConfig
from rl.config.outputs import CheckpointConfig, LoggingConfig
from rl.config.parallel import DistributedConfig
from rl.config.resources import ResourcesConfig
from rl.config.rollout import AsyncConfig, EngineConfig
from rl.config.train import EvalConfig, OptimizerConfig, TrainConfig


class Recipe(Config):
    """A whole run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The run's name: its directory under logging.runs_dir."""
    seed: int = 0
    """Seeds the model's warm start, the data order, sampling and everything else random."""
    model: ModelConfig
    engine: EngineConfig = EngineConfig()
    env: Annotated[Union[MathEnvConfig, CodeEnvConfig, SWEEnvConfig], Field(discriminator="name")]
    reward: RewardConfig = RewardConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    eval: EvalConfig = EvalConfig()
    logging: LoggingConfig = LoggingConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    async_: AsyncConfig = Field(AsyncConfig(), alias="async")
    """The YAML key is `async` (a Python keyword)."""
    distributed: DistributedConfig = DistributedConfig()
    resources: ResourcesConfig = ResourcesConfig()

    @model_validator(mode="after")
    def _async_is_consistent(self) -> "Recipe":
        k = self.async_.max_off_policy_steps
        if k == 0:
            return self
        steps = self.train.mini_batches * self.train.epochs
        if self.engine.name == "hf":
            raise KeyedValueError(("engine.name", "async.max_off_policy_steps"),
                f"async.max_off_policy_steps={k} needs engine.name vllm or vllm-server: the hf engine samples "
                "from the training model itself, which cannot generate while it trains (use 0 with hf)"
            )
        if k < steps:
            raise KeyedValueError(("async.max_off_policy_steps", "train.mini_batches", "train.epochs"),
                f"async.max_off_policy_steps ({k}) must be at least train.mini_batches * train.epochs ({steps}): "
                "a batch generated during one update is that many optimizer steps old when it is trained on"
            )
        if self.algorithm.tis is None:
            raise KeyedValueError(("async.max_off_policy_steps", "algorithm.tis"),
                f"async.max_off_policy_steps={k} needs algorithm.tis (e.g. algorithm.tis: {{cap: 2.0}}): "
                "the engine's tokens come from older weights, corrected by truncated importance sampling"
            )
        if self.algorithm.no_positive_resampling is not None:
            raise KeyedValueError(("async.max_off_policy_steps", "algorithm.no_positive_resampling"),
                "async.max_off_policy_steps > 0 does not support algorithm.no_positive_resampling "
                "(its pass rates would lag the generator); use 0 or remove it")
        return self

    @model_validator(mode="after")
    def _lora_strategy(self) -> "Recipe":
        if self.model.lora is not None and self.distributed.strategy in ("zero3", "fsdp"):
            raise KeyedValueError(("model.lora", "distributed.strategy"),
                f"model.lora with distributed.strategy {self.distributed.strategy} is not supported yet (the merged "
                "weights the engines receive are built from unsharded layers): use ddp or zero2, whose adapters and "
                "optimizer states are small anyway"
            )
        return self

    @model_validator(mode="after")
    def _length_fits_budget(self) -> "Recipe":
        buffer = self.algorithm.length.overlong_buffer
        if buffer is not None and buffer >= self.engine.max_new_tokens:
            raise KeyedValueError(("algorithm.length.overlong_buffer", "engine.max_new_tokens"),
                f"algorithm.length.overlong_buffer ({buffer}) must be below engine.max_new_tokens "
                f"({self.engine.max_new_tokens}): the penalty starts at max_new_tokens - overlong_buffer"
            )
        return self

    @model_validator(mode="after")
    def _code_env_reward(self) -> "Recipe":
        """The code env's correctness is its unit tests: a verifiable reward meant for another env
        (math_verify, swe_tests) would score every completion 0."""
        if self.env.name == "code" and self.reward.verifiable != "code_tests":
            raise KeyedValueError(("reward.verifiable", "env.name"),
                f"env code: reward.verifiable is '{self.reward.verifiable}', which cannot score code; set "
                "reward.verifiable: code_tests (and list code_tests in reward.functions)")
        return self

    @model_validator(mode="after")
    def _multi_turn_length(self) -> "Recipe":
        """A multi-turn episode is turns of at most engine.max_new_tokens each, with the env's
        observations between them: the single-completion length controls do not apply to it."""
        length = self.algorithm.length
        if self.env.name == "swe" and length.thinking_budget is not None:
            raise KeyedValueError(("algorithm.length.thinking_budget", "env.name"),
                "algorithm.length.thinking_budget interrupts one long completion; the swe env's episodes "
                "are many turns (each at most engine.max_new_tokens, the episode at most "
                "env.max_episode_tokens): leave it unset")
        if self.env.name == "swe" and length.overlong_buffer is not None:
            raise KeyedValueError(("algorithm.length.overlong_buffer", "env.name"),
                "algorithm.length.overlong_buffer measures a completion against engine.max_new_tokens; a swe "
                "episode (turns and observations) is bounded by env.max_episode_tokens instead: leave it "
                "unset (algorithm.length.mask_truncated works with episodes that run out of tokens)")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.logging.runs_dir) / self.name


def recipe_warnings(recipe: Recipe) -> list[str]:
    """Valid but probably unintended combinations; the trainer prints them when it starts."""
    algo, train_cfg = recipe.algorithm, recipe.train
    out = []
    updates = train_cfg.epochs * train_cfg.mini_batches
    if algo.loss.name == "kl_cov" and updates == 1:
        out.append(
            "algorithm.loss kl_cov with one on-policy update per batch (train.epochs * train.mini_batches == 1): "
            "every importance ratio is 1, so the KL term |log r| is 0 with no gradient and KL-Cov reduces to "
            "REINFORCE; use several mini-batches or epochs (the paper's runs take 8 mini-batches per batch)"
        )
    if algo.loss.name in ("gspo", "sapo") and algo.aggregation.name not in ("seq_mean_token_mean", "prompt_mean"):
        out.append(
            f"algorithm.loss {algo.loss.name} with aggregation {algo.aggregation.name}: {algo.loss.name.upper()}'s "
            "objective is a mean over sequences (aggregation seq_mean_token_mean); token_mean weighs long "
            "completions more"
        )
    if recipe.model.fp32_lm_head and recipe.model.dtype == "float32":
        out.append("model.fp32_lm_head has no effect on a float32 model")
    return out
