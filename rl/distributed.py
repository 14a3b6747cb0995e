"""The trainer on N processes: the accelerate strategy a recipe names, rollouts sharded over ranks,
mini-batches split over ranks, metrics reduced over ranks, and full weights gathered bucket by
bucket for a rollout engine that does not share the training model.

The global batch is the recipe's: prompts_per_iteration × group_size completions, mini_batches
optimizer steps per epoch. Every rank holds the whole batch after generation (rollouts are
gathered, so group advantages see whole groups); for the loss, each mini-batch's sequences are split
evenly over the ranks and the per-token weights, computed over the whole mini-batch, sum to 1 over
all ranks. The trainer multiplies the loss by the world size because DDP and DeepSpeed average
gradients over ranks; the sum is what the weights mean.

Launched by torchrun (or `asymptote launch`), which sets RANK/WORLD_SIZE/MASTER_ADDR; on a machine
without a GPU the processes talk over gloo and DeepSpeed uses its CPU accelerator. FSDP on CPU: accelerate
enables FSDP on accelerator backends only, so there the accelerator stays a plain MULTI_CPU one and
`shard_fsdp2` applies torch's `fully_shard` itself (per decoder layer, then the root, as accelerate's
FSDP2 auto-wrap does); `prepare_policy` keeps the sharded model out of accelerate's DDP wrapping and
saves/loads its sharded model and optimizer states with torch.distributed.checkpoint inside
accelerate's save_state/load_state.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from rl.logger import MetricAccumulator
from rl.rollout.base import Completion, Engine, SamplingParams

DEEPSPEED_STAGES = {"zero2": 2, "zero3": 3}


def deepspeed_config(strategy: str, offload: str, dtype: str, max_grad_norm: float | None) -> dict:
    """The DeepSpeed config of a zero2/zero3 strategy. Gradient accumulation is the trainer's (it
    tells DeepSpeed which backward ends a mini-batch), so DeepSpeed's own is 1 and it never rescales
    the loss; clipping happens inside DeepSpeed's step."""
    zero: dict = {"stage": DEEPSPEED_STAGES[strategy], "overlap_comm": False, "contiguous_gradients": True}
    if offload in ("optimizer", "all"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if offload == "all":
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if strategy == "zero3":
        # full weights when the final model is saved (accelerator.get_state_dict)
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": 1,  # nominal: the trainer feeds its own micro-batches
        "gradient_accumulation_steps": 1,
        "gradient_clipping": max_grad_norm or 0.0,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == "bfloat16"},
        "fp16": {"enabled": dtype == "float16"},
        "zero_allow_untested_optimizer": True,  # torch's AdamW through accelerate
        # offloaded states are stepped by torch's AdamW on the CPU (DeepSpeedCPUAdam would need a C++ build)
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
    }


def deepspeed_plugins(recipe, config: dict) -> dict:
    """Accelerator kwargs for DeepSpeed: the policy's plugin, and for a separate PPO critic a second
    plugin ("critic", the same ZeRO config with the critic's own gradient_clipping) that its engine
    is prepared under (accelerate's multiple-models-with-DeepSpeed route; the first plugin is active)."""
    from accelerate.utils import DeepSpeedPlugin

    policy = DeepSpeedPlugin(hf_ds_config=config, zero3_init_flag=False)
    critic = recipe.algorithm.critic
    if critic is None or critic.model != "separate":
        return {"deepspeed_plugin": policy}
    critic_config = copy.deepcopy(config) | {"gradient_clipping": critic.max_grad_norm or 0.0}
    return {"deepspeed_plugins": {"policy": policy,
                                  "critic": DeepSpeedPlugin(hf_ds_config=critic_config, zero3_init_flag=False)}}


def make_accelerator(recipe) -> Accelerator:
    """An Accelerator for the recipe's distributed.strategy (one process: the same code)."""
    d, cpu = recipe.distributed, not torch.cuda.is_available()
    kwargs: dict = {"cpu": cpu}
    if d.strategy in DEEPSPEED_STAGES:
        if cpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        config = deepspeed_config(d.strategy, d.offload, recipe.model.dtype, recipe.optimizer.max_grad_norm)
        kwargs.update(deepspeed_plugins(recipe, config))
        kwargs.pop("cpu")  # accelerate's cpu flag turns DeepSpeed off; DeepSpeed picks its CPU accelerator
        if cpu:  # without naming a backend accelerate would see one process per rank
            from accelerate.utils import InitProcessGroupKwargs

            kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
    elif d.strategy == "fsdp" and not cpu:
        # on CPU accelerate never selects FSDP (state.py: only for MULTI_GPU, MULTI_NPU, ...): the plain
        # MULTI_CPU accelerator is kept and shard_fsdp2 shards the model with torch's fully_shard itself
        from accelerate.utils import FullyShardedDataParallelPlugin

        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(
            fsdp_version=2, reshard_after_forward=True, state_dict_type="SHARDED_STATE_DICT", cpu_ram_efficient_loading=False,
        )
    return Accelerator(**kwargs)


def own_fsdp(recipe, accelerator: Accelerator) -> bool:
    """Whether FSDP2 is applied here rather than by accelerate: strategy fsdp on several CPU
    processes (one process trains unsharded, the same code as ddp)."""
    return recipe.distributed.strategy == "fsdp" and accelerator.distributed_type == DistributedType.MULTI_CPU


def shard_fsdp2(model: torch.nn.Module, accelerator: Accelerator, recipe) -> torch.nn.Module:
    """Under own_fsdp: torch's fully_shard on every decoder layer, then on the root (embeddings, final
    norm, head), as accelerate's FSDP2 auto-wrap does; parameters become DTensor shards of dim 0 and
    forward/backward all-gather a layer at a time (re-sharded after forward). Call it before the
    optimizer is built: fully_shard replaces the parameters. Otherwise the model is returned as is."""
    if not own_fsdp(recipe, accelerator):
        return model
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        fully_shard(layer, reshard_after_forward=True)
    fully_shard(model, reshard_after_forward=True)
    return model


FSDP_CHECKPOINT_DIR = "fsdp_policy"  # in a checkpoint: the sharded model and optimizer states (DCP)


def prepare_policy(accelerator: Accelerator, recipe, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
    """accelerator.prepare(model, optimizer), except under own_fsdp: accelerate would wrap the sharded
    model in DDP (whose parameter broadcast fails on DTensors), and its save_state writes the main
    process's tensors only. There the model and optimizer stay as they are, and save_state/load_state
    write/read their sharded states with torch.distributed.checkpoint (every rank its own shard) in
    FSDP_CHECKPOINT_DIR of the checkpoint, through accelerate's save/load hooks; the RNG states and
    registered objects (the scheduler) still go through accelerate."""
    if not own_fsdp(recipe, accelerator):
        return accelerator.prepare(model, optimizer)
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    def save(_models, _weights, output_dir):
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=os.path.join(output_dir, FSDP_CHECKPOINT_DIR))

    def load(_models, input_dir):
        model_state, optim_state = get_state_dict(model, optimizer)
        states = {"model": model_state, "optim": optim_state}
        dcp.load(states, checkpoint_id=os.path.join(input_dir, FSDP_CHECKPOINT_DIR))
        set_state_dict(model, optimizer, model_state_dict=states["model"], optim_state_dict=states["optim"])

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)
    return model, optimizer


def is_fsdp2(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def prepare_frozen(model: torch.nn.Module, accelerator: Accelerator) -> torch.nn.Module:
    """A frozen model (the KL reference) ready for forward passes. Under ZeRO-3 transformers loads
    it partitioned (deepspeed.zero.Init), so it becomes a DeepSpeed engine without an optimizer that
    gathers its parameters per forward, as TRL's prepare_deepspeed does; every rank must then run the
    same forwards (sharded_forward sees to it). Otherwise it is moved to the device, whole."""
    if not is_zero3(accelerator):
        return model.to(accelerator.device)
    import deepspeed

    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    config["zero_optimization"].pop("offload_optimizer", None)
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeedEngine.eval returns None, unlike nn.Module.eval
    return engine


def end_distributed() -> None:
    """The last call of a torchrun entry point: every rank waits for the others, destroys its process
    group and leaves with os._exit(0), skipping the interpreter's finalization. One process (no
    process group): returns, nothing to do.

    Why not a plain return: gloo's worker threads release a finished collective's work object (and the
    Python tensors it holds, e.g. a barrier's pending all-gathers) some time after the collective has
    returned; if that happens while the interpreter finalizes, the thread's GIL acquire ends it with
    pthread_exit through a noexcept destructor, std::terminate, and the rank dies with SIGABRT
    ("terminate called without an active exception") after a run that had finished, so torchrun reports
    a failure. Seen here about once in 30 ZeRO-3 runs on a loaded 2-core machine; core dump: the work's
    destructor in c10d::ProcessGroupGloo::runLoop, the main thread in Py_FinalizeEx. destroy_process_group
    alone does not stop those threads while DeepSpeed or accelerate still hold the group (the abandoned
    pytorch/pytorch#179291 describes the same crash). Everything the run keeps is written and closed
    before this is called (the trainer's close(): metrics, samples, wandb, engines, environments)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def check_world_size(recipe, world: int) -> None:
    """The global batch must split evenly: each mini-batch's sequences over the ranks."""
    t, g = recipe.train, recipe.algorithm.group_size
    per_mb = t.prompts_per_iteration // t.mini_batches * g
    if per_mb % world:
        raise ValueError(
            f"a mini-batch of {per_mb} sequences (train.prompts_per_iteration={t.prompts_per_iteration} / "
            f"train.mini_batches={t.mini_batches} × algorithm.group_size={g}) does not split evenly over {world} "
            f"processes; choose a world size that divides {per_mb}, or change those keys"
        )


def check_engine_topology(recipe, world: int) -> None:
    """Asynchronous training on several processes needs the split topology's servers."""
    if recipe.async_.max_off_policy_steps > 0 and world > 1 and recipe.engine.name != "vllm-server":
        raise ValueError(
            f"async.max_off_policy_steps > 0 with {world} training processes needs engine.name 'vllm-server' "
            f"(got {recipe.engine.name!r}): with several processes asynchronous generation runs on the servers of "
            "a split topology while the ranks train; colocated engines would run collectives beside training. "
            "Use vllm-server, or async.max_off_policy_steps 0, or one process"
        )


# --------------------------------------------------------------------------------------------
# Rollouts: sharded over ranks, gathered on every rank
# --------------------------------------------------------------------------------------------


def is_zero3(accelerator: Accelerator) -> bool:
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


@contextlib.contextmanager
def gathered_for_generation(model: torch.nn.Module, accelerator: Accelerator):
    """Under ZeRO-3 the parameters are partitioned: gather them for the length of a generate call
    (every rank must enter; TRL's unwrap_model_for_generation does the same). Under FSDP2 every
    unit is unsharded for the call and kept so between forwards, so ranks may run different numbers
    of forwards (sharded rollouts), then re-sharded. Else nothing."""
    if is_fsdp2(model):
        from torch.distributed.fsdp import FSDPModule

        units = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for unit in units:
            unit.unshard()
            unit.set_reshard_after_forward(False)
        try:
            yield
        finally:
            for unit in units:
                unit.reshard()
                unit.set_reshard_after_forward(True)
        return
    if not is_zero3(accelerator):
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
        yield


class ShardedEngine:
    """An engine that generates on every rank: with rollouts 'sharded' each rank generates a
    contiguous share of the prompts (its own random stream) and all ranks receive every completion;
    with 'replicated' each rank generates all of them from the same random state. Used by the
    trainer for training rollouts and evals alike."""

    def __init__(self, engine: Engine, accelerator: Accelerator, model: torch.nn.Module, mode: str):
        self.engine, self.accelerator, self.model, self.mode = engine, accelerator, model, mode
        # only an engine that samples from the training model itself (hf) needs ZeRO-3's gathered
        # parameters while it generates; vLLM engines hold their own copy of the weights
        self.gather = getattr(engine, "shares_training_model", False)

    def _gathered(self):
        return gathered_for_generation(self.model, self.accelerator) if self.gather else contextlib.nullcontext()

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        acc = self.accelerator
        if self.mode == "replicated" or acc.num_processes == 1:
            with self._gathered():
                return self.engine.generate(prompt_ids, params)
        lo, hi = shard_bounds(len(prompt_ids), acc.process_index, acc.num_processes)
        # one draw from the shared generator keeps every rank's global RNG in step; each rank then
        # samples from its own stream
        seed = int(torch.randint(0, 2**62, (1,)).item())
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with self._gathered(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed + acc.process_index)
            mine = self.engine.generate(prompt_ids[lo:hi], params) if hi > lo else []
        from accelerate.utils import gather_object

        return _flatten_ranks(gather_object([mine]))  # rank order = prompt order

    def update_weights(self, model, version: int) -> None:
        self.engine.update_weights(model, version)

    def close(self) -> None:
        self.engine.close()

    def __getattr__(self, name):  # the wrapped engine's other attributes (version, tokenizer, ...)
        return getattr(self.engine, name)


class MainProcessEngine:
    """An engine only the main process holds: vLLM servers (engine vllm-server), which one client
    drives for the whole job. The main process generates and broadcasts the completions to every
    rank; for a weight sync every rank walks the same buckets (the gathers are collective under
    ZeRO-3/FSDP), the main process pushes them, and all ranks wait until the servers hold the new
    version, so no rank's next request can reach the old weights. `engine` is None on other ranks."""

    def __init__(self, engine: Engine | None, accelerator: Accelerator, bucket_mb: float):
        self.engine, self.accelerator, self.bucket_mb = engine, accelerator, bucket_mb
        if accelerator.is_main_process and engine is None:
            raise ValueError("MainProcessEngine needs the engine on the main process")
        self.version = 0

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        from accelerate.utils import broadcast_object_list

        out: list = [None]
        if self.accelerator.is_main_process:  # draws its seeds from the global RNG, as on one process
            out[0] = (self.engine.generate(prompt_ids, params), torch.get_rng_state())
        groups, rng = broadcast_object_list(out, from_process=0)[0]
        torch.set_rng_state(rng)  # every rank's global RNG stays in step with the main process's
        return groups

    def update_weights(self, model: torch.nn.Module, version: int) -> None:
        if self.accelerator.is_main_process:
            self.engine.update_weights(model, version)
        else:  # take part in the gathers, bucket for bucket as the main process
            for _ in weight_buckets(model, self.bucket_mb):
                pass
        self.accelerator.wait_for_everyone()
        self.version = version

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


def _flatten_ranks(per_rank: list[list[list[Completion]]]) -> list[list[Completion]]:
    return [group for rank in per_rank for group in rank]


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous share of n items (the first n % world ranks take one more)."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


# --------------------------------------------------------------------------------------------
# Loss: a mini-batch split over ranks, the same number of micro-batches on every rank
# --------------------------------------------------------------------------------------------


def backward(accelerator: Accelerator, model, loss: torch.Tensor, last: bool) -> None:
    """Backward of one micro-batch. DeepSpeed is told which backward ends the mini-batch: its
    gradient reduction and its step (with clipping) happen there, and optimizer.step() is a no-op."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        model.set_gradient_accumulation_boundary(last)
        model.backward(loss)
        if last:
            model.step()
    else:
        accelerator.backward(loss)


def rank_micro_batches(n: int, rank: int, world: int, micro_batch_size: int) -> list[torch.Tensor]:
    """Row indices of this rank's micro-batches of a mini-batch of n rows. Every rank gets the same
    number of micro-batches (DDP and ZeRO collectives run per backward/forward); a rank whose share
    runs out gets an empty index tensor, which the trainer replaces by a zero-weight row."""
    lo, hi = shard_bounds(n, rank, world)
    most = math.ceil(n / world)
    count = max(1, math.ceil(most / micro_batch_size))
    mine = torch.arange(lo, hi)
    return [mine[i * micro_batch_size : (i + 1) * micro_batch_size] for i in range(count)]


def sharded_forward(accelerator: Accelerator, batch, run):
    """A forward-only pass split over the ranks: `run(sub_batch) -> (logp | None, values | None,
    tokens)` on this rank's share of the batch's rows, padded with copies of row 0 to the largest
    share (every rank runs the same forwards: ZeRO-3 gathers and DDP syncs buffers per forward);
    the shares are gathered into [B, T] tensors on every rank. Returns what `run(batch)` would."""
    n, rank, world = len(batch), accelerator.process_index, accelerator.num_processes
    if world == 1:
        return run(batch)
    from accelerate.utils import gather_object

    lo, hi = shard_bounds(n, rank, world)
    most = math.ceil(n / world)
    logp, values, _ = run(batch.select(list(range(lo, hi)) + [0] * (most - (hi - lo))))
    real = hi - lo
    tokens = sum(len(batch.prompt_ids[i]) + len(batch.completion_ids[i]) for i in range(lo, hi))
    cut = lambda t: None if t is None else t[:real]  # noqa: E731
    full_logp = torch.zeros_like(batch.mask) if logp is not None else None
    full_values = torch.zeros_like(batch.mask) if values is not None else None
    total = 0
    for r_lo, r_hi, r_logp, r_values, r_tokens in gather_object([(lo, hi, cut(logp), cut(values), tokens)]):
        for full, part in ((full_logp, r_logp), (full_values, r_values)):
            if full is not None and r_hi > r_lo:
                full[r_lo:r_hi, : part.shape[1]] = part
        total += r_tokens
    return full_logp, full_values, total


def sharded_scorer(accelerator: Accelerator, score=None):
    """compute_rewards on N ranks: each rank scores its contiguous share of the completions (a
    judge or a sandbox then works on 1/N of them) and the results are gathered in rank order:
    rewards are per completion, so the values are those of scoring all of them on one rank; the
    outcome counts add up. Every rank must call it with the same batch (the gather is collective)."""
    from rewards import compute_rewards, concat_rewards

    score = score or compute_rewards
    if accelerator.num_processes == 1:
        return score

    def run(completions: list[str], prompts: list, cfg):
        from accelerate.utils import gather_object

        lo, hi = shard_bounds(len(completions), accelerator.process_index, accelerator.num_processes)
        mine = score(completions[lo:hi], prompts[lo:hi], cfg)
        return concat_rewards(gather_object([mine]))

    return run


def reduce_metrics(accelerator: Accelerator, stats: MetricAccumulator) -> MetricAccumulator:
    """Combine every rank's accumulator into one (sums add, weighted means pool, max/min of all)."""
    if accelerator.num_processes == 1:
        return stats
    from accelerate.utils import gather_object

    out = MetricAccumulator()
    for values, weights, how in gather_object([(stats.values, stats.weights, stats.how)]):
        for name, value in values.items():
            h = how[name]
            if name not in out.values:
                out.values[name], out.weights[name], out.how[name] = value, weights[name], h
            elif h == "max":
                out.values[name] = max(out.values[name], value)
            elif h == "min":
                out.values[name] = min(out.values[name], value)
            else:
                out.values[name] += value
                out.weights[name] += weights[name]
    return out


# --------------------------------------------------------------------------------------------
# Weight sync under sharding
# --------------------------------------------------------------------------------------------


def full_param_buckets(model: torch.nn.Module, bucket_bytes: int = 256 * 2**20) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """The parameters of `model` (unwrapped, or wrapped by DDP/DeepSpeed/FSDP) as buckets of
    (name, full tensor) of at most `bucket_bytes` each (a parameter larger than that goes alone),
    for a rollout engine's weight load: vLLM's load_weights, or a push to vLLM servers. Names are
    the Hugging Face checkpoint's (wrapper prefixes off).

    Sharded parameters are gathered one bucket at a time: under DeepSpeed ZeRO-3 with
    `GatheredParameters` and released when the generator advances, so a rank never holds more than
    one bucket beyond its shard; under FSDP2 each DTensor is materialised with `full_tensor()`.
    A yielded bucket is valid until the generator advances: consume (load, send or copy) it first.
    The gathers are collective: every rank must iterate to the end, ranks whose engine does not
    take the weights included (they discard the buckets)."""
    from rl.lora import is_lora_param, lora_layers, merged_weight

    # with LoRA (rl/lora.py) the adapters are merged into their base weights here; the adapters' own
    # parameters are not the engines' (LoRA is refused with ZeRO-3/FSDP at recipe load)
    lora = lora_layers(model)
    named = [(hf_name(n), p) for n, p in model.named_parameters() if not is_lora_param(n)]
    zero3 = any(hasattr(p, "ds_id") for _, p in named)
    size = (lambda p: p.ds_numel * p.element_size()) if zero3 else (lambda p: p.numel() * p.element_size())
    for bucket in _buckets(named, bucket_bytes, size):
        if zero3:
            import deepspeed

            with deepspeed.zero.GatheredParameters([p for _, p in bucket], modifier_rank=None):
                yield [(name, p.data) for name, p in bucket]
        else:
            yield [(name, merged_weight(lora[id(p)], p.data) if id(p) in lora else _full(p.data)) for name, p in bucket]


def weight_buckets(model: torch.nn.Module, bucket_mb: float = 256.0) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """full_param_buckets in buckets of at most `bucket_mb` MB (engine.vllm.bucket_mb): what the vLLM
    engines load or push, and what the other ranks walk beside them (the same buckets, so the same
    collective gathers)."""
    return full_param_buckets(model, int(bucket_mb * 2**20))


def iter_full_params(model: torch.nn.Module, bucket_bytes: int = 256 * 2**20) -> Iterator[tuple[str, torch.Tensor]]:
    """full_param_buckets, one (name, full tensor) at a time (same lifetime and collective rules)."""
    for bucket in full_param_buckets(model, bucket_bytes):
        yield from bucket


def _full(t: torch.Tensor) -> torch.Tensor:
    full_tensor = getattr(t, "full_tensor", None)  # FSDP2 DTensor shard -> all-gather
    return full_tensor() if full_tensor is not None else t


def hf_name(name: str) -> str:
    """A parameter's name as the Hugging Face checkpoint has it (DDP's `module.`, FSDP's and
    activation checkpointing's wrapper prefixes off; peft's `base_model.model.` and `.base_layer`)."""
    for prefix in ("module.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module."):
        name = name.replace(prefix, "")
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".base_layer.", ".")


def _buckets(named: list[tuple[str, torch.nn.Parameter]], bucket_bytes: int, size) -> Iterator[list]:
    bucket, used = [], 0
    for name, p in named:
        n = size(p)
        if bucket and used + n > bucket_bytes:
            yield bucket
            bucket, used = [], 0
        bucket.append((name, p))
        used += n
    if bucket:
        yield bucket


def full_state_dict(model: torch.nn.Module, accelerator: Accelerator) -> dict[str, torch.Tensor]:
    """The full weights on the main process (all ranks must call), for save_pretrained."""
    if is_fsdp2(model) and accelerator.distributed_type != DistributedType.FSDP:  # own_fsdp: gathered here
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)  # cpu_offload: rank 0 keeps it
        return get_model_state_dict(model, options=options)
    return accelerator.get_state_dict(model)
