"""Analysis: fit compute-performance and entropy-performance laws to runs, predict asymptotes.

    laws.py         the laws, as pure functions (ScaleRL sigmoid, entropy law, power laws)
    fit.py          robust bounded multi-start least squares; ScaleRL's R0 and early-compute rules
    bootstrap.py    intervals: residual/AR(1) bootstrap within a run, t-corrected over seeds
    extrapolate.py  fit up to a budget, predict beyond it, backtest
    compare.py      rank recipes by A; which ablations moved A and which only the efficiency
    readers/        run directories, CSV, TRL, verl, TensorBoard, wandb; series and the compute axis
    report.py       tables and fit.json
    plots.py        PNG figures
    live.py         the trainer hook (pred/asymptote ...) and the sweep stopping rule
    simulate.py     synthetic runs and the coverage simulation
    cli.py          asymptote fit | compare | predict

See docs/analysis.md.
"""
