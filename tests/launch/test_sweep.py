"""launch/sweep.py: grid expansion and names, the status table, the early-stop rule applied to run
directories, and a real local sweep that is safe to rerun (finished runs skipped, broken resumed)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from launch.sweep import STOPPED, load_grid, run_sweep
from rl.config import RecipeError, load_recipe
from tests.rl.test_distributed import _recipe_dict

ROOT = Path(__file__).resolve().parents[2]


def write_grid(tmp_path: Path, grid: dict, recipe: str | Path = ROOT / "recipes" / "tiny" / "grpo_math.yaml", **extra) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"recipe": str(recipe), "group": "abl", "grid": grid,
                                    "overrides": {"logging.runs_dir": str(tmp_path / "runs")}, **extra}, sort_keys=False))
    return path


def test_grid_expands_into_named_runs_of_one_group(tmp_path):
    path = write_grid(tmp_path, {"algorithm.loss.name": ["ppo_clip", "cispo"],
                                 "algorithm.aggregation.name": ["token_mean", "seq_mean_token_mean"], "seed": [0, 1]})
    grid = load_grid(path)
    names = [a.name for a in grid.arms]
    assert len(names) == 8 and names[0] == "loss-ppo_clip__aggregation-token_mean__seed-0"
    assert names[-1] == "loss-cispo__aggregation-seq_mean_token_mean__seed-1"
    arm = grid.arms[-1]
    assert arm.run_dir == tmp_path / "runs" / "abl" / arm.name
    recipe = load_recipe(grid.recipe, arm.overrides)
    assert (recipe.name, recipe.seed, recipe.algorithm.loss.name, recipe.algorithm.aggregation.name) == (
        arm.name, 1, "cispo", "seq_mean_token_mean")
    # seeds of an arm share a wandb group (analysis pools them); arms do not
    groups = {load_recipe(grid.recipe, a.overrides).logging.wandb.group for a in grid.arms}
    assert groups == {f"abl__loss-{l}__aggregation-{g}" for l in ("ppo_clip", "cispo")
                      for g in ("token_mean", "seq_mean_token_mean")}


def test_grid_mistakes_fail_before_anything_runs(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown key\(s\) grids; allowed: early_stop, .*grid"):
        load_grid(write_grid(tmp_path, {"seed": [0]}, grids={}))
    with pytest.raises(RecipeError, match="grid must map override keys to non-empty lists"):
        load_grid(write_grid(tmp_path, {"seed": 3}))
    with pytest.raises(RecipeError, match=r"override 'algorithm.loss.name=nope'.*unknown name 'nope'|'nope'"):
        load_grid(write_grid(tmp_path, {"algorithm.loss.name": ["ppo_clip", "nope"]}))


def _fake_run(run_dir: Path, iteration: int, asymptote: tuple[float, float, float] | None, finished: bool) -> None:
    run_dir.mkdir(parents=True)
    line = {"step": iteration, "iteration": iteration, "val/accuracy": 0.3}
    if asymptote:
        line |= dict(zip(("pred/asymptote", "pred/asymptote_low", "pred/asymptote_high"), asymptote))
    (run_dir / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    if finished:
        (run_dir / "final_model").mkdir()
        (run_dir / "final_model" / "config.json").write_text("{}")


def test_status_table_and_early_stop_of_a_clearly_worse_arm(tmp_path, capsys):
    path = write_grid(tmp_path, {"algorithm.loss.name": ["ppo_clip", "cispo", "gspo"]}, early_stop={"margin": 0.0},
                      scheduler="slurm")
    grid = load_grid(path)
    good, bad, unsure = (a.run_dir for a in grid.arms)
    _fake_run(good, 40, (0.80, 0.75, 0.85), finished=True)
    _fake_run(bad, 20, (0.50, 0.45, 0.60), finished=False)  # wholly below 0.75: stopped
    _fake_run(unsure, 20, (0.70, 0.55, 0.90), finished=False)  # overlaps: kept
    assert run_sweep(path, status_only=True) == 0
    out = capsys.readouterr().out
    assert (bad / STOPPED).is_file() and not (unsure / STOPPED).exists()
    assert "below loss-ppo_clip's [0.7500, 0.8500]" in (bad / STOPPED).read_text()
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith("loss-")}
    assert rows["loss-ppo_clip"][1:4] == ["finished", "40/300", "0.300"]
    assert rows["loss-cispo"][1] == "stopped" and rows["loss-gspo"][1] == "broken"
    assert "0.800 [0.750, 0.850]" in out


@pytest.mark.slow
def test_local_sweep_runs_skips_finished_and_resumes_broken(tmp_path, tiny_model_dir):
    recipe = _recipe_dict(tiny_model_dir, tmp_path)
    recipe["train"] |= {"iterations": 2}
    recipe["checkpoint"] = {"every": 1}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(recipe))
    path = write_grid(tmp_path, {"algorithm.loss.name": ["ppo_clip", "cispo"]}, recipe="base.yaml")
    grid = load_grid(path)
    assert run_sweep(path, compare=False) == 0
    for arm in grid.arms:
        assert [json.loads(ln)["iteration"] for ln in (arm.run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]

    # a broken run: killed after its first checkpoint (no final model, a line past the checkpoint)
    broken = grid.arms[1].run_dir
    shutil.rmtree(broken / "final_model")
    shutil.rmtree(broken / "checkpoints" / "iter_0000002")
    (broken / "checkpoints" / "latest").unlink()
    finished_mtime = (grid.arms[0].run_dir / "metrics.jsonl").stat().st_mtime
    log_count = len(list((broken / "logs").glob("local-*.log")))
    assert run_sweep(path, compare=False) == 0
    assert (grid.arms[0].run_dir / "metrics.jsonl").stat().st_mtime == finished_mtime  # skipped
    assert len(list((broken / "logs").glob("local-*.log"))) == log_count + 1
    new_log = max((broken / "logs").glob("local-*.log"), key=lambda p: p.stat().st_mtime).read_text()
    assert "resumed from" in new_log and "iter_0000001" in new_log
    assert [json.loads(ln)["iteration"] for ln in (broken / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert (broken / "final_model" / "config.json").is_file()


@pytest.mark.parametrize("path", sorted((ROOT / "recipes" / "grids").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_grids_load(path):
    grid = load_grid(path)
    assert len(grid.arms) == 8 or len(grid.arms) == 12
    assert len({a.run_dir for a in grid.arms}) == len(grid.arms)


def test_slurm_dry_run_prints_one_job_per_arm(tmp_path, capsys):
    path = write_grid(tmp_path, {"algorithm.loss.name": ["ppo_clip", "cispo"], "seed": [0, 1]}, scheduler="slurm")
    assert run_sweep(path, nodes=2, gpus_per_node=8, dry_run=True) == 0
    out = capsys.readouterr().out
    names = [ln.removeprefix("#SBATCH --job-name=") for ln in out.splitlines() if ln.startswith("#SBATCH --job-name=")]
    assert names == ["loss-ppo_clip__seed-0", "loss-ppo_clip__seed-1", "loss-cispo__seed-0", "loss-cispo__seed-1"]
    assert out.count("#SBATCH --nodes=2\n") == 4 and out.count("--nproc_per_node=8 ") == 4
    assert "logging.wandb.group=abl__loss-cispo" in out and "seed=1" in out
    assert not (tmp_path / "runs" / "abl" / "loss-cispo__seed-1" / "metrics.jsonl").exists()  # nothing ran
