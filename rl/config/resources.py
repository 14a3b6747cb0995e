"""The `resources` section: where a run executes (nodes, GPUs, the split between training and vLLM
servers, Slurm's settings), read by `asymptote launch` (launch/)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from envs.schema import Config


class SlurmConfig(Config):
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


class RolloutResourcesConfig(Config):
    """The vLLM servers of a split topology."""

    nodes: int = Field(0, ge=0)
    """Whole nodes given to vLLM servers (added to resources.nodes). 0: the servers share the
    trainer nodes, taking gpus_per_node of each node's GPUs."""
    gpus_per_node: int = Field(0, ge=0)
    """GPUs per node serving vLLM (one server per tensor_parallel GPUs)."""
    tensor_parallel: int = Field(1, ge=1)
    port: int = Field(8000, ge=1, le=65535)
    """Port of the first server on a node; the next servers take the following ports."""


class ResourcesConfig(Config):
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
