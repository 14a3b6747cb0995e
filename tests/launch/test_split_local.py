"""A split topology end to end on this machine: `asymptote launch --scheduler local` writes and runs
the job script, which starts one vLLM server (the rollout device) on 127.0.0.1, waits for its
health check, and trains on the other 2 "devices" with torchrun (ZeRO-3 on CPU); the main rank
drives the server and pushes the weights after every step; the server stops with the job."""

import os
import subprocess
import sys
import urllib.request

import pytest
import yaml

pytest.importorskip("vllm", reason="the split topology's servers need vLLM")

from rl.logger import read_jsonl  # noqa: E402
from tests.rl.test_distributed import ROOT, _recipe_dict, free_port  # noqa: E402
from tests.rl.test_distributed_vllm import VLLM  # noqa: E402


@pytest.mark.slow
def test_local_split_job_trains_two_processes_against_one_server(tmp_path, tiny_model_dir):
    port = free_port()
    recipe = _recipe_dict(tiny_model_dir, tmp_path) | {"name": "split"}
    recipe["engine"] |= {"name": "vllm-server", "vllm": VLLM}
    recipe["distributed"] = {"strategy": "zero3", "rollouts": "sharded"}
    recipe["train"] |= {"iterations": 3}
    recipe["resources"] = {"topology": "split", "rollout": {"gpus_per_node": 1, "port": port}}
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ASYMPTOTE_VLLM_SERVERS", None)
    out = subprocess.run([sys.executable, "-m", "launch.cli", "launch", str(path), "--scheduler", "local",
                          "--gpus-per-node", "3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    run = tmp_path / "runs" / "split"
    logs = "".join(p.read_text()[-3000:] for p in (run / "logs").glob("*.log"))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:] + logs
    script = (run / "launch" / "job.sh").read_text()
    assert f"--port {port} --host 127.0.0.1" in script and "--nproc_per_node=2 " in script
    lines = read_jsonl(run / "metrics.jsonl")
    assert [m["iteration"] for m in lines] == [0, 1, 2, 3]
    assert all(m["train/trained_tokens"] > 0 for m in lines if "train/loss" in m)
    # the job script started the server the trainer attached to (ASYMPTOTE_VLLM_SERVERS)
    server_log = next((run / "logs").glob("vllm-*-0.log")).read_text()
    assert f"serving {tiny_model_dir} on http://127.0.0.1:{port}" in server_log
    # the job's exit stopped the server
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
