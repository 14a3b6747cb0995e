"""The accelerate strategy a recipe names (distributed.strategy): the Accelerator with its DeepSpeed
ZeRO config and plugins, or FSDP2; the policy and the frozen reference prepared under it; the full
state dict for saving.

FSDP on CPU: accelerate enables FSDP on accelerator backends only, so there the accelerator stays a
plain MULTI_CPU one and `shard_fsdp2` applies torch's `fully_shard` itself (per decoder layer, then
the root, as accelerate's FSDP2 auto-wrap does); `prepare_policy` keeps the sharded model out of
accelerate's DDP wrapping and saves/loads its sharded model and optimizer states with
torch.distributed.checkpoint inside accelerate's save_state/load_state.
"""

from __future__ import annotations

import copy
import os

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

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


def is_zero3(accelerator: Accelerator) -> bool:
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


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


def full_state_dict(model: torch.nn.Module, accelerator: Accelerator) -> dict[str, torch.Tensor]:
    """The full weights on the main process (all ranks must call), for save_pretrained."""
    if is_fsdp2(model) and accelerator.distributed_type != DistributedType.FSDP:  # own_fsdp: gathered here
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)  # cpu_offload: rank 0 keeps it
        return get_model_state_dict(model, options=options)
    return accelerator.get_state_dict(model)
