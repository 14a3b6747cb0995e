"""What a recipe's processes must satisfy before training starts: the global batch splits evenly
over the ranks, and asynchronous training on several processes has the servers it needs."""

from __future__ import annotations


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
