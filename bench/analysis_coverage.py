"""Coverage of Asymptote's stated 95% intervals on synthetic ScaleRL curves with known parameters.

    python bench/analysis_coverage.py                 # 300 datasets per scenario, 300 bootstrap refits each
    python bench/analysis_coverage.py --datasets 100  # quicker

For each scenario it draws datasets (true A, R0, B, run length, eval count and noise drawn from the
scenario's ranges; see analysis/simulate.py), fits ScaleRL's sigmoid the way the fit of record does
(R0 fixed at the first eval, first 10% of compute skipped), bootstraps it, and prints how often the
95% interval contained the true value: per parameter, and for the curve at twice the fitted compute.
The target is at least 0.90 everywhere; 0.95 is what an exact interval would give. "warned" counts
the datasets whose fit said it was poorly identified (their intervals are counted like the others).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.simulate import PARAMS, Scenario, coverage  # noqa: E402

SCENARIOS = [
    Scenario(name="realistic: 20-40 evals, sd 0.01-0.03, C_max 2.5-10 C_mid"),
    Scenario(name="short runs: C_max 2-4 C_mid, sd 0.01-0.02", span=(2.0, 4.0), sd=(0.01, 0.02)),
    Scenario(name="long runs: C_max 8-16 C_mid, 30-60 evals", span=(8.0, 16.0), n_points=(30, 60)),
    Scenario(name="correlated evals: AR(1) noise, phi = 0.5", ar=0.5),
    Scenario(name="3 seeds of a recipe, seed bootstrap", n_seeds=3),
    Scenario(name="5 seeds of a recipe, seed bootstrap", n_seeds=5),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", type=int, default=300, help="synthetic datasets per scenario")
    p.add_argument("--boot", type=int, default=300, help="bootstrap refits per dataset")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", type=int, nargs="*", help="indices of the scenarios to run")
    args = p.parse_args(argv)

    names = list(PARAMS) + ["R(2C)"]
    print(f"coverage of stated 95% intervals; {args.datasets} datasets x {args.boot} bootstrap refits per scenario")
    print(
        f"{'scenario':<58} {'fitted':>6} {'warned':>6}  " + "  ".join(f"{n:>6}" for n in names) + "   median width of A"
    )
    for i, sc in enumerate(SCENARIOS):
        if args.only and i not in args.only:
            continue
        t0 = time.time()
        cov = coverage(sc, args.datasets, n_boot=args.boot, seed=args.seed, workers=args.workers)
        rates = "  ".join(f"{cov.rate(n):>6.3f}" for n in names)
        width = float(np.median(cov.widths["A"]))
        print(
            f"{sc.name:<58} {cov.n_fitted:>6} {cov.n_warned:>6}  {rates}   {width:.3f}   ({time.time() - t0:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
