"""launch/jobs.py: the generated job scripts, field by field, for 1x8 and 4x8 layouts, colocated
and split; bash accepts each of them; the local scheduler refuses more than one node. (The local
scheduler running 2 processes end to end: tests/rl/test_distributed.py.)"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from launch.jobs import make_job, render_script
from launch.cli import main

ROOT = Path(__file__).resolve().parents[2]
GRPO = ROOT / "recipes" / "grpo.yaml"


def script(*overrides, nodes, gpus, scheduler="slurm"):
    job = make_job(GRPO, list(overrides) + ["resources.slurm.partition=gpu", "resources.slurm.time=04:00:00"],
                   scheduler, nodes=nodes, gpus_per_node=gpus, port=29555)
    return job, render_script(job)


def sbatch(text: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"^#SBATCH --([a-z-]+)(?:=(.*))?$", text, re.M):
        out[m.group(1)] = m.group(2) or ""
    return out


def torchrun_line(text: str) -> str:
    (line,) = [ln for ln in text.splitlines() if "torch.distributed.run" in ln]
    return line


def bash_accepts(text: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sh"
    path.write_text(text)
    out = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_slurm_1x8_colocated(tmp_path):
    job, text = script(nodes=1, gpus=8)
    h = sbatch(text)
    assert h["job-name"] == "grpo" and h["nodes"] == "1" and h["gpus-per-node"] == "8"
    assert h["ntasks-per-node"] == "1" and h["cpus-per-task"] == "64" and h["time"] == "04:00:00"
    assert h["partition"] == "gpu" and "requeue" in h and h["signal"] == "B:USR1@300"
    assert h["output"] == f"{job.run_dir}/logs/slurm-%j.out" and h["open-mode"] == "append"
    assert 'export MASTER_ADDR="${NODES[0]}"' in text and "export MASTER_PORT=29555" in text
    assert "trap requeue USR1" in text and 'scontrol requeue "$SLURM_JOB_ID"' in text
    line = torchrun_line(text)
    assert "--nnodes=1 " in line and "--nproc_per_node=8 " in line and "--master_port=$MASTER_PORT" in line
    assert line.rstrip("' &").endswith(f"-m launch.cli train {GRPO} resources.slurm.partition=gpu "
                                       "resources.slurm.time=04:00:00 resources.nodes=1 resources.gpus_per_node=8 --resume")
    assert "srun --overlap --nodes=1 " in text and "CUDA_VISIBLE_DEVICES" not in text and "vllm" not in text
    bash_accepts(text, tmp_path)


def test_slurm_4x8_colocated_zero3(tmp_path):
    _, text = script("distributed.strategy=zero3", nodes=4, gpus=8)
    h = sbatch(text)
    assert h["nodes"] == "4" and h["gpus-per-node"] == "8"
    line = torchrun_line(text)
    assert "--nnodes=4 " in line and "--rdzv_backend=c10d" in line and "--rdzv_endpoint=$MASTER_ADDR:$MASTER_PORT" in line
    assert "--rdzv_id=${SLURM_JOB_ID:-local}" in line and "--nproc_per_node=8 " in line
    assert "distributed.strategy=zero3" in line
    assert 'TRAIN_NODES=$(IFS=,; echo "${NODES[*]:0:4}")' in text
    assert re.search(r'srun --overlap --nodes=4 --ntasks-per-node=1 --nodelist="\$TRAIN_NODES" --kill-on-bad-exit=1', text)
    assert "strategy zero3" in text.splitlines()[len(h) + 1]  # the comment after the header says what it is
    bash_accepts(text, tmp_path)


def test_slurm_4x8_split_within_nodes(tmp_path):
    job, text = script("resources.topology=split", "resources.rollout.gpus_per_node=2",
                       "resources.rollout.tensor_parallel=2", nodes=4, gpus=8)
    assert job.resources.world_size == 24
    assert sbatch(text)["nodes"] == "4"  # the servers share the trainer nodes
    line = torchrun_line(text)
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5 " in line and "--nproc_per_node=6 " in line and "--nnodes=4 " in line
    (serve,) = [ln for ln in text.splitlines() if "rl.rollout.vllm_server" in ln]
    assert "CUDA_VISIBLE_DEVICES=6,7 " in serve and "--tensor-parallel-size 2" in serve and "--port 8000" in serve
    assert "--nodes=4 " in serve and "SERVER_NODES=(${NODES[*]:0:4})" in text
    assert "export ASYMPTOTE_VLLM_SERVERS=" in text and 'until curl -sf "$url/health"' in text
    # servers start before training, which waits for their health checks
    assert text.index("rl.rollout.vllm_server") < text.index("/health") < text.index("torch.distributed.run")
    bash_accepts(text, tmp_path)


def test_slurm_1x8_trainer_plus_a_server_node(tmp_path):
    job, text = script("resources.topology=split", "resources.rollout.nodes=1", "resources.rollout.gpus_per_node=8",
                       "resources.rollout.tensor_parallel=4", nodes=1, gpus=8)
    assert job.total_nodes == 2 and sbatch(text)["nodes"] == "2" and job.resources.world_size == 8
    line = torchrun_line(text)
    assert "CUDA_VISIBLE_DEVICES" not in line and "--nproc_per_node=8 " in line
    (serve,) = [ln for ln in text.splitlines() if "rl.rollout.vllm_server" in ln]
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 " in serve and "CUDA_VISIBLE_DEVICES=4,5,6,7 " in serve
    assert "--port 8000" in serve and "--port 8001" in serve
    assert "SERVER_NODES=(${NODES[*]:1:1})" in text and "for port in 8000 8001" in text
    bash_accepts(text, tmp_path)


def test_local_script_has_no_slurm_and_runs_on_this_machine(tmp_path):
    job, text = script(nodes=1, gpus=2, scheduler="local")
    assert "#SBATCH" not in text and "srun" not in text and "scontrol" not in text
    assert "export MASTER_ADDR=127.0.0.1" in text
    line = torchrun_line(text)
    assert line.startswith("# training") is False and "--nproc_per_node=2 " in line and line.endswith("--resume")
    bash_accepts(text, tmp_path)


def test_local_scheduler_refuses_several_nodes(capsys):
    assert main(["launch", str(GRPO), "--nodes", "2", "--dry-run"]) == 2
    assert "the local scheduler runs on this machine only: resources.nodes must be 1" in capsys.readouterr().err


def test_dry_run_prints_the_sbatch_script(capsys):
    assert main(["launch", str(GRPO), "--scheduler", "slurm", "--nodes", "4", "--gpus-per-node", "8", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash\n#SBATCH --job-name=grpo\n#SBATCH --nodes=4\n")


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="a machine with SLURM would submit")
def test_submitting_without_slurm_says_so(tmp_path):
    from launch.jobs import submit_slurm

    job = make_job(GRPO, [f"logging.runs_dir={tmp_path}"], "slurm", nodes=1, gpus_per_node=8)
    with pytest.raises(RuntimeError, match="sbatch is not on PATH"):
        submit_slurm(job)
    assert (tmp_path / "grpo" / "launch" / "job.sbatch").is_file()
