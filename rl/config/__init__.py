"""The recipe schema: one typed, documented, validated description of a run.

A recipe is a YAML file. It may name `base: other.yaml` (relative to itself) and override keys of
it; the command line overrides further with `key.sub=value` (the value is read as YAML). Mappings
merge key by key, except a component given under another `name` (algorithm.loss.name=cispo over a
ppo_clip base), which replaces the base's component with its own defaults. Unknown
keys, wrong types, out-of-range values and invalid combinations fail here, before any model loads,
with a message that names the file (or override), the key and what is allowed.

Each component's config lives beside it, in a module that imports pydantic and nothing heavy:
the trainer's components in this package (rl/config/losses.py for rl/losses.py, advantages.py,
critic.py, filters.py, length.py, numerics.py, regularizers.py; model.py, rollout.py, train.py,
outputs.py, parallel.py and resources.py for the model, the engines, the loop, what a run writes,
the processes and the cluster), the environment's in envs/*/config.py, the rewards' in
rewards/config.py, all on the base of envs/schema.py. rl/config/recipe.py assembles them into the
Recipe; rl/config/loader.py reads, merges, overrides and validates. Importing this package loads
no torch, transformers or verifier (tests/rl/test_config_light.py).
"""

from envs.code.config import CodeEnvConfig
from envs.math.config import MathEnvConfig
from envs.schema import KeyedValueError
from envs.swe.config import SWEEnvConfig
from rewards.config import RewardConfig
from rl.config.advantages import AdvantageConfig, GRPOConfig, needs_groups
from rl.config.algorithm import AlgorithmConfig
from rl.config.critic import CriticConfig
from rl.config.filters import DynamicSamplingConfig, NPRConfig
from rl.config.length import LengthConfig
from rl.config.loader import dump_recipe, load_recipe, parse_override, recipe_from_dict
from rl.config.losses import AggregationConfig, LossConfig, PPOClipConfig
from rl.config.model import LoraConfig, ModelConfig, WarmStartConfig
from rl.config.numerics import TISConfig
from rl.config.outputs import CheckpointConfig, LoggingConfig, WandbConfig
from rl.config.parallel import DistributedConfig
from rl.config.recipe import Recipe, recipe_warnings
from rl.config.regularizers import EntropyConfig, KLConfig
from rl.config.resources import ResourcesConfig, RolloutResourcesConfig, SlurmConfig
from rl.config.rollout import AsyncConfig, EngineConfig, ServerConfig, VLLMConfig
from rl.config.train import EvalConfig, OptimizerConfig, TrainConfig
from rl.errors import RecipeError

__all__ = [
    "AdvantageConfig", "AggregationConfig", "AlgorithmConfig", "AsyncConfig", "CheckpointConfig", "CodeEnvConfig",
    "CriticConfig", "DistributedConfig", "DynamicSamplingConfig", "EngineConfig", "EntropyConfig", "EvalConfig",
    "GRPOConfig", "KLConfig", "KeyedValueError", "LengthConfig", "LoggingConfig", "LoraConfig", "LossConfig",
    "MathEnvConfig", "ModelConfig", "NPRConfig", "OptimizerConfig", "PPOClipConfig", "Recipe", "RecipeError",
    "ResourcesConfig", "RewardConfig", "RolloutResourcesConfig", "SWEEnvConfig", "ServerConfig", "SlurmConfig",
    "TISConfig", "TrainConfig", "VLLMConfig", "WandbConfig", "WarmStartConfig", "dump_recipe", "load_recipe",
    "needs_groups", "parse_override", "recipe_from_dict", "recipe_warnings",
]
