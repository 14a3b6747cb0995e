"""`asymptote demo`: a tiny model learns arithmetic with GRPO on CPU, then its curve is fitted.

1. build the tiny model with the compact chat template (models/tiny-math-compact) if it is missing;
2. train recipes/tiny/demo.yaml (the supervised warm start runs once and is cached) and print the
   run's throughput;
3. fit the ScaleRL sigmoid to the run's accuracy against compute (compute/flops: the work done,
   the same on a busy machine as on an idle one), print the asymptote with its interval, and write
   the plots into the run directory;
4. backtest: fit only the first half of the compute and check what that predicted for the end of
   the run (its plateau: the mean of the last 5 evals) against what the run then did; then show
   what the same fit says from the first quarter, before the curve bent (the point of Asymptote:
   predict big from small, and say so when it cannot yet).

Rerunning continues an interrupted demo from its last checkpoint; --fresh starts over.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.bootstrap import Interval

DEMO_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "tiny" / "demo.yaml"
DEMO_MODEL = dict(size="tiny", chat="compact")  # rl/models.py build_tiny_model
X_KEY, Y_KEY = "compute/flops", "val/accuracy"
PLATEAU_EVALS = 5


def run_demo(overrides: list[str] | tuple[str, ...] = (), fresh: bool = False) -> int:
    from analysis.cli import analysis_main
    from rl.config import load_recipe
    from rl.logger import read_jsonl
    from rl.models import build_tiny_model
    from rl.trainer import train

    recipe = load_recipe(DEMO_RECIPE, list(overrides))
    model_dir = Path(recipe.model.path)
    if not (model_dir / "config.json").is_file():
        print(f"[demo] building the tiny model ({DEMO_MODEL['chat']} chat template) in {model_dir}")
        build_tiny_model(model_dir, seed=recipe.seed, **DEMO_MODEL)
    run_dir = recipe.run_dir
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    finished = (run_dir / "final_model").is_dir()

    start = time.time()
    if not finished:
        train(recipe, resume=run_dir.exists())
    minutes = (time.time() - start) / 60

    lines = read_jsonl(run_dir / "metrics.jsonl")
    evals = [m for m in lines if Y_KEY in m]
    first, last = evals[0], evals[-1]
    plateau = sum(e[Y_KEY] for e in evals[-PLATEAU_EVALS:]) / len(evals[-PLATEAU_EVALS:])
    print(
        f"\n[demo] {recipe.name}: {Y_KEY} {first[Y_KEY]:.3f} -> {plateau:.3f} (mean of the last {PLATEAU_EVALS} "
        f"evals) over {last['iteration']} iterations"
        + (f", {minutes:.1f} minutes wall clock" if not finished else "")
    )
    print(f"[demo] {throughput_line(lines)}")
    print(f"[demo] run directory: {run_dir}\n")
    status = analysis_main(["fit", str(run_dir)])
    print(backtest_summary(run_dir))
    return status


def throughput_line(lines: list[dict]) -> str:
    """Iterations per second, generated tokens per second and FLOPs per second of the training
    iterations (their own wall time, train/time/iteration, evals left out), with torch's threads."""
    import torch

    steps = [m for m in lines if "train/time/iteration" in m]
    if not steps:
        return "throughput: no training iterations logged"
    seconds = sum(m["train/time/iteration"] for m in steps)
    last = lines[-1]
    return (
        f"throughput: {len(steps) / seconds:.2f} iterations/s, {last['compute/tokens'] / seconds:,.0f} generated "
        f"tokens/s, {last['compute/flops'] / seconds:.3g} FLOPs/s over {seconds / 60:.1f} minutes of training "
        f"iterations (torch CPU threads: {torch.get_num_threads()})"
    )


@dataclass
class DemoBacktest:
    """What the fit of the first `share` of the run's compute said about the end of the run."""

    share: float
    budget: float
    plateau: float
    """The run's measured end: the mean of its last PLATEAU_EVALS evals."""
    error: str | None = None
    """Why the share could not be fitted on its own (too few evals); the rest is then empty."""
    predicted: Interval | None = None
    """The curve at the run's final compute, with the 95% interval for the mean of PLATEAU_EVALS evals."""
    asymptote: Interval | None = None
    identified: bool = False
    warnings: tuple[str, ...] = ()
    later_evals: int = 0
    later_mean_abs_error: float = float("nan")
    later_inside: float = float("nan")

    @property
    def abs_error(self) -> float:
        return abs(self.predicted.value - self.plateau) if self.predicted is not None else float("nan")


def demo_backtests(run_dir: Path, shares: tuple[float, ...] = (0.5, 0.25)) -> list[DemoBacktest]:
    """Fit the evals up to each share of the run's compute (half: after the bend; a quarter: while
    the curve still rises) and score what each fit predicted for the end of the run."""
    from analysis.bootstrap import predict
    from analysis.extrapolate import backtest, fit_runs
    from analysis.verdict import verdict
    from analysis.fit import FitError
    from analysis.readers import read_run_dir, series

    run = read_run_dir(run_dir)
    x, y = series(run, X_KEY, Y_KEY)
    end = float(x.max())
    plateau = float(y[-PLATEAU_EVALS:].mean())
    out = []
    for share in shares:
        b = DemoBacktest(share, share * end, plateau)
        try:
            cf = fit_runs([run], x_key=X_KEY, y_key=Y_KEY, budget=b.budget)
        except FitError as err:
            b.error = str(err)
            out.append(b)
            continue
        _, b.predicted = predict(cf.fit, cf.boot, end, n_evals=PLATEAU_EVALS)
        bt = backtest(cf)
        v = verdict(cf)  # the rule of analysis/verdict.py: a ceiling only where it is in reach
        b.asymptote, b.identified, b.warnings = cf.asymptote, v.identified, v.reasons
        b.later_evals, b.later_mean_abs_error, b.later_inside = len(bt.predictions), bt.mean_abs_error, bt.inside
        out.append(b)
    return out


def backtest_summary(run_dir: Path) -> str:
    """The demo's closing lines: :func:`demo_backtests` in words."""
    out = []
    for b in demo_backtests(run_dir):
        label = {0.5: "half", 0.25: "quarter"}.get(b.share, f"{b.share:.0%}")
        if b.error is not None:
            out.append(f"\n[demo] backtest from the first {label} skipped: too few evals to fit on their own ({b.error})")
            continue
        p, a = b.predicted, b.asymptote
        text = (
            f"\n[demo] backtest: fitted on the first {label} of the compute (up to {b.budget:.3g} FLOPs), the "
            f"curve predicted {Y_KEY} {p.value:.3f} [{p.low:.3f}, {p.high:.3f}] at the end of the run "
            f"(95% interval for the mean of {PLATEAU_EVALS} evals); the run measured {b.plateau:.3f} "
            f"(|error| {b.abs_error:.3f}). Over the {b.later_evals} later evals: mean |error| "
            f"{b.later_mean_abs_error:.3f}, {b.later_inside:.0%} inside their 95% intervals. A = {a.value:.3f} "
            f"[{a.low:.3f}, {a.high:.3f}]"
        )
        if b.identified:
            text += ", identified."
        else:
            text += ", which the fit says it cannot pin down yet:\n" + "\n".join(f"  (!) {w}" for w in b.warnings)
        out.append(text)
    return "\n".join(out)
