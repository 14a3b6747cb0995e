"""Issue 16: the recipe schema is a thin loader. Importing rl.config and loading recipes, in a fresh
interpreter, loads none of the trainer's heavy libraries (torch, transformers, accelerate, deepspeed,
vllm, peft) nor a verifier (math_verify): `asymptote fit --help` and recipe validation run in the
core install, in a fraction of a second."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "transformers", "accelerate", "deepspeed", "vllm", "math_verify", "peft"]
# Validating `env.tasks` (reasoning-gym families, their difficulty keys) reads reasoning-gym's registry,
# so a recipe that names tasks loads it; the schema alone, and a recipe that reads a dataset, do not.
TASKS = "reasoning_gym"

# (label, recipe, overrides): first what must not load reasoning-gym, then the recipes with tasks
NO_TASKS = [
    ("code", "recipes/tiny/code_basic.yaml", []),
    ("swe", "recipes/tiny/swe_pocketlib.yaml", []),
    ("dataset", "recipes/tiny/grpo.yaml", ["env.tasks=[]", "env.dataset=data/train.jsonl"]),
]
WITH_TASKS = [
    ("tiny-grpo", "recipes/tiny/grpo.yaml", []),
    ("tiny-scalerl", "recipes/tiny/scalerl.yaml", []),
    ("vllm-server", "recipes/tiny/grpo_math_vllm_server_async.yaml", []),
    ("judge", "recipes/tiny/judge_math.yaml", []),
    ("ppo", "recipes/tiny/ppo.yaml", []),
    ("scalerl", "recipes/scalerl.yaml", []),
]

SCRIPT = """
import json, sys
watched = {watched!r}
loaded = lambda: sorted(m for m in watched if m in sys.modules)
out = {{}}
import rl.config
out["import rl.config"] = loaded()
for label, path, overrides in {cases!r}:
    rl.config.load_recipe(path, overrides)
    out[label] = loaded()
print(json.dumps(out))
"""


def _loaded_after_each_step() -> dict[str, list[str]]:
    script = SCRIPT.format(watched=HEAVY + [TASKS], cases=NO_TASKS + WITH_TASKS)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_recipes_load_without_heavy_libraries():
    for path in {p for _, p, _ in NO_TASKS + WITH_TASKS}:
        assert (ROOT / path).is_file(), path
    loaded = _loaded_after_each_step()
    assert list(loaded) == ["import rl.config"] + [label for label, _, _ in NO_TASKS + WITH_TASKS]
    for step, modules in loaded.items():
        assert not set(modules) & set(HEAVY), f"{step} loaded {sorted(set(modules) & set(HEAVY))}"
    for step in ["import rl.config"] + [label for label, _, _ in NO_TASKS]:
        assert TASKS not in loaded[step], f"{step} loaded {TASKS}"
