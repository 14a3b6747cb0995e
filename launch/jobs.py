"""`asymptote launch`: one job script for a recipe, run here (local) or submitted to SLURM.

The script is the same for both schedulers apart from its header and how the nodes are found:

    #SBATCH lines (slurm)            nodes, GPUs, time, log file, --requeue, USR1 before the end
    rendezvous                       MASTER_ADDR (the first node, or 127.0.0.1), MASTER_PORT
    requeue on preemption            USR1 -> `scontrol requeue`; the requeued job runs `train --resume`,
                                     which continues from runs/<name>/checkpoints/latest
    vLLM servers (split topology)    `vllm serve` per tensor-parallel group on the rollout GPUs/nodes;
                                     their URLs in ASYMPTOTE_VLLM_SERVERS for the vllm-server engine
    training                         torchrun (one per node via srun) -> `python -m launch.cli train`;
                                     rl/parallel/ picks DDP/ZeRO/FSDP from the recipe

Scripts and logs go to runs/<name>/launch/ and runs/<name>/logs/.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rl.config import Recipe, load_recipe

SCHEDULERS = ("local", "slurm")
REQUEUE_SIGNAL_SECONDS = 300  # USR1 this long before the time limit: time to requeue


@dataclass
class Job:
    """Everything a job script says, resolved from a recipe and the command line."""

    recipe_path: Path
    overrides: list[str]
    recipe: Recipe
    scheduler: str
    python: str = "python"
    master_port: int = 29500
    workdir: Path = field(default_factory=Path.cwd)

    @property
    def resources(self):
        return self.recipe.resources

    @property
    def run_dir(self) -> Path:
        return (self.workdir / self.recipe.run_dir).resolve()

    @property
    def total_nodes(self) -> int:
        r = self.resources
        return r.nodes + (r.rollout.nodes if r.topology == "split" else 0)

    def train_args(self) -> list[str]:
        """`python -m launch.cli train RECIPE OVERRIDES --resume` (resume: a requeued job continues)."""
        return ["-m", "launch.cli", "train", str(self.recipe_path.resolve()), *self.overrides, "--resume"]


def make_job(recipe_path: str | Path, overrides: list[str], scheduler: str, nodes: int | None = None,
             gpus_per_node: int | None = None, python: str | None = None, port: int | None = None) -> Job:
    """Resolve the recipe with the command line's layout (which wins over the recipe's resources)."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; allowed: {', '.join(SCHEDULERS)}")
    overrides = list(overrides)
    if nodes is not None:
        overrides.append(f"resources.nodes={nodes}")
    if gpus_per_node is not None:
        overrides.append(f"resources.gpus_per_node={gpus_per_node}")
    recipe = load_recipe(recipe_path, overrides)
    if scheduler == "local" and recipe.resources.nodes + recipe.resources.rollout.nodes > 1:
        raise ValueError(f"the local scheduler runs on this machine only: resources.nodes must be 1 "
                         f"(got {recipe.resources.nodes} + rollout.nodes {recipe.resources.rollout.nodes}); use --scheduler slurm")
    if scheduler == "local":
        python, port = python or sys.executable, port or free_port()
    return Job(Path(recipe_path), overrides, recipe, scheduler, python or "python", port or 29500)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The script
# --------------------------------------------------------------------------------------------


def sbatch_header(job: Job) -> list[str]:
    r, s = job.resources, job.resources.slurm
    logs = job.run_dir / "logs"
    lines = [
        f"--job-name={job.recipe.name}",
        f"--nodes={job.total_nodes}",
        "--ntasks-per-node=1",  # one torchrun (or server launcher) per node
        f"--gpus-per-node={r.gpus_per_node}",
        f"--cpus-per-task={s.cpus_per_gpu * r.gpus_per_node}",
        f"--time={s.time}",
        f"--output={logs}/slurm-%j.out",
        f"--error={logs}/slurm-%j.out",
        "--open-mode=append",  # a requeued job appends to the same log
        "--requeue",
        f"--signal=B:USR1@{REQUEUE_SIGNAL_SECONDS}",
    ]
    lines += [f"--{k}={v}" for k, v in (("partition", s.partition), ("account", s.account), ("qos", s.qos), ("mem", s.mem)) if v]
    lines += list(s.extra)
    return [f"#SBATCH {line}" for line in lines]


def render_script(job: Job) -> str:
    """The job's bash script (local: run with bash; slurm: submitted with sbatch)."""
    r = job.resources
    q = shlex.quote
    slurm = job.scheduler == "slurm"
    out = ["#!/bin/bash"]
    if slurm:
        out += sbatch_header(job)
    out += [
        f"# asymptote launch: {job.recipe.name} ({job.scheduler}, {r.nodes} node(s) x {r.gpus_per_node} GPU(s), "
        f"{r.topology}, strategy {job.recipe.distributed.strategy})",
        "set -euo pipefail",
        f"cd {q(str(job.workdir.resolve()))}",
        *job.resources.slurm.setup,
        f"mkdir -p {q(str(job.run_dir / 'logs'))}",
        "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}",
        "export TOKENIZERS_PARALLELISM=false",
        "export PYTHONUNBUFFERED=1",
    ]
    if slurm:
        out += [
            'NODES=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))',
            'export MASTER_ADDR="${NODES[0]}"',
            f"export MASTER_PORT={job.master_port}",
            f'TRAIN_NODES=$(IFS=,; echo "${{NODES[*]:0:{r.nodes}}}")',
            "",
            "# preemption or the time limit: SLURM sends USR1 first; requeue, and the new job resumes",
            "# from the run's latest checkpoint (train --resume)",
            'requeue() { echo "[asymptote] USR1: requeueing job $SLURM_JOB_ID"; scontrol requeue "$SLURM_JOB_ID"; exit 0; }',
            "trap requeue USR1",
        ]
    else:
        out += ["export MASTER_ADDR=127.0.0.1", f"export MASTER_PORT={job.master_port}"]
    out += _servers(job) + [""] + _trainer(job)
    return "\n".join(out) + "\n"


def _torchrun(job: Job, nodes: int, procs: int) -> str:
    q = shlex.quote
    if nodes == 1:
        rdzv = ["--nnodes=1", "--node_rank=0", "--master_addr=$MASTER_ADDR", "--master_port=$MASTER_PORT"]
    else:  # c10d rendezvous on the first node; node ranks are assigned by the rendezvous
        rdzv = [f"--nnodes={nodes}", "--rdzv_backend=c10d", "--rdzv_endpoint=$MASTER_ADDR:$MASTER_PORT",
                "--rdzv_id=${SLURM_JOB_ID:-local}"]
    args = " ".join(q(a) for a in job.train_args())
    return f"{q(job.python)} -m torch.distributed.run {' '.join(rdzv)} --nproc_per_node={procs} {args}"


SERVER_STARTUP_S = 1800
"""How long the job waits for every vLLM server's /health before it gives up (and says which)."""


def _servers(job: Job) -> list[str]:
    """vLLM servers of a split topology, and ASYMPTOTE_VLLM_SERVERS with their URLs."""
    r = job.resources
    if r.topology != "split":
        return []
    ro, q, v = r.rollout, shlex.quote, job.recipe.engine.vllm
    slurm = job.scheduler == "slurm"
    per_node = ro.gpus_per_node // ro.tensor_parallel
    first_gpu = 0 if ro.nodes else r.trainer_gpus_per_node  # within nodes: the last GPUs serve
    dtype = job.recipe.model.dtype if v.dtype == "auto" else v.dtype
    options = (f"--dtype {dtype} --gpu-memory-utilization {v.gpu_memory_utilization} --kv-cache-gb {v.kv_cache_gb} "
               f"--max-model-len {v.max_model_len} --max-num-seqs {v.max_num_seqs} --seed {job.recipe.seed}"
               + ("" if v.enforce_eager else " --no-enforce-eager"))
    host = "0.0.0.0" if slurm else "127.0.0.1"  # local: loopback only
    serve = []
    for i in range(per_node):
        gpus = ",".join(str(first_gpu + i * ro.tensor_parallel + k) for k in range(ro.tensor_parallel))
        serve.append(
            # Asymptote's rollout server (rl/rollout/vllm_server.py): vLLM plus the weight-update
            # endpoints the vllm-server engine pushes to after every step
            f"CUDA_VISIBLE_DEVICES={gpus} {q(job.python)} -m rl.rollout.vllm_server "
            f"--model {q(job.recipe.model.path)} --tensor-parallel-size {ro.tensor_parallel} {options} "
            f"--port {ro.port + i} --host {host} > {q(str(job.run_dir / 'logs'))}/vllm-$(hostname)-{i}.log 2>&1 &"
        )
    lines = ["# vLLM servers: one per tensor-parallel group of the rollout GPUs"]
    if slurm:
        server_nodes = f"${{NODES[*]:{r.nodes}:{ro.nodes}}}" if ro.nodes else f"${{NODES[*]:0:{r.nodes}}}"
        body = " ".join(serve) + " wait"
        lines += [
            f'SERVER_NODES=({server_nodes})',
            f"srun --overlap --nodes={ro.nodes or r.nodes} --ntasks-per-node=1 "
            f'--nodelist=$(IFS=,; echo "${{SERVER_NODES[*]}}") bash -c {q(body)} &',
        ]
    else:  # background processes of this script, stopped when it exits
        lines += ["SERVER_NODES=(127.0.0.1)", *serve, "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    ports = " ".join(str(ro.port + i) for i in range(per_node))
    lines += [
        "SERVERS=()",
        f'for node in "${{SERVER_NODES[@]}}"; do for port in {ports}; do SERVERS+=("http://$node:$port"); done; done',
        'export ASYMPTOTE_VLLM_SERVERS=$(IFS=,; echo "${SERVERS[*]}")',
        f"deadline=$((SECONDS + {SERVER_STARTUP_S}))",
        'for url in "${SERVERS[@]}"; do until curl -sf "$url/health" >/dev/null; do',
        f'  if ((SECONDS > deadline)); then echo "[asymptote] vLLM server $url did not answer /health within '
        f'{SERVER_STARTUP_S} s; see {job.run_dir / "logs"}/vllm-*.log" >&2; exit 1; fi',
        "  sleep 5; done; done",
    ]
    return lines


def _trainer(job: Job) -> list[str]:
    r = job.resources
    procs = r.trainer_gpus_per_node
    visible = ""
    if r.topology == "split" and not r.rollout.nodes:  # the first GPUs of each node train
        visible = "CUDA_VISIBLE_DEVICES=" + ",".join(str(i) for i in range(procs)) + " "
    cmd = visible + _torchrun(job, r.nodes, procs)
    if job.scheduler == "slurm":
        return [
            "# training: one torchrun per trainer node",
            f'srun --overlap --nodes={r.nodes} --ntasks-per-node=1 --nodelist="$TRAIN_NODES" --kill-on-bad-exit=1 '
            f"bash -c {shlex.quote(cmd)} &",
            "wait $!  # in the background so that the USR1 trap can run",
        ]
    return ["# training", cmd]


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


def write_script(job: Job) -> Path:
    folder = job.run_dir / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    (job.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    path = folder / ("job.sbatch" if job.scheduler == "slurm" else "job.sh")
    path.write_text(render_script(job))
    path.chmod(0o755)
    return path


def run_local(job: Job, echo: bool = True) -> int:
    """Run the job script here; its output goes to runs/<name>/logs/local-<time>.log (and the terminal)."""
    script = write_script(job)
    log = job.run_dir / "logs" / f"local-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            f.write(line)
            if echo:
                sys.stdout.write(line)
        code = proc.wait()
    print(f"[asymptote] {job.recipe.name}: exit code {code}; log {log}")
    return code


def submit_slurm(job: Job) -> str:
    """sbatch the script; returns the job id (also written to runs/<name>/launch/job_id)."""
    script = write_script(job)
    if shutil.which("sbatch") is None:
        raise RuntimeError(f"sbatch is not on PATH: this machine cannot submit to SLURM (script written to {script})")
    out = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True).stdout
    job_id = out.strip().split(";")[0]
    (job.run_dir / "launch" / "job_id").write_text(job_id + "\n")
    return job_id


def launch(job: Job, dry_run: bool = False) -> int:
    if dry_run:
        print(render_script(job), end="")
        return 0
    if job.scheduler == "local":
        return run_local(job)
    job_id = submit_slurm(job)
    print(f"[asymptote] submitted {job.recipe.name} as SLURM job {job_id}; logs in {job.run_dir / 'logs'}")
    return 0
