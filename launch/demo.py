"""`asymptote demo`: a tiny model learns arithmetic with GRPO on CPU, then its curve is fitted.

1. build the tiny model (models/tiny-math) if it is missing;
2. train recipes/tiny/grpo_math.yaml (the supervised warm start runs once and is cached);
3. fit the ScaleRL sigmoid to the run's accuracy-against-compute curve, print the asymptote with
   its interval, and write the plots into the run directory;
4. backtest: fit only the first half of the compute and check what that predicted for the second
   half against what the run then did (the point of Asymptote: predict big from small).

Rerunning continues an interrupted demo from its last checkpoint; --fresh starts over.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

DEMO_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "tiny" / "grpo_math.yaml"


def run_demo(overrides: list[str] | tuple[str, ...] = (), fresh: bool = False) -> int:
    from analysis.cli import fit_main
    from rl.config import load_recipe
    from rl.logger import read_jsonl
    from rl.models import build_tiny_model
    from rl.trainer import train

    recipe = load_recipe(DEMO_RECIPE, list(overrides))
    model_dir = Path(recipe.model.path)
    if not (model_dir / "config.json").is_file():
        print(f"[demo] building the tiny model in {model_dir}")
        build_tiny_model(model_dir, seed=recipe.seed)
    run_dir = recipe.run_dir
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    finished = (run_dir / "final_model").is_dir()

    start = time.time()
    if not finished:
        train(recipe, resume=run_dir.exists())
    minutes = (time.time() - start) / 60

    evals = [m for m in read_jsonl(run_dir / "metrics.jsonl") if "val/accuracy" in m]
    first, last = evals[0], evals[-1]
    print(
        f"\n[demo] {recipe.name}: val/accuracy {first['val/accuracy']:.3f} -> {last['val/accuracy']:.3f} "
        f"over {last['iteration']} iterations ({last['compute/device_hours'] * 60:.1f} device-minutes of training"
        + (f", {minutes:.1f} minutes wall clock)" if not finished else ")")
    )
    print(f"[demo] run directory: {run_dir}\n")
    status = fit_main([str(run_dir)])
    print(_backtest_summary(run_dir, half=last["compute/device_hours"] / 2))
    return status


def _backtest_summary(run_dir: Path, half: float) -> str:
    """Fit the evals up to half the run's compute and score its predictions for the rest."""
    from analysis.extrapolate import backtest, fit_runs
    from analysis.fit import FitError
    from analysis.readers import read_run_dir

    try:
        bt = backtest(fit_runs([read_run_dir(run_dir)], budget=half))
    except FitError as err:
        return f"\n[demo] backtest skipped: the first half of the run is too short to fit on its own ({err})"
    final = bt.final
    return (
        f"\n[demo] backtest: fitted on the first half of the compute (up to {half:.4g} device-hours), the curve "
        f"predicted val/accuracy {final.curve.value:.3f} [{final.eval.low:.3f}, {final.eval.high:.3f}] at the end of "
        f"the run (95% interval for one eval); the run measured {final.observed:.3f}. Over the {len(bt.predictions)} "
        f"later evals: mean |error| {bt.mean_abs_error:.3f}, {bt.inside:.0%} inside their intervals."
    )
