"""Read runs: Asymptote's run directories and CSV files, and the logs of other RL frameworks.

Every reader returns a :class:`Run`: a name, the resolved recipe (a dict; empty where the source has
none), the metrics lines (dicts keyed as in ``metrics.jsonl``) and notes on the compute metrics it
derived. :func:`load_runs` reads sources, choosing the reader from each one's content (or the one
``format=`` forces); :func:`series` turns a run into the (x, y) points a fit needs; :func:`default_x`
picks the compute axis, :func:`throughput` converts it to device-hours.

    asymptote.py         run directories (recipe.yaml + metrics.jsonl; DESIGN.md) and .csv files
    trl_logs.py          TRL / transformers: trainer_state.json's log_history
    verl_logs.py         verl: its file logger's JSONL; compute from perf/ and timing_s/ metrics
    tensorboard_logs.py  TensorBoard event files (verl, OpenRLHF, TRL), via tensorboard's EventAccumulator
    wandb_runs.py        wandb offline runs (wandb leet inspect --json) and online runs (wandb.Api)
    detect.py            which reader reads a source; load_runs
    points.py            series, check_y, default_x, throughput
    grouping.py          seeds of one recipe: recipe_key, group_runs, group_label
"""

from analysis.readers.asymptote import read_csv, read_metrics, read_run_dir
from analysis.readers.base import Array, Run, RunError, number
from analysis.readers.detect import FORMATS, detect, find_runs, load_runs
from analysis.readers.grouping import group_label, group_runs, recipe_key
from analysis.readers.points import (
    DEFAULT_X,
    HOURS,
    check_y,
    default_x,
    series,
    throughput,
    throughput_rates,
    y_candidates,
)
from analysis.readers.tensorboard_logs import read_tensorboard
from analysis.readers.trl_logs import read_trl
from analysis.readers.verl_logs import read_verl
from analysis.readers.wandb_runs import read_wandb, read_wandb_offline

__all__ = [
    "Array",
    "DEFAULT_X",
    "FORMATS",
    "HOURS",
    "Run",
    "RunError",
    "check_y",
    "default_x",
    "detect",
    "find_runs",
    "group_label",
    "group_runs",
    "load_runs",
    "number",
    "read_csv",
    "read_metrics",
    "read_run_dir",
    "read_tensorboard",
    "read_trl",
    "read_verl",
    "read_wandb",
    "read_wandb_offline",
    "recipe_key",
    "series",
    "throughput",
    "throughput_rates",
    "y_candidates",
]
