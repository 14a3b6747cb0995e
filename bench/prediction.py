"""Does a fit from a prefix of a run predict where the run ends up? Measured on real training runs.

    python bench/prediction.py --report            # from the stored corpus, no training (about a minute)
    python bench/prediction.py --report --runs RUN_DIR ...   # any run directories
    python bench/prediction.py --train --jobs 2    # regenerate the corpus (~70 min on 2 cores)

The corpus (bench/prediction/runs/, recipe.yaml + metrics.jsonl of each run, no weights) is a grid
of real CPU training runs of the tiny model, the demo's recipe on 3 tasks x 2 recipes x 2 seeds
(TASKS, RECIPES, SEEDS below), each run long enough to bend. For every run and every prefix of 25%, 50% and
75% of its final compute (compute/flops, the default axis), the report fits ScaleRL's sigmoid to
the evals up to the prefix, exactly as `asymptote fit RUN --budget C` does, and compares:

* the predicted value at the run's final compute, with the 95% interval for the mean of 5 evals
  there, against the measured plateau (the mean of the last 5 evals): |error| and inside or not;
* every later eval against its 95% interval for one eval (the coverage of the stated intervals);
* A fitted to the prefix against A fitted to the whole run, and whether the prefix fit's
  warnings (it says when it cannot identify A) were right: a warning is warranted when the
  prefix's A is more than 0.03 from the full run's, and a fit without warnings that is that far
  off is a confident wrong ceiling, the failure this benchmark exists to catch.

Only runs whose full fit is identified (it bends: no warning, C_mid inside the data, A not at a
bound) count toward the summary lines; the others are listed and say why not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS_DIR = ROOT / "bench" / "prediction" / "runs"
PREFIXES = (0.25, 0.5, 0.75)
PLATEAU_EVALS = 5
A_TOLERANCE = 0.03
X_KEY, Y_KEY = "compute/flops", "val/accuracy"
# what the stored metrics.jsonl keep of each line (the run directory contract: step and the counters)
KEEP_KEYS = ("step", "iteration", "compute/", "val/", "train/reward", "train/entropy", "train/loss",
             "train/grad_norm", "train/response_length/mean", "train/time/iteration", "train/clip_frac")


# --------------------------------------------------------------------------------------------
# The report: pure functions of run directories
# --------------------------------------------------------------------------------------------


@dataclass
class PrefixResult:
    """What the fit of one prefix of one run said, and what the run then did."""

    prefix: float
    budget: float
    error: str | None = None
    """Why the prefix could not be fitted (too few evals ...); the other fields are then empty."""
    predicted: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    """The 95% interval for the mean of PLATEAU_EVALS evals at the final compute."""
    abs_error: float = float("nan")
    inside: bool = False
    later_inside: int = 0
    later_total: int = 0
    A: float = float("nan")
    A_low: float = float("nan")
    A_high: float = float("nan")
    identified: bool = False
    warnings: list[str] = field(default_factory=list)

    def verdict(self, full_A: float) -> str:
        """Whether the prefix's word on A was right: ok, warned (warranted), warned (unneeded), WRONG."""
        if self.error is not None:
            return "not fitted"
        far = abs(self.A - full_A) > A_TOLERANCE
        if self.identified:
            return "WRONG" if far else "ok"
        return "warned, right" if far else "warned, unneeded"


@dataclass
class RunResult:
    name: str
    n_evals: int
    final_compute: float
    plateau: float
    full_A: float
    full_A_low: float
    full_A_high: float
    full_C_mid: float
    full_identified: bool
    full_warnings: list[str]
    prefixes: list[PrefixResult]
    error: str | None = None


def evaluate_run(run_dir: str | Path, prefixes=PREFIXES, n_boot: int = 300, seed: int = 0) -> RunResult:
    """Fit the whole run and each prefix of its compute; score the prefixes' predictions."""
    from analysis.bootstrap import predict
    from analysis.extrapolate import backtest, fit_runs
    from analysis.fit import FitError
    from analysis.readers import read_run_dir, series

    run = read_run_dir(run_dir)
    x, y = series(run, X_KEY, Y_KEY)
    final = float(x.max())
    plateau = float(np.mean(y[np.argsort(x, kind="stable")][-PLATEAU_EVALS:]))
    kw = dict(x_key=X_KEY, y_key=Y_KEY, n_boot=n_boot, seed=seed)
    try:
        full = fit_runs([run], **kw)
    except FitError as e:
        return RunResult(run.name, int(x.size), final, plateau, *(4 * [float("nan")]), False, [], [], error=str(e))
    A = full.asymptote
    out = RunResult(run.name, int(x.size), final, plateau, A.value, A.low, A.high, full.fit.params["C_mid"],
                    full.identified, list(full.warnings), [])
    for p in prefixes:
        budget = p * final
        res = PrefixResult(prefix=p, budget=budget)
        try:
            cf = fit_runs([run], budget=budget, **kw)
        except FitError as e:
            res.error = str(e)
            out.prefixes.append(res)
            continue
        curve, plateau_iv = predict(cf.fit, cf.boot, final, n_evals=PLATEAU_EVALS)
        bt = backtest(cf)
        a = cf.asymptote
        res.predicted, res.low, res.high = curve.value, plateau_iv.low, plateau_iv.high
        res.abs_error = abs(curve.value - plateau)
        res.inside = plateau_iv.contains(plateau)
        res.later_inside = int(sum(q.eval.contains(q.observed) for q in bt.predictions))
        res.later_total = len(bt.predictions)
        res.A, res.A_low, res.A_high = a.value, a.low, a.high
        res.identified, res.warnings = cf.identified, list(cf.warnings)
        out.prefixes.append(res)
    return out


@dataclass
class Summary:
    prefix: float
    n_runs: int
    median_abs_error: float
    coverage: float
    later_evals: int
    a_within: int
    identified: int
    confident_wrong: int
    plateau_inside: int
    a_covered: int = 0
    """Prefix fits whose 95% interval for A holds the full run's A."""


def summarize(results: list[RunResult], prefix: float) -> Summary:
    """The targets of one prefix over the runs whose full fit is identified."""
    rows = [(r, q) for r in results if r.full_identified for q in r.prefixes if q.prefix == prefix]
    fitted = [(r, q) for r, q in rows if q.error is None]
    errors = [q.abs_error for _, q in fitted]
    inside = sum(q.later_inside for _, q in fitted)
    total = sum(q.later_total for _, q in fitted)
    return Summary(
        prefix=prefix,
        n_runs=len(rows),
        median_abs_error=float(np.median(errors)) if errors else float("nan"),
        coverage=inside / total if total else float("nan"),
        later_evals=total,
        a_within=sum(abs(q.A - r.full_A) <= A_TOLERANCE for r, q in fitted),
        identified=sum(q.identified for _, q in fitted),
        confident_wrong=sum(q.verdict(r.full_A) == "WRONG" for r, q in fitted),
        plateau_inside=sum(q.inside for _, q in fitted),
        a_covered=sum(q.A_low <= r.full_A <= q.A_high for r, q in fitted),
    )


def summary_line(s: Summary) -> str:
    return (
        f"prefix {s.prefix:.0%}: median |error| {s.median_abs_error:.3f}, 95% coverage {s.coverage:.2f} "
        f"({s.later_evals} later evals), A within {A_TOLERANCE} of full-run A in {s.a_within} of {s.n_runs} runs; "
        f"identified {s.identified}, confident and wrong {s.confident_wrong}; "
        f"plateau inside its 95% interval in {s.plateau_inside} of {s.n_runs}; "
        f"full-run A inside the prefix's 95% interval for A in {s.a_covered} of {s.n_runs}"
    )


def short_warning(w: str) -> str:
    """A word for each kind of warning the fit gives (the full text is in the JSON)."""
    for key, word in (("never bends", "no-bend"), ("beyond the last", "C_mid>data"), ("at the bound", "bound"),
                      ("wider than half", "wide-A"), ("top of its range", "A-top"), ("no eval at", "no-R0")):
        if key in w:
            return word
    return "other"


def report_text(results: list[RunResult]) -> str:
    from analysis.report import num, table

    header = ["run", "prefix", "pred at end [95%, mean of 5]", "plateau", "|error|", "inside", "later in",
              "A prefix [95%]", "A full", "warnings", "verdict"]
    rows = []
    for r in results:
        if r.error is not None:
            rows.append([r.name, "-", f"full run cannot be fitted: {r.error}"] + [""] * 8)
            continue
        full_note = "" if r.full_identified else " (full fit not identified: " + ",".join(
            sorted({short_warning(w) for w in r.full_warnings})) + ")"
        for q in r.prefixes:
            if q.error is not None:
                rows.append([r.name + full_note, f"{q.prefix:.0%}", f"not fitted: {q.error[:60]}"] + [""] * 8)
                continue
            rows.append([
                r.name + full_note,
                f"{q.prefix:.0%}",
                f"{q.predicted:.3f} [{q.low:.3f}, {q.high:.3f}]",
                f"{r.plateau:.3f}",
                f"{q.abs_error:.3f}",
                "yes" if q.inside else "NO",
                f"{q.later_inside}/{q.later_total}",
                f"{q.A:.3f} [{q.A_low:.3f}, {q.A_high:.3f}]",
                f"{r.full_A:.3f}",
                ",".join(sorted({short_warning(w) for w in q.warnings})) or "-",
                q.verdict(r.full_A),
            ])
    lines = [table(header, rows, left=2)]
    ident = [r for r in results if r.error is None and r.full_identified]
    lines.append(
        f"\n{len(ident)} of {len(results)} runs have an identified full fit (they count below); final compute "
        f"{num(min(r.final_compute for r in results))}-{num(max(r.final_compute for r in results))} {X_KEY}"
    )
    lines.append("warnings: no-bend = no better than a line in log C; C_mid>data = midpoint beyond the prefix; "
                 "bound = a parameter at its bound; wide-A = A's interval wider than half the gain")
    lines.append(f"verdict: ok = identified and A within {A_TOLERANCE} of the full run's; warned, right = "
                 "said it could not identify A, and it was off; warned, unneeded = said so, but was close; "
                 "WRONG = a confident ceiling more than 0.03 off")
    lines += [summary_line(summarize(results, p)) for p in sorted({q.prefix for r in results for q in r.prefixes})]
    return "\n".join(lines)


def plot_corpus(run_dirs: list[Path], results: list[RunResult], path: Path, prefix: float = 0.5,
                n_boot: int = 200) -> Path:
    """One panel per run: its evals, the full-run fit, and the fit of the first `prefix` of its
    compute extrapolated to the end with its band, the prefix's end marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from analysis.bootstrap import curve_band
    from analysis.extrapolate import fit_runs
    from analysis.fit import FitError
    from analysis.readers import read_run_dir

    n = len(run_dirs)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows), dpi=110)
    FigureCanvasAgg(fig)
    for i, (d, res) in enumerate(zip(run_dirs, results)):
        ax = fig.add_subplot(rows, cols, i + 1)
        run = read_run_dir(d)
        try:
            full = fit_runs([run], x_key=X_KEY, y_key=Y_KEY, n_boot=n_boot)
            part = fit_runs([run], x_key=X_KEY, y_key=Y_KEY, n_boot=n_boot, budget=prefix * res.final_compute)
        except FitError as e:
            ax.set_title(f"{res.name}\n{str(e)[:40]}", fontsize=7)
            continue
        keep = full.x > 0
        early = keep & (full.x <= part.budget)
        ax.scatter(full.x[early], full.y[early], s=7, color="#1f77b4", zorder=3)
        ax.scatter(full.x[keep & ~early], full.y[keep & ~early], s=9, marker="x", color="#d62728", zorder=3)
        xs = np.geomspace(float(full.x[keep].min()), res.final_compute * 1.05, 200)
        ax.plot(xs, curve_band(full.fit, full.boot, xs)[0], color="0.3", lw=1, ls=":", label="full-run fit")
        mid, lo, hi = curve_band(part.fit, part.boot, xs)
        ax.plot(xs, mid, color="#2ca02c", lw=1.6, label=f"fit of first {prefix:.0%}")
        ax.fill_between(xs, lo, hi, color="#2ca02c", alpha=0.18, lw=0)
        ax.axvline(part.budget, color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # the minor ticks' labels overlap on a narrow range
        q = next(q for q in res.prefixes if q.prefix == prefix)
        ax.set_title(f"{res.name}\nend: pred {q.predicted:.3f}, plateau {res.plateau:.3f}; A {q.A:.2f} vs {res.full_A:.2f}",
                     fontsize=7)
        ax.tick_params(labelsize=6)
        if i == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.supxlabel(f"{X_KEY} (log); blue: fitted evals, red x: later evals", fontsize=8)
    fig.supylabel(Y_KEY, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def corpus_runs(root: Path = CORPUS_DIR) -> list[Path]:
    return sorted(d for d in root.iterdir() if (d / "metrics.jsonl").is_file()) if root.is_dir() else []


# --------------------------------------------------------------------------------------------
# The corpus: real training runs of the tiny model
# --------------------------------------------------------------------------------------------

RECIPE = ROOT / "recipes" / "tiny" / "demo.yaml"


def _task(min_terms: int, max_terms: int, max_digits: int, operators: list[str]) -> str:
    config = {"min_terms": min_terms, "max_terms": max_terms, "min_digits": 1, "max_digits": max_digits,
              "operators": operators, "allow_parentheses": False, "allow_negation": False}
    return "env.tasks=" + json.dumps([{"name": "basic_arithmetic", "config": config}])


# The runs: the demo's recipe (recipes/tiny/demo.yaml: the tiny model with the compact chat template,
# its 1000-step warm start, 32 prompts x 8 samples, lr 1e-4, 240 iterations, an eval of 512 prompts x 2
# samples every 6 iterations), on each task, with each recipe's algorithm, for each seed. The seed
# also seeds the warm start and the data, so two seeds are two starting models. Nothing was tuned per
# task or recipe.
MODEL = "models/tiny-math-compact"
MODEL_ARGS = dict(size="tiny", chat="compact")
COMMON = [f"model.path={MODEL}", "eval.predict_asymptote=false", "checkpoint.every=120"]
# task families / difficulties: name -> overrides. The sums run 240 iterations, 4 to 9 times their
# full fit's C_mid (28 to 60 iterations); the products, which bend later, 480. (Sums of 2 to 4 terms were tried as a third task and left
# out: their runs never bent, at 240 iterations nor at 600, but crept up log-linearly; bench/README.md,
# "Prediction".)
TASKS: dict[str, list[str]] = {
    "sum3": [_task(2, 3, 1, ["+"])],        # the demo's task: 2 or 3 one-digit terms
    "sum34": [_task(3, 4, 1, ["+"])],       # 3 or 4 one-digit terms
    # products of 2 or 3 one-digit factors bend later (C_mid 60 to 95 iterations at 240): 480 iterations
    "mul3": [_task(2, 3, 1, ["*"]), "train.iterations=480"],
}
# recipes: name -> overrides of the demo recipe's algorithm
RECIPES: dict[str, list[str]] = {
    "grpo": [],  # the demo's GRPO: PPO-clip 0.2/0.28, token-mean, std-scaled group advantages
    # ScaleRL's loss and advantages (recipes/scalerl.yaml): CISPO (cap 5), batch-level std,
    # prompt-mean aggregation, zero-variance filtering; without its no-positive-resampling, which on
    # these small problem spaces retires the training set (914 of sum3's 940 training prompts in a
    # trial run, which then stopped: fewer prompts were left than an iteration takes)
    "cispo": ["algorithm.advantage.std=batch", 'algorithm.loss={"name": "cispo", "cap": 5.0}',
              "algorithm.aggregation.name=prompt_mean", "algorithm.zero_variance_filter=true"],
}
SEEDS = (0, 1)


def corpus_grid() -> list[tuple[str, Path, list[str]]]:
    """(run name, recipe file, overrides) for every run of the corpus."""
    grid = []
    for seed in SEEDS:  # seed-major: a partial --train already covers every task and recipe
        for name, rec_over in RECIPES.items():
            for task, task_over in TASKS.items():
                run = f"{task}-{name}-s{seed}"
                grid.append((run, RECIPE, [*COMMON, *task_over, *rec_over, f"seed={seed}", f"name={run}"]))
    return grid


def slim_metrics(src: Path, dst: Path) -> None:
    """Copy a metrics.jsonl keeping only KEEP_KEYS of each line (what the analysis and a reader need)."""
    out = []
    for line in src.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        out.append(json.dumps({k: v for k, v in rec.items() if k.startswith(KEEP_KEYS)}))
    dst.write_text("\n".join(out) + "\n")


def train_corpus(scratch: Path, jobs: int, only: list[str] | None, dest: Path = CORPUS_DIR) -> int:
    """Train every run of the grid (jobs at a time, one torch thread each), resuming unfinished
    ones, then store recipe.yaml + slimmed metrics.jsonl under `dest`."""
    from rl.models import build_tiny_model

    grid = [g for g in corpus_grid() if not only or any(o in g[0] for o in only)]
    if not (ROOT / MODEL / "config.json").is_file():
        build_tiny_model(ROOT / MODEL, seed=0, **MODEL_ARGS)
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending = list(grid)
    running: list[tuple[str, subprocess.Popen, float]] = []
    t0 = time.time()
    failed = []
    print(f"training {len(grid)} runs, {jobs} at a time, into {scratch}", flush=True)
    while pending or running:
        while pending and len(running) < jobs:
            name, recipe, over = pending.pop(0)
            run_dir = scratch / name
            if (run_dir / "final_model").is_dir():
                print(f"  {name}: already finished", flush=True)
                continue
            cmd = [sys.executable, "-m", "launch.cli", "train", str(recipe), *over, f"logging.runs_dir={scratch}",
                   "logging.progress=false", "resources.cpu_threads=1"]
            if run_dir.exists():
                cmd.append("--resume")
            log = (scratch / f"{name}.log").open("a")
            running.append((name, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), time.time()))
        time.sleep(2)
        for item in list(running):
            name, proc, started = item
            if proc.poll() is None:
                continue
            running.remove(item)
            status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {scratch / name}.log)"
            if proc.returncode:
                failed.append(name)
            print(f"  {name}: {status} in {(time.time() - started) / 60:.1f} min "
                  f"({(time.time() - t0) / 60:.1f} min so far)", flush=True)
    dest.mkdir(parents=True, exist_ok=True)
    for name, _, _ in grid:
        src = scratch / name
        if name in failed or not (src / "metrics.jsonl").is_file():
            continue
        (dest / name).mkdir(exist_ok=True)
        shutil.copy(src / "recipe.yaml", dest / name / "recipe.yaml")
        slim_metrics(src / "metrics.jsonl", dest / name / "metrics.jsonl")
    print(f"corpus: {len(grid) - len(failed)} runs stored in {dest} after {(time.time() - t0) / 60:.1f} min", flush=True)
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--report", action="store_true", help="score prefix predictions on the stored corpus")
    mode.add_argument("--train", action="store_true", help="train the corpus again (see bench/README.md for the time)")
    p.add_argument("--runs", nargs="+", help="run directories to report on instead of the corpus")
    p.add_argument("--boot", type=int, default=300, help="bootstrap refits per fit (default %(default)s)")
    p.add_argument("--json", help="also write the per-run results here")
    p.add_argument("--plot", help="also draw one panel per run (the 50%% prefix fit) into this PNG")
    p.add_argument("--jobs", type=int, default=2, help="--train: runs at a time (default %(default)s)")
    p.add_argument("--scratch", default="runs/prediction-corpus", help="--train: where the runs train")
    p.add_argument("--only", nargs="*", help="--train: only runs whose name contains one of these")
    args = p.parse_args(argv)

    if args.train:
        return train_corpus(ROOT / args.scratch if not os.path.isabs(args.scratch) else Path(args.scratch),
                            args.jobs, args.only)
    dirs = [Path(d) for d in args.runs] if args.runs else corpus_runs()
    if not dirs:
        print(f"no runs in {CORPUS_DIR}: run --train first, or give --runs", file=sys.stderr)
        return 2
    t0 = time.time()
    results = []
    for d in dirs:
        results.append(evaluate_run(d, n_boot=args.boot))
        print(f"  fitted {d.name} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(report_text(results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if args.plot:
        print(f"wrote {plot_corpus(dirs, results, Path(args.plot))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
