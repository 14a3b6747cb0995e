"""`asymptote sweep GRID.yaml`: an ablation grid as named runs of one group.

A grid file names a recipe, a group, overrides common to every run and the grid itself, whose
cartesian product gives the runs (arms):

    recipe: tiny/grpo_math.yaml          # relative to the grid file
    group: loss-x-agg                    # runs go to <runs_dir>/<group>/<run name>; the seeds of an arm
                                         # share the wandb group <group>__<arm> (pooled by compare)
    overrides: {train.iterations: 60}    # every run
    grid:                                # one run per combination
      algorithm.loss.name: [ppo_clip, cispo]
      algorithm.aggregation.name: [token_mean, seq_mean_token_mean]
      seed: [0, 1]
    scheduler: local                     # or slurm (the command line wins)
    early_stop: {margin: 0.0}            # stop arms whose predicted asymptote is clearly worse

It is safe to rerun: finished runs are skipped, stopped ones stay stopped, broken or killed ones
resume from their last checkpoint, queued or running SLURM jobs are left alone. Each invocation
prints a status table; once every run has finished (or was stopped) the finished ones go to
`asymptote compare`. With early_stop, an arm whose asymptote interval (pred/asymptote_low..high,
logged by the trainer's live prediction) lies wholly below the best arm's is stopped
(analysis.live.should_stop): not started again, and its SLURM job cancelled.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis.bootstrap import Interval
from analysis.live import should_stop
from launch.jobs import Job, launch, make_job
from rl.checkpoint import latest_checkpoint
from rl.config import RecipeError, load_recipe

GRID_KEYS = {"recipe", "group", "overrides", "grid", "scheduler", "early_stop", "nodes", "gpus_per_node"}
STOPPED = "STOPPED"


@dataclass
class Arm:
    name: str
    overrides: list[str]
    run_dir: Path


@dataclass
class Grid:
    path: Path
    recipe: Path
    group: str
    arms: list[Arm]
    scheduler: str
    early_stop: dict | None
    nodes: int | None
    gpus_per_node: int | None


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; every arm's recipe is validated before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: grid file not found")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - GRID_KEYS
    if unknown:
        raise RecipeError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(GRID_KEYS))}")
    for key in ("recipe", "group", "grid"):
        if key not in data:
            raise RecipeError(f"{path}: '{key}' is missing")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(data["group"])):
        raise RecipeError(f"{path}: group {data['group']!r} must be letters, digits, '.', '_' or '-'")
    grid = data["grid"]
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise RecipeError(f"{path}: grid must map override keys to non-empty lists of values, e.g. seed: [0, 1]")
    scheduler = data.get("scheduler", "local")
    if scheduler not in ("local", "slurm"):
        raise RecipeError(f"{path}: scheduler {scheduler!r}; allowed: local, slurm")
    recipe = (path.parent / data["recipe"]).resolve()
    common = [f"{k}={_yaml_value(v)}" for k, v in (data.get("overrides") or {}).items()]
    base = load_recipe(recipe, common)
    runs_root = Path(base.logging.runs_dir) / str(data["group"])
    arms = []
    for combo in itertools.product(*grid.values()):
        pairs = list(zip(grid, combo))
        name = "__".join(f"{_short(k)}-{_slug(v)}" for k, v in pairs)
        # the wandb group is the arm without its seed: analysis pools a group's runs as seeds of one recipe
        arm_group = "__".join([str(data["group"])] + [f"{_short(k)}-{_slug(v)}" for k, v in pairs if k != "seed"])
        overrides = common + [f"{k}={_yaml_value(v)}" for k, v in pairs] + [
            f"name={name}", f"logging.runs_dir={runs_root}", f"logging.wandb.group={arm_group}"]
        load_recipe(recipe, overrides)  # fail now, naming the arm's override, not halfway through the sweep
        arms.append(Arm(name, overrides, runs_root / name))
    if len({a.name for a in arms}) != len(arms):
        raise RecipeError(f"{path}: two combinations give the same run name; make the grid's values distinct")
    return Grid(path, recipe, str(data["group"]), arms, scheduler, data.get("early_stop"), data.get("nodes"),
                data.get("gpus_per_node"))


def _short(key: str) -> str:
    """algorithm.loss.name -> loss, algorithm.loss.clip_high -> clip_high, seed -> seed."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(value)).strip("-") or "x"


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


@dataclass
class ArmStatus:
    arm: Arm
    state: str
    """new | finished | stopped | queued | running | broken (a run directory without a final model)"""
    iteration: int = 0
    iterations: int = 0
    accuracy: float | None = None
    asymptote: Interval | None = None
    job_id: str | None = None


def arm_status(arm: Arm, iterations: int) -> ArmStatus:
    d = arm.run_dir
    lines = _metrics(d / "metrics.jsonl")
    status = ArmStatus(arm, "new", iterations=iterations)
    if lines:
        status.iteration = int(lines[-1].get("iteration", 0))
        evals = [m for m in lines if "val/accuracy" in m]
        status.accuracy = evals[-1]["val/accuracy"] if evals else None
        preds = [m for m in lines if "pred/asymptote_low" in m and "pred/asymptote_high" in m]
        if preds:
            p = preds[-1]
            status.asymptote = Interval(p["pred/asymptote"], p["pred/asymptote_low"], p["pred/asymptote_high"])
    job_file = d / "launch" / "job_id"
    status.job_id = job_file.read_text().strip() if job_file.is_file() else None
    if (d / STOPPED).is_file():
        status.state = "stopped"
    elif (d / "final_model" / "config.json").is_file():
        status.state = "finished"
    elif status.job_id and (slurm_state := _slurm_state(status.job_id)) in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING"):
        status.state = "queued" if slurm_state == "PENDING" else "running"
    elif lines or latest_checkpoint(d / "checkpoints") is not None:
        status.state = "broken"
    return status


def _metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    return out


def _slurm_state(job_id: str) -> str | None:
    if shutil.which("squeue") is None:
        return None
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip() or None


def status_table(rows: list[ArmStatus]) -> str:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    header = ("run", "state", "iteration", "val/accuracy", "pred/asymptote [95%]", "job")
    body = [(
        s.arm.name, s.state, f"{s.iteration}/{s.iterations}", fmt(s.accuracy),
        "-" if s.asymptote is None else f"{s.asymptote.value:.3f} [{s.asymptote.low:.3f}, {s.asymptote.high:.3f}]",
        s.job_id or "-",
    ) for s in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, body)])


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def apply_early_stop(grid: Grid, rows: list[ArmStatus]) -> list[str]:
    """Mark (and cancel) the arms analysis.live.should_stop picks; returns their names."""
    if not grid.early_stop:
        return []
    live = [s for s in rows if s.state != "stopped"]
    chosen = should_stop({s.arm.name: s.asymptote for s in live}, margin=float(grid.early_stop.get("margin", 0.0)))
    for s in live:
        if s.arm.name in chosen and s.state != "finished":
            s.arm.run_dir.mkdir(parents=True, exist_ok=True)
            best = max((x for x in live if x.asymptote), key=lambda x: x.asymptote.value)
            (s.arm.run_dir / STOPPED).write_text(
                f"stopped by the sweep: asymptote interval [{s.asymptote.low:.4f}, {s.asymptote.high:.4f}] lies below "
                f"{best.arm.name}'s [{best.asymptote.low:.4f}, {best.asymptote.high:.4f}]\n")
            if s.job_id and s.state in ("queued", "running") and shutil.which("scancel"):
                subprocess.run(["scancel", s.job_id], check=False)
            s.state = "stopped"
            print(f"[asymptote] early stop: {s.arm.name} (predicted asymptote clearly below {best.arm.name}'s)")
    return sorted(chosen)


def run_sweep(grid_path: str | Path, scheduler: str | None = None, nodes: int | None = None,
              gpus_per_node: int | None = None, dry_run: bool = False, status_only: bool = False,
              compare: bool = True) -> int:
    grid = load_grid(grid_path)
    scheduler = scheduler or grid.scheduler
    nodes, gpus_per_node = nodes or grid.nodes, gpus_per_node or grid.gpus_per_node
    iterations = {a.name: load_recipe(grid.recipe, a.overrides).train.iterations for a in grid.arms}
    statuses = lambda: [arm_status(a, iterations[a.name]) for a in grid.arms]  # noqa: E731

    rows = statuses()
    print(f"sweep {grid.group}: {len(grid.arms)} runs from {grid.path} ({scheduler})")
    apply_early_stop(grid, rows)
    if status_only:
        print(status_table(rows))
        return 0
    failed = []
    for s in rows:
        if s.state in ("finished", "stopped", "queued", "running"):
            continue
        if scheduler == "local":  # one after the other: recheck the early-stop rule between runs
            s = arm_status(s.arm, iterations[s.arm.name])
            if s.arm.name in apply_early_stop(grid, [*statuses()]):
                continue
        job: Job = make_job(grid.recipe, s.arm.overrides, scheduler, nodes, gpus_per_node)
        print(f"[asymptote] {'resume' if s.state == 'broken' else 'start'} {s.arm.name}")
        if launch(job, dry_run=dry_run) != 0:
            failed.append(s.arm.name)
    rows = statuses()
    print(status_table(rows))
    finished = [s for s in rows if s.state == "finished"]
    if failed:
        print(f"[asymptote] failed: {', '.join(failed)} (rerun the sweep to resume them)")
    if compare and not dry_run and finished and all(s.state in ("finished", "stopped") for s in rows):
        from analysis.cli import analysis_main

        dirs = [str(s.arm.run_dir) for s in finished]
        print(f"[asymptote] asymptote compare {' '.join(dirs)}")
        code = analysis_main(["compare", *dirs, "--out", str(grid.arms[0].run_dir.parent / "compare")])
        if code != 0:
            print("[asymptote] compare could not rank the runs yet (too few evals to fit?)")
    return 1 if failed else 0
